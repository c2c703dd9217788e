"""[CLS] BatchNorm under data parallelism.

Neither the Trainer nor Accelerate converts BatchNorms to SyncBatchNorm, so by default each process would normalize
[CLS] over its own shard of the batch and keep its own running statistics. `convert_cls_batchnorm_to_sync` makes the
[CLS] BatchNorms normalize over the global batch (on CPU and GPU alike); `ClsStatisticsCallback` keeps the running statistics identical on
every rank (averaging them after each step when they are not synchronized) and checks at the end of training that
every rank holds the same weights and statistics.
"""

from __future__ import annotations

import hashlib

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as distributed_functional
from torch import nn
from transformers import TrainerCallback

from ..cls_norms import cls_batchnorms
from ..remote_code.activation_checkpointing import is_recomputing_activations
from ..remote_code.sepnorm import ClsBatchNorm


class ClsSyncBatchNorm(ClsBatchNorm):
    """A [CLS] BatchNorm whose training statistics are those of the global batch of all processes.

    torch's `nn.SyncBatchNorm` runs only on GPUs (DDP refuses it on CPU); this one reduces the [CLS] rows' sums with
    the differentiable `torch.distributed.nn.functional.all_reduce`, so it runs on any backend (gloo, NCCL) and its
    gradients are those of BatchNorm over the global batch. The [CLS] rows are a (batch, hidden) matrix: the two
    reductions per norm are small. Outside distributed training it is a `ClsBatchNorm`.
    """

    def __init__(self, *args, process_group=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.process_group = process_group

    def forward(self, cls_states: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()):
            return super().forward(cls_states)
        # (batch x leading tokens, hidden): [CLS] alone, or DINOv2's [CLS] and registers as one set of rows
        states = cls_states.float().reshape(-1, cls_states.shape[-1])
        local_counts = torch.tensor([cls_states.shape[0], states.shape[0]], dtype=states.dtype, device=states.device)
        samples, count = distributed_functional.all_reduce(local_counts, group=self.process_group)
        if samples.item() < 2:
            return super().forward(cls_states)  # a global batch of one: running statistics, as ClsBatchNorm does
        mean = distributed_functional.all_reduce(states.sum(dim=0), group=self.process_group) / count
        centered = states - mean
        variance = distributed_functional.all_reduce((centered * centered).sum(dim=0), group=self.process_group) / count
        normalized = centered * torch.rsqrt(variance + self.eps) * self.weight + self.bias
        if self.updates_running_statistics and not is_recomputing_activations():
            self._update_running_statistics(mean.detach(), variance.detach() * count / (count - 1))
        return normalized.view(cls_states.shape).to(cls_states.dtype)


def convert_cls_batchnorm_to_sync(model: nn.Module, process_group=None) -> int:
    """Replace every [CLS] BatchNorm of `model` by a `ClsSyncBatchNorm` sharing its parameters and statistics.

    Returns how many were converted. Call it before the model is wrapped for distributed training."""
    converted = 0
    for name, module in list(model.named_modules()):
        if type(module) is not ClsBatchNorm:
            continue
        synced = ClsSyncBatchNorm(module.num_features, module.eps, module.momentum, process_group=process_group)
        synced.weight, synced.bias = module.weight, module.bias
        synced.running_mean, synced.running_var = module.running_mean, module.running_var
        synced.num_batches_tracked = module.num_batches_tracked
        synced.train(module.training)
        model.set_submodule(name, synced)
        converted += 1
    return converted


@torch.no_grad()
def average_cls_statistics(model: nn.Module) -> None:
    """Average the [CLS] BatchNorm running statistics over all ranks (identical everywhere afterwards)."""
    for norm in cls_batchnorms(model):
        for statistic in (norm.running_mean, norm.running_var):
            dist.all_reduce(statistic, op=dist.ReduceOp.SUM)
            statistic.div_(dist.get_world_size())


def fingerprints(tensors: dict[str, torch.Tensor]) -> dict[str, str]:
    return {
        name: hashlib.sha1(tensor.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes()).hexdigest()
        for name, tensor in tensors.items()
    }


def ranks_disagreeing_on(tensors: dict[str, torch.Tensor]) -> list[str]:
    """The names of the tensors whose values are not identical on every rank (call on every rank)."""
    gathered: list[dict[str, str] | None] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, fingerprints(tensors))
    return sorted(name for name in gathered[0] if len({rank[name] for rank in gathered}) > 1)


def check_ranks_identical(tensors: dict[str, torch.Tensor], when: str) -> None:
    """Raise unless every rank holds the same values of `tensors` (call on every rank)."""
    disagreeing = ranks_disagreeing_on(tensors)
    if disagreeing:
        raise RuntimeError(
            f"{when}, the {dist.get_world_size()} ranks hold different values for {disagreeing[:10]} "
            f"({len(disagreeing)} entries): the saved model would depend on which rank saved it."
        )


def cls_statistics(model: nn.Module) -> dict[str, torch.Tensor]:
    """The running statistics of the [CLS] BatchNorms, by state-dict name (buffers: never sharded, e.g. by FSDP)."""
    norms = {id(norm) for norm in cls_batchnorms(model)}
    return {
        f"{name}.{statistic}": getattr(module, statistic)
        for name, module in model.named_modules()
        if id(module) in norms
        for statistic in ("running_mean", "running_var")
    }


class ClsStatisticsCallback(TrainerCallback):
    """With several processes: keep [CLS] statistics identical across ranks, and verify all state at the end."""

    def __init__(self, statistics_synchronized: bool):
        self.statistics_synchronized = statistics_synchronized

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if not self.statistics_synchronized:
            average_cls_statistics(model)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        check_ranks_identical(model.state_dict(), "After training")
        state.log_history.append({"ranks_verified_identical": dist.get_world_size(), "step": state.global_step})
