"""Time and memory of SepNorm models against the stock transformers models of identical shape and weights.

Times come from one process in which the two models' steps alternate (stock, SepNorm, then SepNorm, stock, ...), so
that a shared machine's load falls on both alike; each model's time is the median of `--repeats` steps, and the
ratio is SepNorm / stock of the medians. Each step is timed twice: wall clock, and the process's CPU time (all
threads), which does not advance while other jobs hold the cores. Peak memory comes from fresh processes
(`memory_probe.py`), one per model.

    python benchmarks/bench_models.py --model all --shape small --mode all --dtype all
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

# OpenMP threads that spin while waiting burn CPU time and, on an oversubscribed machine, wait for a descheduled
# sibling: sleeping waiters keep both clocks about the work (libgomp reads this once, when torch loads it).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torch._dynamo  # noqa: E402
import transformers  # noqa: E402

import hf_sepnorm.remote_code.sepnorm  # noqa: E402
from workloads import DTYPES, MODELS, MODES, SHAPES, VARIANTS, Workload, build_pair, make_step

PROBE = Path(__file__).with_name("memory_probe.py")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=(*MODELS, "all"), default="all")
    parser.add_argument("--shape", choices=SHAPES, default="small")
    parser.add_argument("--mode", choices=(*MODES, "all"), default="all")
    parser.add_argument("--dtype", choices=(*DTYPES, "all"), default="all")
    parser.add_argument("--compile", action="store_true", help="torch.compile(model, fullgraph=True) both models")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per model (compiled: at least 2)")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per model")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads, here and in memory probes")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument(
        "--mmap-threshold",
        type=int,
        help="MALLOC_MMAP_THRESHOLD_ of the memory probes (e.g. 131072): freed tensors leave the RSS at once",
    )
    parser.add_argument("--json", type=Path, help="write the results here (rewritten after each measurement)")
    return parser.parse_args()


def expand(choice: str, values: tuple[str, ...]) -> tuple[str, ...]:
    return values if choice == "all" else (choice,)


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def spread(times: list[float]) -> dict[str, float]:
    quartiles = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    return dict(
        median_s=statistics.median(times), min_s=min(times), max_s=max(times), q1_s=quartiles[0], q3_s=quartiles[2]
    )


def compare(times: dict[str, list[float]]) -> dict:
    """Each variant's spread, the ratio of the medians and the spread of the per-round ratios."""
    paired = [s / t for s, t in zip(times["sepnorm"], times["stock"])]
    return dict(
        **{variant: spread(times[variant]) for variant in VARIANTS},
        ratio=statistics.median(times["sepnorm"]) / statistics.median(times["stock"]),
        paired_ratio=dict(median=statistics.median(paired), min=min(paired), max=max(paired)),
    )


def compile_forward(workload: Workload) -> tuple[Callable, dict]:
    """`torch.compile(fullgraph=True)` of the model, after `torch._dynamo.explain` has listed any graph breaks: a
    break is reported, never hidden, and fullgraph then fails loudly at the first call."""
    explanation = torch._dynamo.explain(workload.loss)(workload.model, workload.inputs)
    report = dict(
        graph_count=explanation.graph_count,
        graph_break_count=explanation.graph_break_count,
        break_reasons=[str(reason.reason) for reason in explanation.break_reasons],
    )
    return torch.compile(workload.model, fullgraph=True), report


def interleaved_times(
    steps: dict[str, Callable[[], None]], warmup: int, repeats: int
) -> dict[str, dict[str, list[float]]]:
    """Run the variants' steps alternately, swapping which goes first each round (so neither always follows the
    other's cache and allocator state); return per clock, per variant, the timed steps' seconds."""
    for _ in range(warmup):
        for variant in VARIANTS:
            steps[variant]()
    times = {clock: {variant: [] for variant in VARIANTS} for clock in CLOCKS}
    for round_index in range(repeats):
        order = VARIANTS if round_index % 2 == 0 else VARIANTS[::-1]
        for variant in order:
            start = {clock: read() for clock, read in CLOCKS.items()}
            steps[variant]()
            for clock, read in CLOCKS.items():
                times[clock][variant].append(read() - start[clock])
    return times


def time_pair(model: str, shape: str, mode: str, dtype: str, args: argparse.Namespace) -> dict:
    pair = build_pair(model, shape)
    result: dict = {}
    forwards = {variant: None for variant in VARIANTS}
    if args.compile:
        torch._dynamo.reset()  # each configuration compiles afresh, far from the recompile limit
        for variant, workload in pair.items():
            workload.model.train(mode == "train")  # explain must trace the mode that will run
            forwards[variant], result[f"{variant}_compile"] = compile_forward(workload)
    steps = {variant: make_step(pair[variant], mode, dtype, forwards[variant]) for variant in VARIANTS}
    try:
        times = interleaved_times(steps, max(args.warmup, 2) if args.compile else args.warmup, args.repeats)
    except Exception as error:  # a fullgraph failure is a result to report, not a crash of the whole sweep
        result["error"] = f"{type(error).__name__}: {error}".splitlines()[0]
        return result
    for clock in CLOCKS:
        result[clock] = compare(times[clock])
    return result


def probe_memory(model: str, shape: str, mode: str, dtype: str, variant: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, str(PROBE), f"--model={model}", f"--shape={shape}", f"--mode={mode}"]
    command += [f"--dtype={dtype}", f"--variant={variant}", f"--threads={args.threads}"]
    # glibc raises its mmap threshold as large blocks are freed, after which freed tensors stay in the heap (and the
    # RSS) for reuse; a fixed threshold returns each freed tensor at once, so the RSS peak is the live tensors'
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(args.mmap_threshold)) if args.mmap_threshold else None
    completed = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def measure_memory(model: str, shape: str, mode: str, dtype: str, args: argparse.Namespace) -> dict:
    memory = {variant: probe_memory(model, shape, mode, dtype, variant, args) for variant in VARIANTS}
    memory["malloc_mmap_threshold"] = args.mmap_threshold
    memory["peak_rss_ratio"] = memory["sepnorm"]["peak_rss_mb"] / memory["stock"]["peak_rss_mb"]
    memory["step_peak_ratio"] = memory["sepnorm"]["step_peak_mb"] / memory["stock"]["step_peak_mb"]
    return memory


def source_digest(module) -> str:
    """Which version of the SepNorm code was measured: other engineers edit it while benchmarks run."""
    return hashlib.sha1(Path(module.__file__).read_bytes()).hexdigest()[:12]


def environment(args: argparse.Namespace) -> dict:
    return dict(
        sepnorm_py_sha1=source_digest(hf_sepnorm.remote_code.sepnorm),
        omp_wait_policy=os.environ["OMP_WAIT_POLICY"],
        command="python " + " ".join([os.path.relpath(sys.argv[0]), *sys.argv[1:]]),
        started=datetime.datetime.now().isoformat(timespec="seconds"),
        loadavg_start=os.getloadavg(),
        cpu=platform.processor() or platform.machine(),
        cpu_count=os.cpu_count(),
        threads=args.threads,
        python=platform.python_version(),
        torch=torch.__version__,
        transformers=transformers.__version__,
    )


def format_clock(comparison: dict) -> str:
    stock, sepnorm = comparison["stock"], comparison["sepnorm"]
    paired = comparison["paired_ratio"]
    return (
        f"{stock['median_s']:8.3f} {sepnorm['median_s']:8.3f} {comparison['ratio']:6.3f} "
        f"{paired['min']:5.3f}-{paired['max']:5.3f}"
    )


def format_row(row: dict) -> str:
    compiled = "yes" if row["compiled"] else "no"
    key = f"{row['model']:<18} {row['shape']:<5} {row['mode']:<5} {row['dtype']:<4} {compiled:<3}"
    if "error" in row:
        return f"{key}  ERROR {row['error']}"
    memory = row.get("memory")
    mem = "" if memory is None else (
        f" {memory['stock']['peak_rss_mb']:7.0f} {memory['sepnorm']['peak_rss_mb']:7.0f} {memory['peak_rss_ratio']:6.3f}"
        f" {memory['step_peak_ratio']:6.3f}"
    )
    return f"{key}  {format_clock(row['wall'])}  {format_clock(row['cpu'])} {row['loadavg_1min']:5.1f}{mem}"


CLOCK_HEADER = f"{'stock s':>8} {'sep s':>8} {'ratio':>6} {'paired r':>11}"
HEADER = (
    f"{'':<38}  {'wall clock':^37}  {'process CPU time':^37}\n"
    f"{'model':<18} {'shape':<5} {'mode':<5} {'dtype':<4} {'cmp':<3}  {CLOCK_HEADER}  {CLOCK_HEADER} {'load':>5} "
    f"{'stockMB':>7} {'sepMB':>7} {'peak':>6} {'step':>6}"
)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    report = dict(environment=environment(args), results=[])
    print(HEADER, flush=True)
    for model in expand(args.model, MODELS):
        for mode in expand(args.mode, MODES):
            for dtype in expand(args.dtype, DTYPES):
                row = dict(model=model, shape=args.shape, mode=mode, dtype=dtype, compiled=args.compile)
                row.update(time_pair(model, args.shape, mode, dtype, args))
                # memory is measured for the eager models only: a compiling process's peak is the compiler's
                if not args.no_memory and not args.compile:
                    row["memory"] = measure_memory(model, args.shape, mode, dtype, args)
                row["loadavg_1min"] = os.getloadavg()[0]  # the machine is shared: how loaded it was meanwhile
                report["results"].append(row)
                print(format_row(row), flush=True)
                report["environment"]["loadavg_end"] = os.getloadavg()
                if args.json:
                    args.json.parent.mkdir(parents=True, exist_ok=True)
                    args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
