"""Fine-tuning a SepNorm sequence classifier on a GLUE task or on your own files, with the HF Trainer: the class of
the checkpoint's family (BERT, RoBERTa, ModernBERT; stock checkpoints are converted), SepNormBertForSequenceClassification
from scratch.

    hf-sepnorm glue --model_name_or_path mlm-checkpoint --task_name sst2 \
        --data_dir glue/SST-2 --output_dir out --do_train --do_eval --do_predict
    hf-sepnorm glue --model_name_or_path checkpoint --train_file train.csv --validation_file dev.csv \
        --output_dir out --do_train --do_eval

Data comes from a folder of the official GLUE TSV files (--data_dir), from the Hub (nyu-mll/glue), or from your own
CSV or JSON-lines files (--train_file, --validation_file, --test_file, as transformers' run_glue.py and
run_classification.py read them: `data.labelled_files`): class names become the config's id2label, float labels a
regression. Metrics are GLUE's official ones per task, computed with `evaluate` (the Hub's `glue` metric, or the
identical copy shipped with this package when the Hub cannot be reached); on your files, accuracy, or Pearson and
Spearman correlations for a regression (the same module's). --do_predict writes GLUE submission files, or
predict_results.tsv of predicted label names (scores) for your test file. Evaluation uses the
[CLS] BatchNorm's running statistics of training; --recalibrate_cls_norm true re-estimates them on training batches
first (off by default: measured to hurt on average, docs/cls_statistics.md). --use_peft trains LoRA adapters instead
of the whole model. --standardize_cls_features is the control arm of a comparison, not SepNorm: the final norm's [CLS]
standardized per feature with frozen training-row statistics, what a [CLS] BatchNorm does by construction.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader
from transformers import AutoTokenizer, DataCollatorWithPadding, set_seed

from hf_sepnorm import SepNormBertForSequenceClassification
from hf_sepnorm.adapters import PeftArguments, apply_peft
from hf_sepnorm.data import (
    GLUE_TASKS,
    HUB_DATASET_ID,
    available_glue_splits,
    load_glue,
    training_rows,
    write_glue_predictions,
)
from hf_sepnorm.data.labelled_files import FLAGS, load_labelled_files, own_files
from hf_sepnorm.data.splits import first_rows
from hf_sepnorm.data.text import train_tokenizer_once
from hf_sepnorm.errors import InputError
from hf_sepnorm.metrics import load_glue_metric
from hf_sepnorm.scripts.ending import train_and_evaluate, write_model_card
from hf_sepnorm.training import (
    SepNormModelArguments,
    SepNormTrainer,
    SepNormTrainingArguments,
    check_checkpoint_kind,
    checkpoint_config,
    fit_to_positions,
    init_head_bias_from_class_frequencies,
    init_head_bias_from_labels,
    load_or_build_model,
    model_class_for_checkpoint,
    parse_arguments,
    resumed_checkpoint,
    run_main,
    standardize_cls_features,
)


@dataclass
class GlueArguments:
    task_name: str | None = field(
        default=None,
        metadata={"help": "GLUE task (leave out to train on your own files).", "choices": list(GLUE_TASKS)},
    )
    data_dir: str | None = field(
        default=None, metadata={"help": "Folder of the task's official TSV files (default: the Hub's nyu-mll/glue)."}
    )
    train_file: str | None = field(default=None, metadata={"help": "Your training data: a CSV or JSON-lines file."})
    validation_file: str | None = field(default=None, metadata={"help": "Your validation data (CSV or JSON lines)."})
    test_file: str | None = field(
        default=None, metadata={"help": "Your test data (CSV or JSON lines; labels optional)."}
    )
    text_column_names: str | None = field(
        default=None,
        metadata={"help": "Your files' text column(s), comma-separated, e.g. 'question,answer' (default: sentence1 and "
                  "sentence2, else the columns besides the label)."},
    )
    label_column_name: str | None = field(
        default=None, metadata={"help": "Your files' label column (default: label). Float labels mean regression."}
    )
    encoding: str = field(default="utf-8", metadata={"help": "Your files' text encoding (e.g. latin-1, cp1252)."})
    tokenizer_name: str | None = field(default=None, metadata={"help": "Tokenizer, if not the checkpoint's."})
    vocab_size: int = field(default=8000, metadata={"help": "Vocabulary of a tokenizer trained on the task's text."})
    max_seq_length: int = field(default=128, metadata={"help": "Longer inputs are truncated."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep only this many training rows."})
    train_sample_seed: int | None = field(
        default=None,
        metadata={"help": "Draw the --max_train_samples rows at random with this seed (the same rows whatever --seed) "
                  "instead of taking the first ones: the official files are ordered by source."},
    )
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep only this many validation rows."})
    max_predict_samples: int | None = field(default=None, metadata={"help": "Keep only this many test rows."})
    init_head_bias_from_labels: bool = field(
        default=True,
        metadata={"help": "Start a regression head's bias at the mean of the training labels (the same start for "
                  "every norm; a [CLS] BatchNorm pins the pooled features' batch mean, so a head starting at 0 cannot "
                  "reach the labels' offset in a short run). Classification heads: see "
                  "--init_head_bias_from_class_frequencies."},
    )
    init_head_bias_from_class_frequencies: bool = field(
        default=False,
        metadata={"help": "Start a classification head's bias at the log class frequencies of the training rows (its "
                  "untrained softmax is then the class prior; the same start for every norm). Off by default: it did "
                  "not matter on SST-2 (docs/results/glue-minilm-converging/report-class-prior-head.md)."},
    )
    standardize_cls_features: bool = field(
        default=False,
        metadata={"help": "A control arm, not SepNorm: standardize the [CLS] per feature where a final [CLS] BatchNorm "
                  "does (the final LayerNorm, before its affine map; variance + 1e-5), with statistics of the "
                  "training rows measured on the starting model, then frozen (what a [CLS] BatchNorm does by "
                  "construction). Saved folded into the pooler: the checkpoint is a plain model."},
    )

    def __post_init__(self):
        files = own_files(self.train_file, self.validation_file, self.test_file)
        if self.task_name is None and not files:
            raise InputError("Give your own files (--train_file, --validation_file, --test_file: CSV or JSON lines) or "
                             "--task_name with a GLUE task.")  # fmt: skip
        if self.task_name is not None and files:
            raise InputError(
                f"--task_name {self.task_name} runs the official GLUE task (from --data_dir or the Hub) and "
                f"{', '.join(FLAGS[split] for split in files)} give your own data: leave out --task_name to train on "
                "your files, or the files to run the GLUE task."
            )
        if files and self.data_dir is not None:
            raise InputError("--data_dir is a folder of official GLUE files, for --task_name: leave it out with your "
                             "own --train_file / --validation_file / --test_file.")  # fmt: skip

    def splits_given(self) -> dict[str, str]:
        return own_files(self.train_file, self.validation_file, self.test_file)


def main(args=None):
    model_args, data_args, peft_args, training_args = parse_arguments(
        SepNormModelArguments, GlueArguments, PeftArguments, SepNormTrainingArguments, args=args
    )
    if peft_args.use_peft and model_args.model_name_or_path is None:
        # only the adapters are saved: a base built here at random could never be loaded again under them
        raise InputError(
            "--use_peft trains LoRA adapters on a pretrained model and saves only the adapters; without "
            "--model_name_or_path the base model would be random and lost. Give --model_name_or_path (a SepNorm or "
            "stock BERT checkpoint), or leave out --use_peft to train the whole model from scratch."
        )
    if data_args.standardize_cls_features and (not training_args.do_train or peft_args.use_peft):
        raise InputError(
            "--standardize_cls_features takes its statistics from the training rows and folds them into the saved "
            "pooler: use it with --do_train and without --use_peft."
        )
    check_checkpoint_kind(SepNormBertForSequenceClassification, model_args)
    data_args.max_seq_length = fit_to_positions(data_args.max_seq_length, "--max_seq_length", model_args)
    model_class = model_class_for_checkpoint(SepNormBertForSequenceClassification, model_args)
    set_seed(training_args.seed)

    tokenizer_source = data_args.tokenizer_name or model_args.model_name_or_path
    # only the files of the splits this run uses; the training rows also estimate never-updated [CLS] statistics
    # before an evaluation, so an evaluation-only run reads them when they are there
    splits = [split for split, used in (("train", training_args.do_train or tokenizer_source is None),
                                        ("validation", training_args.do_eval), ("test", training_args.do_predict)) if used]  # fmt: skip
    own = data_args.splits_given()
    if own:
        if missing := [split for split in splits if split not in own]:
            reader = {"train": "--do_train" if training_args.do_train else "A model built from scratch (its tokenizer)",
                      "validation": "--do_eval", "test": "--do_predict"}[missing[0]]  # fmt: skip
            raise InputError(f"{reader} reads {FLAGS[missing[0]]}: give it (a CSV or JSON-lines file).")
        if "train" not in splits and "train" in own:
            splits.append("train")
        files = load_labelled_files({split: own[split] for split in splits}, data_args.text_column_names,
                                    data_args.label_column_name, data_args.encoding, model_args.cache_dir)  # fmt: skip
        raw, is_regression, label_list = files.splits, files.is_regression, files.label_list
        text_columns = files.text_columns
    else:
        # the Hub's copy always has the train split (and downloads it with the others); a folder, when it holds it
        if "train" not in splits and (
            data_args.data_dir is None or "train" in available_glue_splits(data_args.task_name, data_args.data_dir)
        ):
            splits.append("train")
        raw = load_glue(data_args.task_name, data_args.data_dir, cache_dir=model_args.cache_dir, splits=splits)
        features = next(iter(raw.values())).features
        is_regression = features["label"].dtype in ("float32", "float64")
        label_list = [] if is_regression else features["label"].names
        text_columns = [name for name, feature in features.items() if getattr(feature, "dtype", None) == "string"]

    data_source = ", ".join(own[split] for split in splits) if own else f"GLUE {data_args.task_name}"
    check_checkpoint_labels(model_args, label_list, data_source)

    if tokenizer_source is not None:
        tokenizer = AutoTokenizer.from_pretrained(
            tokenizer_source, revision=model_args.revision, cache_dir=model_args.cache_dir
        )
    else:  # from scratch: a tokenizer of the task's own training text
        tokenizer = train_tokenizer_once(
            lambda: (text for column in text_columns for text in raw["train"][column]),
            vocab_size=data_args.vocab_size,
            save_dir=training_args.output_dir,
            training_args=training_args,
            checkpoint=resumed_checkpoint(training_args.resume_from_checkpoint, training_args.output_dir),
        )

    model = load_or_build_model(
        model_class,
        model_args,
        new_model_fields={"vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id},
        num_labels=1 if is_regression else len(label_list),
        **({} if is_regression else {"id2label": dict(enumerate(label_list))}),
        **({} if is_regression else {"label2id": {label: i for i, label in enumerate(label_list)}}),
    )
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer))
    model = apply_peft(model, peft_args)

    def tokenize(batch):
        texts = [batch[column] for column in text_columns]
        return tokenizer(*texts, truncation=True, max_length=data_args.max_seq_length)

    limits = {"train": data_args.max_train_samples, "validation": data_args.max_eval_samples,
              "test": data_args.max_predict_samples}  # fmt: skip
    with training_args.main_process_first(desc="tokenizing"):
        kept = {split: first_rows(dataset, limits[split.split("_")[0]]) for split, dataset in raw.items()}
        if "train" in raw:
            kept["train"] = training_rows(raw["train"], data_args.max_train_samples, data_args.train_sample_seed)
        encoded = {
            split: dataset.map(tokenize, batched=True, remove_columns=text_columns, desc=f"Tokenizing {split}")
            for split, dataset in kept.items()
        }
    # MNLI has two validation sets: "eval" is the matched one, "eval_mm" the mismatched one
    eval_splits = {"eval_mm" if split.endswith("_mismatched") else "eval": split
                   for split in encoded if split.startswith("validation")}  # fmt: skip
    eval_datasets = {prefix: encoded[split] for prefix, split in eval_splits.items()}
    # on your files: the GLUE module's accuracy, or its Pearson and Spearman correlations (STS-B's) for scores
    metric = load_glue_metric(data_args.task_name or ("stsb" if is_regression else "sst2"))
    new_head = training_args.do_train and not has_trained_head(model_args)  # a fine-tuned head keeps what it learned
    if new_head and is_regression and data_args.init_head_bias_from_labels:
        init_head_bias_from_labels(model, encoded["train"]["label"])
    if new_head and not is_regression and data_args.init_head_bias_from_class_frequencies:
        init_head_bias_from_class_frequencies(model, encoded["train"]["label"], len(label_list))
    if data_args.standardize_cls_features:
        model_inputs = [name for name in tokenizer.model_input_names if name in encoded["train"].column_names]
        rows = DataLoader(encoded["train"].select_columns(model_inputs), collate_fn=DataCollatorWithPadding(tokenizer),
                          batch_size=training_args.per_device_eval_batch_size)  # fmt: skip
        standardize_cls_features(model.to(training_args.device), rows)

    def compute_metrics(prediction):
        logits = prediction.predictions
        predicted = np.squeeze(logits) if is_regression else np.argmax(logits, axis=-1)
        return metric.compute(predictions=predicted, references=prediction.label_ids)

    trainer = SepNormTrainer(
        model=model,
        args=training_args,
        train_dataset=encoded.get("train"),  # also what the [CLS] BatchNorm statistics are re-estimated on
        eval_dataset=eval_datasets.get("eval"),
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
    )

    def evaluate() -> dict[str, float]:
        metrics = {}
        for prefix, dataset in eval_datasets.items():
            metrics.update(trainer.evaluate(eval_dataset=dataset, metric_key_prefix=prefix))
            metrics[f"{prefix}_samples"] = len(dataset)
        return metrics

    results = train_and_evaluate(trainer, train_dataset=encoded.get("train"), evaluate=evaluate)

    if training_args.do_predict:
        for split in (split for split in encoded if split.startswith("test")):
            dataset = encoded[split].remove_columns("label")
            logits = trainer.predict(dataset, metric_key_prefix="predict").predictions
            predicted = np.squeeze(logits) if is_regression else np.argmax(logits, axis=-1)
            if trainer.is_world_process_zero() and own:
                write_predictions(predicted, label_list, training_args.output_dir, indices=dataset["idx"])
            elif trainer.is_world_process_zero():
                write_glue_predictions(
                    data_args.task_name, predicted, training_args.output_dir, split=split, indices=dataset["idx"]
                )

    if own:  # no Hub data set: the card names the files and the rows used
        write_model_card(trainer, finetuned_from=model_args.model_name_or_path, eval_split=eval_splits.get("eval"),
                         data_files={split: files.describe(split, len(kept[split])) for split in kept})  # fmt: skip
    else:
        write_model_card(trainer, finetuned_from=model_args.model_name_or_path, dataset_tags=HUB_DATASET_ID,
                         dataset_args=data_args.task_name, eval_split=eval_splits.get("eval"))  # fmt: skip
    return results


def has_trained_head(model_args: SepNormModelArguments) -> bool:
    """Whether the checkpoint is a fine-tuned sequence classifier (its config names the head's architecture)."""
    config = checkpoint_config(model_args)
    return config is not None and any(name.endswith("ForSequenceClassification") for name in config.architectures or [])


def check_checkpoint_labels(model_args: SepNormModelArguments, label_list: list[str], data_source: str) -> None:
    """Refuse data whose class names are not those of a fine-tuned classifier checkpoint (its config's id2label, when
    not the default LABEL_i): the data's labels would replace them and relabel the classifier's rows silently."""
    config = checkpoint_config(model_args)
    if config is None or not label_list:
        return
    classes = [name for _, name in sorted(config.id2label.items(), key=lambda item: int(item[0]))]
    same = [name.lower() for name in classes] == [str(label).lower() for label in label_list]  # POSITIVE = positive
    if classes != [f"LABEL_{i}" for i in range(len(classes))] and not same:
        raise InputError(
            f"--model_name_or_path {model_args.model_name_or_path} classifies into {classes} (its config's id2label) "
            f"and {data_source} is labelled {label_list}: its classifier's outputs would be relabelled. Give data "
            "labelled with its classes, or start from a checkpoint without this classification head (e.g. the one it "
            "was fine-tuned from)."
        )


def write_predictions(predicted, label_list: list[str], output_dir: str, indices) -> Path:
    """predict_results.tsv: each test row's index and predicted label name (or score), as run_classification.py."""
    path = Path(output_dir) / "predict_results.tsv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as file:
        file.write("index\tprediction\n")
        for index, value in zip(indices, predicted, strict=True):
            file.write(f"{index}\t{label_list[int(value)] if label_list else f'{float(value):.3f}'}\n")
    return path


if __name__ == "__main__":
    run_main(main)
