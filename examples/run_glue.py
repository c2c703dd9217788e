#!/usr/bin/env python
"""Fine-tuning SepNormBertForSequenceClassification on a GLUE task, with the HF Trainer.

    python examples/run_glue.py --model_name_or_path mlm-checkpoint --task_name sst2 \
        --data_dir glue/SST-2 --output_dir out --do_train --do_eval --do_predict

Data comes from a folder of the official GLUE TSV files (--data_dir) or from the Hub (nyu-mll/glue). Metrics are
GLUE's official ones per task, computed with `evaluate` (the Hub's `glue` metric, or the identical copy shipped
with this package when the Hub cannot be reached). --do_predict writes GLUE submission files. The [CLS] BatchNorm
statistics are re-estimated on training batches before evaluation (--recalibrate_cls_norm false to skip).
"""

from dataclasses import dataclass, field

import numpy as np
from datasets import DatasetDict
from transformers import AutoTokenizer, DataCollatorWithPadding, Trainer, TrainingArguments, set_seed

from hf_sepnorm import SepNormBertForSequenceClassification
from hf_sepnorm.data import GLUE_TASKS, get_glue_task, load_glue, write_glue_predictions
from hf_sepnorm.data.text import train_tokenizer_once
from hf_sepnorm.metrics import load_glue_metric
from hf_sepnorm.training import (
    SepNormModelArguments,
    load_or_build_model,
    parse_arguments,
    prepare_for_processes,
    push_results,
    take_over_hub_push,
    train_and_evaluate,
)


@dataclass
class GlueArguments:
    task_name: str = field(metadata={"help": "GLUE task.", "choices": list(GLUE_TASKS)})
    data_dir: str | None = field(
        default=None, metadata={"help": "Folder of the task's official TSV files (default: the Hub's nyu-mll/glue)."}
    )
    tokenizer_name: str | None = field(default=None, metadata={"help": "Tokenizer, if not the checkpoint's."})
    max_seq_length: int = field(default=128, metadata={"help": "Longer inputs are truncated."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep only this many training rows."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep only this many validation rows."})
    max_predict_samples: int | None = field(default=None, metadata={"help": "Keep only this many test rows."})


def first(dataset, count: int | None):
    return dataset if count is None else dataset.select(range(min(count, len(dataset))))


def main(args=None):
    model_args, glue_args, training_args = parse_arguments(
        SepNormModelArguments, GlueArguments, TrainingArguments, args=args
    )
    set_seed(training_args.seed)
    task = get_glue_task(glue_args.task_name)
    raw = load_glue(task.name, glue_args.data_dir, cache_dir=model_args.cache_dir)
    limits = {"train": glue_args.max_train_samples, "validation": glue_args.max_eval_samples,
              "test": glue_args.max_predict_samples}  # fmt: skip
    raw = DatasetDict({split: first(dataset, limits[split.split("_")[0]]) for split, dataset in raw.items()})
    tokenizer_source = glue_args.tokenizer_name or model_args.model_name_or_path
    if tokenizer_source is not None:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_source, revision=model_args.revision)
    else:  # from scratch: a tokenizer of the task's own training text
        tokenizer = train_tokenizer_once(
            lambda: (text for column in task.output_text_columns for text in raw["train"][column]),
            vocab_size=8000,
            save_dir=training_args.output_dir,
            training_args=training_args,
        )

    def tokenize(batch):
        texts = [batch[column] for column in task.output_text_columns]
        return tokenizer(*texts, truncation=True, max_length=glue_args.max_seq_length)

    with training_args.main_process_first(desc="tokenizing"):
        encoded = raw.map(tokenize, batched=True, remove_columns=list(task.output_text_columns), desc="Tokenizing")
    validation_splits = [split for split in encoded if split.startswith("validation")]
    test_splits = [split for split in encoded if split.startswith("test")]
    eval_datasets = {
        split.replace("validation", "eval").replace("_matched", "").replace("_mismatched", "_mm"): encoded[split]
        for split in validation_splits
    }

    model = load_or_build_model(
        SepNormBertForSequenceClassification,
        model_args,
        vocab_size=len(tokenizer),
        num_labels=task.num_labels,
        **({} if task.is_regression else {"id2label": dict(enumerate(task.label_list))}),
        **({} if task.is_regression else {"label2id": {label: i for i, label in enumerate(task.label_list)}}),
    )
    metric = load_glue_metric(task.name)

    def compute_metrics(prediction):
        logits = prediction.predictions
        predicted = np.squeeze(logits) if task.is_regression else np.argmax(logits, axis=-1)
        return metric.compute(predictions=predicted, references=prediction.label_ids)

    def predict(trainer):
        for split in test_splits:
            dataset = encoded[split].remove_columns("label")
            logits = trainer.predict(dataset, metric_key_prefix="predict").predictions
            predicted = np.squeeze(logits) if task.is_regression else np.argmax(logits, axis=-1)
            if trainer.is_world_process_zero():
                write_glue_predictions(
                    task.name, predicted, training_args.output_dir, split=split, indices=dataset["idx"]
                )

    callbacks = prepare_for_processes(model, training_args, model_args)
    push = take_over_hub_push(training_args)
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=encoded["train"],
        eval_dataset=next(iter(eval_datasets.values())),
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
        callbacks=callbacks,
    )
    metrics = train_and_evaluate(
        trainer, training_args, model_args, eval_datasets, recalibrate_before_evaluation=True, predict=predict
    )
    if push:
        push_results(trainer, training_args, glue_args.data_dir or f"nyu-mll/glue ({task.name})", "text-classification")
    return metrics


if __name__ == "__main__":
    main()
