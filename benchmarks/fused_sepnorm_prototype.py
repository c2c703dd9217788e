"""A prototype of the fix proposed for `SepNormLayerNorm`'s training step, checked and timed against it.

`SepNormLayerNorm.forward` writes the [CLS] row into the LayerNorm output in place, and reads it with
`hidden_states[:, 0]`. Autograd then spends three full-size (batch, tokens, hidden) passes per layer on one row:
CopySlices clones the whole output gradient to zero its row 0, `select_backward` zero-fills a full-size gradient
for the [CLS] read, and the engine adds it to the LayerNorm's input gradient. `_SepNormFunction` computes the same
forward and gradients with only the LayerNorm's own full-size work: the LayerNorm backward runs on the whole
gradient, row 0's share is taken back out of the LayerNorm's parameter gradients (a (batch, hidden) product),
and row 0 of the input gradient is overwritten with the BatchNorm's.

    python benchmarks/fused_sepnorm_prototype.py --shape 32 128 768
"""

from __future__ import annotations

import argparse
import copy
import statistics

import torch
from torch import nn

from bench_models import interleaved_times
from hf_sepnorm.sepnorm import ClsBatchNorm, SepNormLayerNorm, is_recomputing_activations


class _SepNormFunction(torch.autograd.Function):
    """LayerNorm of every row, then row 0 replaced by a batch-statistics BatchNorm of row 0 (in fp32)."""

    @staticmethod
    def forward(ctx, states, weight, bias, cls_weight, cls_bias, eps, cls_eps):
        normalized_shape = states.shape[-1:]
        output, mean, rstd = torch.native_layer_norm(states, normalized_shape, weight, bias, eps)
        cls_states = states[:, 0].float().contiguous()
        cls_output, cls_mean, cls_invstd = torch.native_batch_norm(
            cls_states, cls_weight, cls_bias, None, None, True, 0.0, cls_eps
        )
        output[:, 0] = cls_output.to(output.dtype)
        ctx.save_for_backward(states, mean, rstd, weight, bias, cls_states, cls_weight, cls_mean, cls_invstd)
        ctx.cls_eps = cls_eps
        return output

    @staticmethod
    def backward(ctx, grad_output):
        states, mean, rstd, weight, bias, cls_states, cls_weight, cls_mean, cls_invstd = ctx.saved_tensors
        grad_output = grad_output.contiguous()
        grad_states, grad_weight, grad_bias = torch.ops.aten.native_layer_norm_backward(
            grad_output, states, states.shape[-1:], mean, rstd, weight, bias, [True, True, True]
        )
        # Row 0 went through the [CLS] norm: take its share back out of the LayerNorm's parameter gradients.
        grad_cls = grad_output[:, 0]
        cls_normalized = (states[:, 0] - mean[:, 0]) * rstd[:, 0]
        grad_weight -= (grad_cls * cls_normalized).sum(0).to(grad_weight.dtype)
        grad_bias -= grad_cls.sum(0).to(grad_bias.dtype)
        grad_cls_states, grad_cls_weight, grad_cls_bias = torch.ops.aten.native_batch_norm_backward(
            grad_cls.float(), cls_states, cls_weight, None, None, cls_mean, cls_invstd, True, ctx.cls_eps,
            [True, True, True],
        )
        grad_states[:, 0] = grad_cls_states.to(grad_states.dtype)
        return grad_states, grad_weight, grad_bias, grad_cls_weight, grad_cls_bias, None, None


class FusedSepNormLayerNorm(SepNormLayerNorm):
    """`SepNormLayerNorm` whose training forward with a [CLS] BatchNorm on batch statistics is `_SepNormFunction`
    (every other case, eval included, is the original forward, which has no backward to pay for)."""

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        norm = self.cls_norm
        if not (self.training and type(norm) is ClsBatchNorm and hidden_states.shape[0] > 1):
            return super().forward(hidden_states)
        output = _SepNormFunction.apply(
            hidden_states, self.weight, self.bias, norm.weight, norm.bias, self.eps, norm.eps
        )
        if not is_recomputing_activations():
            cls_states = hidden_states[:, 0].detach().float()
            norm._update_running_statistics(cls_states.mean(dim=0), cls_states.var(dim=0, unbiased=True))
        return output


def check_same(reference: nn.Module, fused: nn.Module, states: torch.Tensor) -> float:
    """Largest difference of outputs, input and parameter gradients and running statistics, each relative to the
    tensor's largest magnitude (parameter gradients sum batch x tokens rows: fp32 summation order shows)."""
    results = []
    for layer in (reference, fused):
        inputs = states.detach().requires_grad_()
        output = layer(inputs)
        output.backward(torch.randn(output.shape, generator=torch.Generator().manual_seed(1)))
        tensors = [output, inputs.grad, layer.cls_norm.running_mean, layer.cls_norm.running_var]
        tensors += [parameter.grad for parameter in layer.parameters()]
        results.append(tensors)
    return max(((a - b).abs().max() / a.abs().max()).item() for a, b in zip(*results))


def layer_step(layer: nn.Module, states: torch.Tensor):
    def step() -> None:
        layer(states.detach().requires_grad_()).backward(states)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, default=(32, 128, 768), metavar=("BATCH", "TOKENS", "HIDDEN"))
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    hidden = args.shape[-1]
    states = torch.randn(*args.shape)
    reference = SepNormLayerNorm(hidden, ClsBatchNorm(hidden, eps=1e-12), eps=1e-12).train()
    with torch.no_grad():  # non-trivial affine parameters, so the parameter-gradient correction is exercised
        for parameter in reference.parameters():
            parameter.normal_()
    fused = copy.deepcopy(reference)
    fused.__class__ = FusedSepNormLayerNorm
    print(f"max relative difference (output, gradients, running statistics): {check_same(reference, fused, states):.3g}")
    layers = {"stock": nn.LayerNorm(hidden, eps=1e-12), "sepnorm": reference, "fused": fused}
    pairs = {"sepnorm": ("stock", "sepnorm"), "fused": ("stock", "fused")}
    for name, (stock_key, variant_key) in pairs.items():
        steps = {"stock": layer_step(layers[stock_key], states), "sepnorm": layer_step(layers[variant_key], states)}
        times = interleaved_times(steps, warmup=2, repeats=args.repeats)["cpu"]
        stock_ms, variant_ms = (statistics.median(times[key]) * 1e3 for key in ("stock", "sepnorm"))
        print(f"forward + backward {tuple(args.shape)}: LayerNorm {stock_ms:.3f} ms, {name} {variant_ms:.3f} ms "
              f"(median process CPU time), extra {variant_ms - stock_ms:+.3f} ms per layer")


if __name__ == "__main__":
    main()
