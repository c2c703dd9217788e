#!/usr/bin/env python
"""The control rows again (issue 33, item 2): `shared` seeds 0-4 re-run with today's script, whose standardized
[CLS] divides by sqrt(variance + 1e-5) (BatchNorm's epsilon) instead of std + 1e-12.

    OMP_NUM_THREADS=1 nohup python docs/results/simcse-minilm/rerun_control.py > simcse-control.log 2>&1 &

The same recipe, seeds and arguments as run_experiment.py; records go to runs-control/shared/seed<i>.json as each
run finishes. render_report.py takes the control rows ("the arm's [CLS] against `shared`'s standardized [CLS]") from
these records, paired by seed, and reports how far their plain [CLS] Spearmans are from the original `shared` runs
(the same seed and data order: equal, unless the script's numerics changed since).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from experiment_runner import load_script, parse_options, work_through  # noqa: E402
from run_experiment import PRIMARY, SEEDS, run  # noqa: E402

CONTROL_RUNS = HERE / "runs-control"


def main() -> None:
    options = parse_options(__doc__.splitlines()[0], CONTROL_RUNS, "text/ and glue/STS-B")
    script = load_script("run_simcse")
    data_dir = Path(options.data_dir)
    work_through(
        [(f"shared seed{seed}", Path(options.results_dir) / "shared" / f"seed{seed}.json") for seed in SEEDS],
        lambda name: run("shared", int(name.split()[1][4:]), True, data_dir, script, options.threads),
        lambda record: (f"STS-B train {record['metrics'][PRIMARY]:.2f}, standardized "
                        f"{record['metrics'][PRIMARY + '_standardized_cls']:.2f}"),
    )


if __name__ == "__main__":
    main()
