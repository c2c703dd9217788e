"""A run killed with SIGKILL, even in the middle of a checkpoint save, resumes from the last complete checkpoint
and reaches the weights of an uninterrupted run; so do the text scripts, with the tokenizer they trained."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import TINY_BERT_OVERRIDES, TINY_VIT_OVERRIDES
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]

from transformers import AutoTokenizer, TrainingArguments  # noqa: E402

from hf_sepnorm.data import text  # noqa: E402
from hf_sepnorm.data.text import train_tokenizer_once  # noqa: E402
from hf_sepnorm.scripts import glue as run_glue
from hf_sepnorm.scripts import mae as run_mae
from hf_sepnorm.scripts import mlm as run_mlm
from hf_sepnorm.training import last_complete_checkpoint  # noqa: E402


def arguments(digits_idx_dir, output_dir, *extra):
    return [
        "--train_dir", str(digits_idx_dir), "--num_channels", "1", "--max_train_samples", "160",
        "--output_dir", str(output_dir), "--do_train", "--max_steps", "8", "--save_steps", "2",
        "--per_device_train_batch_size", "8", "--lr_scheduler_type", "constant", "--seed", "13",
        "--config_overrides", f"patch_size=7,decoder_cls_norm=batch,{TINY_VIT_OVERRIDES}",
        "--report_to", "none", "--disable_tqdm", "true", *extra,
    ]  # fmt: skip


def assert_same_weights(expected: dict, actual: dict):
    assert expected.keys() == actual.keys()
    for key in expected:
        assert torch.equal(expected[key], actual[key]), key


@pytest.fixture(scope="module")
def uninterrupted(digits_idx_dir, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("uninterrupted")
    run_mae.main(arguments(digits_idx_dir, output_dir))
    return load_file(output_dir / "model.safetensors")


@pytest.mark.slow
def test_sigkill_during_training_then_resume_last(digits_idx_dir, uninterrupted, tmp_path):
    output_dir = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "run_mae.py"), *arguments(digits_idx_dir, output_dir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.time() + 300
    while not (output_dir / "checkpoint-4").exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)  # as soon as the step-4 save has begun: it may be half-written
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert last_complete_checkpoint(str(output_dir)) is not None

    run_mae.main(arguments(digits_idx_dir, output_dir, "--resume_from_checkpoint", "last"))
    assert_same_weights(uninterrupted, load_file(output_dir / "model.safetensors"))


@pytest.mark.slow
def test_a_half_written_checkpoint_is_skipped(digits_idx_dir, uninterrupted, tmp_path):
    output_dir = tmp_path / "half"
    run_mae.main(arguments(digits_idx_dir, output_dir, "--max_steps", "4"))
    # what a SIGKILL between the weights and trainer_state.json (written last) leaves behind
    half_written = output_dir / "checkpoint-4"
    (half_written / "trainer_state.json").unlink()
    optimizer = half_written / "optimizer.pt"
    optimizer.write_bytes(optimizer.read_bytes()[:100])
    assert last_complete_checkpoint(str(output_dir)) == output_dir / "checkpoint-2"

    with pytest.raises(ValueError, match=r"checkpoint-4 is not a complete checkpoint.*last complete one is .*checkpoint-2"):
        run_mae.main(arguments(digits_idx_dir, output_dir, "--resume_from_checkpoint", str(half_written)))
    run_mae.main(arguments(digits_idx_dir, output_dir, "--resume_from_checkpoint", "last"))
    resumed = load_file(output_dir / "model.safetensors")
    assert resumed["vit.layernorm.cls_norm.num_batches_tracked"].item() == 8
    assert_same_weights(uninterrupted, resumed)


def text_arguments(script, data_dir, output_dir, *extra):
    """From scratch, with the tokenizer the run trains. 24 samples in batches of 8: 3 steps an epoch, so the steps
    after checkpoint-2 cross into the second epoch (run_mlm's masks are seeded per block and epoch)."""
    data = {
        "run_mlm": ["--train_file", str(data_dir / "text" / "ptb.valid.txt"), "--max_seq_length", "32"],
        "run_glue": ["--task_name", "sst2", "--data_dir", str(data_dir / "glue" / "SST-2"), "--max_seq_length", "32"],
    }[script]
    return [
        *data, "--output_dir", str(output_dir), "--do_train", "--max_steps", "4", "--save_steps", "2",
        "--max_train_samples", "24", "--per_device_train_batch_size", "8", "--vocab_size", "1000", "--seed", "13",
        "--config_overrides", TINY_BERT_OVERRIDES, "--report_to", "none", "--disable_tqdm", "true", *extra,
    ]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("name, script", [("run_mlm", run_mlm), ("run_glue", run_glue)], ids=["run_mlm", "run_glue"])
def test_text_scripts_resume_to_identical_weights(name, script, data_dir, tmp_path):
    uninterrupted, resumed = tmp_path / "uninterrupted", tmp_path / "resumed"
    script.main(text_arguments(name, data_dir, uninterrupted))
    # a folder holding only checkpoint-2: the resumed run takes its tokenizer from the checkpoint
    shutil.copytree(uninterrupted / "checkpoint-2", resumed / "checkpoint-2")
    script.main(text_arguments(name, data_dir, resumed, "--resume_from_checkpoint", "last"))
    # (tokenizer.json itself may differ in the truncation settings its last call left, which it saves too)
    assert AutoTokenizer.from_pretrained(resumed).get_vocab() == AutoTokenizer.from_pretrained(uninterrupted).get_vocab()
    for weights in ("checkpoint-4/model.safetensors", "model.safetensors"):  # before and after [CLS] re-estimation
        assert_same_weights(load_file(uninterrupted / weights), load_file(resumed / weights))


def test_a_run_trains_its_tokenizer_once(tmp_path, monkeypatch):
    """A resumed run takes the tokenizer of its checkpoint; a run whose output folder holds the tokenizer trained on
    the same text with the same vocabulary size loads it; other text trains a new one."""
    lines = [f"line {number} of a small corpus about tokenizers and their vocabularies" for number in range(200)]
    output_dir = tmp_path / "run"
    training_args = TrainingArguments(str(output_dir), report_to="none")
    trained = train_tokenizer_once(lambda: iter(lines), 120, str(output_dir), training_args)

    def no_training(*args, **kwargs):
        raise AssertionError("the tokenizer was trained again")

    with monkeypatch.context() as patch:
        patch.setattr(text, "train_wordpiece_tokenizer", no_training)
        assert train_tokenizer_once(lambda: iter(lines), 120, str(output_dir), training_args).get_vocab() == (
            trained.get_vocab()
        )
        checkpoint = tmp_path / "elsewhere" / "checkpoint-2"
        trained.save_pretrained(checkpoint)
        other_args = TrainingArguments(str(tmp_path / "new"), report_to="none")
        from_checkpoint = train_tokenizer_once(
            lambda: iter(["other text"]), 50, str(tmp_path / "new"), other_args, checkpoint=str(checkpoint)
        )
        assert from_checkpoint.get_vocab() == trained.get_vocab()

    other_text = [f"zebra quagga {number} okapi giraffe" for number in range(200)]
    retrained = train_tokenizer_once(lambda: iter(other_text), 120, str(output_dir), training_args)
    assert "zebra" in retrained.get_vocab() and "zebra" not in trained.get_vocab()
    assert AutoTokenizer.from_pretrained(output_dir).get_vocab() == retrained.get_vocab()
