"""Finding and setting a model's [CLS] norms: what the package needs and the checkpoint's own code does not."""

from __future__ import annotations

import sys

import torch
from torch import nn

from .remote_code.sepnorm import SepNormLayerNorm


def cls_batchnorms(model: nn.Module) -> list[nn.Module]:
    """The [CLS] BatchNorms of `model` (plain or converted to SyncBatchNorm), those its forward runs."""
    norms = (cls_norm_in_use(module.cls_norm) for module in model.modules() if isinstance(module, SepNormLayerNorm))
    return [norm for norm in norms if isinstance(norm, nn.modules.batchnorm._BatchNorm)]


def cls_norm_in_use(cls_norm: nn.Module) -> nn.Module:
    """The module that runs as `cls_norm`: itself, or, where peft's `modules_to_save` wraps it, the copy the active
    adapter trains (the original when adapters are disabled)."""
    peft_utils = sys.modules.get("peft.utils")  # a wrapped norm exists only once peft is imported
    if peft_utils is None or not isinstance(cls_norm, peft_utils.ModulesToSaveWrapper):
        return cls_norm
    active = [] if cls_norm.disable_adapters else cls_norm.active_adapters
    return cls_norm.modules_to_save[active[0]] if active else cls_norm.original_module


def nonfinite_cls_batches(model: nn.Module) -> int:
    """How many training batches had non-finite [CLS] statistics: the count of the [CLS] BatchNorm that saw the most
    (a NaN reaching one [CLS] norm reaches those after it in the same forward)."""
    return max((int(norm.nonfinite_batches) for norm in cls_batchnorms(model) if hasattr(norm, "nonfinite_batches")),
               default=0)  # fmt: skip


@torch.no_grad()
def init_cls_norms_from_token_norms(model: nn.Module) -> int:
    """Copy each SepNorm's LayerNorm weight/bias into its [CLS] norm; returns how many were set.

    With `cls_norm="layer"` this makes a converted stock checkpoint compute exactly what the stock model does.
    """
    sepnorms = [module for module in model.modules() if isinstance(module, SepNormLayerNorm)]
    for sepnorm in sepnorms:
        sepnorm.cls_norm.weight.copy_(sepnorm.weight)
        if getattr(sepnorm.cls_norm, "bias", None) is not None:
            # a bias-free LayerNorm (ModernBERT's) under a [CLS] BatchNorm: its bias starts at 0, as the norm's "none"
            sepnorm.cls_norm.bias.copy_(sepnorm.bias if sepnorm.bias is not None else 0)
    return len(sepnorms)
