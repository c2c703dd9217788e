"""GLUE fine-tuning in the two text tracks (`hf-sepnorm glue`, on a fixed subset of training rows and the full dev
sets), its rows, the constant predictors' scores and losses, and the convergence check that reads them."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ...data.glue import get_glue_task, glue_task_folder, load_glue, training_rows
from ...metrics import load_glue_metric
from ..readouts import Metric, SentenceReadouts
from ..recipes import Arm, PretrainedTextRecipe, TextRecipe
from ..scripts import run_script, training_flags, write_run_log


def main_metric(task: str) -> str:
    return get_glue_task(task).main_metric


@functools.cache  # read once for the constant prediction's score and its loss
def _glue_labels(task_name: str, glue_dir: str, max_train: int | None, sample_seed: int | None):
    raw = load_glue(task_name, str(glue_task_folder(glue_dir, task_name)))
    train = training_rows(raw["train"], max_train, sample_seed)
    return np.asarray(list(train["label"])), np.asarray(list(raw["validation"]["label"]))


def majority_glue_score(task_name: str, glue_dir: str, max_train: int | None, sample_seed: int | None = None) -> float:
    """The task's metric on the full dev set for a constant prediction: the majority training class (0 for a
    regression task, where a constant has no correlation)."""
    if get_glue_task(task_name).is_regression:
        return 0.0
    train_labels, references = _glue_labels(task_name, glue_dir, max_train, sample_seed)
    values, counts = np.unique(train_labels, return_counts=True)
    score = load_glue_metric(task_name).compute(predictions=[int(values[counts.argmax()])] * len(references),
                                                references=list(references))  # fmt: skip
    return float(score[main_metric(task_name)])


def constant_glue_loss(task_name: str, glue_dir: str, max_train: int | None, sample_seed: int | None = None) -> float:
    """The fine-tuning loss (the glue script's eval_loss) on the full dev set of the best constant predictor fitted on
    the training rows: MSE of the mean training score for a regression, cross-entropy of the training class
    frequencies for a classification. A fine-tuned model whose eval loss does not beat it has not converged."""
    train_labels, references = _glue_labels(task_name, glue_dir, max_train, sample_seed)
    if get_glue_task(task_name).is_regression:
        return float(np.mean((references.astype(np.float64) - train_labels.astype(np.float64).mean()) ** 2))
    classes = get_glue_task(task_name).num_labels
    frequencies = (np.bincount(train_labels, minlength=classes) + 1) / (len(train_labels) + classes)
    return float(-np.log(frequencies[references]).mean())


def constant_loss_baseline(task: str) -> str:
    return f"{task} eval loss: constant predictor"


def text_track_baselines(sentences: SentenceReadouts, recipe, glue_dir: str) -> dict[str, tuple[float, str]]:
    """The readout task's baselines, then a constant prediction's score and loss on each GLUE task of `recipe`."""
    baselines = sentences.baselines()
    for task in recipe.glue_tasks:
        rows = (task, glue_dir, recipe.max_glue_train, recipe.glue_train_sample_seed)
        baselines[f"{task} {main_metric(task)}: constant prediction"] = (majority_glue_score(*rows),
                                                                        "majority class (0 for a regression)")
        loss_kind = "MSE of the mean training score" if get_glue_task(task).is_regression else "cross-entropy of the training class frequencies"
        baselines[constant_loss_baseline(task)] = (constant_glue_loss(*rows), loss_kind)
    return baselines


def glue_convergence_checks(tasks) -> list[dict]:
    """Per task: the fine-tuned eval loss must beat the constant predictor's, else the task's rows read inconclusive."""
    return [{"task": task, "loss": f"{task}_eval_loss", "baseline": constant_loss_baseline(task),
             "rows": [f"{task}_{main_metric(task)}", f"{task}_{main_metric(task)}_reestimated"]}
            for task in tasks]  # fmt: skip


def glue_metrics(tasks, reestimated: bool = False) -> list[Metric]:
    """The GLUE rows; with `reestimated`, also each task's score after re-estimating the [CLS] BatchNorm statistics
    (role "re-estimation": reported within each arm, not compared between arms)."""
    rows = [Metric(f"{task}_{main_metric(task)}", True, f"{task} {main_metric(task)} (full dev set, fine-tuned)")
            for task in tasks]  # fmt: skip
    if reestimated:
        rows += [Metric(f"{row.key}_reestimated", True, f"{row.description}, [CLS] statistics re-estimated",
                        "re-estimation") for row in rows]  # fmt: skip
    losses = [Metric(f"{task}_eval_loss", False, f"{task} fine-tuned eval loss ("
                     f"{'MSE' if get_glue_task(task).is_regression else 'cross-entropy'}, full dev set)", "convergence")
              for task in tasks]  # fmt: skip
    return rows + losses


def fine_tuning_flags(arm: Arm) -> list[str]:
    """The glue script's flags of a control arm (none for a SepNorm arm, whose model says it all)."""
    return ["--standardize_cls_features", "true"] if arm.standardize_cls else []


def glue_finetune(run_dir: Path, *, model: str, recipe: TextRecipe | PretrainedTextRecipe, glue_dir: str, seed: int,
                  recalibrate: bool, arm_flags: list[str], cls_batchnorm: bool) -> dict[str, float]:  # fmt: skip
    """Fine-tune `model` on each GLUE task of `recipe` with the glue script (a fixed subset of training rows, the full
    dev set) and return `{task}_{metric}` for each task's main metric, and `{task}_eval_loss`.

    Without re-estimation (`recalibrate` false) the fine-tuned model is also evaluated a second time, by the glue
    script alone (`--do_eval` of the saved model, `--recalibrate_cls_norm true`), as `{task}_{metric}_reestimated`:
    the same weights with re-estimated [CLS] BatchNorm statistics, a paired measurement of the scripts' re-estimation
    default at the cost of one evaluation. An arm without a [CLS] BatchNorm (`cls_batchnorm` false) has nothing to
    re-estimate: its two values are the same evaluation. That evaluation writes to `{task}-reestimated/`, beside the
    model's folder, which stays as the script wrote it (the folder `--push_to_hub` publishes)."""
    results = {}
    batch_size = recipe.batch_size
    for task in recipe.glue_tasks:
        task_dir = run_dir / task
        limit = ["--max_train_samples", recipe.max_glue_train] if recipe.max_glue_train else []
        if recipe.max_glue_train and recipe.glue_train_sample_seed is not None:
            limit += ["--train_sample_seed", recipe.glue_train_sample_seed]
        data_flags = ["--task_name", task, "--data_dir", glue_task_folder(glue_dir, task), "--max_seq_length",
                      recipe.max_seq_length, *limit, "--recalibration_batches", recipe.recalibration_batches]  # fmt: skip
        metrics = run_script("glue", [
            "--model_name_or_path", model, *data_flags, *arm_flags, "--recalibrate_cls_norm", str(recalibrate).lower(),
            *training_flags(task_dir, steps=recipe.finetune_steps, learning_rate=recipe.finetune_learning_rate,
                            batch_size=batch_size, seed=seed, schedule=recipe.schedule),
        ])  # fmt: skip
        write_run_log(task_dir, metrics)
        key = f"{task}_{main_metric(task)}"
        results[key] = metrics[f"eval_{main_metric(task)}"]
        results[f"{task}_eval_loss"] = metrics["eval_loss"]
        if not recalibrate:
            reestimated = metrics
            if cls_batchnorm:
                reestimated = run_script("glue", [
                    "--model_name_or_path", task_dir, *data_flags, "--recalibrate_cls_norm", "true",
                    "--output_dir", run_dir / f"{task}-reestimated", "--do_eval", "--per_device_train_batch_size", batch_size,
                    "--per_device_eval_batch_size", batch_size, "--seed", seed, "--report_to", "none",
                ])  # fmt: skip
            results[f"{key}_reestimated"] = reestimated[f"eval_{main_metric(task)}"]
    return results
