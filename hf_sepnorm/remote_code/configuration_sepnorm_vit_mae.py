"""Configuration of the SepNorm ViT-MAE family: `ViTMAEConfig` plus the SepNorm fields."""

from .configuration_sepnorm import ClsNormKind, SepNormConfigMixin  # isort: skip - first: it checks the installed versions
from typing import Literal

from huggingface_hub.dataclasses import strict
from transformers import ViTMAEConfig


@strict
class SepNormViTMAEConfig(SepNormConfigMixin, ViTMAEConfig):
    r"""A [`ViTMAEConfig`] with the fields of [`SepNormConfigMixin`] and:

    decoder_cls_norm (`str`, defaults to "shared"): the [CLS] norm of the MAE decoder's norms (same choices as
        `cls_norm`; `sepnorm_scope` applies to the decoder too). The decoder is discarded after pretraining, so
        the stock decoder is the default.
    classifier_pooling (`str`, defaults to "cls"): what `SepNormViTMAEForImageClassification` classifies, the
        [CLS] token ("cls") or the mean of the patch tokens ("mean").
    """

    model_type = "sepnorm_vit_mae"
    readable_model_types = ("vit_mae", "sepnorm_vit_mae")

    decoder_cls_norm: ClsNormKind = "shared"
    classifier_pooling: Literal["cls", "mean"] = "cls"


__all__ = ["SepNormViTMAEConfig"]
