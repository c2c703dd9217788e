"""run_glue.py end to end on the four official GLUE tasks shipped in the shared data, a few steps each."""

import csv
import json
import warnings

import datasets
import huggingface_hub
import pytest
import torch
from conftest import TINY_BERT_OVERRIDES
from safetensors.torch import load_file

from hf_sepnorm.adapters import apply_peft
from hf_sepnorm.scripts import glue as run_glue
from hf_sepnorm.scripts import mlm as run_mlm

COMMON = ["--report_to", "none", "--disable_tqdm", "true", "--per_device_train_batch_size", "8", "--seed", "5"]
TASKS = {
    "cola": ("CoLA", {"eval_matthews_correlation"}, "CoLA.tsv"),
    "sst2": ("SST-2", {"eval_accuracy"}, "SST-2.tsv"),
    "mrpc": ("MRPC", {"eval_accuracy", "eval_f1"}, "MRPC.tsv"),
    "stsb": ("STS-B", {"eval_pearson", "eval_spearmanr"}, "STS-B.tsv"),
}


@pytest.fixture(scope="module")
def mlm_checkpoint(data_dir, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("mlm")
    run_mlm.main(
        ["--train_file", str(data_dir / "text" / "wikitext2.valid.tokens"), "--output_dir", str(output_dir),
         "--do_train", "--max_steps", "3", "--config_overrides", TINY_BERT_OVERRIDES, "--vocab_size", "2000",
         "--max_seq_length", "64", "--max_train_samples", "64", *COMMON]
    )  # fmt: skip
    return output_dir


@pytest.mark.parametrize("task_name", TASKS)
def test_fine_tunes_evaluates_and_predicts(task_name, mlm_checkpoint, data_dir, tmp_path):
    folder, metric_names, submission = TASKS[task_name]
    output_dir = tmp_path / task_name
    run_glue.main(
        ["--model_name_or_path", str(mlm_checkpoint), "--task_name", task_name,
         "--data_dir", str(data_dir / "glue" / folder), "--output_dir", str(output_dir),
         "--do_train", "--do_eval", "--do_predict", "--max_steps", "3", "--max_train_samples", "64",
         "--max_eval_samples", "48", "--max_predict_samples", "24", "--max_seq_length", "64", *COMMON]
    )  # fmt: skip
    results = json.loads((output_dir / "all_results.json").read_text())
    assert metric_names <= results.keys() and results["eval_samples"] == 48 and results["train_samples"] == 64
    eval_results = json.loads((output_dir / "eval_results.json").read_text())
    assert metric_names <= eval_results.keys()
    rows = list(csv.reader((output_dir / submission).open(), delimiter="\t"))
    assert rows[0] == ["index", "prediction"] and len(rows) == 25
    config = json.loads((output_dir / "config.json").read_text())
    if task_name == "stsb":
        scores = [float(prediction) for _, prediction in rows[1:]]  # raises on a non-number
        assert len(scores) == 24 and all(len(prediction.split(".")[1]) == 3 for _, prediction in rows[1:])
        assert len(config.get("id2label", {0: "LABEL_0"})) == 1
    else:
        assert {prediction for _, prediction in rows[1:]} <= {"0", "1"}
        assert len(config["id2label"]) == 2


@pytest.mark.slow
def test_from_scratch_trains_its_own_tokenizer(data_dir, tmp_path):
    run_glue.main(
        ["--task_name", "sst2", "--data_dir", str(data_dir / "glue" / "SST-2"), "--output_dir", str(tmp_path / "o"),
         "--do_train", "--do_eval", "--max_steps", "2", "--max_train_samples", "200", "--max_eval_samples", "16",
         "--config_overrides", TINY_BERT_OVERRIDES, "--cls_norm", "layer", *COMMON]
    )  # fmt: skip
    config = json.loads((tmp_path / "o" / "config.json").read_text())
    assert config["cls_norm"] == "layer" and (tmp_path / "o" / "tokenizer.json").is_file()


@pytest.mark.parametrize(
    "arguments, error, message",
    [
        (["--task_name", "squad"], SystemExit, None),
        (["--task_name", "rte", "--data_dir", "{empty}"], FileNotFoundError, "RTE"),
        (["--task_name", "cola", "--data_dir", "{bad_cola}"], ValueError, r"train\.tsv.*not-a-label"),
        # adapters alone are saved: a random base built from scratch would be lost
        (["--task_name", "sst2", "--use_peft", "true"], ValueError, r"--use_peft.*Give --model_name_or_path"),
    ],
)
def test_bad_arguments_stop_before_training(tmp_path, arguments, error, message, capsys):
    (tmp_path / "empty").mkdir()
    bad = tmp_path / "CoLA"
    bad.mkdir()
    (bad / "train.tsv").write_text("gj04\t1\t\tgood sentence .\ngj04\tnot-a-label\t\tbad row .\n")
    (bad / "dev.tsv").write_text("gj04\t1\t\tgood sentence .\n")
    (bad / "test.tsv").write_text("index\tsentence\n0\tgood sentence .\n")
    replacements = {"{empty}": str(tmp_path / "empty"), "{bad_cola}": str(bad)}
    arguments = [replacements.get(argument, argument) for argument in arguments]
    with pytest.raises(error, match=message):
        run_glue.main([*arguments, "--output_dir", str(tmp_path / "out"), "--do_train"])
    if error is SystemExit:
        assert "invalid choice: 'squad'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_training_batch_of_one_is_refused_before_training_with_the_fix(mlm_checkpoint, data_dir, tmp_path):
    """Re-estimating the [CLS] BatchNorm statistics needs batches of 2 or more: a run with batches of one must stop
    before it trains, not after (when the trained model would be lost), and name the fix."""
    arguments = ["--model_name_or_path", str(mlm_checkpoint), "--task_name", "sst2",
                 "--data_dir", str(data_dir / "glue" / "SST-2"), "--do_train", "--do_eval", "--max_steps", "2",
                 "--max_train_samples", "16", "--max_eval_samples", "8", "--max_seq_length", "32",
                 "--report_to", "none", "--disable_tqdm", "true", "--per_device_train_batch_size", "1"]  # fmt: skip
    with pytest.raises(ValueError, match=r"--per_device_train_batch_size 2 or more.*--recalibrate_cls_norm false"):
        run_glue.main([*arguments, "--output_dir", str(tmp_path / "refused"), "--recalibrate_cls_norm", "true"])
    refused = tmp_path / "refused"
    assert not list(refused.glob("checkpoint-*")) and not (refused / "model.safetensors").exists()

    # the second fix the message names, the default: the run trains and keeps what it trained
    run_glue.main([*arguments, "--output_dir", str(tmp_path / "kept")])
    weights = load_file(tmp_path / "kept" / "model.safetensors")
    assert weights["bert.encoder.layer.0.output.LayerNorm.cls_norm.num_batches_tracked"].item() == 3  # the MLM's 3
    assert {"train_results.json", "eval_results.json"} <= {path.name for path in (tmp_path / "kept").iterdir()}


def test_without_data_dir_and_offline_the_error_names_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(Exception, match="--data_dir"):
        run_glue.main(["--task_name", "sst2", "--output_dir", str(tmp_path / "out"), "--do_train"])
    assert not (tmp_path / "out").exists()


def test_evaluation_alone_needs_only_the_files_of_its_splits(mlm_checkpoint, data_dir, tmp_path):
    """A task folder with the official dev.tsv and test.tsv but no train.tsv evaluates and predicts."""
    folder = tmp_path / "QNLI-like"
    folder.mkdir()
    for name in ("dev.tsv", "test.tsv"):
        (folder / name).write_bytes((data_dir / "glue" / "SST-2" / name).read_bytes())
    output_dir = tmp_path / "evaluated"
    results = run_glue.main(
        ["--model_name_or_path", str(mlm_checkpoint), "--task_name", "sst2", "--data_dir", str(folder),
         "--output_dir", str(output_dir), "--do_eval", "--do_predict", "--max_eval_samples", "16",
         "--max_predict_samples", "8", "--max_seq_length", "32", *COMMON]
    )  # fmt: skip
    assert results["eval_samples"] == 16 and 0.0 <= results["eval_accuracy"] <= 1.0
    assert len((output_dir / "SST-2.tsv").read_text().splitlines()) == 9


def test_a_training_file_without_its_label_column_is_named_in_one_line(mlm_checkpoint, data_dir, tmp_path):
    folder = tmp_path / "SST-2"
    folder.mkdir()
    lines = (data_dir / "glue" / "SST-2" / "train.tsv").read_text().splitlines()[:20]
    (folder / "train.tsv").write_text("\n".join(line.split("\t")[0] for line in ["sentence\tx", *lines[1:]]) + "\n")
    with pytest.raises(ValueError) as raised:
        run_glue.main(["--model_name_or_path", str(mlm_checkpoint), "--task_name", "sst2", "--data_dir", str(folder),
                       "--output_dir", str(tmp_path / "out"), "--do_train", "--max_steps", "1", *COMMON])  # fmt: skip
    message = str(raised.value)
    assert "\n" not in message and str(folder / "train.tsv") in message and "label" in message


def test_an_adapter_on_a_checkpoint_without_pooler_reloads_as_the_model_that_was_trained(
    mlm_checkpoint, data_dir, tmp_path, monkeypatch
):
    """An MLM checkpoint has no pooler: the classifier's new one is saved with the adapter, so that the adapter
    reloaded on its base (as peft users load it) scores what the run trained and evaluated."""
    from peft import AutoPeftModelForSequenceClassification
    from transformers import AutoTokenizer

    trained = []

    def apply_and_keep(model, peft_args):
        trained.append(apply_peft(model, peft_args))
        return trained[-1]

    monkeypatch.setattr(run_glue, "apply_peft", apply_and_keep)
    output_dir = tmp_path / "lora"
    run_glue.main(
        ["--model_name_or_path", str(mlm_checkpoint), "--task_name", "sst2", "--data_dir",
         str(data_dir / "glue" / "SST-2"), "--output_dir", str(output_dir), "--do_train", "--max_steps", "2",
         "--max_train_samples", "32", "--max_seq_length", "32", "--use_peft", "true", "--lora_r", "4", *COMMON]
    )  # fmt: skip
    tokenizer = AutoTokenizer.from_pretrained(output_dir)
    probes = tokenizer(["a gripping , funny film .", "dull and far too long ."], padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = trained[0].eval()(**probes).logits
        reloaded = AutoPeftModelForSequenceClassification.from_pretrained(output_dir).eval()
        assert torch.equal(reloaded(**probes).logits, expected)


def test_evaluating_a_trained_folder_in_place_leaves_its_model_card(mlm_checkpoint, data_dir, tmp_path):
    """The card describes the training that made the folder: an evaluation alone (no --do_train) does not rewrite it."""
    folder = tmp_path / "sst2"
    data = ["--task_name", "sst2", "--data_dir", str(data_dir / "glue" / "SST-2"), "--max_seq_length", "32",
            "--max_eval_samples", "16", *COMMON]  # fmt: skip
    run_glue.main(["--model_name_or_path", str(mlm_checkpoint), "--output_dir", str(folder), "--do_train",
                   "--max_steps", "2", "--max_train_samples", "32", *data])  # fmt: skip
    card = (folder / "README.md").read_bytes()
    results = run_glue.main(["--model_name_or_path", str(folder), "--output_dir", str(folder), "--do_eval", *data])
    assert results["eval_samples"] == 16
    assert (folder / "README.md").read_bytes() == card


def test_evaluating_a_stock_checkpoint_on_hub_data_estimates_its_cls_statistics_first(data_dir, tmp_path, monkeypatch):
    """A stock checkpoint converted in memory has [CLS] statistics that describe nothing (mean 0, variance 1): an
    evaluation alone estimates them on training rows, from the Hub's nyu-mll/glue as from --data_dir. The Hub is
    stood in for by the same official files (no network here): it answers every split, as the Hub does."""
    from family_checkpoints import save_stock_checkpoint

    import hf_sepnorm.data.glue as glue_data

    stock = save_stock_checkpoint("bert", tmp_path / "stock")
    official = data_dir / "glue" / "SST-2"
    arguments = ["--model_name_or_path", str(stock), "--task_name", "sst2", "--do_eval", "--max_eval_samples", "16",
                 "--max_seq_length", "32", *COMMON]  # fmt: skip
    from_files = run_glue.main([*arguments, "--data_dir", str(official), "--output_dir", str(tmp_path / "files")])
    monkeypatch.setattr(glue_data, "_load_from_hub", lambda task, cache_dir: glue_data.load_glue(task.name, official))
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*statistics that were never updated")
        from_hub = run_glue.main([*arguments, "--output_dir", str(tmp_path / "hub")])
    assert from_hub["eval_loss"] == from_files["eval_loss"] and from_hub["eval_samples"] == 16
