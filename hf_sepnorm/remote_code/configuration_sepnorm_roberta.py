"""Configuration of the SepNorm RoBERTa family: `RobertaConfig` plus the SepNorm fields."""

from .configuration_sepnorm import SepNormConfigMixin  # isort: skip - first: it checks the installed versions
from huggingface_hub.dataclasses import strict
from transformers import RobertaConfig


@strict
class SepNormRobertaConfig(SepNormConfigMixin, RobertaConfig):
    r"""A [`RobertaConfig`] with the fields of [`SepNormConfigMixin`]: `cls_norm` ("batch", "layer", "rms" or
    "shared"), `sepnorm_scope` ("all" or "final") and `cls_norm_momentum`.

    A stock RoBERTa `config.json` loads into it (`SepNormRobertaConfig.from_pretrained(stock_folder, cls_norm="batch")`).
    """

    model_type = "sepnorm_roberta"
    readable_model_types = ("roberta", "sepnorm_roberta")


__all__ = ["SepNormRobertaConfig"]
