"""SepNorm: separate normalization of the [CLS] token (Chen et al., NeurIPS 2023, arXiv 2309.12931).

A transformer's shared LayerNorm is replaced by a `SepNorm`: positions 1..L-1 keep the LayerNorm (same
parameter names, so stock checkpoints load unchanged) and position 0, the [CLS] token, gets a norm of its
own, the child module `cls_norm`.

This file travels with every checkpoint (remote code): it may import only the standard library, torch and
transformers. Every SepNorm code file imports it first, so that the version check below runs before anything else.
"""

import importlib.metadata
import re

# The versions this code is written for: it uses transformers internals (`initialization`, `conversion_mapping`) and
# huggingface_hub's `dataclasses.strict`, which other major versions lack or change. Checked before importing them.
REQUIRED_VERSIONS = {"transformers": ("5.24", "6"), "huggingface_hub": ("2.4", "3")}


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.match(r"\d+(?:\.\d+)*", version).group().split("."))


for _package, (_lowest, _below) in REQUIRED_VERSIONS.items():
    _installed = importlib.metadata.version(_package)
    if not _release(_lowest) <= _release(_installed) < _release(_below):
        raise ImportError(
            f"This SepNorm model's code needs {_package}>={_lowest},<{_below}, and {_package} {_installed} is "
            f'installed. Fix: pip install -U "{_package}>={_lowest},<{_below}"'
        )

import contextlib  # noqa: E402 - after the version check
import dataclasses  # noqa: E402
import functools  # noqa: E402
import inspect  # noqa: E402
import warnings  # noqa: E402
from typing import ClassVar, Literal, get_args  # noqa: E402

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.autograd.function import once_differentiable  # noqa: E402
from transformers import initialization as init  # noqa: E402

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
    cls_norm_momentum: float = 0.1

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

    def validate_cls_norm_momentum(self):
        if not 0.0 <= self.cls_norm_momentum <= 1.0:
            raise ValueError(f"cls_norm_momentum={self.cls_norm_momentum} must lie in [0, 1].")


_recomputing_activations = False


@contextlib.contextmanager
def _batch_statistics_frozen():
    global _recomputing_activations
    previous, _recomputing_activations = _recomputing_activations, True
    try:
        yield
    finally:
        _recomputing_activations = previous


def is_recomputing_activations() -> bool:
    """True while activation checkpointing recomputes a layer's forward inside the backward pass."""
    return _recomputing_activations


def checkpoint_updating_statistics_once(checkpoint_fn):
    """Wrap an activation-checkpointing function so that [CLS] BatchNorm running statistics are updated by the
    forward pass only, not a second time when the backward pass recomputes the layer (reentrant or not)."""

    def checkpoint(function, *args, **kwargs):
        calls = 0

        def forward_then_recompute(*inner_args, **inner_kwargs):
            nonlocal calls
            calls += 1
            if calls == 1:
                return function(*inner_args, **inner_kwargs)
            with _batch_statistics_frozen():
                return function(*inner_args, **inner_kwargs)

        return checkpoint_fn(forward_then_recompute, *args, **kwargs)

    return checkpoint


class KeepsFp32:
    """Mixed into a module whose fp32 parameters and buffers must stay fp32 whatever dtype the model is cast to
    (`model.to(torch.bfloat16)`, `.half()`): running statistics accumulate updates that bf16 would round away."""

    def _apply(self, fn, recurse=True):
        def convert_keeping_fp32(tensor):
            converted = fn(tensor)
            if tensor.dtype == torch.float32 and converted.dtype != torch.float32:
                return tensor.to(device=converted.device)
            return converted

        return super()._apply(convert_keeping_fp32, recurse)


class ClsBatchNorm(KeepsFp32, nn.BatchNorm1d):
    """BatchNorm1d over the batch for the [CLS] rows, safe in every situation a Trainer creates.

    - It computes in fp32 and keeps its parameters and running statistics in fp32 whatever the model is cast to:
      running statistics accumulate small updates that bf16 would round away.
    - A training batch of one sample has no batch variance: that batch is normalized with the running statistics,
      which it does not update, and a warning is given once.
    - A batch with NaN/Inf [CLS] inputs does not touch the running statistics (one bad batch would poison them for
      good); it is counted in the `nonfinite_batches` buffer, which `nonfinite_cls_batches(model)` sums.
    - During the recomputation of activation checkpointing it normalizes with the same batch statistics but does not
      update the running statistics again (see `checkpoint_updating_statistics_once`).
    """

    _warned_single_sample = False
    _warned_never_updated = False
    _checked_statistics_version = None
    # what `from_pretrained(dtype=...)` keeps in fp32 (a pattern "cls_norm" would turn num_batches_tracked to float)
    fp32_keys = tuple(f"cls_norm.{name}" for name in ("weight", "bias", "running_mean", "running_var"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # batches whose statistics were not finite (NaN/Inf inputs): counted, kept out of the running statistics
        self.register_buffer("nonfinite_batches", torch.zeros((), dtype=torch.long), persistent=False)

    def forward(self, cls_states: torch.Tensor) -> torch.Tensor:
        # the [CLS] rows are a strided view of the hidden states: the BatchNorm kernel is ~2.5x faster on a copy
        states = cls_states.float().contiguous()
        if not self.uses_batch_statistics(states.shape[0]):
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
        return normalized.to(cls_states.dtype)

    def uses_batch_statistics(self, batch_size: int) -> bool:
        return self.training and batch_size > 1

    def track_batch_statistics(self, cls_states: torch.Tensor) -> None:
        """Update the running statistics with a training batch's, except while activation checkpointing recomputes."""
        if not is_recomputing_activations():
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
        # checked again only after the statistics changed in place (loading, training, re-estimation): one host sync
        version = (self.running_mean._version, self.running_var._version)
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


def build_cls_norm(kind: str, hidden_size: int, eps: float, momentum: float = 0.1) -> nn.Module:
    if kind == "batch":
        # fp32 whatever the default dtype the model is built in (`from_config(..., dtype=torch.bfloat16)`)
        return ClsBatchNorm(hidden_size, eps=eps, momentum=momentum, dtype=torch.float32)
    if kind not in ("layer", "rms"):
        raise ValueError(f"Unknown [CLS] norm {kind!r}: choose one of 'batch', 'layer', 'rms'.")
    if kind == "layer":
        return nn.LayerNorm(hidden_size, eps=eps)
    return nn.RMSNorm(hidden_size, eps=eps)


class _LayerNormWithClsBatchNorm(torch.autograd.Function):
    """A LayerNorm of every position whose row 0 is then replaced by a BatchNorm of the [CLS] rows on their batch
    statistics (computed in fp32), as one autograd node.

    The same layer written with autograd's ops (`SepNormLayerNorm`'s other path) costs three full-size passes in the
    backward for one row: the in-place row write's CopySlices, the zero-filled gradient of `hidden_states[:, 0]`, and
    the sum of that with the LayerNorm's input gradient. Here the backward is one LayerNorm backward, on a copy of
    the gradient with row 0 zeroed (exactly what the token LayerNorm receives on the other path, so its results are
    the same to the bit), and a BatchNorm backward on the [CLS] rows, written into row 0 of the input gradient.
    """

    @staticmethod
    def forward(ctx, hidden_states, weight, bias, eps, cls_states, cls_weight, cls_bias, cls_eps):
        """`cls_states`: row 0 of `hidden_states` as a contiguous fp32 copy (its gradient goes to `hidden_states`)."""
        normalized, mean, rstd = torch.native_layer_norm(hidden_states, hidden_states.shape[-1:], weight, bias, eps)
        cls_normalized, cls_mean, cls_invstd = torch.native_batch_norm(
            cls_states, cls_weight, cls_bias, None, None, True, 0.0, cls_eps
        )
        normalized[:, 0] = cls_normalized.to(normalized.dtype)
        ctx.save_for_backward(hidden_states, mean, rstd, weight, bias, cls_states, cls_weight, cls_mean, cls_invstd)
        ctx.cls_eps = cls_eps
        return normalized

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        hidden_states, mean, rstd, weight, bias, cls_states, cls_weight, cls_mean, cls_invstd = ctx.saved_tensors
        needs_states, needs_weight, needs_bias, _, _, needs_cls_weight, needs_cls_bias, _ = ctx.needs_input_grad
        grad_cls_output = grad_output[:, 0].float().contiguous()
        # the incoming gradient may be shared with other nodes (e.g. both inputs of an addition): zero row 0 in a copy
        grad_tokens = grad_output.clone(memory_format=torch.contiguous_format)
        grad_tokens[:, 0] = 0
        grad_states, grad_weight, grad_bias = torch.ops.aten.native_layer_norm_backward(
            grad_tokens, hidden_states, hidden_states.shape[-1:], mean, rstd, weight, bias,
            [needs_states, needs_weight, needs_bias],
        )
        grad_cls_states, grad_cls_weight, grad_cls_bias = torch.ops.aten.native_batch_norm_backward(
            grad_cls_output, cls_states, cls_weight, None, None, cls_mean, cls_invstd, True, ctx.cls_eps,
            [needs_states, needs_cls_weight, needs_cls_bias],
        )
        if needs_states:
            grad_states[:, 0] = grad_cls_states.to(grad_states.dtype)
        return grad_states, grad_weight, grad_bias, None, None, grad_cls_weight, grad_cls_bias, None


class SepNormLayerNorm(nn.LayerNorm):
    """A LayerNorm over tokens 1..L-1 whose position 0 ([CLS]) is normalized by `self.cls_norm` instead.

    Its own `weight`/`bias` are the replaced LayerNorm's, under the same names. The forward normalizes the whole
    sequence once and overwrites row 0: no copy of the hidden states. Training with a [CLS] BatchNorm on batch
    statistics (the paper's default) runs as one autograd node, `_LayerNormWithClsBatchNorm`, whose backward makes
    one full-size pass (a copy) beyond the LayerNorm's; every other case (eval, `"layer"`/`"rms"`, a synchronized
    BatchNorm, a batch of one, hooks on `cls_norm`) calls `cls_norm` and writes row 0 in place under autograd, which
    is safe because the LayerNorm backward does not need its output.
    """

    def __init__(self, normalized_shape, cls_norm: nn.Module, eps: float = 1e-5, **kwargs):
        super().__init__(normalized_shape, eps=eps, **kwargs)
        self.cls_norm = cls_norm

    @classmethod
    def replacing(cls, layer_norm: nn.LayerNorm, kind: str, momentum: float = 0.1) -> "SepNormLayerNorm":
        """A SepNorm of the same shape, eps, device and dtype as `layer_norm`, sharing its parameters."""
        (hidden_size,) = layer_norm.normalized_shape
        sepnorm = cls(hidden_size, build_cls_norm(kind, hidden_size, layer_norm.eps, momentum), eps=layer_norm.eps)
        sepnorm.weight, sepnorm.bias = layer_norm.weight, layer_norm.bias
        if layer_norm.weight is not None:
            sepnorm.cls_norm.to(device=layer_norm.weight.device)
        return sepnorm

    # True while the layer this norm ends runs its feed-forward on sequence chunks (see `normalize_whole_output_of`)
    deferred_to_layer_output = False

    def normalize_whole_output_of(self, layer: nn.Module) -> None:
        """Make this norm, which ends `layer`'s feed-forward, normalize `layer`'s whole output when the feed-forward
        runs one sequence chunk at a time (transformers' `apply_chunking_to_forward` with
        `layer.chunk_size_feed_forward > 0`): applied to a chunk, it would take the chunk's row 0 for [CLS]."""
        layer.register_forward_pre_hook(functools.partial(_defer_while_chunking, self))
        layer.register_forward_hook(functools.partial(_normalize_deferred_output, self), prepend=True)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if self.deferred_to_layer_output:
            return hidden_states  # the layer normalizes its whole output after its chunks
        cls_norm = self.cls_norm
        if (
            type(cls_norm) is ClsBatchNorm
            and cls_norm.uses_batch_statistics(hidden_states.shape[0])
            # hooks on the [CLS] norm (e.g. to record its inputs) must see it called: the general path calls it
            and not (cls_norm._forward_pre_hooks or cls_norm._forward_hooks)
        ):
            return self._forward_with_cls_batch_statistics(hidden_states)
        return self._forward_calling_cls_norm(hidden_states)

    def _forward_calling_cls_norm(self, hidden_states: torch.Tensor) -> torch.Tensor:
        normalized = super().forward(hidden_states)
        normalized[:, 0] = self.cls_norm(hidden_states[:, 0]).to(normalized.dtype)
        return normalized

    def _forward_with_cls_batch_statistics(self, hidden_states: torch.Tensor) -> torch.Tensor:
        weight, bias = self.weight, self.bias
        device_type = hidden_states.device.type
        if device_type != "cpu" and torch.is_autocast_enabled(device_type):
            # autocast on accelerators runs layer norms in fp32 (on the CPU, in the input's dtype); the native call
            # inside the autograd function must get the inputs that `nn.LayerNorm` would
            hidden_states, weight, bias = (None if t is None else t.float() for t in (hidden_states, weight, bias))
        cls_norm = self.cls_norm
        # one copy of the [CLS] rows serves the BatchNorm and its running statistics
        cls_states = hidden_states[:, 0].detach().float().contiguous()
        normalized = _LayerNormWithClsBatchNorm.apply(
            hidden_states, weight, bias, self.eps, cls_states, cls_norm.weight, cls_norm.bias, cls_norm.eps
        )
        cls_norm.track_batch_statistics(cls_states)
        return normalized

    @torch.no_grad()
    def copy_token_norm_to_cls_norm(self) -> None:
        """Start the [CLS] norm from this LayerNorm's affine parameters (e.g. after converting a stock checkpoint)."""
        self.cls_norm.weight.copy_(self.weight)
        if getattr(self.cls_norm, "bias", None) is not None:
            self.cls_norm.bias.copy_(self.bias)


def _defer_while_chunking(norm: SepNormLayerNorm, layer: nn.Module, args) -> None:
    chunking = layer.chunk_size_feed_forward > 0
    if norm.deferred_to_layer_output != chunking:  # no attribute write in the usual unchunked case (compiles as is)
        norm.deferred_to_layer_output = chunking


def _normalize_deferred_output(norm: SepNormLayerNorm, layer: nn.Module, args, output: torch.Tensor):
    if norm.deferred_to_layer_output:
        norm.deferred_to_layer_output = False
        return norm(output)
    return None


def nonfinite_cls_batches(model: nn.Module) -> int:
    """How many training batches had non-finite [CLS] statistics, summed over the model's [CLS] BatchNorms."""
    return sum(int(norm.nonfinite_batches) for norm in cls_batchnorms(model) if hasattr(norm, "nonfinite_batches"))


def cls_batchnorms(model: nn.Module) -> list[nn.Module]:
    """The [CLS] BatchNorms of `model` (plain or converted to SyncBatchNorm), those its forward runs."""
    norms = (_cls_norm_in_use(module.cls_norm) for module in model.modules() if isinstance(module, SepNormLayerNorm))
    return [norm for norm in norms if isinstance(norm, nn.modules.batchnorm._BatchNorm)]


def _cls_norm_in_use(cls_norm: nn.Module) -> nn.Module:
    # peft's `modules_to_save` wraps the norm and runs the copy its active adapter trains (the original when disabled)
    copies = getattr(cls_norm, "modules_to_save", None)
    if not isinstance(copies, nn.ModuleDict):
        return cls_norm
    active = [] if cls_norm.disable_adapters else cls_norm.active_adapters
    return copies[active[0]] if active else cls_norm.original_module


def init_cls_norms_from_token_norms(model: nn.Module) -> int:
    """Copy each SepNorm's LayerNorm weight/bias into its [CLS] norm; returns how many were set.

    With `cls_norm="layer"` this makes a converted stock checkpoint compute exactly what the stock model does.
    """
    sepnorms = [module for module in model.modules() if isinstance(module, SepNormLayerNorm)]
    for sepnorm in sepnorms:
        sepnorm.copy_token_norm_to_cls_norm()
    return len(sepnorms)


def select_sepnorm_paths(
    config, kind_field: str, norms: list[str], final_norm: str, constant_cls_norm: str | None = None
) -> list[str]:
    """The paths, among a stack's sequence norms `norms`, that `config.sepnorm_scope` turns into SepNorms.

    `constant_cls_norm` names the norm whose [CLS] input is the same learned vector for every sample (BERT's
    embedding LayerNorm, ViT-MAE's first `layernorm_before`). Its batch variance is 0: a BatchNorm there outputs its
    bias in training, which blocks the gradient to the [CLS] embedding, and in eval divides the lag of its running
    mean by sqrt(eps). A LayerNorm of a constant is just as expressive a constant, so with `cls_norm="batch"` that
    norm stays shared.
    """
    if config.sepnorm_scope == "final":
        return [final_norm]
    if getattr(config, kind_field) == "batch":
        return [path for path in norms if path != constant_cls_norm]
    return norms


def install_sepnorm(module: nn.Module, paths: list[str], kind: str, momentum: float) -> None:
    """Replace the LayerNorms at `paths` (relative to `module`) with SepNorms whose [CLS] norm is `kind`."""
    if kind == "shared":
        return
    for path in paths:
        layer_norm = module.get_submodule(path)
        if isinstance(layer_norm, SepNormLayerNorm):
            continue
        if not isinstance(layer_norm, nn.LayerNorm):
            raise TypeError(f"SepNorm expected a LayerNorm at {path!r}, found {type(layer_norm).__name__}.")
        module.set_submodule(path, SepNormLayerNorm.replacing(layer_norm, kind, momentum))


class SepNormPreTrainedMixin:
    """Mixed into a family's `PreTrainedModel` subclass: installs the SepNorms before transformers' `post_init`.

    Every class of a family, base model and heads alike, keeps its transformers parent's modules and `forward`. The
    family only says where the norms go in the base model (`sepnorm_locations`), which of them transformers runs on
    sequence chunks (`sepnorms_in_chunked_feed_forward`) and what its base model's inputs must look like
    (`check_base_model_inputs`); a head may add norms of its own (`head_sepnorm_locations`, the MAE decoder's).
    """

    sepnorm_auto_classes: ClassVar[dict[str, type]] = {}

    def sepnorm_locations(self) -> dict[str, list[str]]:
        """Map each config field naming a [CLS] norm kind to the LayerNorm paths, relative to the base model, it
        applies to."""
        return {}

    def head_sepnorm_locations(self) -> dict[str, list[str]]:
        """The same for the norms a head has outside its base model, relative to the head."""
        return {}

    def sepnorms_in_chunked_feed_forward(self) -> dict[str, str]:
        """Map base-model layers whose feed-forward transformers runs one sequence chunk at a time
        (`config.chunk_size_feed_forward > 0`) to the path, in the layer, of the norm that feed-forward ends with."""
        return {}

    @staticmethod
    def check_base_model_inputs(config, inputs: dict) -> None:
        """Raise a clear error for base-model inputs (by name) that transformers would get wrong silently."""

    def install_sepnorms(self) -> None:
        base_model = self.base_model
        momentum = self.config.cls_norm_momentum
        for model, locations in ((base_model, self.sepnorm_locations()), (self, self.head_sepnorm_locations())):
            for kind_field, paths in locations.items():
                install_sepnorm(model, paths, getattr(self.config, kind_field), momentum)
        for layer_path, norm_path in self.sepnorms_in_chunked_feed_forward().items():
            norm = base_model.get_submodule(f"{layer_path}.{norm_path}")
            if isinstance(norm, SepNormLayerNorm):
                norm.normalize_whole_output_of(base_model.get_submodule(layer_path))
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
            "AutoConfig": _qualified_name(self.config_class),
            **{auto: _qualified_name(model_class) for auto, model_class in self.sepnorm_auto_classes.items()},
        }
        super().post_init()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        try:
            return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        except RuntimeError as error:
            if "ignore_mismatched_sizes" not in str(error):
                raise
            # transformers' message only points at a report it logged: say which requested field caused it
            saved, _ = cls.config_class.get_config_dict(pretrained_model_name_or_path)
            changed = {key: value for key, value in kwargs.items() if key in saved and saved[key] != value}
            changes = ", ".join(f"{key}={value} (checkpoint: {saved[key]})" for key, value in changed.items())
            raise RuntimeError(
                f"The weights of {pretrained_model_name_or_path} do not fit the model asked for"
                f"{': ' + changes if changes else ''}. Load it with its own config, or pass "
                "ignore_mismatched_sizes=True to start the mismatched weights anew (e.g. a head with other labels)."
            ) from error
        except Exception as error:
            # safetensors' own message does not say which file (the package itself is not importable here)
            if type(error).__name__ != "SafetensorError":
                raise
            raise OSError(
                f"The weights of {pretrained_model_name_or_path} are truncated or corrupted ({error}): an interrupted "
                "save or download. Save or download them again, or use an earlier checkpoint."
            ) from error

    @torch.no_grad()
    def initialize_weights(self):
        super().initialize_weights()
        # The counter is not in checkpoints (non-persistent): transformers, loading on the meta device, leaves it
        # uninitialized, and a head's backbone is initialized by transformers' own `_init_weights`, which does not
        # know it: zero it here for every [CLS] BatchNorm of the model.
        for module in self.modules():
            if isinstance(module, ClsBatchNorm):
                init.zeros_(module.nonfinite_batches)

    def save_pretrained(self, *args, save_original_format: bool = False, **kwargs):
        # Save under the modules' own names rather than renamed back to a legacy layout (transformers' default for
        # ViT-MAE): the Trainer resumes by loading the raw state dict, which would otherwise match no key.
        return super().save_pretrained(*args, save_original_format=save_original_format, **kwargs)

    def _set_gradient_checkpointing(self, enable=True, gradient_checkpointing_func=None, **kwargs):
        if gradient_checkpointing_func is None:
            from torch.utils.checkpoint import checkpoint as gradient_checkpointing_func
        super()._set_gradient_checkpointing(
            enable, checkpoint_updating_statistics_once(gradient_checkpointing_func), **kwargs
        )


def _check_inputs_by_name(check, input_names, module, args, kwargs):
    check(module.config, {**dict(zip(input_names, args)), **kwargs})


def _qualified_name(cls: type) -> str:
    return f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}"


def register_family(config_class, auto_classes: dict[str, type]) -> None:
    """Mark a family's config and model classes as custom code, so that `save_pretrained` writes the code files next
    to the weights and the config's `auto_map` lists every head of the family."""
    config_class.register_for_auto_class()
    for auto_class, model_class in auto_classes.items():
        model_class.register_for_auto_class(auto_class)
        model_class.sepnorm_auto_classes = auto_classes
