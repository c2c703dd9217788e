"""A run killed with SIGKILL, even in the middle of a checkpoint save, resumes from the last complete checkpoint
and reaches the weights of an uninterrupted run."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import TINY_VIT_OVERRIDES
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))

import run_mae  # noqa: E402

from hf_sepnorm.training import last_complete_checkpoint  # noqa: E402


def arguments(fashion_mnist_dir, output_dir, *extra):
    return [
        "--train_dir", str(fashion_mnist_dir), "--num_channels", "1", "--max_train_samples", "160",
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
def uninterrupted(fashion_mnist_dir, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("uninterrupted")
    run_mae.main(arguments(fashion_mnist_dir, output_dir))
    return load_file(output_dir / "model.safetensors")


def test_sigkill_during_training_then_resume_last(fashion_mnist_dir, uninterrupted, tmp_path):
    output_dir = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "run_mae.py"), *arguments(fashion_mnist_dir, output_dir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.time() + 300
    while not (output_dir / "checkpoint-4").exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)  # as soon as the step-4 save has begun: it may be half-written
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert last_complete_checkpoint(str(output_dir)) is not None

    run_mae.main(arguments(fashion_mnist_dir, output_dir, "--resume_from_checkpoint", "last"))
    assert_same_weights(uninterrupted, load_file(output_dir / "model.safetensors"))


def test_a_half_written_checkpoint_is_skipped(fashion_mnist_dir, uninterrupted, tmp_path):
    output_dir = tmp_path / "half"
    run_mae.main(arguments(fashion_mnist_dir, output_dir, "--max_steps", "4"))
    # what a SIGKILL between the weights and trainer_state.json (written last) leaves behind
    half_written = output_dir / "checkpoint-4"
    (half_written / "trainer_state.json").unlink()
    optimizer = half_written / "optimizer.pt"
    optimizer.write_bytes(optimizer.read_bytes()[:100])
    assert last_complete_checkpoint(str(output_dir)) == output_dir / "checkpoint-2"

    with pytest.raises(ValueError, match=r"checkpoint-4 is not a complete checkpoint.*last complete one is .*checkpoint-2"):
        run_mae.main(arguments(fashion_mnist_dir, output_dir, "--resume_from_checkpoint", str(half_written)))
    run_mae.main(arguments(fashion_mnist_dir, output_dir, "--resume_from_checkpoint", "last"))
    resumed = load_file(output_dir / "model.safetensors")
    assert resumed["vit.layernorm.cls_norm.num_batches_tracked"].item() == 8
    assert_same_weights(uninterrupted, resumed)
