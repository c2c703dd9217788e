"""The main job (`hf-sepnorm compare` with its defaults) on an idle machine and beside one busy process.

A job that shares its cores fairly takes, beside one other process that keeps one core busy, at most two to three
times its idle wall time and about its idle CPU time; threads that spin while they wait for a descheduled sibling
(OpenMP, OpenBLAS) burn CPU time instead and stretch the run several-fold. This script runs the main job twice, in
fresh processes and output folders: alone, then beside a pure-CPU loop it starts itself (bounded: it stops with the
job, or after `--busy_limit` seconds), and prints wall time, CPU time (user + sys of the job and all its children,
from `wait4`) and the ratios, with the load average at each start: on a machine others share, "idle" is not idle,
and the CPU times are the evidence that does not depend on it.

    python benchmarks/bench_main_job.py                      # the main job as the README gives it
    python benchmarks/bench_main_job.py --json /tmp/bench.json -- --seeds 1   # arguments after -- go to compare
    python benchmarks/bench_main_job.py --without_thread_settings   # as it ran before it set its thread environment
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUSY_LOOP = "import sys, time\nend = time.monotonic() + float(sys.argv[1])\nwhile time.monotonic() < end:\n    pass\n"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy_limit", type=float, default=3600, help="the busy loop's longest life, seconds")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="set in the job's environment")
    parser.add_argument("--only", choices=("idle", "busy"), help="measure one condition only")
    parser.add_argument("--without_thread_settings", action="store_true", help="import torch and numpy before "
                        "`hf-sepnorm` sets its thread environment, which then has no effect: the job as it ran before "
                        "those settings")  # fmt: skip
    parser.add_argument("--json", type=Path, help="write the measurements here too")
    parser.add_argument("compare_args", nargs="*", help="after --: extra arguments of hf-sepnorm compare")
    return parser.parse_args()


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def run_main_job(compare_args: list[str], env: dict[str, str], busy: bool, busy_limit: float,
                 without_thread_settings: bool) -> dict:
    """One run of `hf-sepnorm compare` in a fresh output folder: wall seconds, CPU seconds of the job's process tree,
    the busy loop's CPU seconds, the load average at the start, and the console's line count."""
    output_dir = Path(tempfile.mkdtemp(prefix="bench-main-job-"))
    # the console script, as the README runs it: it sets the thread environment before torch loads
    program = [str(Path(sys.executable).with_name("hf-sepnorm"))]
    if without_thread_settings:  # OpenMP and OpenBLAS read their environment once, when torch and numpy load
        program = [sys.executable, "-c", "import sys, numpy, torch, hf_sepnorm_cli; sys.exit(hf_sepnorm_cli.main())"]
    command = [*program, "compare", "--output_dir", str(output_dir), *compare_args]
    loop = None
    if busy:
        loop = subprocess.Popen([sys.executable, "-c", BUSY_LOOP, str(busy_limit)])
        time.sleep(0.5)  # the competitor holds its core before the job starts
    load = load_average()
    started = time.perf_counter()
    job = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    console = job.stdout.read()
    _, status, usage = os.wait4(job.pid, 0)
    wall = time.perf_counter() - started
    loop_cpu = None
    if loop is not None:
        loop.terminate()
        _, _, loop_usage = os.wait4(loop.pid, 0)
        loop_cpu = loop_usage.ru_utime + loop_usage.ru_stime
    shutil.rmtree(output_dir, ignore_errors=True)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"hf-sepnorm compare failed ({'busy' if busy else 'idle'}):\n{console[-4000:]}")
    return {"wall_seconds": wall, "cpu_seconds": usage.ru_utime + usage.ru_stime, "user_seconds": usage.ru_utime,
            "sys_seconds": usage.ru_stime, "busy_loop_cpu_seconds": loop_cpu, "load_average_at_start": load,
            "console_lines": len(console.splitlines())}  # fmt: skip


def main() -> None:
    args = parse_args()
    env = dict(os.environ, **dict(item.split("=", 1) for item in args.env))
    conditions = [args.only] if args.only else ["idle", "busy"]
    print(f"hf-sepnorm compare {' '.join(args.compare_args)} on {len(os.sched_getaffinity(0))} cores "
          f"(cpu_count {os.cpu_count()}); extra environment: {' '.join(args.env) or 'none'}"
          f"{'; without the thread settings' if args.without_thread_settings else ''}", flush=True)  # fmt: skip
    results = {}
    for condition in conditions:
        results[condition] = run_main_job(args.compare_args, env, condition == "busy", args.busy_limit, args.without_thread_settings)
        row = results[condition]
        print(f"{condition:>5}: wall {row['wall_seconds']:7.1f} s   CPU {row['cpu_seconds']:7.1f} s "
              f"(user {row['user_seconds']:.1f}, sys {row['sys_seconds']:.1f})   load average at start "
              f"{row['load_average_at_start']}   console {row['console_lines']} lines", flush=True)  # fmt: skip
    if len(results) == 2:
        idle, busy = results["idle"], results["busy"]
        results["ratios"] = {"wall busy/idle": busy["wall_seconds"] / idle["wall_seconds"],
                             "cpu busy/idle": busy["cpu_seconds"] / idle["cpu_seconds"]}  # fmt: skip
        print("busy/idle: wall {wall busy/idle:.2f}x, CPU {cpu busy/idle:.2f}x (fair share: wall at most 2-3x, "
              "CPU about 1x)".format(**results["ratios"]))  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"compare_args": args.compare_args, "env": args.env, **results}, indent=1))


if __name__ == "__main__":
    main()
