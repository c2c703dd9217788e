"""[CLS] BatchNorm under data parallelism, with real processes on CPU (gloo)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import TINY_BERT_OVERRIDES, TINY_VIT_OVERRIDES
from safetensors.torch import load_file

from hf_sepnorm import ClsBatchNorm
from hf_sepnorm.training import ClsSyncBatchNorm

ROOT = Path(__file__).resolve().parents[2]
HIDDEN = 6


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def full_batch(leading_tokens: int = 0) -> torch.Tensor:
    """10 samples' [CLS] rows, or (with `leading_tokens`) their [CLS] and register rows, normalized as one set."""
    shape = (10, leading_tokens, HIDDEN) if leading_tokens else (10, HIDDEN)
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0)) * 3 + 1


def synced_rank(rank: int, world_size: int, store: str, out_dir: str, leading_tokens: int = 0) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world_size)
    norm = ClsSyncBatchNorm(HIDDEN)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5, generator=torch.Generator().manual_seed(1))
    shard = full_batch(leading_tokens)[rank * 5 : (rank + 1) * 5].requires_grad_()
    output = norm(shard)
    (output * torch.arange(HIDDEN)).sum().backward()
    torch.save(
        {"output": output.detach(), "grad": shard.grad, "weight_grad": norm.weight.grad,
         "running_mean": norm.running_mean, "running_var": norm.running_var},
        os.path.join(out_dir, f"rank{rank}.pt"),
    )  # fmt: skip
    dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize("leading_tokens", [0, 3])
def test_sync_batchnorm_over_two_processes_equals_batchnorm_over_the_whole_batch(tmp_path, leading_tokens):
    mp.spawn(synced_rank, args=(2, str(tmp_path / "store"), str(tmp_path), leading_tokens), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{rank}.pt", weights_only=True) for rank in range(2)]

    reference = ClsBatchNorm(HIDDEN)
    with torch.no_grad():
        reference.weight.uniform_(0.5, 1.5, generator=torch.Generator().manual_seed(1))
    batch = full_batch(leading_tokens).requires_grad_()
    output = reference(batch)
    (output * torch.arange(HIDDEN)).sum().backward()

    torch.testing.assert_close(torch.cat([r["output"] for r in ranks]), output.detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.cat([r["grad"] for r in ranks]), batch.grad, atol=1e-5, rtol=1e-5)
    # each rank holds its share of the weight gradient; DDP sums them
    torch.testing.assert_close(ranks[0]["weight_grad"] + ranks[1]["weight_grad"], reference.weight.grad)
    for statistic in ("running_mean", "running_var"):
        assert torch.equal(ranks[0][statistic], ranks[1][statistic])
        torch.testing.assert_close(ranks[0][statistic], getattr(reference, statistic))


def accelerate_launch(script: str, arguments: list[str], output_dir: Path) -> dict:
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(ROOT / "examples" / "accelerate" / "cpu_2proc.yaml"),
        "--main_process_port", str(free_port()),
        str(ROOT / "examples" / script), "--use_cpu", "true", "--output_dir", str(output_dir),
        "--report_to", "none", "--disable_tqdm", "true", "--seed", "11", *arguments,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=output_dir.parent)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads((output_dir / "trainer_state.json").read_text())


def assert_ranks_identical(state: dict, steps: int) -> None:
    checks = [entry for entry in state["log_history"] if "ranks_verified_identical" in entry]
    assert checks == [{"ranks_verified_identical": 2, "step": steps}]


@pytest.mark.slow
def test_two_process_run_mae_ends_with_identical_ranks(digits_idx_dir, tmp_path):
    output_dir = tmp_path / "mae"
    state = accelerate_launch(
        "run_mae.py",
        ["--train_dir", str(digits_idx_dir), "--num_channels", "1", "--max_train_samples", "96",
         "--do_train", "--max_steps", "3", "--per_device_train_batch_size", "8",
         "--config_overrides", f"patch_size=7,decoder_cls_norm=batch,{TINY_VIT_OVERRIDES}"],
        output_dir,
    )  # fmt: skip
    assert_ranks_identical(state, 3)
    assert state["epoch"] == pytest.approx(3 * 8 * 2 / 96)  # two processes shared the data
    weights = load_file(output_dir / "model.safetensors")
    assert weights["vit.layernorm.cls_norm.num_batches_tracked"].item() == 3


@pytest.mark.slow
def test_two_process_run_glue_without_sync_still_ends_identical(data_dir, tmp_path):
    output_dir = tmp_path / "glue"
    state = accelerate_launch(
        "run_glue.py",
        ["--task_name", "sst2", "--data_dir", str(data_dir / "glue" / "SST-2"), "--do_train", "--do_eval",
         "--max_steps", "3", "--max_train_samples", "128", "--max_eval_samples", "32",
         "--per_device_train_batch_size", "8", "--config_overrides", TINY_BERT_OVERRIDES,
         "--sync_cls_batchnorm", "false", "--recalibration_batches", "4"],
        output_dir,
    )  # fmt: skip
    assert_ranks_identical(state, 3)
    results = json.loads((output_dir / "all_results.json").read_text())
    assert 0 <= results["eval_accuracy"] <= 1


@pytest.mark.slow
def test_two_process_run_mlm_ends_with_identical_ranks(data_dir, tmp_path):
    output_dir = tmp_path / "mlm"
    state = accelerate_launch(
        "run_mlm.py",
        ["--train_file", str(data_dir / "text" / "ptb.valid.txt"), "--do_train", "--max_steps", "3",
         "--config_overrides", TINY_BERT_OVERRIDES, "--vocab_size", "1000", "--max_seq_length", "32",
         "--max_train_samples", "256", "--per_device_train_batch_size", "8"],
        output_dir,
    )  # fmt: skip
    assert_ranks_identical(state, 3)
    weights = load_file(output_dir / "model.safetensors")
    assert weights["bert.encoder.layer.0.output.LayerNorm.cls_norm.num_batches_tracked"].item() == 3


@pytest.mark.slow
def test_two_process_image_classification_from_scratch_ends_with_identical_ranks(digits_idx_dir, tmp_path):
    output_dir = tmp_path / "classifier"
    state = accelerate_launch(
        "run_image_classification.py",
        ["--train_dir", str(digits_idx_dir), "--num_channels", "1", "--max_train_samples", "96",
         "--max_eval_samples", "32", "--do_train", "--do_eval", "--max_steps", "3",
         "--per_device_train_batch_size", "8", "--config_overrides", f"patch_size=7,{TINY_VIT_OVERRIDES}"],
        output_dir,
    )  # fmt: skip
    assert_ranks_identical(state, 3)
    assert 0 <= json.loads((output_dir / "all_results.json").read_text())["eval_accuracy"] <= 1


def test_sync_batchnorm_leaves_its_statistics_when_told_to(tmp_path):
    """As `ClsBatchNorm` does for a DINOv2 Backbone's stages before the last: normalized, not tracked."""
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        norm = ClsSyncBatchNorm(HIDDEN).train()
        norm.updates_running_statistics = False
        output = norm(full_batch())
        assert norm.num_batches_tracked.item() == 0 and (norm.running_mean == 0).all()
        norm.updates_running_statistics = True
        torch.testing.assert_close(norm(full_batch()), output)
        assert norm.num_batches_tracked.item() == 1
        torch.testing.assert_close(norm.running_mean, 0.1 * full_batch().mean(0))
    finally:
        dist.destroy_process_group()


ENDS_ITS_GROUP = """
import os, torch.distributed as dist
from hf_sepnorm.training import run_main
os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT="{port}")
dist.init_process_group("gloo", rank=0, world_size=1)
run_main(lambda: None)
print("initialized after run_main:", dist.is_initialized())
"""


@pytest.mark.slow
def test_a_script_that_ends_well_ends_its_process_group():
    """Left to the interpreter's exit, gloo's worker threads can abort it (SIGABRT, "terminate called without an
    active exception"): run_main destroys the group once the script's main() returns."""
    result = subprocess.run([sys.executable, "-c", ENDS_ITS_GROUP.format(port=free_port())], capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "initialized after run_main: False" in result.stdout
