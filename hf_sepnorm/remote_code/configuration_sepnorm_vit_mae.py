"""Configuration of the SepNorm ViT-MAE family: `ViTMAEConfig` plus the SepNorm fields."""

from transformers import ViTMAEConfig

from .sepnorm import CLS_NORM_KINDS, SepNormConfigMixin, check_choice


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

    decoder_cls_norm: str = "shared"
    classifier_pooling: str = "cls"

    def validate_sepnorm_fields(self):
        super().validate_sepnorm_fields()
        check_choice("decoder_cls_norm", self.decoder_cls_norm, CLS_NORM_KINDS)
        check_choice("classifier_pooling", self.classifier_pooling, ("cls", "mean"))


__all__ = ["SepNormViTMAEConfig"]
