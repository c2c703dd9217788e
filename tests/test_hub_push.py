"""Publishing a SepNorm checkpoint with `hf_sepnorm.hub.push_to_hub`, against a local server of the Hub API.

The checkpoint is a Trainer output folder (intermediate checkpoints, training_args.bin, a generic README.md and the
eval results included); what is pushed must load, with `trust_remote_code=True`, in a fresh process where hf_sepnorm
cannot be imported, and predict exactly what the local model predicts.
"""

import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import TINY_BERT, tiny_bert_config, tiny_vit_mae_config
from family_checkpoints import run_snippets_without_package, save_image, save_sepnorm_checkpoint, usage_snippets
from hub_server import OTHER_TOKEN, TEST_TOKEN, TEST_USER, hub_server  # noqa: F401 - `hub_server` is a fixture
from huggingface_hub import HfApi, ModelCard
from huggingface_hub.errors import RepositoryNotFoundError
from reviews import PROBES, REVIEWS
from without_package import BLOCK_HF_SEPNORM
from safetensors.torch import load_file
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    BertConfig,
    BertModel,
    DataCollatorWithPadding,
    PreTrainedTokenizerFast,
    Trainer,
    TrainingArguments,
    ViTImageProcessor,
)

from hf_sepnorm import FAMILIES, SepNormBertForSequenceClassification, SepNormViTMAEForImageClassification
from hf_sepnorm.hub import CheckpointFolderError, HubPushError, cards, checks, push_to_hub
from hf_sepnorm_cli import main as cli_main

TRAINER_DATASET = "sepnorm-tests/tiny-reviews"
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_tokenizer() -> PreTrainedTokenizerFast:
    """A WordPiece tokenizer trained on the reviews, with BERT's special tokens and [CLS] ... [SEP] framing."""
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.train_from_iterator(
        [text for text, _ in REVIEWS], trainers.WordPieceTrainer(vocab_size=99, special_tokens=SPECIAL_TOKENS)
    )
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def accuracy(prediction) -> dict[str, float]:
    return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}


@pytest.fixture(scope="module")
def trainer_folder(tmp_path_factory) -> Path:
    """A Trainer output folder: the final model and tokenizer, checkpoint-1/ and checkpoint-2/ (with optimizer
    states), training_args.bin, eval/all results, TensorBoard logs and the Trainer's README.md."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("trainer_output")
    tokenizer = build_tokenizer()
    model = SepNormBertForSequenceClassification(tiny_bert_config(vocab_size=len(tokenizer), num_labels=2))
    examples = [{**tokenizer(text), "labels": label} for text, label in REVIEWS]
    args = TrainingArguments(
        output_dir=str(folder),
        max_steps=2,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        save_strategy="steps",
        save_steps=1,
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=examples,
        eval_dataset=examples,
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=accuracy,
    )
    trainer.save_metrics("train", trainer.train().metrics)
    trainer.save_metrics("eval", trainer.evaluate())
    trainer.save_model()
    trainer.save_state()
    trainer.create_model_card(dataset_tags=TRAINER_DATASET)
    (folder / "runs").mkdir()
    (folder / "runs" / "events.out.tfevents.0").write_bytes(b"tensorboard")
    return folder


def folder_digest(folder: Path) -> dict[str, str]:
    """sha256 of every file below `folder`, by relative path."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def local_logits(folder: Path) -> torch.Tensor:
    model = SepNormBertForSequenceClassification.from_pretrained(folder).eval()
    tokenizer = PreTrainedTokenizerFast.from_pretrained(folder)
    with torch.no_grad():
        return model(**tokenizer(PROBES, padding=True, return_tensors="pt")).logits


def usage_snippet(readme: bytes) -> str:
    """The first Python block of a model card: its usage snippet."""
    return re.search(r"```python\n(.*?)```", readme.decode(), flags=re.DOTALL).group(1)


LOAD_FROM_HUB_WITHOUT_PACKAGE = BLOCK_HF_SEPNORM + textwrap.dedent(
    """
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    snippet_file, repo_id, commit_sha, probes, out_file = sys.argv[1:6]
    probes = json.loads(probes)
    card = {}
    exec(open(snippet_file).read(), card)  # the model card's usage snippet, loading at the revision it names
    model = AutoModelForSequenceClassification.from_pretrained(repo_id, trust_remote_code=True, revision=commit_sha)
    tokenizer = AutoTokenizer.from_pretrained(repo_id, trust_remote_code=True, revision=commit_sha)
    with torch.no_grad():
        pinned = model.eval()(**tokenizer(probes, padding=True, return_tensors="pt")).logits
        from_card = card["model"](**card["tokenizer"](probes, padding=True, return_tensors="pt")).logits
    save_file({"pinned": pinned, "from_card": from_card}, out_file)
    print(json.dumps({"module": type(model).__module__, "class": type(model).__name__,
                      "backbone": type(model.base_model).__name__}))
    """
)


def load_from_hub_in_fresh_process(hub, repo_id: str, commit_sha: str, tmp_path: Path, token: str | None = None):
    """Run the pushed card's usage snippet, and load `repo_id` at `commit_sha`, in a process where hf_sepnorm cannot
    be imported; returns what it loaded and the logits both gave for PROBES."""
    snippet_file = tmp_path / "card_snippet.py"
    snippet_file.write_text(usage_snippet(hub.files(repo_id, commit_sha)["README.md"]))
    env = {
        **os.environ,
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_OFFLINE": "0",
        "HF_HOME": str(tmp_path / "fresh_home"),
        "HF_MODULES_CACHE": str(tmp_path / "fresh_modules"),
    }
    env.pop("HF_TOKEN", None)
    if token is not None:
        env["HF_TOKEN"] = token
    out_file = tmp_path / "logits.safetensors"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            LOAD_FROM_HUB_WITHOUT_PACKAGE,
            str(snippet_file),
            repo_id,
            commit_sha,
            json.dumps(PROBES),
            str(out_file),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1]), load_file(out_file)


@pytest.mark.slow
def test_pushed_folder_loads_without_the_package_and_predicts_the_same(hub_server, trainer_folder, tmp_path):  # noqa: F811
    before = folder_digest(trainer_folder)
    repo_id = f"{TEST_USER}/tiny-sepnorm-reviews"

    commit = push_to_hub(trainer_folder, repo_id)

    assert folder_digest(trainer_folder) == before
    assert hub_server.calls("POST", r"/commit/") == 1
    pushed = hub_server.files(repo_id, commit.oid)
    assert set(pushed) == set(checks.package_code_files(FAMILIES["sepnorm_bert"])) | {  # the code, as save_pretrained copies it
        ".gitattributes",
        "README.md",
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "all_results.json",
        "eval_results.json",
        "train_results.json",
        "trainer_state.json",
    }  # no checkpoint-*/, runs/, training_args.bin
    assert pushed["model.safetensors"] == (trainer_folder / "model.safetensors").read_bytes()
    assert hub_server.files(repo_id, "main") == pushed

    card = ModelCard(pushed["README.md"].decode())
    assert "sepnorm" in card.data.tags and card.data.pipeline_tag == "text-classification"
    assert {result.metric_type for result in card.data.eval_results} == {"accuracy"}  # no loss, runtime, epoch...
    (result,) = [result for result in card.data.eval_results if result.metric_type == "accuracy"]
    eval_results = json.loads((trainer_folder / "eval_results.json").read_text())
    assert result.metric_value == eval_results["eval_accuracy"]
    assert result.dataset_type == TRAINER_DATASET  # named by the Trainer's README, which is not pushed
    assert card.text != ModelCard.load(trainer_folder / "README.md").text

    loaded, logits = load_from_hub_in_fresh_process(hub_server, repo_id, commit.oid, tmp_path)
    assert loaded["module"].startswith("transformers_modules.")  # the repo's code, not a package's
    local_backbone = type(SepNormBertForSequenceClassification.from_pretrained(trainer_folder).base_model).__name__
    assert (loaded["class"], loaded["backbone"]) == ("SepNormBertForSequenceClassification", local_backbone)
    expected = local_logits(trainer_folder)
    assert torch.equal(logits["pinned"], expected)
    assert torch.equal(logits["from_card"], expected)


@pytest.mark.slow
def test_private_repo_on_a_new_branch(hub_server, trainer_folder, tmp_path):  # noqa: F811
    repo_id = f"{TEST_USER}/private-sepnorm"

    commit = push_to_hub(trainer_folder, repo_id, private=True, revision="experiment", token=TEST_TOKEN)

    info = HfApi(token=TEST_TOKEN).model_info(repo_id, revision="experiment")
    assert info.private and info.sha == commit.oid
    assert "model.safetensors" in {sibling.rfilename for sibling in info.siblings}
    assert "model.safetensors" not in hub_server.files(repo_id, "main")  # the branch got the commit, not main
    assert 'revision = "experiment"' in hub_server.files(repo_id, "experiment")["README.md"].decode()
    for anonymous_or_other in (False, OTHER_TOKEN):
        with pytest.raises(RepositoryNotFoundError):
            HfApi(token=anonymous_or_other).model_info(repo_id)

    _, logits = load_from_hub_in_fresh_process(hub_server, repo_id, commit.oid, tmp_path, token=TEST_TOKEN)
    assert torch.equal(logits["pinned"], local_logits(trainer_folder))
    assert torch.equal(logits["from_card"], logits["pinned"])


def test_pull_request_leaves_the_branch_alone(hub_server, trainer_folder):  # noqa: F811
    repo_id = f"{TEST_USER}/reviewed-sepnorm"
    first = push_to_hub(trainer_folder, repo_id)

    draft, final = (ModelCard(f"---\nlicense: mit\n---\n{text}\n") for text in ("Draft", "Final"))

    proposal = push_to_hub(trainer_folder, repo_id, create_pr=True, card=draft)
    assert proposal.pr_revision == "refs/pr/1"
    update = push_to_hub(trainer_folder, repo_id, revision=proposal.pr_revision, card=final)

    assert hub_server.history(repo_id)[0].oid == first.oid
    assert hub_server.files(repo_id, "refs/pr/1")["README.md"] == str(final).encode()
    assert hub_server.history(repo_id, "refs/pr/1")[0].oid == update.oid


@pytest.mark.slow
def test_cli_pushes_a_folder(hub_server, trainer_folder):  # noqa: F811
    repo_id = f"{TEST_USER}/cli-sepnorm"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hf_sepnorm_cli",
            "push",
            str(trainer_folder),
            repo_id,
            "--private",
            "--revision",
            "v1",
            "--commit-message",
            "SepNorm from the CLI",
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ),  # HF_ENDPOINT and HF_TOKEN point at the local Hub
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    commit = hub_server.history(repo_id, "v1")[0]
    assert commit.title == "SepNorm from the CLI"
    assert result.stdout.strip() == f"{hub_server.endpoint}/{repo_id}/commit/{commit.oid}"
    assert hub_server.repos[repo_id].private
    assert "config.json" in hub_server.files(repo_id, "v1")


@pytest.fixture
def saved_folder(tmp_path) -> Path:
    """A checkpoint saved with save_pretrained, with its tokenizer."""
    folder = tmp_path / "saved"
    tokenizer = build_tokenizer()
    SepNormBertForSequenceClassification(tiny_bert_config(vocab_size=len(tokenizer))).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_folder_missing_its_code_file_is_refused_before_any_request(hub_server, saved_folder, capsys):  # noqa: F811
    (saved_folder / "sepnorm.py").unlink()  # imported by modeling_sepnorm_bert.py, not named by auto_map

    with pytest.raises(CheckpointFolderError, match=r"code files sepnorm\.py .*missing"):
        push_to_hub(saved_folder, f"{TEST_USER}/broken")
    assert cli_main(["push", str(saved_folder), f"{TEST_USER}/broken"]) == 2  # the user's folder: nothing sent
    assert "sepnorm.py" in capsys.readouterr().err
    assert hub_server.requests == []


def test_a_stock_folder_or_a_bad_repo_id_is_refused_in_one_line(hub_server, saved_folder, tmp_path, capsys):  # noqa: F811
    stock = tmp_path / "stock"
    BertModel(BertConfig(**TINY_BERT)).save_pretrained(stock)
    capsys.readouterr()  # the save's progress bar
    assert cli_main(["push", str(stock), f"{TEST_USER}/stock"]) == 2
    error = capsys.readouterr().err.strip()
    fix = f"Convert it first: `hf-sepnorm convert {stock} <new folder> --calibration_file"
    assert len(error.splitlines()) == 1 and fix in error
    assert cli_main(["push", str(saved_folder), "not a repo id"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "'not a repo id' is no Hub repo id" in error and "namespace/name" in error
    assert hub_server.requests == []


def test_incomplete_auto_map_is_refused(hub_server, saved_folder):  # noqa: F811
    config = json.loads((saved_folder / "config.json").read_text())
    del config["auto_map"]["AutoModelForSequenceClassification"]
    (saved_folder / "config.json").write_text(json.dumps(config))

    with pytest.raises(CheckpointFolderError, match="AutoModelForSequenceClassification"):
        push_to_hub(saved_folder, f"{TEST_USER}/broken")
    assert f"{TEST_USER}/broken" not in hub_server.repos


def test_vit_mae_folder_needs_its_image_processor(hub_server, tmp_path):  # noqa: F811
    folder = tmp_path / "vit"
    SepNormViTMAEForImageClassification(tiny_vit_mae_config(num_labels=3)).save_pretrained(folder)
    with pytest.raises(CheckpointFolderError, match=r"preprocessor_config\.json.*image_processor\.save_pretrained"):
        push_to_hub(folder, f"{TEST_USER}/vit")

    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    push_to_hub(folder, f"{TEST_USER}/vit")

    pushed = hub_server.files(f"{TEST_USER}/vit")
    assert "preprocessor_config.json" in pushed and "modeling_sepnorm_vit_mae.py" in pushed
    assert ModelCard(pushed["README.md"].decode()).data.pipeline_tag == "image-classification"


def test_sharded_weights_replace_the_single_file_of_a_previous_push(
    hub_server, saved_folder, tmp_path, caplog  # noqa: F811
):
    repo_id = f"{TEST_USER}/resharded"
    with caplog.at_level("WARNING", logger="hf_sepnorm.hub.push"):
        first = push_to_hub(saved_folder, repo_id)
    assert "held a model" not in caplog.text  # a new repo
    sharded = tmp_path / "sharded"
    SepNormBertForSequenceClassification.from_pretrained(saved_folder).save_pretrained(sharded, max_shard_size="40KB")
    PreTrainedTokenizerFast.from_pretrained(saved_folder).save_pretrained(sharded)

    with caplog.at_level("WARNING", logger="hf_sepnorm.hub.push"):
        push_to_hub(sharded, repo_id)
    # a new version: the model it replaces is named, and kept in the history
    assert f"'main' held a model (commit {first.oid}), which this commit replaces" in caplog.text
    assert "model.safetensors" in hub_server.files(repo_id, first.oid)

    pushed = hub_server.files(repo_id)
    shards = {path for path in pushed if path.endswith(".safetensors")}
    assert "model.safetensors" not in pushed and len(shards) > 1  # else transformers would load the stale file
    assert shards == set(json.loads(pushed["model.safetensors.index.json"])["weight_map"].values())


def test_server_error_on_commit_is_reported_and_the_folder_untouched(hub_server, trainer_folder):  # noqa: F811
    repo_id = f"{TEST_USER}/flaky"
    before = folder_digest(trainer_folder)
    hub_server.fail_next_commits(1, status=500)

    with pytest.raises(HubPushError, match=rf"{repo_id}.*the commit of \d+ files to 'main' failed: .*500"):
        push_to_hub(trainer_folder, repo_id)
    assert folder_digest(trainer_folder) == before
    assert set(hub_server.files(repo_id)) == {".gitattributes"}

    push_to_hub(trainer_folder, repo_id)  # the server recovered: pushing again works
    assert "model.safetensors" in hub_server.files(repo_id)
    assert folder_digest(trainer_folder) == before


def test_commit_timeout_is_reported_and_the_folder_untouched(hub_server, trainer_folder):  # noqa: F811
    repo_id = f"{TEST_USER}/slow"
    before = folder_digest(trainer_folder)
    hub_server.hang_next_commits(seconds=60)

    with pytest.raises(HubPushError, match=rf"{repo_id}.*the commit of \d+ files to 'main' got no answer in time"):
        push_to_hub(trainer_folder, repo_id, timeout=3.0)
    assert folder_digest(trainer_folder) == before
    assert set(hub_server.files(repo_id)) == {".gitattributes"}


PUSHED_HEADS = [
    pytest.param("sepnorm_bert", "AutoModelForSequenceClassification", id="bert"),
    pytest.param("sepnorm_roberta", "AutoModelForSequenceClassification", id="roberta"),
    pytest.param("sepnorm_vit_mae", "AutoModelForImageClassification", id="vit_mae"),
    pytest.param("sepnorm_modernbert", "AutoModelForSequenceClassification", id="modernbert"),
    pytest.param("sepnorm_dinov2", "AutoModelForImageClassification", id="dinov2"),
]


@pytest.mark.slow
@pytest.mark.parametrize("model_type, auto_class", PUSHED_HEADS)
def test_every_family_pushes_and_its_card_snippet_loads_it_from_the_hub(
    hub_server, tmp_path, model_type, auto_class  # noqa: F811
):
    family = FAMILIES[model_type]
    model_class = family.heads[auto_class]
    folder = save_sepnorm_checkpoint(model_class, tmp_path / "saved", num_labels=3)
    repo_id = f"{TEST_USER}/tiny-{model_type}"

    commit = push_to_hub(folder, repo_id)

    pushed = hub_server.files(repo_id, commit.oid)
    code_files = {reference.split(".")[0] + ".py" for reference in family.expected_auto_map().values()}
    assert code_files | {"sepnorm.py", family.preprocessor.config_file, "model.safetensors"} <= set(pushed)
    card = ModelCard(pushed["README.md"].decode())
    assert card.data.pipeline_tag == family.pipeline_tags[auto_class]
    assert card.data.tags == ["sepnorm", "custom_code", *family.stock_model_types]
    assert commit.commit_message == f"Upload SepNorm {family.name} checkpoint"

    snippet = tmp_path / "snippet.py"
    snippet.write_text("\n".join(usage_snippets(pushed["README.md"].decode())))  # as written: repo id, revision main
    save_image(tmp_path / "image.jpg")
    env = {"HF_ENDPOINT": hub_server.endpoint, "HF_HUB_OFFLINE": "0", "HF_HOME": str(tmp_path / "fresh_home")}
    ran = run_snippets_without_package([snippet], tmp_path, env)[str(snippet)]
    assert ran["class"] == model_class.__name__ and ran["module"].startswith("transformers_modules.")
    assert "predicted" in ran["names"]


@pytest.fixture
def sepnorm_trainer_folder(tmp_path) -> Path:
    """A folder written by the package's SepNormTrainer: 2 training steps, an evaluation and its SepNorm card (GLUE
    SST-2's data set and config, the validation split, a language and a tag of the user's)."""
    from hf_sepnorm.training import SepNormTrainer

    torch.manual_seed(0)
    folder = tmp_path / "sst2"
    tokenizer = build_tokenizer()
    model = SepNormBertForSequenceClassification(tiny_bert_config(vocab_size=len(tokenizer), num_labels=2))
    examples = [{**tokenizer(text), "labels": label} for text, label in REVIEWS]
    args = TrainingArguments(output_dir=str(folder), max_steps=2, per_device_train_batch_size=4, report_to=[],
                             save_strategy="no", use_cpu=True, disable_tqdm=True)  # fmt: skip
    trainer = SepNormTrainer(model=model, args=args, train_dataset=examples, eval_dataset=examples,
                             processing_class=tokenizer, data_collator=DataCollatorWithPadding(tokenizer),
                             compute_metrics=accuracy)  # fmt: skip
    trainer.train()
    trainer.save_model()
    trainer.save_metrics("eval", trainer.evaluate())
    trainer.create_model_card(language="en", tags="my-experiment", dataset_tags="nyu-mll/glue", dataset_args="sst2",
                              eval_split="validation")  # fmt: skip
    return folder


@pytest.mark.slow
def test_push_keeps_the_folders_own_card_and_points_its_snippet_at_the_repo(
    hub_server, sepnorm_trainer_folder, tmp_path  # noqa: F811
):
    folder = sepnorm_trainer_folder
    written = ModelCard.load(folder / "README.md")
    assert 'repo_id = "<your-namespace>/sst2"' in written.text  # not pushed yet: a placeholder
    weights = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert f"with the weights `model.safetensors` (sha256 `{weights}`)" in written.text
    edited = str(written).replace("## Evaluation", "A note of the user's.\n\n## Evaluation")
    (folder / "README.md").write_text(edited)
    repo_id = f"{TEST_USER}/sst2-sepnorm"

    commit = push_to_hub(folder, repo_id, revision="v1")

    pushed = ModelCard(hub_server.files(repo_id, commit.oid)["README.md"].decode())
    assert "A note of the user's." in pushed.text  # the folder's card, edits included, not a re-rendered one
    assert pushed.data.language == "en" and "my-experiment" in pushed.data.tags
    assert pushed.data.base_model is None  # trained from scratch
    (result,) = pushed.data.eval_results
    assert (result.dataset_type, result.dataset_config, result.dataset_split) == ("nyu-mll/glue", "sst2", "validation")
    assert result.metric_type == "accuracy" and pushed.data.model_name == "sst2-sepnorm"
    assert f'repo_id = "{repo_id}"' in pushed.text and 'revision = "v1"' in pushed.text
    assert "<your-namespace>" not in pushed.text and pushed.text.count("\n# sst2-sepnorm\n") == 1
    assert (folder / "README.md").read_text() == edited  # the local folder is left as it was

    _, logits = load_from_hub_in_fresh_process(hub_server, repo_id, commit.oid, tmp_path)
    assert torch.equal(logits["from_card"], local_logits(folder))


def test_a_card_measured_on_other_weights_is_refused(hub_server, sepnorm_trainer_folder, capsys):  # noqa: F811
    folder = sepnorm_trainer_folder
    model = SepNormBertForSequenceClassification.from_pretrained(folder)
    torch.nn.init.normal_(model.classifier.weight)  # the weights change after the evaluation the card reports
    model.save_pretrained(folder)
    capsys.readouterr()  # the load's and the save's progress bars

    assert cli_main(["push", str(folder), f"{TEST_USER}/stale"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "--do_eval" in error
    assert "the weights changed since these metrics were measured, or the file is damaged: re-run evaluation" in error
    assert "delete README.md" not in error  # which would lead to pushing a damaged file
    assert hub_server.requests == []


# ---- what a push checks before any request: weights that read in full and match the config, code that is the
# package's (issue 32) ----


def cut_in_half(path: Path) -> None:
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])


def test_a_cut_weights_file_is_refused_in_one_line_naming_it(hub_server, saved_folder, capsys):  # noqa: F811
    cut_in_half(saved_folder / "model.safetensors")

    assert cli_main(["push", str(saved_folder), f"{TEST_USER}/cut"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert f"{saved_folder}/model.safetensors cannot be read as safetensors" in error and "damaged" in error
    assert hub_server.requests == [] and f"{TEST_USER}/cut" not in hub_server.repos


def test_a_weights_file_cut_in_its_data_is_refused(hub_server, saved_folder):  # noqa: F811
    """The header reads, the tensors' bytes do not: only reading every tensor finds it."""
    path = saved_folder / "model.safetensors"
    content = path.read_bytes()
    path.write_bytes(content[:-1000])
    with pytest.raises(CheckpointFolderError, match=r"model\.safetensors cannot be read as safetensors"):
        push_to_hub(saved_folder, f"{TEST_USER}/cut")
    assert hub_server.requests == []


def test_weights_of_another_shape_than_the_config_says_are_refused(hub_server, saved_folder, capsys):  # noqa: F811
    config = json.loads((saved_folder / "config.json").read_text())
    config["intermediate_size"] *= 2  # the config no longer describes the saved weights
    (saved_folder / "config.json").write_text(json.dumps(config))

    assert cli_main(["push", str(saved_folder), f"{TEST_USER}/other-shape"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "do not match its config.json's SepNormBertForSequenceClassification" in error
    assert "intermediate.dense.weight" in error and "shapes differ" in error
    assert hub_server.requests == []


def test_a_corrupt_file_with_a_metrics_card_is_blamed_on_the_file(hub_server, sepnorm_trainer_folder, capsys):  # noqa: F811
    cut_in_half(sepnorm_trainer_folder / "model.safetensors")
    assert cli_main(["push", str(sepnorm_trainer_folder), f"{TEST_USER}/cut"]) == 2
    error = capsys.readouterr().err.strip()
    assert "model.safetensors cannot be read as safetensors" in error and "delete README.md" not in error
    assert hub_server.requests == []


PAYLOAD = "\nimport pathlib\npathlib.Path('pwned').write_text('ran on import')\n"


def test_modified_code_is_refused_naming_the_files(hub_server, saved_folder, capsys):  # noqa: F811
    with open(saved_folder / "sepnorm.py", "a") as handle:
        handle.write(PAYLOAD)

    assert cli_main(["push", str(saved_folder), f"{TEST_USER}/payload"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert f"The code files sepnorm.py of {saved_folder} differ from the installed hf_sepnorm" in error
    assert "--modified-code-is-mine" in error and "hf_sepnorm.hub.refresh_code" in error
    assert hub_server.requests == []


@pytest.mark.slow
def test_modified_code_pushed_as_the_users_own_is_what_the_card_lists(hub_server, saved_folder, tmp_path):  # noqa: F811
    with open(saved_folder / "sepnorm.py", "a") as handle:
        handle.write("\n# a comment of the user's\n")
    repo_id = f"{TEST_USER}/mine"

    assert cli_main(["push", str(saved_folder), repo_id, "--modified-code-is-mine"]) == 0

    pushed = hub_server.files(repo_id)
    card = ModelCard(pushed["README.md"].decode())
    listed = cards.card_code_sha256(card)
    code = {name: content for name, content in pushed.items() if name.endswith(".py")}
    assert listed == {name: hashlib.sha256(content).hexdigest() for name, content in code.items()}
    lines = {name: len(content.decode().splitlines()) for name, content in code.items()}
    assert f"It is {len(code)} files, {sum(lines.values())} lines" in card.text
    assert f"| `sepnorm.py` | {lines['sepnorm.py']} |" in card.text
    assert "**Modified code**: `sepnorm.py` differ from the code of hf_sepnorm" in card.text


def test_code_of_another_release_is_named_as_such_and_refreshed(hub_server, sepnorm_trainer_folder, capsys):  # noqa: F811
    """The folder's card lists its code files as they are: another release saved them, and refresh_code fixes it."""
    folder = sepnorm_trainer_folder
    card = ModelCard.load(folder / "README.md")
    older = (folder / "sepnorm.py").read_text() + "# as another release wrote it\n"
    (folder / "sepnorm.py").write_text(older)
    digest = hashlib.sha256(older.encode()).hexdigest()
    listed = cards.card_code_sha256(card)
    card = ModelCard(str(card).replace(listed["sepnorm.py"], digest))
    card.save(folder / "README.md")

    assert cli_main(["push", str(folder), f"{TEST_USER}/old"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "was saved by another hf_sepnorm release than the installed" in error
    assert hub_server.requests == []

    refreshed = subprocess.run([sys.executable, "-m", "hf_sepnorm.hub.refresh_code", str(folder)],
                               capture_output=True, text=True, check=True)  # fmt: skip
    assert "Replaced sepnorm.py" in refreshed.stdout
    commit = push_to_hub(folder, f"{TEST_USER}/old")
    pushed = hub_server.files(f"{TEST_USER}/old", commit.oid)
    assert cards.card_code_sha256(ModelCard(pushed["README.md"].decode()))["sepnorm.py"] == hashlib.sha256(
        pushed["sepnorm.py"]).hexdigest()  # fmt: skip


EVERY_HEAD = [pytest.param(model_class, id=model_class.__name__)
              for family in FAMILIES.values() for model_class in family.heads.values()]  # fmt: skip


@pytest.mark.parametrize("model_class", EVERY_HEAD)
def test_every_head_as_save_pretrained_writes_it_passes_the_weights_check(model_class, tmp_path):
    """Tied weights (masked LM), decoders (MAE pretraining), new heads: what save_pretrained writes matches the
    model the installed class builds from the config, and a config that no longer does is caught."""
    folder = save_sepnorm_checkpoint(model_class, tmp_path / "saved")
    family = FAMILIES[model_class.config_class.model_type]
    checks.check_weights_match_config(folder, family)
    config = json.loads((folder / "config.json").read_text())
    config["hidden_size"], config["num_attention_heads"] = config["hidden_size"] * 2, 2
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointFolderError, match="shapes differ"):
        checks.check_weights_match_config(folder, family)
