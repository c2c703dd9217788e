"""Where SepNorm's extra time goes: the torch.profiler op table of a SepNorm step minus the stock step's, and the
norm layer alone (LayerNorm vs SepNormLayerNorm, forward + backward) at the model's hidden-state shape.

    python benchmarks/profile_sepnorm.py --model bert --shape base --mode train --dtype fp32
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from hf_sepnorm.sepnorm import ClsBatchNorm, SepNormLayerNorm
from workloads import BERT_SHAPES, DTYPES, MODELS, MODES, SHAPES, VARIANTS, VIT_MAE_SHAPES, build_pair, make_step


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=MODELS, default="bert")
    parser.add_argument("--shape", choices=SHAPES, default="small")
    parser.add_argument("--mode", choices=MODES, default="train")
    parser.add_argument("--dtype", choices=DTYPES, default="fp32")
    parser.add_argument("--steps", type=int, default=2, help="profiled steps per model (after one warmup step)")
    parser.add_argument("--top", type=int, default=25, help="ops listed, by |SepNorm - stock| self CPU time")
    parser.add_argument("--layer-repeats", type=int, default=30, help="timed calls of the norm layer alone")
    parser.add_argument("--threads", type=int, default=2)
    return parser.parse_args()


def op_profile(step, steps: int) -> dict[str, tuple[float, int, float]]:
    """Per op name: (self CPU ms per step, calls per step, self CPU memory MB allocated per step)."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        for _ in range(steps):
            step()
    return {
        event.key: (event.self_cpu_time_total / 1e3 / steps, event.count // steps, event.self_cpu_memory_usage / 2**20 / steps)
        for event in prof.key_averages()
    }


def print_op_diff(profiles: dict[str, dict], top: int) -> None:
    stock, sepnorm = profiles["stock"], profiles["sepnorm"]
    empty = (0.0, 0, 0.0)
    names = sorted(set(stock) | set(sepnorm), key=lambda n: -abs(sepnorm.get(n, empty)[0] - stock.get(n, empty)[0]))
    totals = {variant: sum(ms for ms, _, _ in profiles[variant].values()) for variant in VARIANTS}
    print(f"\nself CPU time per step: stock {totals['stock']:.1f} ms, SepNorm {totals['sepnorm']:.1f} ms "
          f"(ratio {totals['sepnorm'] / totals['stock']:.4f})")
    print(f"{'op':<60} {'stock ms':>9} {'sep ms':>9} {'diff ms':>9} {'calls':>11} {'sep-stock MB alloc':>18}")
    for name in names[:top]:
        (s_ms, s_calls, s_mb), (p_ms, p_calls, p_mb) = stock.get(name, empty), sepnorm.get(name, empty)
        print(f"{name[:60]:<60} {s_ms:9.2f} {p_ms:9.2f} {p_ms - s_ms:+9.2f} {s_calls:>5}/{p_calls:<5} {p_mb - s_mb:+18.1f}")


def hidden_shape(model: str, shape: str) -> tuple[int, int, int]:
    """(batch, tokens, hidden) of the encoder's hidden states."""
    if model == "bert":
        geometry = BERT_SHAPES[shape]
        return geometry["batch_size"], geometry["seq_len"], geometry["config"].get("hidden_size", 768)
    geometry, config = VIT_MAE_SHAPES[shape], VIT_MAE_SHAPES[shape]["config"]
    patches = (config.get("image_size", 224) // config.get("patch_size", 16)) ** 2
    kept = patches if model == "vit_mae_classifier" else int(patches * 0.25)
    return geometry["batch_size"], kept + 1, config.get("hidden_size", 768)


def time_layer(layer: nn.Module, states: torch.Tensor, mode: str, repeats: int) -> float:
    """Median ms of one call (train: forward + backward) after two warmup calls."""
    layer.train(mode == "train")
    times = []
    for index in range(repeats + 2):
        inputs = states.detach().requires_grad_(mode == "train")
        start = time.perf_counter()
        if mode == "train":
            layer(inputs).backward(states)
        else:
            with torch.inference_mode():
                layer(inputs)
        if index >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def print_layer_times(model: str, shape: str, mode: str, repeats: int) -> None:
    # fp32 input whatever the autocast: in both families every norm reads the fp32 residual stream (a bf16 matmul
    # output plus an fp32 residual is fp32), and autocast leaves layer_norm and batch_norm alone
    batch, tokens, hidden = hidden_shape(model, shape)
    torch.manual_seed(0)
    states = torch.randn(batch, tokens, hidden)
    layers = {
        "LayerNorm": nn.LayerNorm(hidden, eps=1e-12),
        "SepNormLayerNorm(batch)": SepNormLayerNorm(hidden, ClsBatchNorm(hidden, eps=1e-12), eps=1e-12),
    }
    results = {name: time_layer(layer, states, mode, repeats) for name, layer in layers.items()}
    print(f"\nnorm layer alone, input {tuple(states.shape)} fp32, {mode}:")
    for name, ms in results.items():
        print(f"  {name:<24} {ms:8.3f} ms")
    print(f"  extra per SepNorm call: {results['SepNormLayerNorm(batch)'] - results['LayerNorm']:+.3f} ms")


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    pair = build_pair(args.model, args.shape)
    steps = {variant: make_step(pair[variant], args.mode, args.dtype) for variant in VARIANTS}
    for step in steps.values():
        step()  # warmup: AdamW state, oneDNN primitives
    layers = sum(isinstance(module, SepNormLayerNorm) for module in pair["sepnorm"].model.modules())
    print(f"{args.model} {args.shape} {args.mode} {args.dtype}: {layers} SepNorm layers")
    print_op_diff({variant: op_profile(steps[variant], args.steps) for variant in VARIANTS}, args.top)
    print_layer_times(args.model, args.shape, args.mode, args.layer_repeats)


if __name__ == "__main__":
    main()
