"""Estimating the population statistics of the [CLS] BatchNorms (PreciseBN; Wu & Johnson, 2021).

Two cases differ. Statistics that were **never updated** (mean 0, variance 1: a stock checkpoint just converted)
describe nothing, and a model evaluated on them does not normalize [CLS] at all: estimating them costs nothing and
is required (the scripts do it before any evaluation). Statistics that **training** left (an exponential moving
average taken while the weights changed, after MAE pretraining on masked inputs) are re-estimated only on request:
in principle exact averages over downstream inputs fix both differences, but measured on this project's runs it hurt
on average (docs/cls_statistics.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn

from .cls_norms import cls_batchnorms
from .remote_code.sepnorm import statistics_never_updated


def cls_statistics_never_updated(model: nn.Module) -> bool:
    """True when some [CLS] BatchNorm of `model` still has the running statistics it was built with (mean 0, variance
    1): never trained, never estimated."""
    return any(statistics_never_updated(norm) for norm in cls_batchnorms(model))


def _batch_size(batch: Mapping[str, torch.Tensor]) -> int:
    return next(value.shape[0] for value in batch.values() if isinstance(value, torch.Tensor))


@torch.no_grad()
def recalibrate_cls_batchnorm(
    model: nn.Module, batches: Iterable[Mapping[str, torch.Tensor]], max_batches: int | None = None
) -> int:
    """Replace the running statistics of every [CLS] BatchNorm of `model` by exact averages over `batches`.

    The model runs as it is used downstream: everything in eval mode (no dropout) except the [CLS] BatchNorms, which
    see batch statistics; each statistic becomes the plain average of its per-batch values over the first
    `max_batches` batches of two or more samples (batches of one have no variance and are skipped). Feed the inputs of
    the downstream use (for ViT-MAE: unmasked images, e.g. through `SepNormViTMAEForImageClassification`). Nothing
    but the running means and variances changes. Returns the number of batches used.
    """
    norms = cls_batchnorms(model)
    if not norms:
        return 0
    was_training = model.training
    saved = [
        (norm.momentum, norm.num_batches_tracked.clone(), norm.running_mean.clone(), norm.running_var.clone())
        for norm in norms
    ]
    device = next(model.parameters()).device
    model.eval()
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average: after n batches, the mean of the n batch statistics
        norm.train()
    used = 0
    try:
        for batch in batches:
            if max_batches is not None and used >= max_batches:
                break
            if _batch_size(batch) < 2:
                continue
            model(**{key: value.to(device) for key, value in batch.items() if key != "labels"})
            used += 1
        if used == 0:
            raise ValueError("Recalibrating the [CLS] BatchNorms needs at least one batch of 2 or more samples.")
    except BaseException:
        for norm, (_, _, running_mean, running_var) in zip(norms, saved):
            norm.running_mean.copy_(running_mean)
            norm.running_var.copy_(running_var)
        raise
    finally:
        for norm, (momentum, batches_tracked, _, _) in zip(norms, saved):
            norm.momentum = momentum
            norm.num_batches_tracked.copy_(batches_tracked)
        model.train(was_training)
    return used
