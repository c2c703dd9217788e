"""Configuration of the SepNorm ModernBERT family: `ModernBertConfig` plus the SepNorm fields."""

from .configuration_sepnorm import SepNormConfigMixin  # isort: skip - first: it checks the installed versions
from huggingface_hub.dataclasses import strict
from transformers import ModernBertConfig


@strict
class SepNormModernBertConfig(SepNormConfigMixin, ModernBertConfig):
    r"""A [`ModernBertConfig`] with the fields of [`SepNormConfigMixin`]: `cls_norm` ("batch", "layer", "rms" or
    "shared"), `sepnorm_scope` ("all" or "final") and `cls_norm_momentum`.

    A stock ModernBERT `config.json` loads into it (`SepNormModernBertConfig.from_pretrained(stock_folder,
    cls_norm="batch")`).
    """

    model_type = "sepnorm_modernbert"
    readable_model_types = ("modernbert", "sepnorm_modernbert")


__all__ = ["SepNormModernBertConfig"]
