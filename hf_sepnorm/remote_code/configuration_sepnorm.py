"""The SepNorm fields every SepNorm config has, and the check of the installed versions.

The configuration files and `sepnorm.py` import this one first, and the Auto classes load a configuration file before
the modeling file: the check runs before SepNorm code imports a transformers internal. It travels with every
checkpoint (remote code): the standard library, and huggingface_hub (which transformers requires) after the check.
"""

import dataclasses
import importlib.metadata
import re
from typing import ClassVar, Literal, get_args

# The transformers releases this code loads and trains on, as measured (docs/supported-versions.md), setup.cfg's range;
# transformers itself checks, at import, that huggingface_hub is a release it requires.
REQUIRED_VERSIONS = {"transformers": ("5.10.1", "6")}


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.match(r"\d+(?:\.\d+)*", version).group().split("."))


for _package, (_lowest, _below) in REQUIRED_VERSIONS.items():
    _installed = importlib.metadata.version(_package)
    if not _release(_lowest) <= _release(_installed) < _release(_below):
        raise ImportError(
            f"This SepNorm model's code needs {_package}>={_lowest},<{_below}, and {_package} {_installed} is "
            f'installed. Fix: pip install -U "{_package}>={_lowest},<{_below}"'
        )


def check_family_release(family: str, lowest: str, reason: str) -> None:
    """A family whose transformers classes changed after the lowest release above: one line saying from which on."""
    installed = importlib.metadata.version("transformers")
    if _release(installed) < _release(lowest):
        raise ImportError(
            f"The SepNorm {family} code needs transformers>={lowest} ({reason}), and transformers {installed} is "
            f'installed. Fix: pip install -U "transformers>={lowest},<{REQUIRED_VERSIONS["transformers"][1]}"'
        )


from huggingface_hub.dataclasses import validated_field  # noqa: E402 - after the version check


def _check_momentum(value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"cls_norm_momentum={value} must lie in [0, 1].")


ClsNormKind = Literal["batch", "layer", "rms", "shared"]
SepNormScope = Literal["all", "final"]
CLS_NORM_KINDS = get_args(ClsNormKind)
SEPNORM_SCOPES = get_args(SepNormScope)


@dataclasses.dataclass
class SepNormConfigMixin:
    """The SepNorm fields shared by every SepNorm config class (each decorated with `@strict`, like transformers'
    configs, which checks the `Literal` fields and runs the `validate_*` hooks).

    cls_norm: how [CLS] is normalized. "batch" (the paper's default: BatchNorm over the batch), "layer" (a LayerNorm
        of its own), "rms" (an RMSNorm of its own) or "shared" (the ShareNorm baseline: exactly the stock model).
    sepnorm_scope: "all" (every norm of the token sequence) or "final" (only the encoder's last norm).
    cls_norm_momentum: momentum of the [CLS] BatchNorm's running statistics (torch's convention).
    """

    readable_model_types: ClassVar[tuple[str, ...]] = ()  # the config.json model types this config loads

    cls_norm: ClsNormKind = "batch"
    sepnorm_scope: SepNormScope = "all"
    # a field validator (not a `validate_*` hook): it also checks every later assignment, such as the keyword
    # overrides of `from_pretrained(folder, cls_norm_momentum=...)`, which set attributes on the built config
    cls_norm_momentum: float = validated_field(_check_momentum, default=0.1)

    def __post_init__(self, **kwargs):
        # a stock config.json being converted says "bert"/"vit_mae": this config is of its own type
        source_type = kwargs.pop("model_type", None)
        if source_type is not None and source_type not in self.readable_model_types:
            raise ValueError(
                f"A {source_type!r} config cannot become a {type(self).__name__}, which reads "
                f"{' or '.join(repr(t) for t in self.readable_model_types)} configs: load that checkpoint with its own "
                "family's class (the Auto classes pick it)."
            )
        super().__post_init__(**kwargs)
