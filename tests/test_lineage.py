"""Lineage end to end (issue 32): `base_model` names a Hub checkpoint, never a path, through convert, fine-tuning,
adapters and pushes; it is left out, with a line saying so, when the start did not come from the Hub; no card names a
path of the machine that wrote it.

The start is the real all-MiniLM-L6-v2: as the pip package ships it (a local folder of unknown Hub origin), and as a
snapshot of the Hub cache (`models--sentence-transformers--all-MiniLM-L6-v2/snapshots/<commit>`, what
`from_pretrained("sentence-transformers/all-MiniLM-L6-v2")` reads).
"""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hub_server import TEST_USER, hub_server  # noqa: F401 - `hub_server` is a fixture
from huggingface_hub import ModelCard
from reviews import REVIEWS
from transformers import AutoTokenizer, DataCollatorWithPadding, TrainingArguments

from hf_sepnorm import SepNormBertForSequenceClassification
from hf_sepnorm.adapters import PeftArguments, apply_peft, push_adapter_to_hub, save_merged
from hf_sepnorm_cli import main as cli_main
from hf_sepnorm.training import SepNormTrainer

MINILM_REPO = "sentence-transformers/all-MiniLM-L6-v2"
COMMIT = "c9745ed1d9f207416be6d2e6f8de32d1f16199bf"


def convert(source: Path, output: Path, cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(
        # --uncalibrated: lineage is the subject here, and the converted model is fine-tuned next
        [sys.executable, "-m", "hf_sepnorm_cli", "convert", str(source), str(output), "--cls_norm", "batch",
         "--uncalibrated"],
        capture_output=True, text=True, cwd=cwd, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def hub_cache_snapshot(minilm_dir: Path, cache: Path) -> Path:
    """The MiniLM folder laid out as the Hub cache holds a download (files linked, as the cache links its blobs)."""
    snapshot = cache / f"models--{MINILM_REPO.replace('/', '--')}" / "snapshots" / COMMIT
    for path in minilm_dir.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            target = snapshot / path.relative_to(minilm_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path)
    return snapshot


def fine_tune(folder: Path, output_dir: Path, peft: bool = False) -> SepNormTrainer:
    """Two Trainer steps on the reviews from `folder` (as the scripts load it), evaluated, with the run's card."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = SepNormBertForSequenceClassification.from_pretrained(folder, num_labels=2)
    if peft:
        model = apply_peft(model, PeftArguments(use_peft=True, lora_r=4, lora_alpha=8, lora_dropout=0.0))
    examples = [{**tokenizer(text), "labels": label} for text, label in REVIEWS]
    args = TrainingArguments(output_dir=str(output_dir), max_steps=2, per_device_train_batch_size=4, report_to=[],
                             save_strategy="no", use_cpu=True, disable_tqdm=True)  # fmt: skip
    trainer = SepNormTrainer(model=model, args=args, train_dataset=examples, eval_dataset=examples,
                             processing_class=tokenizer, data_collator=DataCollatorWithPadding(tokenizer))  # fmt: skip
    trainer.train()
    trainer.save_model()
    trainer.evaluate()
    trainer.create_model_card(dataset_tags="nyu-mll/glue", dataset_args="sst2", eval_split="validation",
                              finetuned_from=str(folder))  # fmt: skip
    return trainer


def assert_no_local_path(card_file: Path, *paths: Path) -> None:
    text = card_file.read_text()
    for path in paths:
        assert str(path) not in text and str(path.resolve()) not in text, f"{path} in {card_file}"
    assert "site-packages" not in text


@pytest.mark.slow
def test_a_hub_start_is_named_through_convert_fine_tuning_and_push(minilm_dir, hub_server, tmp_path, caplog):  # noqa: F811
    snapshot = hub_cache_snapshot(minilm_dir, tmp_path / "hub-cache")
    convert(snapshot, tmp_path / "converted", cwd=tmp_path)
    converted = ModelCard.load(tmp_path / "converted" / "README.md")
    assert (converted.data.base_model, converted.data.base_model_relation) == (MINILM_REPO, "finetune")
    assert f"| converted from | `{MINILM_REPO}` (stock" in converted.text

    with caplog.at_level(logging.WARNING, logger="hf_sepnorm"):
        fine_tune(tmp_path / "converted", tmp_path / "sst2")
    assert "leaves base_model out" not in caplog.text
    card = ModelCard.load(tmp_path / "sst2" / "README.md")
    assert (card.data.base_model, card.data.base_model_relation) == (MINILM_REPO, "finetune")
    assert_no_local_path(tmp_path / "sst2" / "README.md", tmp_path, minilm_dir)

    assert cli_main(["push", str(tmp_path / "sst2"), f"{TEST_USER}/minilm-sst2"]) == 0
    pushed = ModelCard(hub_server.files(f"{TEST_USER}/minilm-sst2")["README.md"].decode())
    assert (pushed.data.base_model, pushed.data.base_model_relation) == (MINILM_REPO, "finetune")

    # an adapter trained on the converted folder, merged: the merged model's card names the same Hub start
    trainer = fine_tune(tmp_path / "converted", tmp_path / "lora", peft=True)
    save_merged(trainer.model, tmp_path / "merged")
    AutoTokenizer.from_pretrained(tmp_path / "converted").save_pretrained(tmp_path / "merged")
    merged = ModelCard.load(tmp_path / "merged" / "README.md")
    assert (merged.data.base_model, merged.data.base_model_relation) == (MINILM_REPO, "finetune")
    assert "a LoRA adapter merged into the local folder `converted`" in merged.text
    assert_no_local_path(tmp_path / "merged" / "README.md", tmp_path, minilm_dir)
    assert cli_main(["push", str(tmp_path / "merged"), f"{TEST_USER}/minilm-merged"]) == 0  # its weights check too
    pushed = ModelCard(hub_server.files(f"{TEST_USER}/minilm-merged")["README.md"].decode())
    assert (pushed.data.base_model, pushed.data.base_model_relation) == (MINILM_REPO, "finetune")


@pytest.mark.slow
def test_a_local_start_is_left_out_with_a_line_saying_so_and_an_adapter_names_a_loadable_base(
    minilm_dir, hub_server, tmp_path, caplog, monkeypatch  # noqa: F811
):
    result = convert(minilm_dir, Path("minilm-sep"), cwd=tmp_path)  # a relative output folder, as users type it
    assert "The model card leaves base_model out: nothing in the local folder `model` names" in result.stderr
    converted = ModelCard.load(tmp_path / "minilm-sep" / "README.md")
    assert converted.data.base_model is None and "| converted from | the local folder `model` (stock" in converted.text
    assert_no_local_path(tmp_path / "minilm-sep" / "README.md", tmp_path, minilm_dir)

    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING, logger="hf_sepnorm"):
        trainer = fine_tune(Path("minilm-sep"), tmp_path / "lora", peft=True)
    assert f"The adapter names its base by the local path {tmp_path / 'minilm-sep'}" in caplog.text
    adapter_config = json.loads((tmp_path / "lora" / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == str(tmp_path / "minilm-sep")  # absolute: loads from anywhere
    assert adapter_config["modules_to_save"] == ["cls_norm", "classifier", "score"]  # no repeats
    card = ModelCard.load(tmp_path / "lora" / "README.md")
    assert card.data.base_model is None and not [tag for tag in card.data.tags if tag.startswith("base_model:")]
    (result,) = card.data.eval_results  # the evaluation the run made
    assert (result.dataset_type, result.dataset_config, result.dataset_split) == ("nyu-mll/glue", "sst2", "validation")
    assert result.metric_type == "loss" and result.metric_value == round(trainer.evaluate()["eval_loss"], 4)
    assert "the local folder `minilm-sep`, was not on the Hub" in card.text
    assert_no_local_path(tmp_path / "lora" / "README.md", tmp_path, minilm_dir)

    monkeypatch.chdir(tmp_path / "lora")  # another directory: the base is still found
    from peft import AutoPeftModelForSequenceClassification

    reloaded = AutoPeftModelForSequenceClassification.from_pretrained(tmp_path / "lora")
    assert type(reloaded.get_base_model()) is SepNormBertForSequenceClassification
    with pytest.raises(ValueError, match="not a Hub repo id"):
        push_adapter_to_hub(reloaded, f"{TEST_USER}/minilm-lora")
    assert hub_server.requests == []
    assert torch.isfinite(reloaded.get_base_model().classifier.modules_to_save["default"].weight).all()
