"""SepNorm: separate normalization of the [CLS] token (Chen et al., NeurIPS 2023, arXiv 2309.12931).

A transformer's shared LayerNorm is replaced by a `SepNormLayerNorm`: positions 1..L-1 keep the LayerNorm (same
parameter names, so stock checkpoints load unchanged) and position 0, the [CLS] token, gets a norm of its own, the
child module `cls_norm` (by default a `ClsBatchNorm`). `SepNormPreTrainedMixin` installs them in a transformers model.

Of the files that travel with every checkpoint (remote code), read this one first. Beside it: `configuration_sepnorm.py`
(the version check, the config fields), `activation_checkpointing.py`, `chunked_feed_forward.py`, `fused_layer_norm.py`
(the training-time node: the same result, faster), `keeps_fp32.py`, `auto_registration.py` and `loading_errors.py`,
each on one concern its name says.
"""

from .configuration_sepnorm import SepNormConfigMixin  # isort: skip - first: it checks the installed versions
import dataclasses
import functools
import inspect
import warnings
from typing import ClassVar

import torch
from torch import nn

from .activation_checkpointing import checkpoint_updating_statistics_once, is_recomputing_activations
from .auto_registration import qualified_name
from .chunked_feed_forward import normalize_whole_output_of
from .fused_layer_norm import layer_norm_with_cls_batch_statistics
from .keeps_fp32 import KeepsFp32
from .loading_errors import ClearLoadingErrorsMixin


class ClsBatchNorm(KeepsFp32, nn.BatchNorm1d):
    """BatchNorm1d over the batch for the [CLS] rows, safe in every situation a Trainer creates.

    - It computes in fp32 and keeps its parameters and running statistics in fp32 (`KeepsFp32`).
    - A training batch of one sample has no batch variance: that batch is normalized with the running statistics,
      which it does not update, and a warning is given once.
    - A batch with NaN/Inf [CLS] inputs does not touch the running statistics (one bad batch would poison them for
      good); it is counted in the `nonfinite_batches` buffer.
    - During the recomputation of activation checkpointing it normalizes with the same batch statistics but does not
      update the running statistics again (see `checkpoint_updating_statistics_once`).
    """

    _warned_single_sample = False
    _warned_never_updated = False
    _checked_statistics_version = None
    updates_running_statistics = True  # False: training batches do not move them (a DINOv2 Backbone's early stages)
    # what `from_pretrained(dtype=...)` keeps in fp32 (a pattern "cls_norm" would turn num_batches_tracked to float)
    fp32_keys = tuple(f"cls_norm.{name}" for name in ("weight", "bias", "running_mean", "running_var"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # batches whose statistics were not finite (NaN/Inf inputs): counted, kept out of the running statistics
        self.register_buffer("nonfinite_batches", torch.zeros((), dtype=torch.long), persistent=False)

    def forward(self, cls_states: torch.Tensor) -> torch.Tensor:
        """`cls_states`: (batch, hidden), or (batch, tokens, hidden) for several leading tokens per sample (DINOv2's
        [CLS] and registers), normalized together as batch x tokens rows."""
        # the [CLS] rows are a strided view of the hidden states: the BatchNorm kernel is ~2.5x faster on a copy
        states = cls_states.float().reshape(-1, cls_states.shape[-1]).contiguous()
        if not self.uses_batch_statistics(cls_states.shape[0]):
            if self.training:
                self._warn_single_sample()
            elif not torch.compiler.is_compiling():
                self._warn_if_statistics_never_updated()
            normalized = nn.functional.batch_norm(
                states, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
            )
        else:
            # Batch statistics in the same call whether or not this is an activation-checkpointing recomputation
            # (the recomputation must save exactly the tensors the forward saved); the running statistics are
            # updated apart, once per step.
            normalized = nn.functional.batch_norm(states, None, None, self.weight, self.bias, True, 0.0, self.eps)
            self.track_batch_statistics(states)
        return normalized.view(cls_states.shape).to(cls_states.dtype)

    def uses_batch_statistics(self, batch_size: int) -> bool:
        return self.training and batch_size > 1

    def track_batch_statistics(self, cls_states: torch.Tensor) -> None:
        """Update the running statistics with a training batch's, except while activation checkpointing recomputes."""
        if self.updates_running_statistics and not is_recomputing_activations():
            states = cls_states.detach().float()
            mean = states.mean(dim=0)
            centered = states - mean
            # two passes by hand: torch's var over dim 0 of a (batch, hidden) matrix is ~7x slower on the CPU
            self._update_running_statistics(mean, (centered * centered).sum(dim=0) / (states.shape[0] - 1))

    @torch.no_grad()
    def _update_running_statistics(self, mean: torch.Tensor, unbiased_variance: torch.Tensor) -> None:
        """Move the running statistics towards a batch's; a batch with non-finite statistics leaves them as they
        were and is counted in `nonfinite_batches` instead. Branch-free: no host sync, no graph break."""
        finite = torch.isfinite(mean).all() & torch.isfinite(unbiased_variance).all()
        self.num_batches_tracked.add_(finite.long())
        self.nonfinite_batches.add_((~finite).long())
        # momentum None: the cumulative average, as in torch's BatchNorm
        momentum = 1.0 / self.num_batches_tracked.clamp(min=1).float() if self.momentum is None else self.momentum
        for running, batch in ((self.running_mean, mean), (self.running_var, unbiased_variance)):
            running.copy_(torch.where(finite, torch.lerp(running, batch, momentum), running))

    def _warn_if_statistics_never_updated(self) -> None:
        # checked again only after the statistics changed in place (loading, training, re-estimation): one host sync;
        # once only for inference tensors (a model built under `torch.inference_mode()`): they have no version counter
        statistics = (self.running_mean, self.running_var)
        version = "inference" if self.running_mean.is_inference() else tuple(t._version for t in statistics)
        if ClsBatchNorm._warned_never_updated or version == self._checked_statistics_version:
            return
        self._checked_statistics_version = version
        if statistics_never_updated(self):
            ClsBatchNorm._warned_never_updated = True
            warnings.warn(
                "SepNorm: a [CLS] BatchNorm runs in eval mode on running statistics that were never updated (mean 0, "
                "variance 1, e.g. right after converting a stock checkpoint), so [CLS] is not normalized and its "
                "embeddings are meaningless. Estimate them on your data first with "
                "`hf_sepnorm.recalibrate_cls_batchnorm(model, batches)`, or train the model.",
                stacklevel=3,
            )

    def _warn_single_sample(self) -> None:
        if ClsBatchNorm._warned_single_sample or torch.compiler.is_compiling():
            return
        ClsBatchNorm._warned_single_sample = True
        warnings.warn(
            "SepNorm: a training batch of 1 sample has no batch statistics; the [CLS] BatchNorm uses its running "
            "statistics for such batches and does not update them. Use batches of 2 or more samples (a larger "
            "`per_device_train_batch_size`; `dataloader_drop_last=True` where only the last batch has one) to train "
            "the [CLS] norm.",
            stacklevel=3,
        )


def statistics_never_updated(norm: nn.modules.batchnorm._BatchNorm) -> bool:
    """Running statistics still as built (mean 0, variance 1): never trained, never estimated."""
    return bool((norm.running_mean == 0).all() and (norm.running_var == 1).all())


def build_cls_norm(kind: str, hidden_size: int, eps: float, momentum: float = 0.1, bias: bool = True) -> nn.Module:
    """`bias=False` (the replaced LayerNorm has none, as in ModernBERT) gives a [CLS] LayerNorm without bias too; a
    BatchNorm keeps its bias whatever: it removes the batch mean, which only its bias can put back."""
    if kind == "batch":
        # fp32 whatever the default dtype the model is built in (`from_config(..., dtype=torch.bfloat16)`)
        return ClsBatchNorm(hidden_size, eps=eps, momentum=momentum, dtype=torch.float32)
    if kind not in ("layer", "rms"):
        raise ValueError(f"Unknown [CLS] norm {kind!r}: choose one of 'batch', 'layer', 'rms'.")
    if kind == "layer":
        return nn.LayerNorm(hidden_size, eps=eps, bias=bias)
    return nn.RMSNorm(hidden_size, eps=eps)


class SepNormLayerNorm(nn.LayerNorm):
    """A LayerNorm over tokens 1..L-1 whose position 0 ([CLS]) is normalized by `self.cls_norm` instead.

    Its own `weight`/`bias` are the replaced LayerNorm's, under the same names. The forward normalizes the whole
    sequence once and overwrites row 0: no copy of the hidden states. Training with a [CLS] BatchNorm on batch
    statistics (the paper's default) runs as one autograd node (`fused_layer_norm.py`); every other case (eval,
    `"layer"`/`"rms"`, a synchronized BatchNorm, a batch of one, hooks on `cls_norm`) calls `cls_norm` and writes
    row 0 in place under autograd, which is safe because the LayerNorm backward does not need its output.
    """

    def __init__(self, normalized_shape, cls_norm: nn.Module, eps: float = 1e-5, leading_tokens: int = 1, **kwargs):
        super().__init__(normalized_shape, eps=eps, **kwargs)
        self.cls_norm = cls_norm
        # how many leading positions `cls_norm` normalizes, as one set of rows: [CLS] alone (1), or [CLS] and the
        # register tokens that follow it (DINOv2 with registers)
        self.leading_tokens = leading_tokens

    @classmethod
    def replacing(
        cls, layer_norm: nn.LayerNorm, kind: str, momentum: float = 0.1, leading_tokens: int = 1
    ) -> "SepNormLayerNorm":
        """A SepNorm of the same shape, eps, device and dtype as `layer_norm`, sharing its parameters (a bias-free
        LayerNorm stays bias-free, its [CLS] LayerNorm too)."""
        (hidden_size,) = layer_norm.normalized_shape
        has_bias = layer_norm.bias is not None
        cls_norm = build_cls_norm(kind, hidden_size, layer_norm.eps, momentum, bias=has_bias)
        sepnorm = cls(hidden_size, cls_norm, eps=layer_norm.eps, leading_tokens=leading_tokens, bias=has_bias)
        sepnorm.weight, sepnorm.bias = layer_norm.weight, layer_norm.bias
        if layer_norm.weight is not None:
            sepnorm.cls_norm.to(device=layer_norm.weight.device)
        return sepnorm

    # True when the layer this norm ends runs its feed-forward on sequence chunks (`chunked_feed_forward.py`)
    deferred_to_layer_output = False

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if self.deferred_to_layer_output:
            return hidden_states  # the layer normalizes its whole output after its chunks
        return self.normalize(hidden_states)

    def normalize(self, hidden_states: torch.Tensor) -> torch.Tensor:
        cls_norm = self.cls_norm
        if (
            type(cls_norm) is ClsBatchNorm
            and cls_norm.uses_batch_statistics(hidden_states.shape[0])
            # hooks on the [CLS] norm (e.g. to record its inputs) must see it called: the general path calls it
            and not (cls_norm._forward_pre_hooks or cls_norm._forward_hooks)
        ):
            return layer_norm_with_cls_batch_statistics(self, hidden_states)
        return self._forward_calling_cls_norm(hidden_states)

    def _forward_calling_cls_norm(self, hidden_states: torch.Tensor) -> torch.Tensor:
        normalized = super().forward(hidden_states)
        if self.leading_tokens == 1:
            normalized[:, 0] = self.cls_norm(hidden_states[:, 0]).to(normalized.dtype)
        else:
            leading = slice(0, self.leading_tokens)
            normalized[:, leading] = self.cls_norm(hidden_states[:, leading]).to(normalized.dtype)
        return normalized


def select_sepnorm_paths(
    config, kind_field: str, norms: list[str], final_norm: str, constant_cls_norm: str | None = None
) -> list[str]:
    """The paths, among a stack's sequence norms `norms`, that `config.sepnorm_scope` turns into SepNorms.

    `constant_cls_norm` names the norm whose [CLS] input is the same learned vector for every sample (BERT's
    embedding LayerNorm, ViT-MAE's first `layernorm_before`). Its batch variance is 0: a BatchNorm there outputs its
    bias in training, blocking the gradient to the [CLS] embedding, and in eval divides the lag of its running mean by
    sqrt(eps). So with `cls_norm="batch"` that norm stays shared (a LayerNorm of a constant is as good a constant).
    """
    if config.sepnorm_scope == "final":
        return [final_norm]
    if getattr(config, kind_field) == "batch":
        return [path for path in norms if path != constant_cls_norm]
    return norms


def install_sepnorm(module: nn.Module, paths: list[str], kind: str, momentum: float, leading_tokens: int = 1) -> None:
    """Replace the LayerNorms at `paths` (relative to `module`) with SepNorms whose [CLS] norm is `kind`, normalizing
    the first `leading_tokens` positions."""
    if kind == "shared":
        return
    for path in paths:
        layer_norm = module.get_submodule(path)
        if isinstance(layer_norm, SepNormLayerNorm):
            continue
        if not isinstance(layer_norm, nn.LayerNorm):
            raise TypeError(f"SepNorm expected a LayerNorm at {path!r}, found {type(layer_norm).__name__}.")
        module.set_submodule(path, SepNormLayerNorm.replacing(layer_norm, kind, momentum, leading_tokens))


class SepNormPreTrainedMixin(ClearLoadingErrorsMixin):
    """Mixed into a family's `PreTrainedModel` subclass: installs the SepNorms before transformers' `post_init`.

    Every class of a family, base model and heads alike, keeps its transformers parent's modules and `forward`. The
    family says only where the norms go, by overriding the hooks below.
    """

    sepnorm_auto_classes: ClassVar[dict[str, type]] = {}

    def sepnorm_locations(self) -> dict[str, list[str]]:
        return {}  # config field naming a [CLS] norm kind -> the LayerNorm paths, in the base model, it applies to

    def head_sepnorm_locations(self) -> dict[str, list[str]]:
        return {}  # the same for a head's own norms outside its base model (the MAE decoder's), relative to the head

    def sepnorms_in_chunked_feed_forward(self) -> dict[str, str]:
        # base-model layer whose feed-forward transformers may run one sequence chunk at a time
        # (`config.chunk_size_feed_forward > 0`) -> the path, in the layer, of the norm that feed-forward ends with
        return {}

    def sepnorm_leading_tokens(self) -> int:
        return 1  # how many leading positions the [CLS] norms normalize apart: [CLS] alone, unless a family says

    @staticmethod
    def check_base_model_inputs(config, inputs: dict) -> None:
        """Raise a clear error for base-model inputs (by name) that transformers would get wrong silently."""

    def install_sepnorms(self) -> None:
        base_model = self.base_model
        momentum = self.config.cls_norm_momentum
        for model, locations in ((base_model, self.sepnorm_locations()), (self, self.head_sepnorm_locations())):
            for kind_field, paths in locations.items():
                install_sepnorm(model, paths, getattr(self.config, kind_field), momentum, self.sepnorm_leading_tokens())
        for layer_path, norm_path in self.sepnorms_in_chunked_feed_forward().items():
            norm = base_model.get_submodule(f"{layer_path}.{norm_path}")
            if isinstance(norm, SepNormLayerNorm):
                normalize_whole_output_of(norm, base_model.get_submodule(layer_path))
        # the checks run as a hook so that the base model keeps transformers' `forward` and its signature
        input_names = tuple(inspect.signature(type(base_model).forward).parameters)[1:]
        check = functools.partial(_check_inputs_by_name, type(self).check_base_model_inputs, input_names)
        base_model.register_forward_pre_hook(check, with_kwargs=True)

    def post_init(self):
        # duck-typed: remote code may load the config class from another copy of this file
        if not all(hasattr(self.config, field.name) for field in dataclasses.fields(SepNormConfigMixin)):
            raise TypeError(
                f"{type(self).__name__} needs a SepNorm config, got {type(self.config).__name__}. Build one with "
                f"`{self.config_class.__name__}(**config.to_dict())` or `{self.config_class.__name__}.from_pretrained(...)`."
            )
        self.install_sepnorms()
        if any(isinstance(module, ClsBatchNorm) for module in self.modules()):
            self._keep_in_fp32_modules_strict = {*(self._keep_in_fp32_modules_strict or ()), *ClsBatchNorm.fp32_keys}
        self.config.auto_map = {
            "AutoConfig": qualified_name(self.config_class),
            **{auto: qualified_name(model_class) for auto, model_class in self.sepnorm_auto_classes.items()},
        }
        super().post_init()

    @torch.no_grad()
    def initialize_weights(self):
        super().initialize_weights()
        # The counter is not in checkpoints (non-persistent): transformers, loading on the meta device, leaves it
        # uninitialized, and a head's backbone is initialized by transformers' own `_init_weights`, which does not
        # know it: zero it here for every [CLS] BatchNorm of the model.
        for module in self.modules():
            if isinstance(module, ClsBatchNorm):
                # torch's own zero_: the buffer is never loaded, so no transformers loading flag to respect
                module.nonfinite_batches.zero_()

    def _set_gradient_checkpointing(self, enable=True, gradient_checkpointing_func=None, **kwargs):
        if gradient_checkpointing_func is None:
            from torch.utils.checkpoint import checkpoint as gradient_checkpointing_func
        super()._set_gradient_checkpointing(
            enable, checkpoint_updating_statistics_once(gradient_checkpointing_func), **kwargs
        )


def _check_inputs_by_name(check, input_names, module, args, kwargs):
    check(module.config, {**dict(zip(input_names, args)), **kwargs})
