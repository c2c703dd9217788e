"""PEFT (LoRA) adapters for SepNorm models.

A LoRA adapter of a SepNorm model must carry the [CLS] norms: their parameters are new (a converted stock checkpoint
has none worth keeping) and a [CLS] BatchNorm's running statistics move in every training forward, so an adapter
without them would not reproduce the model that was trained. peft's own `modules_to_save` does exactly that: each
[CLS] norm (the `cls_norm` child of every SepNorm) is copied, trained, and saved in `adapter_model.safetensors` with
its buffers (running mean, variance, batches tracked), and `merge_and_unload()` puts the trained copy back in place.
A classification head, new for the task, is saved the same way.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import CommitInfo, HfApi, ModelCard
from peft import LoraConfig, PeftModel, TaskType, get_peft_model
from transformers import PreTrainedModel

from ..errors import InputError
from ..families import family_of
from ..hub.cards import (
    hub_base_model,
    hub_cache_repo,
    hub_repo_id,
    render_adapter_card,
    render_model_card,
    source_name,
)
from ..remote_code.sepnorm import SepNormLayerNorm

# Heads whose weights are new for the task, by the Auto class the head is registered under: they are trained and
# saved with the adapter. Text heads get peft's task type (what `AutoPeftModelFor...` loads them as).
TASK_HEADS = {
    "AutoModelForSequenceClassification": TaskType.SEQ_CLS,
    "AutoModelForTokenClassification": TaskType.TOKEN_CLS,
    "AutoModelForQuestionAnswering": TaskType.QUESTION_ANS,
    "AutoModelForMultipleChoice": None,
    "AutoModelForImageClassification": None,
}

logger = logging.getLogger(__name__)

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
    """The modules LoRA adapts in `model` by default: its family's attention projections (`hf_sepnorm.families`)."""
    try:
        return list(family_of(model.config.model_type).lora_target_modules)
    except ValueError as error:
        raise InputError(
            f"{error} Name the modules LoRA adapts with --lora_target_modules (PeftArguments.lora_target_modules)."
        ) from None


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
    [CLS] norms plus any new task head (and new backbone module, such as a pooler an MLM checkpoint lacked) trained
    in full and saved with the adapter (`modules_to_save`)."""
    head, task_type = task_head(model)
    has_cls_norms = any(isinstance(module, SepNormLayerNorm) for module in model.modules())
    return LoraConfig(
        task_type=task_type,
        r=peft_args.lora_r,
        lora_alpha=peft_args.lora_alpha,
        lora_dropout=peft_args.lora_dropout,
        target_modules=list(peft_args.lora_target_modules or default_lora_target_modules(model)),
        # and backbone modules the checkpoint lacked (`load_or_build_model`), new like the head
        modules_to_save=([CLS_NORM_MODULE] if has_cls_norms else []) + head
        + list(getattr(model, "sepnorm_new_backbone_modules", [])),
    )


def apply_peft(model, peft_args: PeftArguments):
    """Return `model` unchanged when `peft_args.use_peft` is false, else a `peft.PeftModel` whose LoRA adapters and
    [CLS] norms (parameters and running statistics) are trained and saved with the adapter."""
    if not peft_args.use_peft:
        return model
    if isinstance(model, PeftModel):
        raise ValueError("The model already has PEFT adapters: apply_peft takes the base model.")
    source = getattr(model, "sepnorm_converted_in_memory_from", None)
    if source is not None:
        # the adapter would name `source` as its base: reloaded (AutoPeftModel...), that is a stock model without
        # the [CLS] norms the adapter trained, which scores something else, silently
        raise InputError(
            f"--use_peft on the stock checkpoint {source}, converted in memory: the adapter would name it as its base, "
            "which loads as a stock model without the [CLS] norms. Convert it to a folder first (`hf-sepnorm convert "
            f"{source} converted --cls_norm {model.config.cls_norm}"
            f"{' --uncalibrated' if model.config.cls_norm == 'batch' else ''}`) and train with --model_name_or_path "
            "converted."
        )
    model.add_model_tags(["sepnorm"])  # the adapter's model card lists the base model's tags
    peft_model = get_peft_model(model, lora_config(model, peft_args))
    config = peft_model.peft_config[peft_model.active_adapter]
    config.modules_to_save = list(dict.fromkeys(config.modules_to_save))  # peft adds a task head it was given again
    config.base_model_name_or_path, revision = loadable_base(config.base_model_name_or_path)
    config.revision = config.revision or revision
    return peft_model


def loadable_base(name_or_path: str | None) -> tuple[str | None, str | None]:
    """What an adapter names as its base (`base_model_name_or_path`), so that a reader can load it, and the base's
    revision when known: a Hub id as it is; a snapshot of the Hub cache, its repo id and commit; another local
    folder, its absolute path (never a relative one, which loads from one directory only), with a warning: it loads
    on this machine only, and `push_adapter_to_hub` refuses it."""
    if not name_or_path or not os.path.exists(name_or_path):
        return name_or_path, None
    cached = hub_cache_repo(name_or_path)
    if cached:
        return cached
    path = os.path.abspath(name_or_path)
    logger.warning(
        "The adapter names its base by the local path %s: it loads on this machine only, and cannot be pushed. To "
        "publish it, push the base first (`hf-sepnorm push %s <repo id>`) and train on that repo id, or pass "
        "base_model=<repo id> to push_adapter_to_hub.", path, path
    )
    return path, None


def save_merged(model: PeftModel, output_dir: str | os.PathLike) -> PreTrainedModel:
    """Merge `model`'s adapter into its base (peft's `merge_and_unload`, the [CLS] norms the adapter trained put in
    place) and save the merged SepNorm model in `output_dir` with its model card, whose `base_model` names the Hub
    checkpoint the adapter's base came from (`hub_base_model`: the base itself when it is on the Hub), with the
    relation `finetune` (the base's weights, changed by the adapter). Returns the merged model."""
    base = model.peft_config[model.active_adapter].base_model_name_or_path
    merged = model.merge_and_unload()
    merged.save_pretrained(output_dir)
    render_model_card(
        merged,
        repo_id=f"<your-namespace>/{Path(output_dir).resolve().name}",  # `hf-sepnorm push` puts the real one
        base_model=hub_base_model(base),
        base_model_relation="finetune",
        training_summary={"merged": f"a LoRA adapter merged into {source_name(base) if base else 'its base'}"},
    ).save(Path(output_dir) / "README.md")
    return merged


def push_adapter_to_hub(
    model: PeftModel,
    repo_id: str,
    *,
    base_model: str | None = None,
    token: str | None = None,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str = "Upload LoRA adapter",
    create_pr: bool = False,
) -> CommitInfo:
    """Push `model`'s adapter to the Hub repo `repo_id` as one commit, with the SepNorm adapter card over peft's
    metadata: `library_name: peft`, `base_model` naming the SepNorm base on the Hub (`base_model`, default: the repo
    id the base was loaded from) with `base_model_relation: adapter`, what the adapter carries and how to load it.

    (`model.push_to_hub` is transformers' method, which replaces peft's card by a generic one without `base_model`.)
    Raises before any request when the base was loaded from a local folder and no `base_model` repo id is given.
    """
    config = model.peft_config[model.active_adapter]
    base_model = base_model or config.base_model_name_or_path
    if not hub_repo_id(base_model):
        raise ValueError(
            f"The adapter's base model is {base_model!r}, not a Hub repo id: the adapter could not be loaded from the "
            "Hub. Push the base first (`hf-sepnorm push`) and pass its repo id as `base_model=`."
        )
    previous_base, config.base_model_name_or_path = config.base_model_name_or_path, base_model
    try:
        with tempfile.TemporaryDirectory() as folder:
            model.save_pretrained(folder)
            readme = os.path.join(folder, "README.md")
            card = render_adapter_card(model, repo_id=repo_id, base_model=base_model, revision=revision or "main",
                                       card=ModelCard.load(readme))  # fmt: skip
            card.save(readme)
            api = HfApi(token=token)
            repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
            if revision is not None and not create_pr:
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            return api.upload_folder(
                repo_id=repo_id, folder_path=folder, revision=revision, commit_message=commit_message,
                create_pr=create_pr,
            )  # fmt: skip
    finally:
        config.base_model_name_or_path = previous_base


__all__ = [
    "PeftArguments",
    "apply_peft",
    "default_lora_target_modules",
    "lora_config",
    "push_adapter_to_hub",
    "save_merged",
]
