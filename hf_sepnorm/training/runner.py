"""The train / recalibrate / evaluate flow shared by the example scripts, on the HF Trainer."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import torch.distributed as dist
from transformers import Trainer, TrainingArguments

from ..recalibration import recalibrate_cls_batchnorm
from ..remote_code.sepnorm import cls_batchnorms
from .arguments import SepNormModelArguments
from .distributed import ClsStatisticsCallback, average_cls_statistics, convert_cls_batchnorm_to_sync

logger = logging.getLogger(__name__)


def prepare_for_processes(model, training_args: TrainingArguments, model_args: SepNormModelArguments) -> list:
    """Convert the [CLS] BatchNorms to SyncBatchNorm when several processes train (unless turned off) and return
    the callbacks that keep and verify identical state across ranks. Call before building the Trainer."""
    if training_args.world_size == 1:
        return []
    synchronized = model_args.sync_cls_batchnorm and convert_cls_batchnorm_to_sync(model) > 0
    logger.info("%d processes; [CLS] BatchNorm statistics synchronized: %s", training_args.world_size, synchronized)
    return [ClsStatisticsCallback(statistics_synchronized=synchronized)]


def checkpoint_is_complete(checkpoint: Path) -> bool:
    """The Trainer writes a checkpoint's trainer_state.json last: a save killed before it ends leaves none, or a
    partial one."""
    try:
        json.loads((checkpoint / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return any((checkpoint / name).is_file() for name in ("model.safetensors", "model.safetensors.index.json"))


def last_complete_checkpoint(output_dir: str) -> Path | None:
    checkpoints = sorted(
        (path for path in Path(output_dir).glob("checkpoint-*") if path.name.split("-")[-1].isdigit()),
        key=lambda path: int(path.name.split("-")[-1]),
    )
    return next((path for path in reversed(checkpoints) if checkpoint_is_complete(path)), None)


def resume_checkpoint(training_args: TrainingArguments) -> str | None:
    """`--resume_from_checkpoint PATH`, or `true`/`last` for the last COMPLETE checkpoint in `--output_dir` (the
    Trainer's own choice, the highest-numbered one, may be a save that was killed half-way)."""
    value = training_args.resume_from_checkpoint
    if value is None:
        return None
    if value.lower() in ("true", "last"):
        checkpoint = last_complete_checkpoint(training_args.output_dir)
        if checkpoint is None:
            raise FileNotFoundError(f"--resume_from_checkpoint {value}: no complete checkpoint in {training_args.output_dir}.")
        logger.info("Resuming from %s, the last complete checkpoint", checkpoint)
        return str(checkpoint)
    if not checkpoint_is_complete(Path(value)):
        last = last_complete_checkpoint(str(Path(value).parent))
        raise ValueError(
            f"--resume_from_checkpoint {value} is not a complete checkpoint (no readable trainer_state.json or "
            f"weights: its save was interrupted). The last complete one is {last}."
        )
    return value


def recalibrate(trainer: Trainer, model_args: SepNormModelArguments) -> None:
    """Re-estimate the [CLS] BatchNorm statistics on training batches, as the model is used downstream."""
    if not (model_args.recalibrate_cls_norm and trainer.train_dataset is not None and cls_batchnorms(trainer.model)):
        return
    used = recalibrate_cls_batchnorm(
        trainer.model, trainer.get_train_dataloader(), max_batches=model_args.recalibration_batches
    )
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        average_cls_statistics(trainer.model)
    logger.info("Re-estimated the [CLS] BatchNorm statistics on %d training batches", used)


def train_and_evaluate(
    trainer: Trainer,
    training_args: TrainingArguments,
    model_args: SepNormModelArguments,
    eval_datasets: dict | None = None,
    recalibrate_before_evaluation: bool = False,
    predict: Callable[[Trainer], None] | None = None,
    derived_eval_metrics: Callable[[dict[str, float]], dict[str, float]] | None = None,
) -> dict[str, float]:
    """Train (resuming if asked), optionally re-estimate [CLS] statistics, save, evaluate each eval dataset and
    predict, writing the Trainer's train_results.json / eval_results.json / all_results.json. Returns all metrics.
    `derived_eval_metrics` adds metrics computed from the evaluation's (e.g. perplexity from the loss)."""
    all_metrics: dict[str, float] = {}
    if training_args.do_train:
        result = trainer.train(resume_from_checkpoint=resume_checkpoint(training_args))
        metrics = {**result.metrics, "train_samples": len(trainer.train_dataset)}
        if recalibrate_before_evaluation:
            recalibrate(trainer, model_args)
        trainer.save_model()
        trainer.log_metrics("train", metrics)
        trainer.save_metrics("train", metrics)
        trainer.save_state()
        all_metrics.update(metrics)
    elif recalibrate_before_evaluation and (training_args.do_eval or training_args.do_predict):
        recalibrate(trainer, model_args)

    if training_args.do_eval:
        eval_metrics: dict[str, float] = {}
        for name, dataset in (eval_datasets or {"eval": trainer.eval_dataset}).items():
            metrics = trainer.evaluate(eval_dataset=dataset, metric_key_prefix=name)
            eval_metrics.update({**metrics, f"{name}_samples": len(dataset)})
        if derived_eval_metrics is not None:
            eval_metrics.update(derived_eval_metrics(eval_metrics))
        trainer.log_metrics("eval", eval_metrics)
        trainer.save_metrics("eval", eval_metrics)
        all_metrics.update(eval_metrics)

    if training_args.do_predict and predict is not None:
        predict(trainer)
    return all_metrics



def take_over_hub_push(training_args: TrainingArguments) -> bool:
    """Turn the Trainer's own `--push_to_hub` off (it would upload its generic model card over ours) and return
    whether to push at the end with `push_results`. Call before building the Trainer."""
    push, training_args.push_to_hub = training_args.push_to_hub, False
    return push


def push_results(trainer: Trainer, training_args: TrainingArguments, dataset_name: str, task_name: str) -> None:
    """Push the output folder (weights, code, preprocessor, our model card with the run's metrics) as one commit."""
    if not trainer.is_world_process_zero():
        return
    from ..hub import push_to_hub, render_model_card

    repo_id = training_args.hub_model_id or os.path.basename(os.path.abspath(training_args.output_dir))
    results_file = os.path.join(training_args.output_dir, "all_results.json")
    results = json.load(open(results_file)) if os.path.isfile(results_file) else {}
    card = render_model_card(
        trainer.model,
        repo_id=repo_id,
        eval_results={key: value for key, value in results.items() if key.startswith("eval_")},
        dataset_name=dataset_name,
        task_name=task_name,
        training_summary={
            "max_steps": trainer.state.max_steps,
            "learning_rate": training_args.learning_rate,
            "per_device_train_batch_size": training_args.per_device_train_batch_size,
            "processes": training_args.world_size,
            "seed": training_args.seed,
            "bf16": training_args.bf16,
        },
        revision=training_args.hub_revision or "main",
    )
    push_to_hub(
        training_args.output_dir,
        repo_id,
        token=training_args.hub_token,
        private=training_args.hub_private_repo,
        revision=training_args.hub_revision,
        card=card,
    )
