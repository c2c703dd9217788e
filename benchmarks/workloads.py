"""What the benchmarks run: the model pairs (stock transformers / SepNorm, identical shape and weights), their
inputs, and one training or inference step. Shared by `bench_models.py`, `memory_probe.py` and `profile_sepnorm.py`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    Dinov2WithRegistersConfig,
    Dinov2WithRegistersForImageClassification,
    ModernBertConfig,
    ModernBertForSequenceClassification,
    ViTMAEConfig,
    ViTMAEForPreTraining,
    ViTMAEModel,
)

from hf_sepnorm import (
    SepNormBertConfig,
    SepNormBertForSequenceClassification,
    SepNormDinov2Config,
    SepNormDinov2ForImageClassification,
    SepNormModernBertConfig,
    SepNormModernBertForSequenceClassification,
    SepNormViTMAEConfig,
    SepNormViTMAEForImageClassification,
    SepNormViTMAEForPreTraining,
)

MODELS = ("bert", "vit_mae", "vit_mae_classifier", "modernbert", "dinov2")
SHAPES = ("base", "small")
MODES = ("train", "infer")
DTYPES = ("fp32", "bf16")
VARIANTS = ("stock", "sepnorm")
NUM_LABELS = 2
SEED = 0

# Config keyword arguments and batch geometry per (family, shape). "base" is BERT-base / ViT-MAE-base as the issue
# states them; "small" is a quick sanity check of the same code paths.
BERT_SHAPES = {
    "base": dict(config={}, batch_size=32, seq_len=128),
    "small": dict(
        config=dict(num_hidden_layers=4, hidden_size=256, num_attention_heads=4, intermediate_size=1024),
        batch_size=8,
        seq_len=64,
    ),
}
VIT_MAE_SHAPES = {
    "base": dict(config={}, batch_size=32),
    "small": dict(
        config=dict(
            image_size=64,
            patch_size=8,
            num_hidden_layers=4,
            hidden_size=192,
            num_attention_heads=3,
            intermediate_size=768,
            decoder_num_hidden_layers=2,
            decoder_hidden_size=128,
            decoder_num_attention_heads=4,
            decoder_intermediate_size=512,
        ),
        batch_size=8,
    ),
}


# The families whose stock and SepNorm classifiers are called alike (`model(**inputs).loss`): model -> (stock config,
# stock classifier, SepNorm config, SepNorm classifier, shapes). "base" is ModernBERT-base / DINOv2-with-registers-base
# (transformers' defaults: 22 layers of 768; 12 layers of 768 at 224^2, patch 16, 4 registers).
CLASSIFIER_PAIRS = {
    "modernbert": (ModernBertConfig, ModernBertForSequenceClassification, SepNormModernBertConfig,
                   SepNormModernBertForSequenceClassification, {**BERT_SHAPES, "small": dict(BERT_SHAPES["small"], config=dict(
                       num_hidden_layers=4, hidden_size=256, num_attention_heads=4, intermediate_size=512))}),
    "dinov2": (Dinov2WithRegistersConfig, Dinov2WithRegistersForImageClassification, SepNormDinov2Config,
               SepNormDinov2ForImageClassification, {**VIT_MAE_SHAPES, "small": dict(VIT_MAE_SHAPES["small"], config=dict(
                   image_size=64, patch_size=8, num_hidden_layers=4, hidden_size=192, num_attention_heads=3))}),
}  # fmt: skip


class StockViTMAEClassifier(nn.Module):
    """The stock counterpart of `SepNormViTMAEForImageClassification`: transformers' `ViTMAEModel` plus the same
    linear head on [CLS], called the same way (every patch, in order). `ViTForImageClassification` would also differ
    in its embeddings (no patch gather, learned position embeddings), which would blur what SepNorm itself costs."""

    def __init__(self, config: ViTMAEConfig):
        super().__init__()
        self.vit = ViTMAEModel(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, pixel_values: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.vit(pixel_values, noise=noise).last_hidden_state[:, 0])


@dataclasses.dataclass
class Workload:
    """A model with its inputs and how to get a scalar loss (training) or outputs (inference) from it."""

    model: nn.Module
    inputs: dict[str, torch.Tensor]
    loss: Callable[[nn.Module, dict[str, torch.Tensor]], torch.Tensor]


def _bert_config(config_class, shape: str, sepnorm: bool):
    extra = dict(cls_norm="batch") if sepnorm else {}
    return config_class(
        **BERT_SHAPES[shape]["config"], num_labels=NUM_LABELS, attn_implementation="sdpa", **extra
    )


def _vit_mae_config(config_class, shape: str, sepnorm: bool, mask_ratio: float):
    extra = dict(cls_norm="batch") if sepnorm else {}
    return config_class(
        **VIT_MAE_SHAPES[shape]["config"],
        mask_ratio=mask_ratio,
        num_labels=NUM_LABELS,
        attn_implementation="sdpa",
        **extra,
    )


def build_model(model: str, shape: str, variant: str) -> nn.Module:
    torch.manual_seed(SEED)
    sepnorm = variant == "sepnorm"
    if model in CLASSIFIER_PAIRS:
        stock_config, stock_class, sepnorm_config, sepnorm_class, shapes = CLASSIFIER_PAIRS[model]
        extra = dict(cls_norm="batch") if sepnorm else {}
        config = (sepnorm_config if sepnorm else stock_config)(
            **shapes[shape]["config"], num_labels=NUM_LABELS, attn_implementation="sdpa", **extra
        )
        return (sepnorm_class if sepnorm else stock_class)(config)
    if model == "bert":
        config_class = SepNormBertConfig if sepnorm else BertConfig
        model_class = SepNormBertForSequenceClassification if sepnorm else BertForSequenceClassification
        return model_class(_bert_config(config_class, shape, sepnorm))
    config_class = SepNormViTMAEConfig if sepnorm else ViTMAEConfig
    if model == "vit_mae":
        model_class = SepNormViTMAEForPreTraining if sepnorm else ViTMAEForPreTraining
        return model_class(_vit_mae_config(config_class, shape, sepnorm, mask_ratio=0.75))
    model_class = SepNormViTMAEForImageClassification if sepnorm else StockViTMAEClassifier
    return model_class(_vit_mae_config(config_class, shape, sepnorm, mask_ratio=0.0))


def copy_stock_weights(stock: nn.Module, sepnorm: nn.Module) -> None:
    """Give the SepNorm model the stock model's weights: every stock tensor has the same name in the SepNorm model,
    which only adds the [CLS] norms (left at their initialization)."""
    missing, unexpected = sepnorm.load_state_dict(stock.state_dict(), strict=False)
    if unexpected or any(".cls_norm." not in key for key in missing):
        raise RuntimeError(f"SepNorm model does not mirror the stock one: missing={missing}, unexpected={unexpected}")


def build_inputs(model: str, shape: str) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(SEED)
    if model == "dinov2":
        geometry, config = CLASSIFIER_PAIRS[model][4][shape], Dinov2WithRegistersConfig(**CLASSIFIER_PAIRS[model][4][shape]["config"])
        size = (geometry["batch_size"], config.num_channels, config.image_size, config.image_size)
        return dict(pixel_values=torch.randn(size, generator=generator),
                    labels=torch.randint(0, NUM_LABELS, size[:1], generator=generator))  # fmt: skip
    if model in ("bert", "modernbert"):
        shapes = BERT_SHAPES if model == "bert" else CLASSIFIER_PAIRS[model][4]
        geometry, config = shapes[shape], (BertConfig if model == "bert" else ModernBertConfig)(**shapes[shape]["config"])
        size = (geometry["batch_size"], geometry["seq_len"])
        return dict(
            input_ids=torch.randint(0, config.vocab_size, size, generator=generator),
            attention_mask=torch.ones(size, dtype=torch.long),
            labels=torch.randint(0, NUM_LABELS, size[:1], generator=generator),
        )
    geometry, config = VIT_MAE_SHAPES[shape], ViTMAEConfig(**VIT_MAE_SHAPES[shape]["config"])
    batch_size = geometry["batch_size"]
    pixel_values = torch.randn(
        batch_size, config.num_channels, config.image_size, config.image_size, generator=generator
    )
    num_patches = (config.image_size // config.patch_size) ** 2
    if model == "vit_mae":
        # the same random mask for both models (and every step), so both encode the same patches
        return dict(pixel_values=pixel_values, noise=torch.rand(batch_size, num_patches, generator=generator))
    return dict(
        pixel_values=pixel_values,
        # the classifier's own call: every patch, in order (what SepNormViTMAEForImageClassification passes)
        noise=torch.arange(num_patches).expand(batch_size, -1),
        labels=torch.randint(0, NUM_LABELS, (batch_size,), generator=generator),
    )


def _output_loss(model: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    return model(**inputs).loss


def _classifier_loss(model: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    # The same head loss for both classifiers, outside the models: the stock wrapper returns bare logits.
    output = model(pixel_values=inputs["pixel_values"], noise=inputs["noise"])
    logits = output if isinstance(output, torch.Tensor) else output.logits
    return F.cross_entropy(logits.float(), inputs["labels"])


def build_pair(model: str, shape: str) -> dict[str, Workload]:
    """The stock and SepNorm workloads, with identical weights (but the [CLS] norms) and identical inputs."""
    models = {variant: build_model(model, shape, variant) for variant in VARIANTS}
    copy_stock_weights(models["stock"], models["sepnorm"])
    inputs = build_inputs(model, shape)
    return {variant: make_workload(model, module, inputs) for variant, module in models.items()}


def make_workload(model: str, module: nn.Module, inputs: dict[str, torch.Tensor]) -> Workload:
    check_sdpa(module)
    if model == "vit_mae_classifier":
        if isinstance(module, SepNormViTMAEForImageClassification):
            return Workload(module, inputs, _sepnorm_classifier_loss)
        return Workload(module, inputs, _classifier_loss)
    return Workload(module, inputs, _output_loss)


def _sepnorm_classifier_loss(model: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    logits = model(pixel_values=inputs["pixel_values"]).logits
    return F.cross_entropy(logits.float(), inputs["labels"])


def check_sdpa(module: nn.Module) -> None:
    configs = {id(m.config): m.config for m in module.modules() if hasattr(m, "config")}
    implementations = {config._attn_implementation for config in configs.values()}
    if implementations != {"sdpa"}:
        raise RuntimeError(f"expected SDPA attention everywhere, found {implementations}")


def autocast(dtype: str) -> contextlib.AbstractContextManager:
    if dtype == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def make_step(workload: Workload, mode: str, dtype: str, forward: nn.Module | None = None) -> Callable[[], None]:
    """One step as a closure: train = forward + backward + AdamW step; infer = forward under inference_mode.

    `forward` is what gets called (e.g. the `torch.compile`d model); `workload.model` owns the parameters.
    """
    forward = forward if forward is not None else workload.model
    inputs = workload.inputs
    if mode == "train":
        workload.model.train()
        optimizer = torch.optim.AdamW(workload.model.parameters(), lr=1e-4)

        def train_step() -> None:
            optimizer.zero_grad(set_to_none=True)
            with autocast(dtype):
                loss = workload.loss(forward, inputs)
            loss.backward()
            optimizer.step()

        return train_step

    workload.model.eval()

    def infer_step() -> None:
        with torch.inference_mode(), autocast(dtype):
            workload.loss(forward, inputs)

    return infer_step
