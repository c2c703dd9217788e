"""Build, convert or load the model a training run starts from."""

from __future__ import annotations

import logging

from transformers import AutoConfig, PreTrainedModel

from ..conversion import check_nothing_left_random, convert_stock_checkpoint
from .arguments import SepNormModelArguments

logger = logging.getLogger(__name__)

STOCK_MODEL_TYPES = ("bert", "vit_mae")


def load_or_build_model(
    model_class: type[PreTrainedModel], model_args: SepNormModelArguments, **config_fields
) -> PreTrainedModel:
    """The model a run starts from, as `model_class`.

    - no `model_name_or_path`: a new model from `model_class.config_class`, `config_fields`, the SepNorm flags
      (cls_norm defaults to "batch") and `--config_overrides`;
    - a stock BERT / ViT-MAE checkpoint: converted (the [CLS] norms start from the LayerNorms they sit in);
    - a SepNorm checkpoint: loaded; `--cls_norm` / `--sepnorm_scope`, when given, change its SepNorms.
    `config_fields` are task fields such as `num_labels`. A new task head may start random; nothing else may.
    """
    sepnorm_fields = model_args.sepnorm_overrides()
    if model_args.model_name_or_path is None:
        config = model_class.config_class(**{"cls_norm": "batch", **config_fields, **sepnorm_fields})
        if model_args.config_overrides:
            config.update_from_string(model_args.config_overrides)
            config.validate_sepnorm_fields()
        logger.info("Training a new %s from scratch: %s", model_class.__name__, config.to_diff_dict())
        return model_class(config)

    hub_kwargs = {
        "revision": model_args.revision,
        "cache_dir": model_args.cache_dir,
        "trust_remote_code": model_args.trust_remote_code,
    }
    checkpoint_type = AutoConfig.from_pretrained(model_args.model_name_or_path, **hub_kwargs).model_type
    if checkpoint_type in STOCK_MODEL_TYPES:
        logger.info("Converting the stock %s checkpoint %s", checkpoint_type, model_args.model_name_or_path)
        return convert_stock_checkpoint(
            model_args.model_name_or_path,
            model_class=model_class,
            allow_new_head=True,
            **hub_kwargs,
            **{"cls_norm": "batch", **config_fields, **sepnorm_fields},
        )
    model, loading_info = model_class.from_pretrained(
        model_args.model_name_or_path, output_loading_info=True, **hub_kwargs, **config_fields, **sepnorm_fields
    )
    check_nothing_left_random(model, loading_info, model_args.model_name_or_path, allow_new_head=True)
    return model


def freeze_backbone_for_linear_probe(model: PreTrainedModel) -> None:
    """Linear probing: only the head trains. The backbone's weights are frozen, and it stays in eval mode (the
    Trainer puts the whole model in train mode every step), so dropout is off and the [CLS] BatchNorms use and keep
    their running statistics."""
    backbone = model.base_model
    backbone.requires_grad_(False)
    backbone.register_forward_pre_hook(_stay_in_eval_mode)


def _stay_in_eval_mode(module, args) -> None:
    module.eval()
