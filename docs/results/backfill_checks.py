#!/usr/bin/env python
"""Add to results.json files written before `hf-sepnorm compare` had them the two checks its reports now read, once:

- the image track's trivial predictor (zeros under norm_pix_loss), computed from the same test images (scikit-learn's
  digits, which the track rebuilds deterministically), so that the report says whether the MAE learned;
- each GLUE run's fine-tuned eval loss, read from its own log (runs/<track>/<arm>-seed<i>/<task>/eval_results.json,
  written by run_glue.py), and the constant predictor's loss on the same training rows (the first
  `max_glue_train`, as those runs took them), so that the report says which fine-tunings converged.

    SEPNORM_DATA_DIR=../shared/data python docs/results/backfill_checks.py && python docs/results/render.py

A results.json that has them is left as it is; render.py then renders from the JSON alone.
"""

import dataclasses
import json
import os
import tempfile
from pathlib import Path

from hf_sepnorm.compare.recipes import ImageRecipe
from hf_sepnorm.compare.tracks import ImageTrack
from hf_sepnorm.compare.tracks.glue import (
    constant_glue_loss,
    constant_loss_baseline,
    glue_convergence_checks,
    glue_metrics,
)
from hf_sepnorm.compare.tracks.image import TRIVIAL_MAE, zero_prediction_mae_loss

HERE = Path(__file__).parent


def with_learning_checks(summary: dict) -> dict:
    """A results.json written before compare checked pretraining against its trivial predictor: the image track's
    predictor (zeros under norm_pix_loss) computed now from the same test images (scikit-learn's digits, which the
    track rebuilds deterministically), so that its report says whether the MAE learned."""
    track = summary["tracks"].get("image")
    if track is None or TRIVIAL_MAE in track["baselines"] or "digits" not in track["title"]:
        return summary
    with tempfile.TemporaryDirectory() as work:
        images = ImageTrack(ImageRecipe(model=track["recipe"]["model"]), None, Path(work))
        value = zero_prediction_mae_loss(images._normalized(images.test_pixels), track["recipe"]["model"]["patch_size"])
    track["baselines"][TRIVIAL_MAE] = [value, "MAE loss (norm_pix_loss) of predicting 0 for every masked pixel: the "
                                       "trivial solution (computed when rendering, from the same test images)"]  # fmt: skip
    track["learning_check"] = images.learning_check
    return summary


def with_convergence_checks(summary: dict, folder: Path) -> dict:
    """A results.json written before compare recorded fine-tuning losses: each run's eval loss read from its own log
    (runs/<track>/<arm>-seed<i>/<task>/eval_results.json, written by run_glue.py) and the constant predictor's loss
    computed from the same training rows (the first `max_glue_train`, as those runs took them), so that its report
    says which fine-tunings converged. Needs the GLUE files ($SEPNORM_DATA_DIR/glue)."""
    data_dir = os.environ.get("SEPNORM_DATA_DIR")
    for name, track in summary["tracks"].items():
        tasks = track["recipe"].get("glue_tasks")
        if not tasks or track.get("convergence_checks") or not data_dir:
            continue
        for arm, runs in track["runs"].items():
            for seed, run in enumerate(runs):
                for task in tasks:
                    logged = json.loads((folder / "runs" / name / f"{arm}-seed{seed}" / task / "eval_results.json").read_text())
                    run[f"{task}_eval_loss"] = logged["eval_loss"]
        for task in tasks:
            rows = (task, str(Path(data_dir) / "glue"), track["recipe"]["max_glue_train"], None)
            kind = "MSE of the mean training score" if task == "stsb" else "cross-entropy of the training class frequencies"
            track["baselines"][constant_loss_baseline(task)] = [constant_glue_loss(*rows), kind + " (computed when rendering)"]
        track["metrics"] += [dataclasses.asdict(metric) for metric in glue_metrics(tasks) if metric.role == "convergence"]
        track["convergence_checks"] = glue_convergence_checks(tasks)
    return summary


def main():
    for results in sorted(HERE.glob("*/results.json")):
        summary = json.loads(results.read_text())
        before = json.dumps(summary)
        summary = with_convergence_checks(with_learning_checks(summary), results.parent)
        if json.dumps(summary) != before:
            results.write_text(json.dumps(summary, indent=2, default=str))
            print(f"added the checks to {results}")


if __name__ == "__main__":
    main()
