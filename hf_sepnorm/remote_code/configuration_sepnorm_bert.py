"""Configuration of the SepNorm BERT family: `BertConfig` plus the SepNorm fields."""

from .configuration_sepnorm import SepNormConfigMixin  # isort: skip - first: it checks the installed versions
from huggingface_hub.dataclasses import strict
from transformers import BertConfig


@strict
class SepNormBertConfig(SepNormConfigMixin, BertConfig):
    r"""A [`BertConfig`] with the fields of [`SepNormConfigMixin`]: `cls_norm` ("batch", "layer", "rms" or
    "shared"), `sepnorm_scope` ("all" or "final") and `cls_norm_momentum`.

    A stock BERT `config.json` loads into it (`SepNormBertConfig.from_pretrained(stock_folder, cls_norm="batch")`).
    """

    model_type = "sepnorm_bert"
    readable_model_types = ("bert", "sepnorm_bert")


__all__ = ["SepNormBertConfig"]
