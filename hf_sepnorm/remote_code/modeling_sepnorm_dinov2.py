"""SepNorm DINOv2: transformers' DINOv2-with-registers classes with separate [CLS] normalization; they load stock
`dinov2` checkpoints too (as a model with no registers).

DINOv2 is pre-norm: each layer's `norm1` and `norm2`, then the final `layernorm`. Each becomes a SepNorm whose [CLS]
norm normalizes the leading tokens `config.cls_norm_tokens` names: [CLS] alone, or [CLS] and the register tokens
that follow it ("Vision Transformers Need Registers", Darcet et al. 2024), which carry global information as [CLS]
does, as one set of rows. Each class inherits the transformers class and only says where the SepNorms go; see
`sepnorm.py`.
"""

import functools
import types
import weakref

import torch
from transformers import (
    Dinov2WithRegistersBackbone,
    Dinov2WithRegistersForImageClassification,
    Dinov2WithRegistersModel,
    Dinov2WithRegistersPreTrainedModel,
)
from transformers.conversion_mapping import get_checkpoint_conversion_mapping, register_checkpoint_conversion_mapping
from transformers.core_model_loading import WeightRenaming
from transformers.models.dinov2.modeling_dinov2 import Dinov2Embeddings

from .auto_registration import register_family
from .configuration_sepnorm import check_family_release
from .configuration_sepnorm_dinov2 import SepNormDinov2Config
from .modeling_sepnorm_vit_mae import check_pixel_values
from .sepnorm import ClsBatchNorm, SepNormPreTrainedMixin, select_sepnorm_paths


def _without_weight(module: torch.nn.Module, name: str) -> None:
    """Keep the parameter `name` of `module` as a buffer that is not saved: a stock checkpoint has no such weight."""
    value = getattr(module, name).data
    delattr(module, name)
    module.register_buffer(name, value, persistent=False)


def fit_embeddings_to_config(embeddings: torch.nn.Module, config) -> None:
    """Make the registers embeddings compute what a stock `dinov2` model computes when the config came from one: no
    register tokens and, without `use_mask_token`, no mask token saved; position embeddings interpolated without
    antialiasing (stock `dinov2`'s own method)."""
    if config.num_register_tokens == 0 and isinstance(embeddings.register_tokens, torch.nn.Parameter):
        _without_weight(embeddings, "register_tokens")  # an empty (1, 0, hidden) tensor
    if not config.use_mask_token and isinstance(embeddings.mask_token, torch.nn.Parameter):
        _without_weight(embeddings, "mask_token")
    if not config.position_interpolation_antialias:
        embeddings.interpolate_pos_encoding = types.MethodType(Dinov2Embeddings.interpolate_pos_encoding, embeddings)


class SepNormDinov2PreTrainedModel(SepNormPreTrainedMixin, Dinov2WithRegistersPreTrainedModel):
    config_class = SepNormDinov2Config
    config: SepNormDinov2Config

    def sepnorm_locations(self) -> dict[str, list[str]]:
        layers = range(self.config.num_hidden_layers)
        norms = [f"encoder.layer.{i}.{norm}" for i in layers for norm in ("norm1", "norm2")] + ["layernorm"]
        # layer 0's norm1 sees [CLS] (and the registers) as learned vectors, the same for every image
        return {"cls_norm": select_sepnorm_paths(self.config, "cls_norm", norms, "layernorm", norms[0])}

    def sepnorm_leading_tokens(self) -> int:
        return self.config.sepnorm_leading_tokens

    check_base_model_inputs = staticmethod(check_pixel_values)

    def post_init(self):
        # 5.18 renamed DINOv2's attention projections (q_proj, ...): an older release would not load these weights
        check_family_release("DINOv2", "5.18", "its attention projections are named q_proj, k_proj, v_proj from 5.18 on")
        fit_embeddings_to_config(self.base_model.embeddings, self.config)
        super().post_init()

    def save_pretrained(self, *args, save_original_format: bool = False, **kwargs):
        # Save under the modules' own names: transformers would rename the keys back by the renaming below, and the
        # Trainer resumes by loading the raw state dict.
        return super().save_pretrained(*args, save_original_format=save_original_format, **kwargs)


class SepNormDinov2Model(SepNormDinov2PreTrainedModel, Dinov2WithRegistersModel):
    pass


class SepNormDinov2ForImageClassification(SepNormDinov2PreTrainedModel, Dinov2WithRegistersForImageClassification):
    """A linear classifier on [CLS] concatenated with the mean of the patch tokens (the registers left out), as
    transformers' DINOv2 classifiers."""


class SepNormDinov2Backbone(SepNormDinov2PreTrainedModel, Dinov2WithRegistersBackbone):
    """Feature maps for dense tasks. `layernorm` normalizes each output stage, and one set of running statistics
    cannot follow several: its [CLS] BatchNorm (`cls_norm="batch"`) updates them in training from the last stage only,
    the one the Model normalizes (the others are normalized with their batch statistics alone)."""

    def install_sepnorms(self) -> None:
        super().install_sepnorms()
        if isinstance(getattr(self.layernorm, "cls_norm", None), ClsBatchNorm):
            self.encoder.register_forward_hook(functools.partial(_remember_last_stage, self.layernorm))
            self.layernorm.register_forward_pre_hook(_update_cls_statistics_on_the_last_stage_only)


def _remember_last_stage(layernorm: torch.nn.Module, encoder, args, output) -> None:
    # the last stage the Backbone iterates over: the encoder's output, which the Model normalizes; weak: the module
    # must not keep the activations alive
    layernorm.last_stage = weakref.ref(output.hidden_states[-1]) if output.hidden_states else None


def _update_cls_statistics_on_the_last_stage_only(layernorm: torch.nn.Module, args) -> None:
    last_stage = getattr(layernorm, "last_stage", None)
    layernorm.cls_norm.updates_running_statistics = last_stage is not None and args[0] is last_stage()


# Stock DINOv2 checkpoints use legacy key names (`attention.attention.query`, ...) that transformers renames by class
# name or model type: give ours the same. A stock `Dinov2ForImageClassification` keeps its backbone under `dinov2.`,
# ours (as transformers' registers classifier) under `dinov2_with_registers.`: renamed first.
# (`or []`: 5.10.1 has none for DINOv2, and this module still imports there; its models refuse it in `post_init`)
_stock_renamings = get_checkpoint_conversion_mapping(Dinov2WithRegistersModel.__name__) or []
register_checkpoint_conversion_mapping(SepNormDinov2Config.model_type, _stock_renamings, overwrite=True)
register_checkpoint_conversion_mapping(
    SepNormDinov2ForImageClassification.__name__,
    [WeightRenaming(source_patterns=r"^dinov2\.", target_patterns="dinov2_with_registers."), *_stock_renamings],
    overwrite=True,
)

register_family(
    SepNormDinov2Config,
    {
        "AutoModel": SepNormDinov2Model,
        "AutoModelForImageClassification": SepNormDinov2ForImageClassification,
        "AutoBackbone": SepNormDinov2Backbone,
    },
)

__all__ = [
    "SepNormDinov2PreTrainedModel",
    "SepNormDinov2Model",
    "SepNormDinov2ForImageClassification",
    "SepNormDinov2Backbone",
]
