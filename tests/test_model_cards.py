"""SepNorm model cards: Hub metadata per head, model-index, usage snippets, BatchNorm caveats, citation."""

import hashlib
import re

import pytest
import torch
from conftest import bert_inputs, tiny_bert_config, tiny_vit_mae_config
from family_checkpoints import run_snippets_without_package, save_image, save_sepnorm_checkpoint, usage_snippets
from huggingface_hub import ModelCard

from hf_sepnorm import (
    FAMILIES,
    ClsBatchNorm,
    SepNormBertForMaskedLM,
    SepNormBertForMultipleChoice,
    SepNormBertForQuestionAnswering,
    SepNormBertForSequenceClassification,
    SepNormBertForTokenClassification,
    SepNormBertModel,
    SepNormViTMAEForImageClassification,
    SepNormViTMAEForPreTraining,
)
from hf_sepnorm.families import TEXT_PIPELINE_TAGS
from hf_sepnorm.hub import render_model_card
from hf_sepnorm.hub.cards import card_code_sha256, measured_weights, supported_transformers

GLUE_RESULTS = {"accuracy": 0.912, "f1": 0.905}
COMPARISON = [
    {"normalization": "ShareNorm", "accuracy": 0.897},
    {"normalization": "SepNorm", "accuracy": 0.912},
]


def python_blocks(card: ModelCard) -> list[str]:
    return re.findall(r"```python\n(.*?)```", card.text, flags=re.DOTALL)


def reloaded(card: ModelCard) -> ModelCard:
    """The card as the Hub and its clients parse README.md."""
    return ModelCard(str(card))


BERT_HEADS = [
    (SepNormBertForMaskedLM, "AutoModelForMaskedLM", "fill-mask"),
    (SepNormBertForSequenceClassification, "AutoModelForSequenceClassification", "text-classification"),
    (SepNormBertForTokenClassification, "AutoModelForTokenClassification", "token-classification"),
    (SepNormBertForQuestionAnswering, "AutoModelForQuestionAnswering", "question-answering"),
    (SepNormBertForMultipleChoice, "AutoModelForMultipleChoice", "multiple-choice"),
    (SepNormBertModel, "AutoModel", "feature-extraction"),
]


@pytest.mark.parametrize("model_class, auto_class, pipeline_tag", BERT_HEADS, ids=[h[2] for h in BERT_HEADS])
def test_bert_card_metadata_and_usage_follow_the_head(model_class, auto_class, pipeline_tag):
    config = tiny_bert_config(architectures=[model_class.__name__])

    card = reloaded(render_model_card(config, repo_id="lab/sepnorm-bert", revision="0123abcd"))

    assert card.data.library_name == "transformers"
    assert card.data.pipeline_tag == pipeline_tag
    assert card.data.tags == ["sepnorm", "custom_code", "bert"]
    assert card.data.license == "apache-2.0"
    assert card.data.eval_results is None and card.data.datasets is None and card.data.base_model is None
    (usage, *_) = python_blocks(card)
    assert "AutoTokenizer.from_pretrained(repo_id, trust_remote_code=True, revision=revision)" in usage
    assert f"{auto_class}.from_pretrained(repo_id, trust_remote_code=True, revision=revision)" in usage
    assert 'repo_id = "lab/sepnorm-bert"\nrevision = "0123abcd"' in usage


def test_glue_card_holds_results_training_comparison_and_citation():
    model = SepNormBertForSequenceClassification(tiny_bert_config(num_labels=2, sepnorm_scope="final"))

    card = reloaded(
        render_model_card(
            model,
            repo_id="lab/sepnorm-bert-sst2",
            eval_results=GLUE_RESULTS,
            dataset_name="nyu-mll/glue",
            task_name="sst2",
            base_model="google-bert/bert-base-uncased",
            training_summary={"steps": 3000, "learning_rate": 2e-5, "batch size": 32},
            comparison=COMPARISON,
            license="mit",
        )
    )

    assert card.data.datasets == ["nyu-mll/glue"]
    assert card.data.base_model == "google-bert/bert-base-uncased"
    assert card.data.license == "mit"
    assert card.data.model_name == "sepnorm-bert-sst2"
    assert {(r.metric_type, r.metric_value) for r in card.data.eval_results} == set(GLUE_RESULTS.items())
    for result in card.data.eval_results:
        assert (result.task_type, result.dataset_type, result.dataset_config) == (
            "text-classification",
            "nyu-mll/glue",
            "sst2",
        )
    text = card.text
    assert '`cls_norm="batch"`' in text and '`sepnorm_scope="final"`' in text
    assert "| `sepnorm_scope` | `final` |" in text and "| `num_hidden_layers` | `2` |" in text
    assert "| steps | 3000 |" in text and "| learning_rate | 2e-05 |" in text
    assert "| normalization | accuracy |" in text
    assert "| ShareNorm | 0.897 |" in text and "| SepNorm | 0.912 |" in text
    assert "| f1 | 0.905 |" in text
    assert f"transformers{supported_transformers()}" in text and supported_transformers().startswith(">=5.")
    assert "On Separate Normalization in Self-supervised Transformers" in text
    assert "Chen, Xiaohui and Wang, Yinkai and Du, Yuanqi and Hassoun, Soha and Liu, Li-Ping" in text
    assert "booktitle = {Advances in Neural Information Processing Systems}" in text
    for block in python_blocks(card):
        compile(block, "card snippet", "exec")


def test_vit_mae_image_classifier_card():
    model = SepNormViTMAEForImageClassification(tiny_vit_mae_config(num_labels=10, classifier_pooling="mean"))

    card = reloaded(
        render_model_card(
            model, repo_id="lab/sepnorm-vit-cifar10", eval_results={"top-1": 0.874}, dataset_name="cifar10"
        )
    )

    assert card.data.pipeline_tag == "image-classification"
    assert card.data.tags == ["sepnorm", "custom_code", "vit_mae"]
    ((result),) = card.data.eval_results
    assert (result.task_type, result.dataset_type, result.metric_type, result.metric_value) == (
        "image-classification",
        "cifar10",
        "top-1",
        0.874,
    )
    (usage, *_) = python_blocks(card)
    assert "AutoImageProcessor.from_pretrained(repo_id, trust_remote_code=True, revision=revision)" in usage
    assert (
        "AutoModelForImageClassification.from_pretrained(repo_id, trust_remote_code=True, revision=revision)" in usage
    )
    assert 'revision = "main"  # not a commit sha, so it can move: put the sha you reviewed' in usage
    assert "AutoTokenizer" not in card.text
    assert '`classifier_pooling="mean"`' in card.text


def test_vit_mae_pretraining_card_reports_the_eval_loss_and_how_to_get_features():
    model = SepNormViTMAEForPreTraining(tiny_vit_mae_config())

    card = reloaded(
        render_model_card(model, repo_id="lab/sepnorm-mae", eval_results={"loss": 0.41}, dataset_name="imagenet-1k")
    )

    assert card.data.pipeline_tag == "image-feature-extraction"
    ((result),) = card.data.eval_results
    assert (result.metric_type, result.metric_value) == ("loss", 0.41)
    assert "AutoModelForPreTraining.from_pretrained(repo_id, trust_remote_code=True" in card.text
    assert "mask_ratio=0.0" in card.text


@pytest.mark.parametrize("make_config", [tiny_bert_config, tiny_vit_mae_config])
def test_batchnorm_caveats_only_for_a_batchnorm_cls_norm(make_config):
    batch = render_model_card(make_config(cls_norm="batch"), repo_id="lab/batch").text
    layer = render_model_card(make_config(cls_norm="layer"), repo_id="lab/layer").text

    for caveat in ("model.eval()", "batch of 1 sample", "SyncBatchNorm", "Re-estimating the `[CLS]` statistics"):
        assert caveat in batch
    assert "BatchNorm on `[CLS]`" in batch and "BatchNorm on `[CLS]`" not in layer
    assert "no batch statistics: outputs do not depend on the batch" in layer


def test_statistics_re_estimation_snippet_averages_the_batch_statistics():
    card = render_model_card(tiny_bert_config(), repo_id="lab/batch")
    (re_estimation,) = [block for block in python_blocks(card) if "reset_running_stats" in block]
    model = SepNormBertForSequenceClassification(tiny_bert_config()).train()
    seen_inputs = {}
    for norm in (module for module in model.modules() if isinstance(module, ClsBatchNorm)):
        seen_inputs[norm] = []
        norm.register_forward_hook(lambda module, args, output: seen_inputs[module].append(args[0].detach().float()))
    batches = [bert_inputs(batch_size=4) for _ in range(3)]

    exec(re_estimation, {"model": model, "batches": batches})

    assert len(seen_inputs) == 4 and not model.training  # two per layer; the embedding norm stays shared
    for norm, inputs in seen_inputs.items():
        assert len(inputs) == 3
        torch.testing.assert_close(norm.running_mean, torch.stack([x.mean(0) for x in inputs]).mean(0))
        torch.testing.assert_close(norm.running_var, torch.stack([x.var(0) for x in inputs]).mean(0))
        assert norm.momentum == model.config.cls_norm_momentum


# ---- metadata: metrics only, a data set id only where there is one ----

TRAINER_RESULTS = {  # what trainer.evaluate() returns and all_results.json holds
    "eval_accuracy": 0.87500004,  # rounded to 0.875
    "eval_stsb_dev_pairs": 100,  # a count, as run_simcse.py reports its pairs
    "eval_loss": 0.31,
    "eval_runtime": 1.93,
    "eval_samples_per_second": 414.2,
    "eval_steps_per_second": 51.8,
    "eval_samples": 800,
    "epoch": 3.0,
    "train_loss": 0.12,
    "train_runtime": 61.0,
    "train_samples": 6000,
    "total_flos": 1.2e12,
    "eval_model_preparation_time": "n/a",
}


def test_model_index_holds_the_metrics_only():
    card = reloaded(
        render_model_card(
            tiny_bert_config(architectures=["SepNormBertForSequenceClassification"]),
            repo_id="lab/glue",
            eval_results=TRAINER_RESULTS,
            dataset_name="nyu-mll/glue",
            task_name="sst2",
            eval_split="validation",
            weights={"model.safetensors": "0" * 64},
        )
    )
    # the loss stays in the card's table, not in the model-index; counts are neither
    assert {(r.metric_type, r.metric_value) for r in card.data.eval_results} == {("accuracy", 0.875)}
    assert {(r.dataset_config, r.dataset_split) for r in card.data.eval_results} == {("sst2", "validation")}
    evaluation = card.text.split("## Evaluation")[1].split("##")[0]
    assert evaluation.split() == (
        "Measured on the `validation` split of `nyu-mll/glue` (`sst2`), with the weights `model.safetensors` "
        f"(sha256 `{'0' * 64}`): | metric | value | |---|---| | accuracy | 0.875 | | loss | 0.31 |"
    ).split()
    assert measured_weights(card) == {"model.safetensors": "0" * 64}  # what `push` checks the folder against


def test_a_card_without_a_split_or_weights_says_so():
    card = render_model_card(SepNormBertModel(tiny_bert_config()), repo_id="lab/m", eval_results={"eval_x": 1.0})
    assert "Measured by the run that wrote this card:" in card.text and measured_weights(card) == {}


@pytest.mark.parametrize(
    "dataset_name", ["image folder", "imagefolder", "csv", "text files", "../shared/data/glue/SST-2", "LOCAL"]
)
def test_no_dataset_id_where_there_is_none(dataset_name, tmp_path):
    if dataset_name == "LOCAL":  # a local folder whose name could be a Hub id
        (tmp_path / "cifar10").mkdir()
        dataset_name = str(tmp_path / "cifar10")
    card = reloaded(
        render_model_card(
            tiny_vit_mae_config(architectures=["SepNormViTMAEForPreTraining"]),
            repo_id="lab/mae",
            eval_results=TRAINER_RESULTS,
            dataset_name=dataset_name,
            task_name="mae",
        )
    )
    assert card.data.datasets is None
    assert card.data.eval_results is None and "model-index" not in str(card)  # the Hub rejects one without data set
    assert f"Data: `{dataset_name}` (`mae`)" in card.text and "| accuracy | 0.875 |" in card.text


def test_a_relative_folder_named_like_a_dataset_is_not_an_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "glue").mkdir(parents=True)
    card = render_model_card(
        tiny_bert_config(), repo_id="lab/x", eval_results={"accuracy": 1.0}, dataset_name="data/glue"
    )
    assert card.data.datasets is None and card.data.eval_results is None


# ---- the usage snippets run as written, where hf_sepnorm is not installed ----

# what each head's snippet computes, beyond `outputs`
SNIPPET_RESULTS = {
    "AutoModel": "cls_embedding",
    "AutoModelForMaskedLM": "predicted_token",
    "AutoModelForSequenceClassification": "predicted",
    "AutoModelForTokenClassification": "predicted",
    "AutoModelForQuestionAnswering": "answer",
    "AutoModelForMultipleChoice": "best_choice",
    "AutoModelForImageClassification": "predicted",
    "AutoModelForPreTraining": "cls_embedding",
    "AutoBackbone": "feature_maps",
}


@pytest.mark.parametrize("model_type", list(FAMILIES))
@pytest.mark.slow
def test_usage_snippets_of_every_head_run_verbatim_without_the_package(model_type, tmp_path):
    family = FAMILIES[model_type]
    snippet_files, expected = [], {}
    for auto_class, model_class in family.heads.items():
        if auto_class == "AutoBackbone":
            # transformers' AutoBackbone.from_pretrained reads Hub repos only (it asks the Hub whether the repo
            # exists, else loads a timm backbone): its snippet cannot run on a local folder, offline
            continue
        labels = {"num_labels": 3} if "Classification" in auto_class else {}  # QA's head has 2 outputs
        folder = save_sepnorm_checkpoint(model_class, tmp_path / model_class.__name__, **labels)
        card = render_model_card(
            family.config_class.from_pretrained(folder), repo_id=f"lab/{model_class.__name__}", revision="0a1b2c3d"
        )
        snippets = usage_snippets(str(reloaded(card)))
        code = "\n".join(snippets)
        assert f'repo_id = "lab/{model_class.__name__}"\nrevision = "0a1b2c3d"' in code
        assert code.count("trust_remote_code=True, revision=revision") == code.count(".from_pretrained(")
        snippet_file = tmp_path / f"{model_class.__name__}.py"
        snippet_file.write_text(code.replace(f'"lab/{model_class.__name__}"', repr(str(folder))))
        snippet_files.append(str(snippet_file))
        expected[str(snippet_file)] = (model_class.__name__, SNIPPET_RESULTS[auto_class])
    save_image(tmp_path / "image.jpg")  # "an image of yours"

    ran = run_snippets_without_package(snippet_files, tmp_path, {"HF_HUB_OFFLINE": "1"})

    for snippet_file, (class_name, result_name) in expected.items():
        assert ran[snippet_file]["class"] == class_name
        assert ran[snippet_file]["module"].startswith("transformers_modules.")  # the checkpoint's own code
        assert result_name in ran[snippet_file]["names"]


@pytest.mark.parametrize("auto_class", list(FAMILIES["sepnorm_roberta"].heads))
def test_roberta_card_is_rendered_from_the_registry(auto_class):
    family = FAMILIES["sepnorm_roberta"]
    config = family.config_class(cls_norm="shared", architectures=[family.heads[auto_class].__name__])

    card = reloaded(render_model_card(config, repo_id="lab/sepnorm-roberta", revision="0123abcd"))

    assert card.data.tags == ["sepnorm", "custom_code", "roberta"]
    assert card.data.pipeline_tag == TEXT_PIPELINE_TAGS[auto_class]
    assert f"A RoBERTa ({family.heads[auto_class].__name__}) with **SepNorm**" in card.text
    assert "the ShareNorm baseline, exactly the stock RoBERTa" in card.text
    (usage,) = usage_snippets(str(card))
    assert f"model = {auto_class}.from_pretrained(repo_id, trust_remote_code=True, revision=revision)" in usage


@pytest.mark.slow
def test_the_base_model_is_kept_from_a_converted_folder_through_fine_tuning(data_dir, tmp_path):
    """A folder converted from a Hub checkpoint names it as `base_model`; a model fine-tuned from that folder (a
    local path, which the Hub cannot link) names the same Hub checkpoint, and a stranger's card is not followed."""
    import sys
    from pathlib import Path

    from transformers import AutoModelForSequenceClassification

    from hf_sepnorm.hub import hub_base_model

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    from hf_sepnorm.scripts import glue as run_glue

    glue = ["--task_name", "sst2", "--data_dir", str(data_dir / "glue" / "SST-2"), "--do_train", "--max_steps", "1",
            "--max_train_samples", "32", "--max_seq_length", "32", "--report_to", "none"]  # fmt: skip
    start = tmp_path / "start"  # a SepNorm folder with its tokenizer, its card then as `hf-sepnorm convert` of a Hub id
    run_glue.main([*glue, "--output_dir", str(start), "--vocab_size", "500", "--config_overrides",
                   "hidden_size=32,num_hidden_layers=1,num_attention_heads=2,intermediate_size=37"])  # fmt: skip
    model = AutoModelForSequenceClassification.from_pretrained(start)
    render_model_card(model, repo_id="<your-namespace>/<repo-name>", base_model="google-bert/bert-base-uncased").save(
        start / "README.md"
    )
    tuned = tmp_path / "tuned"
    run_glue.main([*glue, "--model_name_or_path", str(start), "--output_dir", str(tuned)])
    card = ModelCard.load(tuned / "README.md")
    assert card.data.base_model == "google-bert/bert-base-uncased"
    assert card.data.base_model_relation == "finetune"  # trained from it
    assert 'repo_id = "<your-namespace>/tuned"' in card.text  # not pushed: a placeholder, not the folder as an id
    assert hub_base_model("google-bert/bert-base-uncased") == "google-bert/bert-base-uncased"
    stranger = tmp_path / "stranger"  # a stock folder whose card names its own parent
    stranger.mkdir()
    (stranger / "README.md").write_text("---\nbase_model: nreimers/MiniLM-L6-H384-uncased\n---\n")
    assert hub_base_model(stranger) is None


def test_the_language_reaches_the_metadata():
    card = render_model_card(SepNormBertModel(tiny_bert_config()), repo_id="user/m", language="en")
    assert card.data.language == "en"


def test_the_papers_claims_stand_beside_the_projects_measured_answer():
    text = render_model_card(SepNormBertModel(tiny_bert_config()), repo_id="lab/m").text
    claims = text.split("## Usage")[0]
    assert "better downstream results than the shared normalization (ShareNorm)" in claims
    assert "have not shown a gain\nthat counts on their primary rows" in claims and '"Does SepNorm help?"' in claims


@pytest.mark.parametrize("model_type", list(FAMILIES))
def test_the_card_names_each_code_file_that_travels_and_its_length(model_type, tmp_path):
    family = FAMILIES[model_type]
    folder = save_sepnorm_checkpoint(family.backbone, tmp_path / "saved")
    saved = {path.name: len(path.read_text().splitlines()) for path in folder.glob("*.py")}
    card = render_model_card(family.config_class.from_pretrained(folder), repo_id="lab/model")
    text = card.text
    listed = dict(re.findall(r"\| `(\w+\.py)` \| (\d+) \|", text))
    assert {name: int(lines) for name, lines in listed.items()} == saved
    assert card_code_sha256(card) == {  # what a reviewer checks the files of the revision they pinned against
        path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in folder.glob("*.py")
    }
    assert f"It is {len(saved)} files, {sum(saved.values())} lines; read `sepnorm.py` first" in " ".join(text.split())
    assert next(iter(listed)) == "sepnorm.py"
