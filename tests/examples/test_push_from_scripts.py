"""`run_glue.py --push_to_hub` against the local Hub server: the Trainer pushes (at the end, and checkpoints with
`--hub_strategy`), with this package's model card, and the pushed repo loads without the package."""

import json
from pathlib import Path

import pytest
import torch
import transformers.utils.hub
from conftest import TINY_BERT_OVERRIDES
from hub_server import TEST_TOKEN, TEST_USER, card_metadata, hub_server  # noqa: F401 - `hub_server` is a fixture
from reviews import PROBES
from test_hub_push import load_from_hub_in_fresh_process
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from hf_sepnorm.scripts import glue as run_glue

CODE_FILES = {"modeling_sepnorm_bert.py", "configuration_sepnorm_bert.py", "sepnorm.py"}


@pytest.fixture
def trainer_hub(hub_server, monkeypatch):  # noqa: F811
    """The local Hub, also for the Trainer, whose shared `HfApi` copies the endpoint when it is first built. The GLUE
    metric stays the local copy (the local Hub serves model repos only)."""
    monkeypatch.setattr(transformers.utils.hub, "_hf_api", None)
    monkeypatch.setenv("HF_EVALUATE_OFFLINE", "1")
    return hub_server


def run_glue_sst2(data_dir, output_dir: Path, *extra: str) -> None:
    run_glue.main(
        ["--task_name", "sst2", "--data_dir", str(data_dir / "glue" / "SST-2"), "--output_dir", str(output_dir),
         "--do_train", "--do_eval", "--max_train_samples", "128", "--max_eval_samples", "32",
         "--per_device_train_batch_size", "8", "--config_overrides", TINY_BERT_OVERRIDES, "--vocab_size", "1000",
         "--recalibration_batches", "4", "--report_to", "none", "--disable_tqdm", "true", "--push_to_hub",
         "--hub_token", TEST_TOKEN, *extra]
    )  # fmt: skip


def model_index_metrics(metadata: dict) -> dict[str, float]:
    return {
        metric["type"]: metric["value"]
        for entry in metadata["model-index"]
        for result in entry["results"]
        for metric in result["metrics"]
    }


@pytest.mark.slow
def test_run_glue_push_to_hub_loads_with_trust_remote_code(trainer_hub, data_dir, tmp_path):
    repo_id = f"{TEST_USER}/sst2-sepnorm"
    output_dir = tmp_path / "sst2"
    run_glue_sst2(data_dir, output_dir, "--max_steps", "3", "--hub_model_id", repo_id)
    commit = trainer_hub.history(repo_id)[0]
    assert commit.title == "End of training"
    pushed = trainer_hub.files(repo_id, commit.oid)
    assert {"model.safetensors", "config.json", "tokenizer.json", "README.md", "all_results.json"} | CODE_FILES <= set(
        pushed
    )
    assert not any(name.startswith("checkpoint-") for name in pushed)
    assert (output_dir / "training_args.bin").is_file() and "training_args.bin" not in pushed  # a pickle: not pushed

    # the card is this package's, its model-index the run's evaluation metrics only, on the GLUE data set
    metadata = card_metadata(pushed["README.md"])
    assert "sepnorm" in metadata["tags"] and metadata["pipeline_tag"] == "text-classification"
    assert metadata["datasets"] == ["nyu-mll/glue"]
    assert {result["dataset"]["config"] for entry in metadata["model-index"] for result in entry["results"]} == {"sst2"}
    measured = json.loads((output_dir / "all_results.json").read_text())
    reported = model_index_metrics(metadata)
    assert any(value == pytest.approx(measured["eval_accuracy"], abs=1e-9) for value in reported.values()), reported
    assert not any(word in name for name in reported for word in ("runtime", "per_second", "samples")), reported

    loaded, logits = load_from_hub_in_fresh_process(trainer_hub, repo_id, commit.oid, tmp_path)
    assert loaded["module"].startswith("transformers_modules.")
    assert loaded["class"] == "SepNormBertForSequenceClassification"
    local_model = AutoModelForSequenceClassification.from_pretrained(output_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(output_dir)
    with torch.no_grad():
        expected = local_model(**tokenizer(PROBES, padding=True, return_tensors="pt")).logits
    assert torch.equal(logits["pinned"], expected)
    assert torch.equal(logits["from_card"], expected)


@pytest.mark.slow
def test_checkpoint_pushes_to_a_new_branch_carry_the_modeling_code(trainer_hub, data_dir, tmp_path):
    repo_id = f"{TEST_USER}/sst2-checkpoints"
    run_glue_sst2(
        data_dir, tmp_path / "out", "--max_steps", "3", "--save_steps", "2", "--hub_model_id", repo_id,
        "--hub_strategy", "checkpoint", "--hub_revision", "experiment",
    )  # fmt: skip
    history = trainer_hub.history(repo_id, "experiment")
    titles = [commit.title for commit in history]
    assert titles[0] == "End of training" and "Training in progress, step 2" in titles, titles
    assert [commit.title for commit in trainer_hub.history(repo_id, "main")] == ["initial commit"]

    step_2 = next(commit for commit in history if commit.title == "Training in progress, step 2")
    mid_training = trainer_hub.files(repo_id, step_2.oid)
    # what trust_remote_code needs to load the repo as it is mid-training: the config's auto_map names the code
    assert {"config.json", "model.safetensors"} | CODE_FILES <= set(mid_training), sorted(mid_training)
    final = trainer_hub.files(repo_id, history[0].oid)
    assert "last-checkpoint/trainer_state.json" in final  # what --resume_from_checkpoint needs, from the Hub
    pickled_arguments = [name for commit in history for name in trainer_hub.files(repo_id, commit.oid)
                         if name.endswith("training_args.bin")]  # fmt: skip
    assert pickled_arguments == []
    assert "sepnorm" in card_metadata(final["README.md"])["tags"]


@pytest.mark.slow
def test_the_trainers_push_refuses_code_other_than_the_packages_unless_told_it_is_the_users(
    trainer_hub, tmp_path, capsys  # noqa: F811
):
    """A model of the code of a folder whose code was changed saves that code: the Trainer's
    push refuses it in one line naming the file, before the upload; with --hub_modified_code_is_mine the card says
    the code was modified and lists the pushed files' sha256."""
    import hashlib

    from huggingface_hub import ModelCard
    from reviews import REVIEWS
    from test_hub_push import build_tokenizer
    from transformers import DataCollatorWithPadding
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    from hf_sepnorm import SepNormBertForSequenceClassification
    from hf_sepnorm.hub import CheckpointFolderError, cards
    from hf_sepnorm.training import SepNormTrainer, SepNormTrainingArguments
    from conftest import tiny_bert_config

    tokenizer = build_tokenizer()
    SepNormBertForSequenceClassification(tiny_bert_config(vocab_size=len(tokenizer))).save_pretrained(tmp_path / "base")
    with open(tmp_path / "base" / "sepnorm.py", "a") as handle:
        handle.write("\n# the user's change\n")
    examples = [{**tokenizer(text), "labels": label} for text, label in REVIEWS]

    def train_and_push(repo_id: str, **arguments):
        # the folder's code, as trust_remote_code=True runs it where hf_sepnorm is not imported
        model_class = get_class_from_dynamic_module("modeling_sepnorm_bert.SepNormBertForSequenceClassification",
                                                    tmp_path / "base")  # fmt: skip
        model = model_class.from_pretrained(tmp_path / "base")
        assert type(model).__module__.startswith("transformers_modules.")
        args = SepNormTrainingArguments(
            output_dir=str(tmp_path / repo_id.split("/")[1]), max_steps=1, per_device_train_batch_size=4,
            report_to=[], save_strategy="no", disable_tqdm=True, push_to_hub=True, hub_model_id=repo_id,
            hub_token=TEST_TOKEN, **arguments,
        )  # fmt: skip
        trainer = SepNormTrainer(model=model, args=args, train_dataset=examples, processing_class=tokenizer,
                                 data_collator=DataCollatorWithPadding(tokenizer))  # fmt: skip
        trainer.train()
        trainer.push_to_hub()

    with pytest.raises(CheckpointFolderError, match=r"The code files sepnorm\.py of .* differ from the installed") as error:
        train_and_push(f"{TEST_USER}/refused")
    assert len(str(error.value).splitlines()) == 1 and "--hub_modified_code_is_mine" in str(error.value)
    assert trainer_hub.calls("POST", r"/commit/") == 0

    train_and_push(f"{TEST_USER}/mine", hub_modified_code_is_mine=True)
    pushed = trainer_hub.files(f"{TEST_USER}/mine")
    card = ModelCard(pushed["README.md"].decode())
    assert "**Modified code**: `sepnorm.py` differ from the code of hf_sepnorm" in card.text
    assert cards.card_code_sha256(card) == {
        name: hashlib.sha256(content).hexdigest() for name, content in pushed.items() if name.endswith(".py")
    }
