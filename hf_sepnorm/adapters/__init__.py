"""PEFT (LoRA) adapters for SepNorm models.

A LoRA adapter of a SepNorm model must carry the [CLS] norms: their parameters are new (a converted stock checkpoint
has none worth keeping) and a [CLS] BatchNorm's running statistics move in every training forward, so an adapter
without them would not reproduce the model that was trained. peft's own `modules_to_save` does exactly that: each
[CLS] norm (the `cls_norm` child of every SepNorm) is copied, trained, and saved in `adapter_model.safetensors` with
its buffers (running mean, variance, batches tracked), and `merge_and_unload()` puts the trained copy back in place.
A classification head, new for the task, is saved the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from peft import LoraConfig, PeftModel, TaskType, get_peft_model
from transformers import PreTrainedModel

from ..remote_code.sepnorm import SepNormLayerNorm

# The attention projections LoRA adapts by default, per family (`model_type`): peft's default for BERT; ViT-MAE's
# self-attention names its projections the same way.
DEFAULT_LORA_TARGET_MODULES = {
    "sepnorm_bert": ["query", "value"],
    "sepnorm_vit_mae": ["query", "value"],
}

# Heads whose weights are new for the task, by the Auto class the head is registered under: they are trained and
# saved with the adapter. Text heads get peft's task type (what `AutoPeftModelFor...` loads them as).
TASK_HEADS = {
    "AutoModelForSequenceClassification": TaskType.SEQ_CLS,
    "AutoModelForTokenClassification": TaskType.TOKEN_CLS,
    "AutoModelForQuestionAnswering": TaskType.QUESTION_ANS,
    "AutoModelForMultipleChoice": None,
    "AutoModelForImageClassification": None,
}

CLS_NORM_MODULE = "cls_norm"  # the child of every `SepNormLayerNorm` that normalizes [CLS]


@dataclass
class PeftArguments:
    """TRL's argument names for LoRA, shared by the example scripts."""

    use_peft: bool = field(default=False, metadata={"help": "Train LoRA adapters instead of the whole model."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    lora_target_modules: list[str] | None = field(
        default=None, metadata={"help": "Modules to adapt (default: the family's attention projections)."}
    )


def default_lora_target_modules(model: PreTrainedModel) -> list[str]:
    """The modules LoRA adapts in `model` by default: its family's attention projections."""
    model_type = model.config.model_type
    targets = DEFAULT_LORA_TARGET_MODULES.get(model_type)
    if not targets:
        raise ValueError(
            f"No default LoRA target modules for model_type={model_type!r}: name them with --lora_target_modules "
            "(PeftArguments.lora_target_modules), e.g. the attention projections' module names."
        )
    return list(targets)


def task_head(model: PreTrainedModel) -> tuple[list[str], TaskType | None]:
    """The names of `model`'s task-head modules trained with the adapter, and peft's task type for the model."""
    auto_classes = {model_class: auto for auto, model_class in getattr(model, "sepnorm_auto_classes", {}).items()}
    auto_class = auto_classes.get(type(model))
    if auto_class not in TASK_HEADS:
        return [], None
    backbone = getattr(model, model.base_model_prefix)
    head = [
        name
        for name, child in model.named_children()
        if child is not backbone and any(True for _ in child.parameters())
    ]
    return head, TASK_HEADS[auto_class]


def lora_config(model: PreTrainedModel, peft_args: PeftArguments) -> LoraConfig:
    """peft's `LoraConfig` for `model`: LoRA on `peft_args.lora_target_modules` (default: the family's), and the
    [CLS] norms plus any new task head trained in full and saved with the adapter (`modules_to_save`)."""
    head, task_type = task_head(model)
    has_cls_norms = any(isinstance(module, SepNormLayerNorm) for module in model.modules())
    return LoraConfig(
        task_type=task_type,
        r=peft_args.lora_r,
        lora_alpha=peft_args.lora_alpha,
        lora_dropout=peft_args.lora_dropout,
        target_modules=list(peft_args.lora_target_modules or default_lora_target_modules(model)),
        modules_to_save=([CLS_NORM_MODULE] if has_cls_norms else []) + head,
    )


def apply_peft(model, peft_args: PeftArguments):
    """Return `model` unchanged when `peft_args.use_peft` is false, else a `peft.PeftModel` whose LoRA adapters and
    [CLS] norms (parameters and running statistics) are trained and saved with the adapter."""
    if not peft_args.use_peft:
        return model
    if isinstance(model, PeftModel):
        raise ValueError("The model already has PEFT adapters: apply_peft takes the base model.")
    model.add_model_tags(["sepnorm"])  # the adapter's model card lists the base model's tags
    return get_peft_model(model, lora_config(model, peft_args))


__all__ = ["PeftArguments", "apply_peft", "lora_config", "default_lora_target_modules", "DEFAULT_LORA_TARGET_MODULES"]
