"""The control arm of a fine-tuning comparison: what a [CLS] BatchNorm does by construction, without SepNorm.

A BatchNorm on [CLS] standardizes every feature. A head can learn faster on standardized inputs whatever the
representation carries, so a fine-tuning comparison needs an arm that has the standardization and not SepNorm:
ShareNorm (the stock model) whose final norm standardizes the [CLS] per feature where the `batch-final` arm's
BatchNorm does, before the norm's affine map: `gamma * (xhat - mean) / sqrt(var + 1e-5) + beta`, with `xhat` the
LayerNorm's normalized [CLS], `mean` and `var` measured once on the training rows with the starting model and then
frozen, and gamma and beta the LayerNorm's own, kept and trained as `batch-final` keeps them. `1e-5` is BatchNorm's
epsilon: a feature that barely varies maps to about 0 instead of its rounding noise blown up, and a dead feature
(gamma ~ 0, as all-MiniLM-L6-v2 has two) gets the gradient it gets in the other arms, not one multiplied by 1/std.

`standardize_cls_features` installs it on a BERT-like model (BERT, RoBERTa: the final LayerNorm of the last layer, then
the pooler); a family without a pooler (ModernBERT, whose final norm feeds its own `head`) is refused in one line. The standardization is trained through, not saved as
such: `state_dict()` (what `save_pretrained` writes) folds it into the pooler's dense layer (the only reader of the
final [CLS] in a sequence-classification model), so the saved checkpoint is a plain model whose logits are exactly
those trained, and `load_state_dict` unfolds it again (the Trainer's resume and best-model reload).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError

BATCHNORM_EPS = 1e-5  # torch.nn.BatchNorm1d's: what a [CLS] BatchNorm adds to a feature's variance


def frozen_standardization(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-feature centre and scale of a standardization fitted on `rows` (one vector per row): the mean and
    sqrt(variance + BatchNorm's epsilon), the variance over the rows as BatchNorm normalizes a batch (biased)."""
    rows = torch.as_tensor(rows)
    return rows.mean(0), (rows.var(0, unbiased=False) + BATCHNORM_EPS).sqrt()


def _final_norm_and_pooler(model: nn.Module) -> tuple[str, nn.LayerNorm, str, nn.Linear]:
    base = getattr(model, "base_model", model)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    norm = getattr(getattr(layers[-1], "output", None), "LayerNorm", None) if layers else None
    dense = getattr(getattr(base, "pooler", None), "dense", None)
    if type(norm) is not nn.LayerNorm or not isinstance(dense, nn.Linear):
        raise InputError(
            f"--standardize_cls_features standardizes the [CLS] of a BERT-like model's final LayerNorm before its "
            f"pooler, and this {type(model).__name__} has no such pair: the control is built for BERT and RoBERTa "
            "(ModernBERT has no pooler and is not covered); use --cls_norm shared and a BERT-like checkpoint built "
            "with its pooler."
        )
    if getattr(base.config, "chunk_size_feed_forward", 0):
        raise InputError("--standardize_cls_features needs chunk_size_feed_forward 0 (the final norm sees whole rows).")
    names = {module: name for name, module in model.named_modules()}
    return names[norm], norm, names[dense], dense


@torch.no_grad()
def cls_feature_statistics(model: nn.Module, batches: Iterable[dict]) -> tuple[torch.Tensor, torch.Tensor]:
    """`frozen_standardization` of the final LayerNorm's normalized [CLS] (before its affine map) over `batches`, in
    eval mode (no dropout), in fp32. Padding never reaches [CLS]: every row contributes one vector."""
    _, norm, _, _ = _final_norm_and_pooler(model)
    rows = []
    handle = norm.register_forward_hook(lambda module, args, output: rows.append(_normalized_cls(module, args[0])))
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        for batch in batches:
            model.base_model(**{name: value.to(device) for name, value in batch.items() if name not in ("labels", "label")})
    finally:
        handle.remove()
        model.train(was_training)
    cls = torch.cat(rows)
    if cls.shape[0] < 2:
        raise InputError("--standardize_cls_features needs at least 2 training rows to estimate [CLS] statistics.")
    return frozen_standardization(cls)


def _normalized_cls(norm: nn.LayerNorm, hidden_states: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(hidden_states[:, 0].float(), norm.normalized_shape, eps=norm.eps)


def _standardize_cls(norm: nn.LayerNorm, args, output: torch.Tensor) -> torch.Tensor:
    standardized = (_normalized_cls(norm, args[0]) - norm.cls_feature_mean) / norm.cls_feature_scale
    cls = (norm.weight.float() * standardized + norm.bias.float()).to(output.dtype)
    return torch.cat([cls[:, None], output[:, 1:]], dim=1)


def _cls_offset(weight: torch.Tensor, bias: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    # the trained [CLS] from the plain one h = gamma xhat + beta: gamma (xhat - m) / s + beta = h / s + offset
    return bias - (bias + weight * mean) / scale


def standardize_cls_features(model: nn.Module, batches: Iterable[dict]) -> tuple[torch.Tensor, torch.Tensor]:
    """Standardize the [CLS] of `model`'s final LayerNorm per feature before its affine map, with statistics of
    `batches` measured on `model` as it is now and frozen from then on; returns them (mean, scale)."""
    norm_name, norm, dense_name, dense = _final_norm_and_pooler(model)
    if hasattr(norm, "cls_feature_mean"):
        raise ValueError("--standardize_cls_features: this model's [CLS] is already standardized; install it once.")
    mean, scale = cls_feature_statistics(model, batches)
    # not persistent: the saved weights have the standardization folded in, so a reload is a plain model
    norm.register_buffer("cls_feature_mean", mean.to(norm.weight.device), persistent=False)
    norm.register_buffer("cls_feature_scale", scale.to(norm.weight.device), persistent=False)
    norm.register_forward_hook(_standardize_cls)

    def fold(module, state_dict, prefix, local_metadata) -> None:
        # pooler(h / s + offset) = (W / s) h + (b + W offset): the plain pooler computing the trained function
        weight, bias = state_dict[f"{prefix}{dense_name}.weight"], state_dict[f"{prefix}{dense_name}.bias"]
        offset = _cls_offset(norm.weight.detach().float(), norm.bias.detach().float(), mean, scale)
        state_dict[f"{prefix}{dense_name}.bias"] = (bias.float() + weight.float() @ offset).to(bias.dtype)
        state_dict[f"{prefix}{dense_name}.weight"] = (weight.float() / scale).to(weight.dtype)

    def unfold(module, state_dict, prefix, *args) -> None:
        keys = [f"{prefix}{dense_name}.weight", f"{prefix}{dense_name}.bias"]
        if not all(key in state_dict for key in keys):
            return
        gamma = state_dict.get(f"{prefix}{norm_name}.weight", norm.weight.detach()).float().to(mean.device)
        beta = state_dict.get(f"{prefix}{norm_name}.bias", norm.bias.detach()).float().to(mean.device)
        folded, bias = state_dict[keys[0]], state_dict[keys[1]]
        weight = folded.float().to(mean.device) * scale
        state_dict[keys[1]] = (bias.float().to(mean.device) - weight @ _cls_offset(gamma, beta, mean, scale)).to(bias.dtype)
        state_dict[keys[0]] = weight.to(folded.dtype)

    model.register_state_dict_post_hook(fold)
    model.register_load_state_dict_pre_hook(unfold)
    return mean, scale
