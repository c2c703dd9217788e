"""Configuration of the SepNorm DINOv2 family: `Dinov2WithRegistersConfig` plus the SepNorm fields; it reads the
configs of stock `dinov2` and `dinov2_with_registers` checkpoints."""

from .configuration_sepnorm import SepNormConfigMixin  # isort: skip - first: it checks the installed versions
from typing import Literal

from huggingface_hub.dataclasses import strict
from transformers import Dinov2Config, Dinov2WithRegistersConfig


@strict
class SepNormDinov2Config(SepNormConfigMixin, Dinov2WithRegistersConfig):
    r"""A [`Dinov2WithRegistersConfig`] with the fields of [`SepNormConfigMixin`] and:

    cls_norm_tokens (`str`, defaults to "cls"): the leading tokens normalized apart from the patches, by one [CLS]
        norm over their rows: "cls" ([CLS] alone; the registers are normalized with the patches) or
        "cls_and_registers" ([CLS] and the `num_register_tokens` register tokens together). Without registers both
        are the same. The default was chosen by a measurement: see docs/families.md.
    use_mask_token (`bool`, defaults to `True`): whether the embeddings have a learned mask token (a stock `dinov2`
        config field; `dinov2_with_registers` checkpoints always have one).
    position_interpolation_antialias (`bool`, defaults to `True`): whether position embeddings interpolated to
        another image size are antialiased, as `dinov2_with_registers` does; `False` for a checkpoint converted from
        stock `dinov2`, which does not, so that it computes what the stock model computes at every size.

    A stock DINOv2 config (with or without registers) loads into it; a `dinov2` one gets `num_register_tokens=0`.
    """

    model_type = "sepnorm_dinov2"
    readable_model_types = ("dinov2", "dinov2_with_registers", "sepnorm_dinov2")

    cls_norm_tokens: Literal["cls", "cls_and_registers"] = "cls"
    use_mask_token: bool = True
    position_interpolation_antialias: bool = True

    @classmethod
    def from_dict(cls, config_dict, **kwargs):
        if config_dict.get("model_type") == "dinov2":
            # a saved config.json leaves out the values equal to its class's defaults: they are Dinov2Config's
            # (patch_size 14, ...), not the registers config's; a stock DINOv2 has no registers
            defaults = Dinov2Config().to_dict()
            config_dict = {**defaults, **config_dict, "num_register_tokens": 0, "position_interpolation_antialias": False}
        return super().from_dict(config_dict, **kwargs)

    @property
    def sepnorm_leading_tokens(self) -> int:
        """How many leading positions the [CLS] norms normalize: 1, or 1 + the registers."""
        return 1 + self.num_register_tokens if self.cls_norm_tokens == "cls_and_registers" else 1


__all__ = ["SepNormDinov2Config"]
