"""The control arm of a fine-tuning comparison: what a [CLS] BatchNorm does by construction, without SepNorm.

A BatchNorm on [CLS] standardizes every feature before the head. A head can learn faster on standardized inputs
whatever the representation carries, so a fine-tuning comparison needs an arm that has the standardization and not
SepNorm: ShareNorm (the stock model) whose final [CLS] is standardized per feature, with statistics of the training
rows measured once on the starting model and then frozen. `standardize_pooler_input` installs it on the first layer
the sequence-classification head applies to [CLS]: the pooler of a BERT-like model; in ModernBERT, which has no
pooler, the dense layer of its `head` (classifier_pooling="cls"; a mean-pooling head has no [CLS] input to
standardize and is refused).

The standardization is trained through, not saved as such: `state_dict()` (what `save_pretrained` writes) folds it
into the pooler's dense layer, so the saved checkpoint is a plain model that computes exactly what was trained, and
`load_state_dict` unfolds it again (the Trainer's resume and best-model reload).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from ..errors import InputError


def _pooler_dense(model: nn.Module) -> nn.Linear:
    """The first linear layer the sequence-classification head applies to the final [CLS]: BERT's pooler, or, in a
    family without a pooler, ModernBERT's `head.dense` (its head is `head` = dense, activation, LayerNorm, then
    `classifier`, on [CLS] with `classifier_pooling="cls"`)."""
    pooler = getattr(getattr(model, "base_model", model), "pooler", None)
    dense = getattr(pooler, "dense", None)
    if dense is None and getattr(model.config, "classifier_pooling", None) == "cls":
        dense = getattr(getattr(model, "head", None), "dense", None)
    if not isinstance(dense, nn.Linear):
        raise InputError(
            f"--standardize_cls_features standardizes the [CLS] entering a classification head's first layer (BERT's "
            f"pooler, ModernBERT's `head` with classifier_pooling='cls'), and this {type(model).__name__} has none: "
            "use a BERT-like checkpoint built with its pooling layer, or a ModernBERT one pooling [CLS]."
        )
    if dense.bias is None:  # the saved model takes the mean in that layer's bias
        raise InputError(
            f"--standardize_cls_features folds the standardization into the head's first layer, whose bias takes "
            f"the [CLS] mean, and this {type(model).__name__}'s has none (ModernBERT's classifier_bias=False, its "
            "default): build the head with classifier_bias=True."
        )
    return dense


@torch.no_grad()
def cls_feature_statistics(model: nn.Module, batches: Iterable[dict]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean and standard deviation of the final [CLS] hidden state over `batches`, in eval mode (no
    dropout), in fp32. Padding never reaches [CLS]: every row contributes one vector."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    # one [CLS] vector per row: small enough to keep, and a two-pass std is exact where sums of squares are not
    rows = []
    for batch in batches:
        inputs = {name: value.to(device) for name, value in batch.items() if name not in ("labels", "label")}
        rows.append(model.base_model(**inputs).last_hidden_state[:, 0].float())
    model.train(was_training)
    cls = torch.cat(rows)
    if cls.shape[0] < 2:
        raise InputError("--standardize_cls_features needs at least 2 training rows to estimate [CLS] statistics.")
    return cls.mean(0), cls.std(0).clamp_min(1e-6)


def _standardize_input(dense: nn.Linear, args):
    (cls_states,) = args
    return ((cls_states - dense.cls_feature_mean) / dense.cls_feature_std).to(cls_states.dtype)


def _fold_into_saved_weights(dense: nn.Linear, state_dict: dict, prefix: str, local_metadata) -> None:
    # dense((x - m) / s) = (W / s) x + (b - W (m / s)): the plain layer that computes the trained function
    weight = state_dict[prefix + "weight"]
    scaled = dense.cls_feature_mean / dense.cls_feature_std
    state_dict[prefix + "bias"] = (state_dict[prefix + "bias"].float() - weight.float() @ scaled).to(weight.dtype)
    state_dict[prefix + "weight"] = (weight.float() / dense.cls_feature_std).to(weight.dtype)


def _unfold_loaded_weights(dense: nn.Linear, state_dict: dict, prefix: str, *args) -> None:
    if prefix + "weight" not in state_dict or prefix + "bias" not in state_dict:
        return
    folded = state_dict[prefix + "weight"].float()
    state_dict[prefix + "bias"] = (state_dict[prefix + "bias"].float() + folded @ dense.cls_feature_mean).to(
        state_dict[prefix + "bias"].dtype
    )
    state_dict[prefix + "weight"] = (folded * dense.cls_feature_std).to(state_dict[prefix + "weight"].dtype)


def standardize_pooler_input(model: nn.Module, batches: Iterable[dict]) -> tuple[torch.Tensor, torch.Tensor]:
    """Standardize the final [CLS] per feature before the pooler, with statistics of `batches` measured on `model` as
    it is now and frozen from then on; returns them (mean, std)."""
    dense = _pooler_dense(model)
    if hasattr(dense, "cls_feature_mean"):
        raise ValueError("--standardize_cls_features: this model's [CLS] is already standardized; install it once.")
    mean, std = cls_feature_statistics(model, batches)
    # not persistent: the saved weights have the standardization folded in, so a reload is a plain model
    dense.register_buffer("cls_feature_mean", mean.to(dense.weight.device), persistent=False)
    dense.register_buffer("cls_feature_std", std.to(dense.weight.device), persistent=False)
    dense.register_forward_pre_hook(_standardize_input)
    dense.register_state_dict_post_hook(_fold_into_saved_weights)
    dense.register_load_state_dict_pre_hook(_unfold_loaded_weights)
    return mean, std
