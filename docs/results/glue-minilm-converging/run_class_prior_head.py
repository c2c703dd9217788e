#!/usr/bin/env python
"""Does a classification head starting at the class prior matter? (issue 33, item 1). Fixed before any run:

- the change: `--init_head_bias_from_class_frequencies true` (the head's bias starts at the log frequencies of the
  2,000 training rows' classes), everything else run_experiment.py's RECIPE; SST-2, the task whose runs in runs/
  kept their classification head as built, which are the references, paired by seed (same rows, order and draws);
- first, a reproduction check: `shared` seed 0 as built, re-run with today's code; it has to give the accuracy of
  its record in runs/ exactly, or the old records are no references and this experiment gives no verdict;
- primary, per arm (`batch-final`, then `shared`): prior head − head as built, SST-2 dev accuracy, paired t
  interval over seeds 0-4; "it matters" if either interval excludes 0. Secondary: `batch-final` − `shared` with the
  prior head, against the same difference as built (does the SepNorm verdict move); `batch-all` last, descriptive.

    nice -n 19 nohup sh -c 'while OMP_NUM_THREADS=1 python docs/results/glue-minilm-converging/run_class_prior_head.py --one; do :; done' > prior.log 2>&1 &

Records go to runs-class-prior-head/ as each run finishes; render_class_prior_head.py writes the report.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[2]))

from experiment_runner import load_script, parse_options, work_through  # noqa: E402
from run_experiment import RECIPE, SEEDS, run  # noqa: E402

RUNS = HERE / "runs-class-prior-head"
PRIOR_RECIPE = RECIPE | {"init_head_bias_from_class_frequencies": "true"}
ARMS = ("batch-final", "shared", "batch-all")  # batch-all last: descriptive
TASK = "sst2"
REPRODUCTION = ("reproduction", TASK, "shared", 0)


def plan() -> list[tuple[str, str, str, int]]:
    """(kind, task, arm, seed): the reproduction check, then seed-major over the primary arms, then batch-all."""
    primary = [("prior", TASK, arm, seed) for seed in SEEDS for arm in ARMS[:2]]
    return [REPRODUCTION, *primary, *(("prior", TASK, ARMS[2], seed) for seed in SEEDS)]


def record_path(results_dir: Path, kind: str, task: str, arm: str, seed: int) -> Path:
    return results_dir / kind / task / arm / f"seed{seed}.json"


def main() -> None:
    options = parse_options(__doc__.splitlines()[0], RUNS, "glue/")
    one = options.one
    data_dir, results_dir = Path(options.data_dir), Path(options.results_dir)
    runs = {f"{kind} {task} {arm} seed{seed}": (kind, task, arm, seed) for kind, task, arm, seed in plan()}
    todo = [(name, record_path(results_dir, *runs[name])) for name in runs]
    todo = [(name, path) for name, path in todo if not path.exists()]
    if not todo:
        print("every run of the plan is recorded", flush=True)
        raise SystemExit(3 if one else 0)
    import run_experiment

    script = load_script("run_glue")

    def one_run(name: str) -> dict:
        kind, task, arm, seed = runs[name]
        run_experiment.RECIPE = RECIPE if kind == "reproduction" else PRIOR_RECIPE  # what run() passes and records
        return run(task, arm, seed, data_dir, script, options.threads)

    ran = work_through(todo, one_run, lambda record: f"accuracy {record['metrics']['eval_accuracy']:.4f}",
                       limit=1 if one else None)  # fmt: skip
    if one and not ran:
        raise SystemExit(3)  # every run left is claimed by another live process


if __name__ == "__main__":
    main()
