"""Where SepNorm's extra time goes: the torch.profiler op table of a SepNorm step minus the stock step's, and the
norm layer alone (LayerNorm vs SepNormLayerNorm, forward + backward) at the model's hidden-state shape.

    python benchmarks/profile_sepnorm.py --model bert --shape base --mode train --dtype fp32
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
from typing import Callable

# as in bench_models.py: OpenMP threads that spin between parallel regions would bill the serial Python work of
# the layer's small ops as CPU time of every thread (libgomp reads this once, when torch loads it)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from bench_models import interleaved_times  # noqa: E402
from hf_sepnorm.remote_code.sepnorm import ClsBatchNorm, SepNormLayerNorm  # noqa: E402
from workloads import (  # noqa: E402
    BERT_SHAPES, DTYPES, MODELS, MODES, SHAPES, VARIANTS, VIT_MAE_SHAPES, build_pair, make_step
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=MODELS, default="bert")
    parser.add_argument("--shape", choices=SHAPES, default="small")
    parser.add_argument("--mode", choices=MODES, default="train")
    parser.add_argument("--dtype", choices=DTYPES, default="fp32")
    parser.add_argument("--steps", type=int, default=2, help="profiled steps per model (after one warmup step)")
    parser.add_argument("--top", type=int, default=25, help="ops listed, by |SepNorm - stock| self CPU time")
    parser.add_argument("--layer-repeats", type=int, default=30, help="timed (and profiled) calls of the norm layer alone")
    parser.add_argument("--layer-only", action="store_true", help="skip the whole-model profile")
    parser.add_argument("--compile", action="store_true", help="torch.compile(fullgraph=True) the norm layers")
    parser.add_argument("--threads", type=int, default=2)
    return parser.parse_args()


def op_profile(step, calls: int) -> dict[str, tuple[float, int]]:
    """Per op name: (self CPU ms, calls) summed over `calls` calls of `step`."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(calls):
            step()
    return {event.key: (event.self_cpu_time_total / 1e3, event.count) for event in prof.key_averages()}


def interleaved_op_profiles(steps: dict, rounds: int) -> dict[str, dict[str, tuple[float, int]]]:
    """Per variant, per op: (self CPU ms, calls) per step, profiling one step at a time, the variants alternating
    and swapping order each round as in bench_models.py (the machine is shared)."""
    totals = {variant: collections.defaultdict(lambda: [0.0, 0]) for variant in VARIANTS}
    for round_index in range(rounds):
        for variant in VARIANTS if round_index % 2 == 0 else VARIANTS[::-1]:
            for name, (ms, calls) in op_profile(steps[variant], 1).items():
                totals[variant][name][0] += ms
                totals[variant][name][1] += calls
    return {
        variant: {name: (ms / rounds, calls // rounds) for name, (ms, calls) in ops.items()}
        for variant, ops in totals.items()
    }


def print_op_diff(profiles: dict[str, dict], top: int) -> None:
    stock, sepnorm = profiles["stock"], profiles["sepnorm"]
    empty = (0.0, 0)
    names = sorted(set(stock) | set(sepnorm), key=lambda n: -abs(sepnorm.get(n, empty)[0] - stock.get(n, empty)[0]))
    totals = {variant: sum(ms for ms, _ in profiles[variant].values()) for variant in VARIANTS}
    print(f"self CPU time per step: stock {totals['stock']:.2f} ms, SepNorm {totals['sepnorm']:.2f} ms "
          f"(ratio {totals['sepnorm'] / totals['stock']:.4f})")
    print(f"{'op':<64} {'stock ms':>9} {'sep ms':>9} {'diff ms':>9} {'calls stock/sep':>16}")
    for name in names[:top]:
        (s_ms, s_calls), (p_ms, p_calls) = stock.get(name, empty), sepnorm.get(name, empty)
        print(f"{name[:64]:<64} {s_ms:9.3f} {p_ms:9.3f} {p_ms - s_ms:+9.3f} {s_calls:>8}/{p_calls:<7}")


def hidden_shape(model: str, shape: str) -> tuple[int, int, int]:
    """(batch, tokens, hidden) of the encoder's hidden states."""
    if model == "bert":
        geometry = BERT_SHAPES[shape]
        return geometry["batch_size"], geometry["seq_len"], geometry["config"].get("hidden_size", 768)
    geometry, config = VIT_MAE_SHAPES[shape], VIT_MAE_SHAPES[shape]["config"]
    patches = (config.get("image_size", 224) // config.get("patch_size", 16)) ** 2
    kept = patches if model == "vit_mae_classifier" else int(patches * 0.25)
    return geometry["batch_size"], kept + 1, config.get("hidden_size", 768)


def layer_steps(model: str, shape: str, mode: str, compiled: bool) -> dict[str, Callable[[], None]]:
    """One call (train: forward + backward) of the stock LayerNorm and of the SepNorm layer, at the hidden-state
    shape of `model`. The input is fp32 whatever the autocast: in both families every norm reads the fp32 residual
    stream (a bf16 matmul output plus an fp32 residual is fp32), and autocast leaves layer_norm and batch_norm alone."""
    batch, tokens, hidden = hidden_shape(model, shape)
    torch.manual_seed(0)
    states = torch.randn(batch, tokens, hidden)
    layers = {
        "stock": nn.LayerNorm(hidden, eps=1e-12),
        "sepnorm": SepNormLayerNorm(hidden, ClsBatchNorm(hidden, eps=1e-12), eps=1e-12),
    }

    def step_of(layer: nn.Module) -> Callable[[], None]:
        layer.train(mode == "train")
        layer = torch.compile(layer, fullgraph=True) if compiled else layer

        def call() -> None:
            if mode == "train":
                layer(states.detach().requires_grad_()).backward(states)
            else:
                with torch.inference_mode():
                    layer(states)

        return call

    return {variant: step_of(layer) for variant, layer in layers.items()}


def profile_models(args: argparse.Namespace) -> int:
    """Print the op diff of a whole SepNorm step against the stock step; return the number of SepNorm layers."""
    pair = build_pair(args.model, args.shape)
    steps = {variant: make_step(pair[variant], args.mode, args.dtype) for variant in VARIANTS}
    for step in steps.values():
        step()  # warmup: AdamW state, oneDNN primitives
    layers = sum(isinstance(module, SepNormLayerNorm) for module in pair["sepnorm"].model.modules())
    print(f"== {args.model} {args.shape} {args.mode} {args.dtype} step, stock vs SepNorm ({layers} SepNorm layers)")
    print_op_diff(interleaved_op_profiles(steps, args.steps), args.top)
    return layers


def profile_layer(args: argparse.Namespace) -> None:
    """Print the norm layer alone: median CPU time per call and the op diff, SepNormLayerNorm against LayerNorm."""
    norm_steps = layer_steps(args.model, args.shape, args.mode, args.compile)
    times = interleaved_times(norm_steps, warmup=2, repeats=args.layer_repeats)["cpu"]
    medians = {variant: statistics.median(times[variant]) * 1e3 for variant in VARIANTS}
    compiled = ", compiled" if args.compile else ""
    print(f"\n== the norm layer alone{compiled}, {hidden_shape(args.model, args.shape)} fp32, {args.mode}: LayerNorm "
          f"{medians['stock']:.3f} ms, SepNormLayerNorm(batch) {medians['sepnorm']:.3f} ms (median process CPU "
          f"time), extra {medians['sepnorm'] - medians['stock']:+.3f} ms per call")
    print_op_diff(interleaved_op_profiles(norm_steps, args.layer_repeats), args.top)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    if not args.layer_only:
        profile_models(args)
    profile_layer(args)


if __name__ == "__main__":
    main()
