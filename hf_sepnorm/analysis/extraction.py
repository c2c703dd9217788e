"""Extracting the final [CLS] embedding (position 0 of the last hidden state) of SepNorm BERT and ViT-MAE models."""

from __future__ import annotations

import contextlib
import copy
import itertools
from collections.abc import Iterable, Iterator, Mapping
from typing import Literal, overload

import torch
from torch import nn
from transformers import ViTMAEModel

from ..remote_code.modeling_sepnorm_vit_mae import patches_in_place


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode for the duration (no dropout; the [CLS] BatchNorms use their running statistics), then every
    submodule gets its own train/eval flag back: a model may be partly in eval mode, e.g. with a frozen backbone."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


@contextlib.contextmanager
def _patches_never_masked(backbone: nn.Module) -> Iterator[None]:
    """Run a ViT-MAE backbone without random masking for the duration, whatever its config's `mask_ratio`.

    ViT-MAE masks in `embeddings.random_masking`, which reads `embeddings.config.mask_ratio`. For the duration the
    embeddings get a copy of their config with `mask_ratio=0` (what `SepNormViTMAEForImageClassification` does for
    good); the original object is put back afterwards, also on error. Swapping the reference, rather than setting
    `mask_ratio` on the model's config, leaves the user's config object untouched at every moment (it is shared with
    the model, its decoder and `save_pretrained`), and, unlike building a separate unmasked backbone, costs no copy
    of the weights. Other backbones are run unchanged.
    """
    if not isinstance(backbone, ViTMAEModel):
        yield
        return
    embeddings = backbone.embeddings
    original_config = embeddings.config
    unmasked_config = copy.deepcopy(original_config)
    unmasked_config.mask_ratio = 0.0
    embeddings.config = unmasked_config
    try:
        yield
    finally:
        embeddings.config = original_config


def _model_inputs(backbone: nn.Module, batch: Mapping[str, torch.Tensor], device: torch.device) -> dict:
    """The batch on `device`, without `labels` (the backbone takes none), plus ordered `noise` for ViT-MAE."""
    inputs = {key: value.to(device) for key, value in batch.items() if key != "labels"}
    if isinstance(backbone, ViTMAEModel):
        inputs["noise"] = patches_in_place(backbone, inputs["pixel_values"])
    return inputs


def _batch_labels(batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    if "labels" not in batch:
        raise ValueError(f"return_labels=True needs a `labels` entry in every batch; got keys {sorted(batch)}.")
    return batch["labels"].cpu()


@overload
def extract_cls_embeddings(
    model: nn.Module,
    batches: Iterable[Mapping[str, torch.Tensor]],
    *,
    device: torch.device | str | None = ...,
    max_batches: int | None = ...,
    return_labels: Literal[False] = ...,
) -> torch.Tensor: ...


@overload
def extract_cls_embeddings(
    model: nn.Module,
    batches: Iterable[Mapping[str, torch.Tensor]],
    *,
    device: torch.device | str | None = ...,
    max_batches: int | None = ...,
    return_labels: Literal[True],
) -> tuple[torch.Tensor, torch.Tensor]: ...


def extract_cls_embeddings(
    model: nn.Module,
    batches: Iterable[Mapping[str, torch.Tensor]],
    *,
    device: torch.device | str | None = None,
    max_batches: int | None = None,
    return_labels: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """The final [CLS] embeddings of `model` on `batches`: an (N, hidden_size) fp32 tensor on the CPU.

    `model` is a backbone or any head of it (`SepNormBert*`, `SepNormViTMAE*`, or the stock classes); the embedding
    is `model.base_model(...).last_hidden_state[:, 0]`, so a head's pooler or classifier is not applied. Batches are
    dicts as a data collator gives them (`input_ids`/`attention_mask`/`token_type_ids`, or `pixel_values`); their
    `labels` are not passed to the model. The model runs in eval mode under `torch.inference_mode` on `device`
    (default: where its parameters are); each submodule's train/eval mode is restored afterwards.

    ViT-MAE embeddings are those of the whole image: every patch in its place, none masked, whatever `mask_ratio`
    the config has (pretraining masks 75 % of the patches at random) - the input every downstream use sees.

    Only the first `max_batches` batches are used when it is given. With `return_labels=True` the concatenated
    `labels` of the batches (on the CPU) are returned as well: `(embeddings, labels)`.
    """
    backbone = model.base_model
    device = torch.device(device) if device is not None else next(model.parameters()).device
    embeddings, labels = [], []
    with _eval_mode(model), _patches_never_masked(backbone), torch.inference_mode():
        for batch in itertools.islice(batches, max_batches):
            outputs = backbone(**_model_inputs(backbone, batch, device))
            embeddings.append(outputs.last_hidden_state[:, 0].float().cpu())
            if return_labels:
                labels.append(_batch_labels(batch))
    if not embeddings:
        raise ValueError("No batch to extract [CLS] embeddings from.")
    if return_labels:
        return torch.cat(embeddings), torch.cat(labels)
    return torch.cat(embeddings)
