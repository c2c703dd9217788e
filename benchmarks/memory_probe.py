"""Peak memory of one model's steps, measured in a process of its own.

Run by `bench_models.py` once per (model, shape, mode, dtype, variant), so that the two models never share an
allocator, a heap high-water mark or a page cache state. Prints one JSON line:

- `rss_before_mb`: resident set size once the model, its inputs and the step (optimizer) are built;
- `peak_rss_mb`: the peak RSS during the steps (the kernel's high-water mark `VmHWM`, reset to the current RSS
  just before them: importing torch and transformers peaks higher than a small model's steps);
- `step_peak_mb`: `peak_rss_mb - rss_before_mb`, what the steps themselves add at their peak (activations,
  gradients, AdamW state, workspace).

torch allocates CPU tensors with malloc, which tracemalloc does not see, and CPU has no allocator statistics like
`torch.cuda.max_memory_allocated`: the kernel's RSS high-water mark is what the process really needed.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
from pathlib import Path

import torch

import hf_sepnorm.remote_code.sepnorm
from workloads import DTYPES, MODELS, MODES, SHAPES, VARIANTS, build_inputs, build_model, make_step, make_workload


def current_rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def reset_peak_rss() -> None:
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # Linux >= 4.0: the high-water mark becomes the current RSS


def peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 2**10  # kB


def measure(model: str, shape: str, mode: str, dtype: str, variant: str, steps: int) -> dict[str, float]:
    workload = make_workload(model, build_model(model, shape, variant), build_inputs(model, shape))
    step = make_step(workload, mode, dtype)
    gc.collect()
    before = current_rss_mb()
    reset_peak_rss()
    for _ in range(steps):
        step()
    peak = peak_rss_mb()
    # which SepNorm code this process measured (bench_models.py records the same digest for the timings)
    digest = hashlib.sha1(Path(hf_sepnorm.remote_code.sepnorm.__file__).read_bytes()).hexdigest()[:12]
    return dict(rss_before_mb=before, peak_rss_mb=peak, step_peak_mb=peak - before, sepnorm_py_sha1=digest)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=MODELS, required=True)
    parser.add_argument("--shape", choices=SHAPES, required=True)
    parser.add_argument("--mode", choices=MODES, required=True)
    parser.add_argument("--dtype", choices=DTYPES, required=True)
    parser.add_argument("--variant", choices=VARIANTS, required=True)
    # two training steps: the second holds the AdamW state while it builds activations and gradients
    parser.add_argument("--steps", type=int, help="default: 2 to train, 1 to infer")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    steps = args.steps or (2 if args.mode == "train" else 1)
    print(json.dumps(measure(args.model, args.shape, args.mode, args.dtype, args.variant, steps)))


if __name__ == "__main__":
    main()
