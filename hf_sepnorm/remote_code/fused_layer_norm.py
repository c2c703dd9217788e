"""The SepNorm of a training step with a [CLS] BatchNorm on batch statistics (the paper's default) as one autograd
node: the same computation as `SepNormLayerNorm`'s general path, to the bit, about twice as fast per layer.

It travels with every checkpoint (remote code) beside `sepnorm.py`, which calls it: torch only.
"""

import torch
from torch import nn
from torch.autograd.function import once_differentiable


def layer_norm_with_cls_batch_statistics(sepnorm: nn.LayerNorm, hidden_states: torch.Tensor) -> torch.Tensor:
    """What `sepnorm` (a `SepNormLayerNorm` whose `cls_norm` is a `ClsBatchNorm` in training on a batch of 2 or more)
    computes, as one autograd node; the [CLS] BatchNorm's running statistics are updated from the same [CLS] rows."""
    weight, bias = sepnorm.weight, sepnorm.bias
    device_type = hidden_states.device.type
    if device_type != "cpu" and torch.is_autocast_enabled(device_type):
        # autocast on accelerators runs layer norms in fp32 (on the CPU, in the input's dtype); the native call
        # inside the autograd function must get the inputs that `nn.LayerNorm` would
        hidden_states, weight, bias = (None if t is None else t.float() for t in (hidden_states, weight, bias))
    cls_norm = sepnorm.cls_norm
    leading_tokens = sepnorm.leading_tokens
    # one copy of the [CLS] rows (batch x leading tokens of them) serves the BatchNorm and its running statistics
    cls_states = hidden_states[:, :leading_tokens].detach().float().reshape(-1, hidden_states.shape[-1]).contiguous()
    normalized = _LayerNormWithClsBatchNorm.apply(
        hidden_states, weight, bias, sepnorm.eps, cls_states, cls_norm.weight, cls_norm.bias, cls_norm.eps,
        leading_tokens,
    )
    cls_norm.track_batch_statistics(cls_states)
    return normalized


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
    def forward(ctx, hidden_states, weight, bias, eps, cls_states, cls_weight, cls_bias, cls_eps, leading_tokens):
        """`cls_states`: the first `leading_tokens` rows of `hidden_states` as a contiguous fp32 (batch x
        leading_tokens, hidden) copy (its gradient goes to `hidden_states`)."""
        normalized, mean, rstd = torch.native_layer_norm(hidden_states, hidden_states.shape[-1:], weight, bias, eps)
        cls_normalized, cls_mean, cls_invstd = torch.native_batch_norm(
            cls_states, cls_weight, cls_bias, None, None, True, 0.0, cls_eps
        )
        normalized[:, :leading_tokens] = cls_normalized.view_as(normalized[:, :leading_tokens]).to(normalized.dtype)
        ctx.save_for_backward(hidden_states, mean, rstd, weight, bias, cls_states, cls_weight, cls_mean, cls_invstd)
        ctx.cls_eps, ctx.leading_tokens = cls_eps, leading_tokens
        return normalized

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        hidden_states, mean, rstd, weight, bias, cls_states, cls_weight, cls_mean, cls_invstd = ctx.saved_tensors
        needs_states, needs_weight, needs_bias, _, _, needs_cls_weight, needs_cls_bias, _, _ = ctx.needs_input_grad
        leading = slice(0, ctx.leading_tokens)
        grad_cls_output = grad_output[:, leading].float().reshape(cls_states.shape).contiguous()
        # the incoming gradient may be shared with other nodes (e.g. both inputs of an addition): zero row 0 in a copy
        grad_tokens = grad_output.clone(memory_format=torch.contiguous_format)
        grad_tokens[:, leading] = 0
        grad_states, grad_weight, grad_bias = torch.ops.aten.native_layer_norm_backward(
            grad_tokens, hidden_states, hidden_states.shape[-1:], mean, rstd, weight, bias,
            [needs_states, needs_weight, needs_bias],
        )
        grad_cls_states, grad_cls_weight, grad_cls_bias = torch.ops.aten.native_batch_norm_backward(
            grad_cls_output, cls_states, cls_weight, None, None, cls_mean, cls_invstd, True, ctx.cls_eps,
            [needs_states, needs_cls_weight, needs_cls_bias],
        )
        if needs_states:
            grad_states[:, leading] = grad_cls_states.view_as(grad_states[:, leading]).to(grad_states.dtype)
        return grad_states, grad_weight, grad_bias, None, None, grad_cls_weight, grad_cls_bias, None, None
