"""How every training script ends: train and save, evaluate, write (or push) the model card."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sized

from transformers import Trainer

logger = logging.getLogger(__name__)


def train_and_evaluate(
    trainer: Trainer,
    *,
    train_dataset: Sized | None = None,
    evaluate: Callable[[], dict[str, float]] | None = None,
    after_save: Callable[[], None] | None = None,
) -> dict[str, float]:
    """With `--do_train`: train (resuming as `--resume_from_checkpoint` says), save the model, then `after_save()`,
    and write the train metrics and the Trainer's state. With `--do_eval`: `evaluate()` (by default the Trainer's
    evaluation with the eval set's size), logged and written. Returns the metrics of both."""
    args, results = trainer.args, {}
    if args.do_train:
        train_result = trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
        metrics = {**train_result.metrics, "train_samples": len(train_dataset)}
        trainer.save_model()
        if after_save is not None:
            after_save()
        trainer.log_metrics("train", metrics)
        trainer.save_metrics("train", metrics)
        trainer.save_state()
        results.update(metrics)
    if args.do_eval:
        metrics = evaluate() if evaluate else {**trainer.evaluate(), "eval_samples": len(trainer.eval_dataset)}
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
        results.update(metrics)
    return results


def write_model_card(trainer: Trainer, **card) -> None:
    """The model card of the output folder (`SepNormTrainer.create_model_card`), pushed with the folder under
    `--push_to_hub`; only after training: an evaluation alone describes a checkpoint it did not make (and evaluated
    in place, would replace the card of the training that made it)."""
    if not trainer.args.do_train:
        if trainer.args.push_to_hub:
            logger.warning("--push_to_hub without --do_train: nothing was trained, so nothing is pushed")
        return
    trainer.push_to_hub(**card) if trainer.args.push_to_hub else trainer.create_model_card(**card)
