"""run_mlm.py and run_mae.py end to end on real data, a few steps with tiny configs."""

import json
from pathlib import Path

import pytest
import torch
from conftest import TINY_BERT_OVERRIDES, TINY_VIT_OVERRIDES
from safetensors.torch import load_file
from transformers import AutoImageProcessor, AutoModelForMaskedLM, AutoModelForPreTraining, AutoTokenizer

from hf_sepnorm.scripts import mae as run_mae
from hf_sepnorm.scripts import mlm as run_mlm

COMMON = ["--report_to", "none", "--disable_tqdm", "true", "--per_device_train_batch_size", "8", "--seed", "7"]


def results(output_dir: Path) -> dict:
    return json.loads((output_dir / "all_results.json").read_text())


def test_run_mlm_trains_a_tokenizer_and_a_model_on_real_text(data_dir, tmp_path):
    output_dir = tmp_path / "mlm"
    run_mlm.main(
        [
            "--train_file", str(data_dir / "text" / "ptb.valid.txt"),
            "--validation_file", str(data_dir / "text" / "ptb.test.txt"),
            "--output_dir", str(output_dir), "--do_train", "--do_eval", "--max_steps", "4",
            "--config_overrides", TINY_BERT_OVERRIDES, "--vocab_size", "1000", "--max_seq_length", "32",
            "--max_eval_samples", "16", *COMMON,
        ]
    )  # fmt: skip
    metrics = results(output_dir)
    assert metrics["train_samples"] > 1000 and metrics["eval_samples"] == 16
    assert metrics["eval_perplexity"] == pytest.approx(torch.tensor(metrics["eval_loss"]).exp().item(), rel=1e-5)
    for name in ("train_results.json", "eval_results.json", "tokenizer.json", "modeling_sepnorm_bert.py"):
        assert (output_dir / name).is_file(), name
    tokenizer = AutoTokenizer.from_pretrained(output_dir)
    assert len(tokenizer) == 1000
    encoded = tokenizer("the market fell sharply")
    assert encoded["input_ids"][0] == tokenizer.cls_token_id and encoded["input_ids"][-1] == tokenizer.sep_token_id
    model = AutoModelForMaskedLM.from_pretrained(output_dir)
    assert model.config.cls_norm == "batch" and model.config.vocab_size == 1000
    assert model.bert.encoder.layer[0].output.LayerNorm.cls_norm.num_batches_tracked.item() == 4


def test_run_mlm_on_a_dataset_with_only_a_train_split_holds_out_its_validation_rows(data_dir, tmp_path):
    """--dataset_name of a data set with no validation split (a local folder `datasets.load_dataset` reads, as it
    reads a Hub repo): --validation_split_percentage of its training rows are held out, as for --train_file."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    lines = [line for line in (data_dir / "text" / "ptb.valid.txt").read_text().splitlines() if line.strip()][:400]
    (folder / "train.jsonl").write_text("".join(json.dumps({"content": line}) + "\n" for line in lines))
    output_dir = tmp_path / "mlm"
    run_mlm.main(
        ["--dataset_name", str(folder), "--text_column", "content", "--validation_split_percentage", "10",
         "--output_dir", str(output_dir), "--do_train", "--do_eval", "--max_steps", "2",
         "--config_overrides", TINY_BERT_OVERRIDES, "--vocab_size", "500", "--max_seq_length", "32", *COMMON]
    )  # fmt: skip
    metrics = results(output_dir)
    assert metrics["eval_samples"] > 0 and metrics["train_samples"] > 5 * metrics["eval_samples"]
    assert metrics["eval_loss"] > 0


@pytest.mark.slow
def test_run_mlm_from_a_json_file_of_arguments(data_dir, tmp_path):
    arguments = {
        "train_file": [str(data_dir / "text" / "tinyshakespeare.txt")],
        "output_dir": str(tmp_path / "out"),
        "do_train": True,
        "max_steps": 2,
        "config_overrides": TINY_BERT_OVERRIDES,
        "cls_norm": "shared",
        "vocab_size": 500,
        "max_seq_length": 32,
        "max_train_samples": 64,
        "report_to": "none",
        "disable_tqdm": True,
    }
    (tmp_path / "args.json").write_text(json.dumps(arguments))
    run_mlm.main([str(tmp_path / "args.json")])
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["cls_norm"] == "shared" and config["model_type"] == "sepnorm_bert"
    assert results(tmp_path / "out")["train_samples"] == 64


@pytest.mark.parametrize("dataset", ["cifar10", "digits_idx"])
def test_run_mae_on_real_images(dataset, request, tmp_path):
    if dataset == "cifar10":
        folder = request.getfixturevalue("cifar10_dir")
        data = ["--train_dir", str(folder / "train"), "--validation_dir", str(folder / "test")]
        size, channels, patch = 32, 3, 8
    else:
        data = ["--train_dir", str(request.getfixturevalue("digits_idx_dir")), "--num_channels", "1"]
        data += ["--max_train_samples", "200", "--max_eval_samples", "40"]
        size, channels, patch = 28, 1, 7
    output_dir = tmp_path / "mae"
    run_mae.main(
        [*data, "--output_dir", str(output_dir), "--do_train", "--do_eval", "--max_steps", "3",
         "--config_overrides", f"patch_size={patch},{TINY_VIT_OVERRIDES}", *COMMON]
    )  # fmt: skip
    metrics = results(output_dir)
    assert 0 < metrics["eval_loss"] < 10
    model = AutoModelForPreTraining.from_pretrained(output_dir)
    assert (model.config.image_size, model.config.num_channels, model.config.patch_size) == (size, channels, patch)
    processor = AutoImageProcessor.from_pretrained(output_dir)
    assert processor.size["height"] == size and len(processor.image_mean) == channels
    assert model.vit.layernorm.cls_norm.num_batches_tracked.item() == 3


@pytest.mark.slow
def test_resume_from_checkpoint_reaches_the_same_weights(digits_idx_dir, tmp_path):
    def run(output_dir, *extra):
        run_mae.main(
            ["--train_dir", str(digits_idx_dir), "--num_channels", "1", "--max_train_samples", "96",
             "--output_dir", str(output_dir), "--do_train", "--max_steps", "6", "--save_steps", "3",
             "--lr_scheduler_type", "constant",  # the same schedule whether the run is told 3 or 6 steps
             "--config_overrides", f"patch_size=7,{TINY_VIT_OVERRIDES}", *COMMON, *extra]
        )  # fmt: skip
        return load_file(output_dir / "model.safetensors")

    uninterrupted = run(tmp_path / "full")
    interrupted = tmp_path / "interrupted"
    run(interrupted, "--max_steps", "3")  # stops after the step-3 checkpoint ...
    resumed = run(interrupted, "--resume_from_checkpoint", str(interrupted / "checkpoint-3"))  # ... and goes on
    assert uninterrupted.keys() == resumed.keys()
    for key in uninterrupted:
        assert torch.equal(uninterrupted[key], resumed[key]), key
    assert resumed["vit.layernorm.cls_norm.num_batches_tracked"].item() == 6


def test_continuing_mae_pretraining_keeps_the_checkpoints_config(digits_idx_dir, tmp_path):
    """A 1-channel checkpoint, pretrained without norm_pix_loss at mask ratio 0.5: continuing it without flags keeps
    all three and prepares images with its own processor; a flag given explicitly changes only what it names."""
    data = ["--train_dir", str(digits_idx_dir), "--max_train_samples", "64", "--max_eval_samples", "16",
            "--do_train", "--max_steps", "2", *COMMON]  # fmt: skip
    checkpoint = tmp_path / "grey"
    run_mae.main(
        [*data, "--output_dir", str(checkpoint), "--num_channels", "1", "--norm_pix_loss", "false",
         "--mask_ratio", "0.5", "--config_overrides", f"patch_size=7,{TINY_VIT_OVERRIDES}"]
    )  # fmt: skip

    def continued(name: str, *flags: str) -> dict:
        run_mae.main([*data, "--do_eval", "--model_name_or_path", str(checkpoint), "--output_dir", str(tmp_path / name),
                      *flags])  # fmt: skip
        assert 0 < results(tmp_path / name)["eval_loss"] < 10
        return json.loads((tmp_path / name / "config.json").read_text())

    config = continued("continued")
    fields = ("num_channels", "norm_pix_loss", "mask_ratio", "image_size", "patch_size")
    assert tuple(config[field] for field in fields) == (1, False, 0.5, 28, 7)
    processor = AutoImageProcessor.from_pretrained(tmp_path / "continued")
    assert len(processor.image_mean) == 1 and processor.size["height"] == 28

    config = continued("remasked", "--mask_ratio", "0.6")
    assert tuple(config[field] for field in fields) == (1, False, 0.6, 28, 7)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--train_file", "/nonexistent/corpus.txt"], "--train_file: /nonexistent/corpus.txt does not exist"),
        ([], "Give --train_file FILE"),
        (["--train_file", "{empty}"], "holds no text"),
    ],
)
def test_run_mlm_bad_arguments_stop_at_start_up(tmp_path, arguments, message):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    arguments = [argument.replace("{empty}", str(empty)) for argument in arguments]
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        run_mlm.main([*arguments, "--output_dir", str(tmp_path / "out"), "--do_train"])
    assert not (tmp_path / "out").exists()


def test_run_mae_image_folder_without_images_stops_at_start_up(tmp_path):
    (tmp_path / "images" / "cat").mkdir(parents=True)
    (tmp_path / "images" / "cat" / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match=r"--train_dir: .*images holds no images"):
        run_mae.main(["--train_dir", str(tmp_path / "images"), "--output_dir", str(tmp_path / "out"), "--do_train"])
    with pytest.raises(ValueError, match="Give --train_dir DIR or --dataset_name NAME"):
        run_mae.main(["--output_dir", str(tmp_path / "out"), "--do_train"])
