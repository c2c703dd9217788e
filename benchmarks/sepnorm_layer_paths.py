"""The cost of SepNormLayerNorm's two training paths, each against a LayerNorm, forward + backward at one shape.

`SepNormLayerNorm` trains with a [CLS] BatchNorm on batch statistics through one autograd node
(`_LayerNormWithClsBatchNorm`); every other case writes row 0 in place under autograd. This script times both on the
same input, against the stock LayerNorm, interleaved as in `bench_models.py` (median process CPU time), and checks
that the two paths give the same outputs, gradients and running statistics.

    python benchmarks/sepnorm_layer_paths.py --shape 32 128 768
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics

# as in bench_models.py: OpenMP threads that spin between parallel regions would bill the serial Python work of
# the layer's small ops as CPU time of every thread (libgomp reads this once, when torch loads it)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from bench_models import interleaved_times  # noqa: E402
from hf_sepnorm.remote_code.sepnorm import ClsBatchNorm, SepNormLayerNorm  # noqa: E402


class RowWriteSepNorm(SepNormLayerNorm):
    """SepNormLayerNorm forced onto its general path: the [CLS] row written into the LayerNorm output under autograd."""

    forward = SepNormLayerNorm._forward_calling_cls_norm


def largest_difference(sepnorm: nn.Module, row_write: nn.Module, states: torch.Tensor) -> float:
    """Largest difference of outputs, input and parameter gradients and running statistics of the two paths, each
    relative to the tensor's largest magnitude."""
    results = []
    for layer in (sepnorm, row_write):
        inputs = states.detach().requires_grad_()
        output = layer(inputs)
        output.backward(torch.randn(output.shape, generator=torch.Generator().manual_seed(1)))
        tensors = [output, inputs.grad, layer.cls_norm.running_mean, layer.cls_norm.running_var]
        results.append(tensors + [parameter.grad for parameter in layer.parameters()])
    return max(((a - b).abs().max() / a.abs().max()).item() for a, b in zip(*results))


def training_call(layer: nn.Module, states: torch.Tensor):
    def call() -> None:
        layer(states.detach().requires_grad_()).backward(states)

    return call


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
    sepnorm = SepNormLayerNorm(hidden, ClsBatchNorm(hidden, eps=1e-12), eps=1e-12).train()
    with torch.no_grad():  # non-trivial affine parameters
        for parameter in sepnorm.parameters():
            parameter.normal_()
    row_write = copy.deepcopy(sepnorm)
    row_write.__class__ = RowWriteSepNorm
    print(f"largest relative difference of the two paths: {largest_difference(sepnorm, row_write, states):.3g}")
    layer_norm = nn.LayerNorm(hidden, eps=1e-12)
    for name, layer in (("SepNorm, batch-statistics node", sepnorm), ("SepNorm, row write under autograd", row_write)):
        calls = {"stock": training_call(layer_norm, states), "sepnorm": training_call(layer, states)}
        times = interleaved_times(calls, warmup=2, repeats=args.repeats)["cpu"]
        stock_ms, sepnorm_ms = (statistics.median(times[key]) * 1e3 for key in ("stock", "sepnorm"))
        print(f"forward + backward {tuple(args.shape)}: LayerNorm {stock_ms:.3f} ms, {name} {sepnorm_ms:.3f} ms "
              f"(median process CPU time), extra {sepnorm_ms - stock_ms:+.3f} ms per layer")


if __name__ == "__main__":
    main()
