"""Convert a stock BERT or ViT-MAE checkpoint into a SepNorm one."""

from __future__ import annotations

import os

from transformers import AutoConfig, AutoImageProcessor, AutoTokenizer, PreTrainedModel
from transformers.utils import cached_file

from .remote_code import modeling_sepnorm_bert, modeling_sepnorm_vit_mae
from .remote_code.sepnorm import init_cls_norms_from_token_norms

_FAMILIES = {
    "bert": (modeling_sepnorm_bert, "SepNormBertModel"),
    "vit_mae": (modeling_sepnorm_vit_mae, "SepNormViTMAEModel"),
}

_PREPROCESSORS = ((AutoTokenizer, "tokenizer_config.json"), (AutoImageProcessor, "preprocessor_config.json"))


def sepnorm_class_for(stock_config) -> type[PreTrainedModel]:
    """The SepNorm class matching a stock config's architecture, e.g. `BertForMaskedLM` -> `SepNormBertForMaskedLM`
    (the family's base model when the architecture has no SepNorm counterpart)."""
    if stock_config.model_type not in _FAMILIES:
        raise ValueError(
            f"Cannot convert a {stock_config.model_type!r} checkpoint: SepNorm supports {sorted(_FAMILIES)}."
        )
    module, backbone_name = _FAMILIES[stock_config.model_type]
    for architecture in stock_config.architectures or ():
        if hasattr(module, f"SepNorm{architecture}"):
            return getattr(module, f"SepNorm{architecture}")
    return getattr(module, backbone_name)


def check_nothing_left_random(
    model: PreTrainedModel, loading_info: dict, checkpoint, allow_new_head: bool = False
) -> None:
    """Raise if loading `checkpoint` left weights randomly initialized, other than the new [CLS] norms and, with
    `allow_new_head`, the task head: weights outside the backbone, and BERT's pooler (MLM checkpoints have none)."""
    backbone_prefix = "" if model.base_model is model else model.base_model_prefix + "."

    def is_head(key: str) -> bool:
        return not key.startswith(backbone_prefix) or key.startswith(backbone_prefix + "pooler.")

    random_weights = [
        key
        for key in sorted(loading_info["missing_keys"])
        if ".cls_norm." not in key and not (allow_new_head and is_head(key))
    ]
    if random_weights:
        raise ValueError(
            f"Loading {checkpoint} into {type(model).__name__} left these weights randomly initialized: "
            f"{random_weights}. Use the SepNorm class matching the checkpoint's architecture and size."
        )


def convert_stock_checkpoint(
    stock_checkpoint: str | os.PathLike,
    output_dir: str | os.PathLike | None = None,
    model_class: type[PreTrainedModel] | None = None,
    init_cls_norm_from_token_norm: bool = True,
    allow_new_head: bool = False,
    **config_overrides,
) -> PreTrainedModel:
    """Load a stock BERT / ViT-MAE checkpoint (folder or Hub id) into its SepNorm class.

    Every stock weight is loaded; only the new [CLS] norms are missing, and they start from the LayerNorm they sit
    in (`init_cls_norm_from_token_norm`, the default) or from the default init. `config_overrides` set SepNorm fields
    such as `cls_norm="batch"`. Raises if any other weight is missing, except, with `allow_new_head`, the task head's
    (fine-tuning a pretrained backbone). Saves to `output_dir` when given, with the tokenizer or image processor found
    next to the checkpoint.
    """
    stock_config = AutoConfig.from_pretrained(stock_checkpoint)
    model_class = model_class or sepnorm_class_for(stock_config)
    model, loading_info = model_class.from_pretrained(stock_checkpoint, output_loading_info=True, **config_overrides)
    check_nothing_left_random(model, loading_info, stock_checkpoint, allow_new_head=allow_new_head)
    if init_cls_norm_from_token_norm:
        init_cls_norms_from_token_norms(model)
    if output_dir is not None:
        model.save_pretrained(output_dir)
        for preprocessor_class, config_file in _PREPROCESSORS:
            # transformers builds an empty tokenizer when asked for one a checkpoint does not have
            if cached_file(stock_checkpoint, config_file, _raise_exceptions_for_missing_entries=False):
                preprocessor_class.from_pretrained(stock_checkpoint).save_pretrained(output_dir)
    return model
