"""Build, convert or load the model a training run starts from."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from transformers import AutoConfig, PreTrainedConfig, PreTrainedModel

from ..conversion import check_nothing_left_random, convert_stock_checkpoint, is_cls_norm_key
from ..data.images import PreparedImages, prepare_images
from ..errors import InputError
from ..families import FAMILIES, STOCK_MODEL_TYPES, family_of
from .arguments import SepNormModelArguments

logger = logging.getLogger(__name__)


def checkpoint_config(model_args: SepNormModelArguments) -> PreTrainedConfig | None:
    """The config of the checkpoint a run starts from; None for a model trained from scratch."""
    if model_args.model_name_or_path is None:
        return None
    source = model_args.model_name_or_path
    folder = Path(source).expanduser()
    if folder.is_dir() and not (folder / "config.json").is_file():
        raise InputError(
            f"--model_name_or_path {source}: the folder holds no config.json, so no transformers checkpoint: give the "
            "folder save_pretrained or a training run wrote, or a Hub model id."
        )
    try:
        return AutoConfig.from_pretrained(source, **_hub_kwargs(model_args))
    except (OSError, ValueError) as error:  # no such folder, no such (reachable) Hub repo, a config of no model type
        reason = str(error).strip().splitlines()[0]
        if folder.is_dir():
            reason = "it names no model_type" if "model_type" in reason else reason
            raise InputError(
                f"--model_name_or_path {source}: {folder / 'config.json'} is no transformers config ({reason}): give "
                "the folder save_pretrained or a training run wrote."
            ) from None
        raise InputError(
            f"--model_name_or_path {source}: neither a checkpoint folder (with config.json) nor a Hub model that could "
            f"be loaded ({reason}). Give a folder save_pretrained wrote or an existing Hub id (e.g. "
            "bert-base-uncased), or leave it out to train from scratch."
        ) from None


def check_checkpoint_kind(model_class: type[PreTrainedModel], model_args: SepNormModelArguments) -> None:
    """Refuse, before anything else is loaded, a checkpoint of another kind than the script trains (an image model
    given to a text script, or the reverse)."""
    config = checkpoint_config(model_args)
    family = STOCK_MODEL_TYPES.get(config.model_type) or FAMILIES.get(config.model_type) if config else None
    expected = family_of(model_class.config_class.model_type)
    if family is not None and family.card_section != expected.card_section:
        *others, last = [f.name for f in FAMILIES.values() if f.card_section == expected.card_section]
        names = f"{', '.join(others)} or {last}" if others else last
        raise InputError(
            f"--model_name_or_path {model_args.model_name_or_path} is a {family.name} checkpoint "
            f"({config.model_type!r}), a model of {family.card_section}s, and this script trains a model of "
            f"{expected.card_section}s: give a {names} checkpoint (stock or SepNorm)."
        )


def model_class_for_checkpoint(default: type[PreTrainedModel], model_args: SepNormModelArguments) -> type[PreTrainedModel]:
    """The head a script trains, in the family of the checkpoint it starts from: `default` (e.g. BERT's sequence
    classifier) for a new model, else the same head (by Auto class) of the checkpoint's family, stock or SepNorm
    (a ModernBERT checkpoint gets `SepNormModernBertForSequenceClassification`)."""
    config = checkpoint_config(model_args)
    family = (STOCK_MODEL_TYPES.get(config.model_type) or FAMILIES.get(config.model_type)) if config else None
    if family is None:
        return default
    auto_class = family_of(default.config_class.model_type).auto_class_of(default.__name__)
    if auto_class not in family.heads:
        raise InputError(f"--model_name_or_path {model_args.model_name_or_path}: the {family.name} family has no "
                         f"{auto_class} head, which this script trains.")  # fmt: skip
    return family.heads[auto_class]


def fit_to_positions(length: int, flag: str, model_args: SepNormModelArguments) -> int:
    """`length` (the value of `flag`), or the positions of the checkpoint a run starts from when it has fewer, with a
    warning, as transformers' run_glue.py and run_mlm.py clamp `--max_seq_length` to the tokenizer's model_max_length:
    longer inputs would fail in the first forward, after the data work."""
    config = checkpoint_config(model_args)
    positions = getattr(config, "max_position_embeddings", None)
    if positions is None:
        return length
    if "roberta" in config.model_type:  # RoBERTa's position ids start after its padding index
        positions -= config.pad_token_id + 1
    if length > positions:
        logger.warning("%s %d is more than the %d positions of %s: using %s %d.", flag, length, positions,
                       model_args.model_name_or_path, flag, positions)  # fmt: skip
    return min(length, positions)


def image_input_settings(
    model_args: SepNormModelArguments, num_channels: int | None, image_size: int | None
) -> tuple[int, int | None]:
    """The channels and size images are prepared for: the flags given, else the checkpoint's config (whose image
    processor, when it has one, also stands), else a new model's 3 channels and the images' own size (None)."""
    config = checkpoint_config(model_args)
    return (
        num_channels or (config.num_channels if config else 3),
        image_size or (config.image_size if config else None),
    )


def prepare_model_images(model_args: SepNormModelArguments, data_args, num_channels: int | None, *, seed: int,
                         augment: bool) -> PreparedImages:  # fmt: skip
    """The images of an `ImageDataArguments`, prepared for the model the run starts from: with the channels and size
    of `image_input_settings`, and the checkpoint's image processor when it has one."""
    num_channels, image_size = image_input_settings(model_args, num_channels, data_args.image_size)
    return prepare_images(dataclasses.replace(data_args, image_size=image_size), num_channels,
                          model_args.model_name_or_path, seed, augment=augment,
                          hub_kwargs={"revision": model_args.revision, "cache_dir": model_args.cache_dir})  # fmt: skip


def load_or_build_model(
    model_class: type[PreTrainedModel],
    model_args: SepNormModelArguments,
    new_model_fields: dict | None = None,
    **config_fields,
) -> PreTrainedModel:
    """The model a run starts from, as `model_class`.

    - no `model_name_or_path`: a new model from `model_class.config_class`, `new_model_fields`, `config_fields`, the
      SepNorm flags (cls_norm defaults to "batch") and `--config_overrides`;
    - a stock BERT / ViT-MAE checkpoint: converted (the [CLS] norms start from the LayerNorms they sit in);
    - a SepNorm checkpoint: loaded; `--cls_norm` / `--sepnorm_scope`, when given, change its SepNorms.
    `new_model_fields` are the script's defaults for a new model (e.g. `num_channels=3`): a checkpoint's own config
    stands against them. `config_fields` apply to every model: task fields such as `num_labels`, and the options the
    user passed explicitly. A new task head may start random; nothing else may.
    """
    sepnorm_fields = model_args.sepnorm_overrides()
    if model_args.model_name_or_path is None:
        config = model_class.config_class(
            **{"cls_norm": "batch", **(new_model_fields or {}), **config_fields, **sepnorm_fields}
        )
        if model_args.config_overrides:
            config.update_from_string(model_args.config_overrides)
            config.validate()  # the strict config checks each field as it is set, and its `validate_*` hooks here
        logger.info("Training a new %s from scratch: %s", model_class.__name__, config.to_diff_dict())
        return model_class(config)

    if model_args.config_overrides:
        raise InputError(
            f"--config_overrides applies to a model built from scratch; {model_args.model_name_or_path} has its own "
            "config. Leave out --model_name_or_path to build a new model, or --config_overrides to continue training."
        )
    hub_kwargs = _hub_kwargs(model_args)
    checkpoint_type = checkpoint_config(model_args).model_type
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
    # backbone weights the checkpoint lacked (BERT's pooler: an MLM checkpoint has none) start random, like the head:
    # an adapter saves them with the head (`lora_config`), or the base it is reloaded on draws them anew
    model.sepnorm_new_backbone_modules = new_backbone_modules(model, loading_info["missing_keys"])
    return model


def new_backbone_modules(model: PreTrainedModel, missing_keys) -> list[str]:
    """The names of `model`'s backbone modules whose weights are among `missing_keys`, [CLS] norms aside."""
    prefix = "" if model.base_model is model else model.base_model_prefix + "."
    return sorted({key.rsplit(".", 1)[0] for key in missing_keys
                   if key.startswith(prefix) and not is_cls_norm_key(key)})  # fmt: skip


def _hub_kwargs(model_args: SepNormModelArguments) -> dict:
    return {
        "revision": model_args.revision,
        "cache_dir": model_args.cache_dir,
        "trust_remote_code": model_args.trust_remote_code,
    }


def freeze_backbone_for_linear_probe(model: PreTrainedModel) -> None:
    """Linear probing: only the head trains. The backbone's weights are frozen, and it stays in eval mode (the
    Trainer puts the whole model in train mode every step), so dropout is off and the [CLS] BatchNorms use and keep
    their running statistics. Re-estimating those statistics puts the model in eval mode and only its [CLS] BatchNorms
    in train mode: then the backbone is left as it is, so that they measure."""
    backbone = model.base_model
    backbone.requires_grad_(False)
    backbone.register_forward_pre_hook(_stay_in_eval_mode)


def _stay_in_eval_mode(module, args) -> None:
    if module.training:  # the Trainer's train mode; not the eval mode re-estimation sets around the [CLS] BatchNorms
        module.eval()
