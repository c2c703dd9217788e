#!/usr/bin/env python
"""Why a [CLS] BatchNorm arm's STS-B Pearson is high while its MSE is above the constant predictor's: one diagnostic
run, not part of the plan. `batch-final` seed 0 is trained again with the experiment's recipe (run_experiment.py's
arguments, so the same run), its dev predictions are compared with the gold scores (mean, standard deviation, MSE),
and the same weights are evaluated again after re-estimating the [CLS] BatchNorm statistics on training batches.
Writes diagnostics.json, which render_report.py reports.

    OMP_NUM_THREADS=1 nohup python docs/results/glue-minilm-converging/diagnose_mse.py > diagnose.log 2>&1 &
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run_experiment  # noqa: E402

ARM, SEED, TASK = "batch-final", 0, "stsb"


def dev_predictions(model_dir: str, data_dir: Path) -> tuple[list[float], list[float]]:
    """The saved model's dev predictions in eval mode (the running statistics of training) and the gold scores."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from hf_sepnorm.data import load_glue

    dev = load_glue(TASK, str(data_dir / "glue" / "STS-B"), splits=["validation"])["validation"]
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    predictions = []
    with torch.no_grad():
        for start in range(0, len(dev), 64):
            rows = dev[start : start + 64]
            inputs = tokenizer(rows["sentence1"], rows["sentence2"], truncation=True, max_length=128, padding=True,
                               return_tensors="pt")  # fmt: skip
            predictions += model(**inputs).logits.squeeze(-1).tolist()
    return predictions, [float(label) for label in dev["label"]]


def main() -> None:
    import statistics

    data_dir = Path(os.environ["SEPNORM_DATA_DIR"])
    script = run_experiment.load_script("run_glue")
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="glue-diagnose-") as work:
        output_dir = os.path.join(work, "run")
        trained = script.main(run_experiment.arguments(TASK, ARM, SEED, output_dir, data_dir))
        predictions, gold = dev_predictions(output_dir, data_dir)
        reestimated = script.main(["--model_name_or_path", output_dir, "--task_name", TASK, "--data_dir",
                                   str(data_dir / "glue" / "STS-B"), "--output_dir", os.path.join(work, "again"),
                                   "--do_eval", "--recalibrate_cls_norm", "true", "--recalibration_batches", "50",
                                   "--max_train_samples", str(run_experiment.RECIPE["max_train_samples"]),
                                   "--train_sample_seed", str(run_experiment.RECIPE["train_sample_seed"]),
                                   "--per_device_train_batch_size", "32", "--report_to", "none"])  # fmt: skip
    record = {
        "arm": ARM, "seed": SEED, "task": TASK,
        "trained_metrics": {key: trained[key] for key in ("eval_pearson", "eval_spearmanr", "eval_loss")},
        "predictions": {"mean": statistics.mean(predictions), "sd": statistics.stdev(predictions)},
        "gold": {"mean": statistics.mean(gold), "sd": statistics.stdev(gold)},
        "mse_recomputed": statistics.mean((p - g) ** 2 for p, g in zip(predictions, gold)),
        "reestimated_metrics": {key: reestimated[key] for key in ("eval_pearson", "eval_spearmanr", "eval_loss")},
        "seconds": round(time.time() - started, 1),
    }
    (HERE / "diagnostics.json").write_text(json.dumps(record, indent=2))
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
