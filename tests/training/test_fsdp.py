"""Fully sharded data parallelism (FSDP2) with SepNorm models, on CPU with 2 gloo processes.

Accelerate 1.15 enables FSDP only on accelerators: on a CPU-only machine it runs an FSDP config as plain DDP
(`--use_cpu true`), without a word (`test_accelerate_runs_fsdp_configs_as_ddp_on_cpu`), and the example scripts run
that way. FSDP2 itself runs on CPU: the other tests launch processes with `accelerate launch --config_file
examples/accelerate/fsdp_cpu_2proc.yaml` and shard the model with Accelerate's own `fsdp2_prepare_model`, from the
plugin that config makes (what the Trainer's accelerator does on GPUs), then check what training relies on: [CLS]
BatchNorm statistics identical on every rank, training equal to one process on the global batch, a full state dict
that loads in one process with identical outputs, and an exact resume.
"""

import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import yaml
from conftest import TINY_BERT, TINY_BERT_OVERRIDES, tiny_bert_config
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict, set_state_dict
from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification, BertConfig, BertForMaskedLM

from hf_sepnorm import SepNormBertForMaskedLM, SepNormBertForSequenceClassification
from hf_sepnorm.cls_norms import cls_batchnorms
from hf_sepnorm.training import ClsSyncBatchNorm, convert_cls_batchnorm_to_sync

ROOT = Path(__file__).resolve().parents[2]
FSDP_CONFIG = ROOT / "examples" / "accelerate" / "fsdp.yaml"
CPU_FSDP_CONFIG = ROOT / "examples" / "accelerate" / "fsdp_cpu_2proc.yaml"
GLOBAL_BATCH, SEQ_LENGTH = 8, 12
FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


def global_batch(step: int) -> dict[str, torch.Tensor]:
    """The step's global batch; no padding, so the mean loss of two equal shards averaged is the whole batch's."""
    generator = torch.Generator().manual_seed(step)
    input_ids = torch.randint(5, 99, (GLOBAL_BATCH, SEQ_LENGTH), generator=generator)
    input_ids[:, 0] = 2
    return {"input_ids": input_ids, "labels": torch.randint(0, 2, (GLOBAL_BATCH,), generator=generator)}


def probe() -> dict[str, torch.Tensor]:
    return {"input_ids": global_batch(1000)["input_ids"][:4]}


def new_model() -> SepNormBertForSequenceClassification:
    torch.manual_seed(0)  # the same initial weights in every process
    return SepNormBertForSequenceClassification(tiny_bert_config(cls_norm="batch"))


def new_optimizer(model) -> torch.optim.Optimizer:
    # SGD with momentum: its update is linear in the gradient, so rounding differences between the sharded and the
    # single-process gradients stay rounding differences (Adam divides near-zero gradients by their own size)
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def train_steps(model, optimizer, steps, shard=slice(None)) -> None:
    model.train()
    for step in steps:
        batch = {key: value[shard] for key, value in global_batch(step).items()}
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()


def accelerate_fsdp2(model, rank: int):
    """Shard `model` as the Trainer's accelerator does under an FSDP2 config, with Accelerate's own function and the
    plugin that `accelerate launch` configured from the config file (the FSDP_* variables)."""
    from accelerate.utils import FullyShardedDataParallelPlugin
    from accelerate.utils.fsdp_utils import fsdp2_prepare_model

    accelerator = types.SimpleNamespace(  # what fsdp2_prepare_model reads of an Accelerator, on this CPU
        state=types.SimpleNamespace(fsdp_plugin=FullyShardedDataParallelPlugin()), torch_device_mesh=None,
        mixed_precision="no", is_main_process=rank == 0, device=torch.device("cpu"),
    )  # fmt: skip
    return fsdp2_prepare_model(accelerator, model)


def fsdp_worker(out_dir: str, resume_from: str | None) -> None:
    """One process: train steps 0-3 (saving a full checkpoint after step 1), or resume from one and train steps 2-3."""
    dist.init_process_group("gloo")
    rank, world_size = dist.get_rank(), dist.get_world_size()
    model = new_model()
    assert convert_cls_batchnorm_to_sync(model) == 4
    model = accelerate_fsdp2(model, rank)
    optimizer = new_optimizer(model)
    shard_size = GLOBAL_BATCH // world_size
    shard = slice(rank * shard_size, (rank + 1) * shard_size)
    if resume_from is None:
        train_steps(model, optimizer, [0, 1], shard)
        save_full_checkpoint(model, optimizer, rank, os.path.join(out_dir, "checkpoint-2.pt"))
    else:
        saved = torch.load(resume_from, weights_only=True)
        set_state_dict(model, optimizer, model_state_dict=saved["model"], optim_state_dict=saved["optimizer"],
                       options=StateDictOptions(full_state_dict=True))  # fmt: skip
    train_steps(model, optimizer, [2, 3], shard)

    # [CLS] BatchNorm buffers are not sharded: every rank must hold the same statistics
    statistics = {name: buffer for name, buffer in model.named_buffers() if ".cls_norm." in name}
    gathered = [None] * world_size
    dist.all_gather_object(gathered, statistics)
    model.eval()
    with torch.no_grad():
        logits = model(**probe()).logits
    model_state = save_full_checkpoint(model, optimizer, rank, os.path.join(out_dir, "checkpoint-4.pt"))
    if rank == 0:
        sharded_types = sorted({type(parameter).__name__ for parameter in model.parameters()})
        torch.save({"ranks_statistics": gathered, "logits": logits, "sharded_types": sharded_types},
                   os.path.join(out_dir, "rank0.pt"))  # fmt: skip
        SepNormBertForSequenceClassification(tiny_bert_config(cls_norm="batch")).save_pretrained(
            os.path.join(out_dir, "model"), state_dict=model_state
        )
    if resume_from is None:
        record_masked_lm_sharding(rank, out_dir)
    dist.destroy_process_group()


def record_masked_lm_sharding(rank: int, out_dir: str) -> None:
    """Whether Accelerate can shard and train BERT's masked-LM head, stock and SepNorm alike."""
    errors = {}
    batch = {"input_ids": global_batch(0)["input_ids"][:2], "labels": global_batch(0)["input_ids"][:2]}
    for name, model in (("stock", BertForMaskedLM(BertConfig(**TINY_BERT))),
                        ("sepnorm", SepNormBertForMaskedLM(tiny_bert_config()))):  # fmt: skip
        try:
            accelerate_fsdp2(model, rank)(**batch).loss.backward()  # FSDP2 groups its parameters on the first call
            errors[name] = None
        except ValueError as error:
            errors[name] = str(error)
    if rank == 0:
        Path(out_dir, "masked_lm_sharding.json").write_text(json.dumps(errors))


def save_full_checkpoint(model, optimizer, rank: int, path: str) -> dict:
    """Gather the full (unsharded) model and optimizer state on rank 0, as FULL_STATE_DICT does, and save it there."""
    model_state, optimizer_state = get_state_dict(model, optimizer, options=FULL)
    if rank == 0:
        torch.save({"model": model_state, "optimizer": optimizer_state}, path)
    return model_state


LAUNCHED_WORKER = textwrap.dedent(
    """
    import sys
    sys.path[:0] = [sys.argv[3], sys.argv[4]]
    from test_fsdp import fsdp_worker
    fsdp_worker(sys.argv[1], sys.argv[2] or None)
    """
)


def run_fsdp(out_dir: Path, resume_from: Path | None = None) -> dict:
    out_dir.mkdir()
    worker = out_dir / "worker.py"
    worker.write_text(LAUNCHED_WORKER)
    here = Path(__file__).resolve().parent
    accelerate_launch(CPU_FSDP_CONFIG, [str(worker), str(out_dir), str(resume_from or ""), str(here.parent), str(here)],
                      out_dir)  # fmt: skip
    return torch.load(out_dir / "rank0.pt", weights_only=True)


@pytest.fixture(scope="module")
def fsdp_run(tmp_path_factory) -> tuple[Path, dict]:
    out_dir = tmp_path_factory.mktemp("fsdp") / "run"
    return out_dir, run_fsdp(out_dir)


def test_cpu_config_is_the_shipped_fsdp_config():
    shipped, cpu = (yaml.safe_load(path.read_text()) for path in (FSDP_CONFIG, CPU_FSDP_CONFIG))
    assert cpu["fsdp_config"] == shipped["fsdp_config"]
    assert (cpu["distributed_type"], shipped["distributed_type"]) == ("FSDP", "FSDP")


def test_masked_lm_head_cannot_be_sharded_by_accelerate_stock_bert_alike(fsdp_run):
    out_dir, _ = fsdp_run
    errors = json.loads((out_dir / "masked_lm_sharding.json").read_text())
    assert errors["stock"] is not None and "cls.predictions.decoder.bias" in errors["stock"]
    assert errors["sepnorm"] == errors["stock"]


def test_parameters_are_sharded_and_cls_statistics_identical_on_every_rank(fsdp_run):
    _, result = fsdp_run
    assert result["sharded_types"] == ["DTensor"]
    first, second = result["ranks_statistics"]
    assert first.keys() == second.keys() and len(first) == 4 * 4  # mean, var, batches tracked, non-finite batches
    for name in first:
        assert torch.equal(first[name], second[name]), name
    assert all(value.item() == 4 for name, value in first.items() if name.endswith("num_batches_tracked"))


def test_two_sharded_processes_train_as_one_process_on_the_global_batch(fsdp_run):
    out_dir, _ = fsdp_run
    reference = new_model()
    optimizer = new_optimizer(reference)
    train_steps(reference, optimizer, [0, 1, 2, 3])
    sharded = torch.load(out_dir / "checkpoint-4.pt", weights_only=True)["model"]
    expected = reference.state_dict()
    assert sharded.keys() == expected.keys()
    for name, tensor in expected.items():
        # float sums in another order: ~1e-5 on weights, ~2e-4 relative on the running statistics, whose inputs come
        # out of the embeddings' LayerNorm dividing 0.02-sized embeddings
        torch.testing.assert_close(sharded[name], tensor, atol=1e-4, rtol=1e-3, msg=name)
    # the [CLS] statistics moved: the comparison above covers them
    assert not torch.equal(cls_batchnorms(reference)[0].running_var, torch.ones(32))


def test_full_state_dict_loads_in_one_process_with_identical_outputs(fsdp_run):
    out_dir, result = fsdp_run
    model = AutoModelForSequenceClassification.from_pretrained(out_dir / "model").eval()
    assert not any(isinstance(norm, ClsSyncBatchNorm) for norm in cls_batchnorms(model))
    with torch.no_grad():
        torch.testing.assert_close(model(**probe()).logits, result["logits"], atol=1e-6, rtol=0)


@pytest.mark.slow
def test_resumed_fsdp_run_reaches_the_uninterrupted_weights(fsdp_run, tmp_path):
    out_dir, _ = fsdp_run
    run_fsdp(tmp_path / "resumed", resume_from=out_dir / "checkpoint-2.pt")
    resumed = torch.load(tmp_path / "resumed" / "checkpoint-4.pt", weights_only=True)
    uninterrupted = torch.load(out_dir / "checkpoint-4.pt", weights_only=True)
    for name, tensor in uninterrupted["model"].items():
        torch.testing.assert_close(resumed["model"][name], tensor, atol=1e-6, rtol=0, msg=name)
    torch.testing.assert_close(resumed["optimizer"]["state"], uninterrupted["optimizer"]["state"], atol=1e-6, rtol=0)


ACCELERATE_STATE_PROBE = textwrap.dedent(
    """
    import json, os, sys
    from transformers import Trainer, TrainingArguments
    from transformers import BertConfig, BertForMaskedLM

    args = TrainingArguments(output_dir=sys.argv[1], use_cpu=sys.argv[2] == "true", report_to="none")
    trainer = Trainer(model=BertForMaskedLM(BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=1,
                      num_attention_heads=2, intermediate_size=64)), args=args)
    state = trainer.accelerator.state
    with open(os.path.join(sys.argv[1], f"launched_rank{os.environ['RANK']}.json"), "w") as file:
        json.dump({"distributed_type": str(state.distributed_type).split(".")[-1], "fsdp": trainer.is_fsdp_enabled,
                   "processes": state.num_processes}, file)
    """
)


def accelerate_launch(config: Path, script: list[str], cwd: Path) -> subprocess.CompletedProcess:
    from test_distributed import free_port

    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config),
               "--main_process_port", str(free_port()), *script]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=cwd)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


@pytest.mark.slow
@pytest.mark.parametrize(("use_cpu", "distributed_type", "processes"), [("true", "MULTI_CPU", 2), ("false", "NO", 1)])
def test_accelerate_runs_fsdp_configs_as_ddp_on_cpu(use_cpu, distributed_type, processes, tmp_path):
    """Accelerate takes FSDP only on accelerators. On CPU, the FSDP config runs as DDP with `--use_cpu true`, and
    without it as two unrelated single processes: `--use_cpu true` is required (README, FSDP)."""
    probe_file = tmp_path / "probe.py"
    probe_file.write_text(ACCELERATE_STATE_PROBE)
    accelerate_launch(CPU_FSDP_CONFIG, [str(probe_file), str(tmp_path), use_cpu], tmp_path)
    states = [json.loads((tmp_path / f"launched_rank{rank}.json").read_text()) for rank in range(2)]
    for state in states:
        assert state["distributed_type"] == distributed_type and state["fsdp"] is False
        assert state["processes"] == processes


def launch_example(script: str, arguments: list[str], output_dir: Path) -> dict:
    """Run an example script with the CPU FSDP config (as DDP, see above); returns its trainer_state.json."""
    accelerate_launch(
        CPU_FSDP_CONFIG,
        [str(ROOT / "examples" / script), "--use_cpu", "true", "--output_dir", str(output_dir), "--report_to", "none",
         "--disable_tqdm", "true", "--seed", "11", *arguments],
        output_dir.parent,
    )  # fmt: skip
    return json.loads((output_dir / "trainer_state.json").read_text())


def assert_ranks_verified_identical(state: dict, steps: int) -> None:
    assert [entry for entry in state["log_history"] if "ranks_verified_identical" in entry] == [
        {"ranks_verified_identical": 2, "step": steps}
    ]


@pytest.mark.slow
def test_run_mlm_with_the_cpu_fsdp_config_saves_and_resumes(data_dir, minilm_dir, tmp_path):
    arguments = ["--train_file", str(data_dir / "text" / "ptb.valid.txt"), "--do_train", "--max_steps", "4",
                 "--save_steps", "2", "--config_overrides", TINY_BERT_OVERRIDES, "--tokenizer_name", str(minilm_dir),
                 "--max_seq_length", "32", "--max_train_samples", "256",
                 "--per_device_train_batch_size", "8"]  # fmt: skip
    uninterrupted = tmp_path / "uninterrupted"
    assert_ranks_verified_identical(launch_example("run_mlm.py", arguments, uninterrupted), 4)
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    (resumed / "checkpoint-2").symlink_to(uninterrupted / "checkpoint-2", target_is_directory=True)
    state = launch_example("run_mlm.py", [*arguments, "--resume_from_checkpoint", "last"], resumed)
    assert_ranks_verified_identical(state, 4)
    weights = []
    for folder in (uninterrupted, resumed):
        model = AutoModelForMaskedLM.from_pretrained(folder / "checkpoint-4")  # the full model, in one process
        assert model.bert.encoder.layer[0].output.LayerNorm.cls_norm.num_batches_tracked.item() == 4
        weights.append(model.state_dict())
    for name in weights[0]:
        assert torch.equal(weights[0][name], weights[1][name]), name  # masks seeded per block and epoch


@pytest.mark.slow
def test_run_glue_with_the_cpu_fsdp_config(data_dir, tmp_path):
    output_dir = tmp_path / "glue"
    state = launch_example(
        "run_glue.py",
        ["--task_name", "sst2", "--data_dir", str(data_dir / "glue" / "SST-2"), "--do_train", "--do_eval",
         "--max_steps", "3", "--max_train_samples", "128", "--max_eval_samples", "32",
         "--per_device_train_batch_size", "8", "--config_overrides", TINY_BERT_OVERRIDES],
        output_dir,
    )  # fmt: skip
    assert_ranks_verified_identical(state, 3)
    assert 0 <= json.loads((output_dir / "all_results.json").read_text())["eval_accuracy"] <= 1
