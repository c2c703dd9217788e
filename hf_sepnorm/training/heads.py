"""Where a fine-tuning head starts: its output bias where the constant predictor is, the mean of the training labels
for a regression head, the log class frequencies for a classification head.

A BatchNorm on [CLS] pins each pooled feature's batch mean at its bias beta, so a regression head can reach the
labels' offset only through its own bias; under a short AdamW schedule no parameter moves more than the summed
learning rate (about 0.005 for 189 steps at 5e-5), and a head whose bias starts at 0 then predicts scores centred
near 0 however well it learns their spread. Starting the bias at the label mean is arm-neutral: the same start for
every norm, what the constant predictor would say. A classification head at the log class frequencies starts at
the class prior; measured not to matter on SST-2 (docs/results/glue-minilm-converging/report-class-prior-head.md),
it is an option, off by default.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..errors import InputError

CARD_NOTES = "sepnorm_card_notes"  # a model attribute: recipe facts the model card's training table shows


def head_output_layers(model: nn.Module, num_outputs: int, flag: str = "--init_head_bias_from_labels") -> list[nn.Linear]:
    """The linear layers that give a sequence-classification head's outputs: every `nn.Linear` with `num_outputs`
    outputs under a module named `classifier` (BERT's head itself, RoBERTa's `classifier.out_proj`, PEFT's copies)."""
    layers = [module for name, module in model.named_modules()
              if isinstance(module, nn.Linear) and module.out_features == num_outputs and "classifier" in name.split(".")]
    if not layers:
        raise InputError(
            f"{flag} sets the bias of the head's output layer, and this {type(model).__name__} has no `classifier` "
            f"linear layer with {num_outputs} outputs: give {flag} false."
        )
    return layers


@torch.no_grad()
def init_head_bias_from_labels(model: nn.Module, labels: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Start a regression head's output bias at the mean of the training `labels` (one value per row, or one row of
    values per row for several outputs); returns the mean. The weights are left as built."""
    labels = torch.as_tensor(labels, dtype=torch.float64)
    if labels.ndim == 1:
        labels = labels[:, None]
    if labels.shape[0] == 0 or not torch.isfinite(labels).all():
        raise InputError(
            "--init_head_bias_from_labels needs finite training labels and there are none (or some are not numbers): "
            "check the label column of the training file, or give --init_head_bias_from_labels false."
        )
    mean = labels.mean(0)
    for layer in head_output_layers(model, labels.shape[1]):
        if layer.bias is None:
            raise InputError("--init_head_bias_from_labels: the head's output layer has no bias; give it false.")
        layer.bias.copy_(mean.to(layer.bias.dtype))
    # read by SepNormTrainer's model card: how the head started is part of the recipe
    notes = getattr(model, CARD_NOTES, {})
    notes["head bias start"] = f"mean of the {labels.shape[0]} training labels ({', '.join(f'{v:.4g}' for v in mean.tolist())})"
    setattr(model, CARD_NOTES, notes)
    return mean.float()


@torch.no_grad()
def init_head_bias_from_class_frequencies(model: nn.Module, labels: Sequence[int], num_labels: int) -> torch.Tensor:
    """Start a classification head's output bias at the log frequencies of the training `labels` (class ids), so its
    untrained softmax is the class prior; returns the bias. Add-one counts keep a class absent from the rows finite.
    The weights are left as built."""
    flag = "--init_head_bias_from_class_frequencies"
    labels = torch.as_tensor(labels, dtype=torch.long)
    if labels.numel() == 0 or labels.min() < 0 or labels.max() >= num_labels:
        raise InputError(
            f"{flag} needs training labels that are class ids 0..{num_labels - 1}, and these are not (or there are "
            f"none): check the label column of the training file, or give {flag} false."
        )
    counts = torch.bincount(labels, minlength=num_labels).double() + 1
    bias = (counts / counts.sum()).log()
    for layer in head_output_layers(model, num_labels, flag):
        if layer.bias is None:
            raise InputError(f"{flag}: the head's output layer has no bias; give it false.")
        layer.bias.copy_(bias.to(layer.bias.dtype))
    notes = getattr(model, CARD_NOTES, {})
    notes["head bias start"] = (f"log class frequencies of the {labels.numel()} training labels "
                                f"({', '.join(f'{v:.4g}' for v in bias.tolist())})")  # fmt: skip
    setattr(model, CARD_NOTES, notes)
    return bias.float()
