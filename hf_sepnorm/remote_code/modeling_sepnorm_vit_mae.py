"""SepNorm ViT-MAE: transformers' ViT-MAE classes with separate [CLS] normalization, plus an image classifier.

Each class inherits the transformers class and only says where the SepNorms go; see `sepnorm.py`.
"""

import copy

import torch
from torch import nn
from transformers import ViTMAEForPreTraining, ViTMAEModel, ViTMAEPreTrainedModel
from transformers.modeling_outputs import ImageClassifierOutput
from typing_extensions import Unpack  # typing.Unpack from Python 3.11 on; typing_extensions is a dependency of torch

# The transformers internals this code needs, for want of a public API, as transformers' own modeling files use them
# (in every release of the supported range, `REQUIRED_VERSIONS` in configuration_sepnorm.py): the legacy ViT-MAE key
# renamings, which transformers looks up by class name (`register_checkpoint_conversion_mapping` takes a class name
# since 5.9); the keyword arguments a model passes down to attention, and the decorator honouring `return_dict=False`.
from transformers.conversion_mapping import get_checkpoint_conversion_mapping, register_checkpoint_conversion_mapping
from transformers.utils import TransformersKwargs, can_return_tuple

from .auto_registration import register_family
from .configuration_sepnorm_vit_mae import SepNormViTMAEConfig
from .sepnorm import SepNormPreTrainedMixin, select_sepnorm_paths


def _block_norms(prefix: str, num_layers: int) -> list[str]:
    return [f"{prefix}.{i}.{norm}" for i in range(num_layers) for norm in ("layernorm_before", "layernorm_after")]


def check_pixel_values(config, inputs: dict) -> None:
    pixel_values = inputs.get("pixel_values")
    if pixel_values is None or pixel_values.ndim != 4:
        shape = None if pixel_values is None else tuple(pixel_values.shape)
        raise ValueError(f"pixel_values must be (batch, channels, height, width); got {shape}.")


class SepNormViTMAEPreTrainedModel(SepNormPreTrainedMixin, ViTMAEPreTrainedModel):
    config_class = SepNormViTMAEConfig
    config: SepNormViTMAEConfig

    def sepnorm_locations(self) -> dict[str, list[str]]:
        norms = _block_norms("layers", self.config.num_hidden_layers) + ["layernorm"]
        return {"cls_norm": select_sepnorm_paths(self.config, "cls_norm", norms, "layernorm", norms[0])}

    check_base_model_inputs = staticmethod(check_pixel_values)

    def save_pretrained(self, *args, save_original_format: bool = False, **kwargs):
        # Save under the modules' own names rather than renamed back to a legacy layout (transformers' default for
        # ViT-MAE): the Trainer resumes by loading the raw state dict, which would otherwise match no key.
        return super().save_pretrained(*args, save_original_format=save_original_format, **kwargs)


def patches_in_place(backbone: ViTMAEModel, pixel_values: torch.Tensor) -> torch.Tensor:
    """ViT-MAE `noise` whose argsort is the identity: with nothing masked, token 1 + i is patch i (the stock model
    shuffles the patches at random unless given `noise`)."""
    patch_height, patch_width = backbone.embeddings.patch_embeddings.patch_size
    num_patches = (pixel_values.shape[-2] // patch_height) * (pixel_values.shape[-1] // patch_width)
    return torch.arange(num_patches, device=pixel_values.device).expand(pixel_values.shape[0], -1)


def keep_patches_in_place_when_unmasked(model, args, kwargs):
    """A forward pre-hook: with `mask_ratio=0` nothing is masked, yet the stock ViTMAEModel still shuffles the patches
    at random unless given `noise`; give it the patches' own order, so that features are deterministic and token 1 + i
    is patch i."""
    pixel_values = args[0] if args else kwargs.get("pixel_values")
    if model.config.mask_ratio > 0 or kwargs.get("noise") is not None or len(args) > 1 or pixel_values is None:
        return None
    return args, {**kwargs, "noise": patches_in_place(model, pixel_values)}


class SepNormViTMAEModel(SepNormViTMAEPreTrainedModel, ViTMAEModel):
    """The encoder alone (`AutoModel`, the image-feature-extraction pipeline). Like the stock model it masks
    `mask_ratio` of the patches at random, in eval too: for features, load it with `mask_ratio=0.0`."""

    def __init__(self, config: SepNormViTMAEConfig):
        super().__init__(config)
        self.register_forward_pre_hook(keep_patches_in_place_when_unmasked, with_kwargs=True)


class SepNormViTMAEForPreTraining(SepNormViTMAEPreTrainedModel, ViTMAEForPreTraining):
    def head_sepnorm_locations(self) -> dict[str, list[str]]:
        norms = _block_norms("decoder.decoder_layers", self.config.decoder_num_hidden_layers) + ["decoder.decoder_norm"]
        return {"decoder_cls_norm": select_sepnorm_paths(self.config, "decoder_cls_norm", norms, norms[-1])}


class SepNormViTMAEForImageClassification(SepNormViTMAEPreTrainedModel):
    """A linear classifier on the SepNorm ViT-MAE encoder, pooling [CLS] (`classifier_pooling="cls"`, default) or
    the mean of the patch tokens ("mean"). Classification sees every patch in its place: no random masking, no
    shuffling, whatever `mask_ratio` the pretraining config had."""

    def __init__(self, config: SepNormViTMAEConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.vit = ViTMAEModel(config)
        unmasked_config = copy.deepcopy(config)
        unmasked_config.mask_ratio = 0.0
        self.vit.embeddings.config = unmasked_config
        self.classifier = nn.Linear(config.hidden_size, config.num_labels) if config.num_labels > 0 else nn.Identity()
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        interpolate_pos_encoding: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> ImageClassifierOutput:
        if pixel_values is None:
            raise ValueError("SepNormViTMAEForImageClassification needs `pixel_values`.")
        outputs = self.vit(
            pixel_values,
            noise=patches_in_place(self.vit, pixel_values),
            interpolate_pos_encoding=interpolate_pos_encoding, return_dict=True, **kwargs
        )
        sequence = outputs.last_hidden_state
        pooled = sequence[:, 0] if self.config.classifier_pooling == "cls" else sequence[:, 1:].mean(dim=1)
        logits = self.classifier(pooled)
        loss = self.loss_function(labels, logits, self.config) if labels is not None else None
        return ImageClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


# Stock ViT-MAE checkpoints use legacy key names that transformers renames by class name: give ours the same.
for _sepnorm_class, _stock_class in (
    (SepNormViTMAEModel, ViTMAEModel),
    (SepNormViTMAEForPreTraining, ViTMAEForPreTraining),
):
    register_checkpoint_conversion_mapping(
        _sepnorm_class.__name__, get_checkpoint_conversion_mapping(_stock_class.__name__), overwrite=True
    )

register_family(
    SepNormViTMAEConfig,
    {
        "AutoModel": SepNormViTMAEModel,
        "AutoModelForPreTraining": SepNormViTMAEForPreTraining,
        "AutoModelForImageClassification": SepNormViTMAEForImageClassification,
    },
)

__all__ = [
    "SepNormViTMAEPreTrainedModel",
    "SepNormViTMAEModel",
    "SepNormViTMAEForPreTraining",
    "SepNormViTMAEForImageClassification",
]
