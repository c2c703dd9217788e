"""One arm of the comparison (one `cls_norm`, one seed): pretrain, re-estimate [CLS] statistics, analyze the frozen
[CLS] embeddings (uniformity, spectrum, linear probe), fine-tune. Everything but `cls_norm` is the same per seed."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from datasets import ClassLabel, Dataset, DatasetDict, Features, Image
from PIL import Image as PILImage
from transformers import (
    DataCollatorForLanguageModeling,
    DataCollatorWithPadding,
    PreTrainedTokenizerBase,
    Trainer,
    TrainingArguments,
    set_seed,
)

from ..analysis import analyze_embeddings, extract_cls_embeddings, singular_value_spectrum
from ..remote_code.configuration_sepnorm_bert import SepNormBertConfig
from ..remote_code.configuration_sepnorm_vit_mae import SepNormViTMAEConfig
from ..data.glue import get_glue_task, load_glue_from_dir
from ..data.images import (
    AugmentationEpochCallback,
    ImageTransform,
    first_image_size,
    load_image_folders,
    make_image_processor,
)
from ..metrics import load_glue_metric
from ..remote_code.modeling_sepnorm_bert import SepNormBertForMaskedLM, SepNormBertForSequenceClassification, SepNormBertModel
from ..remote_code.modeling_sepnorm_vit_mae import SepNormViTMAEForImageClassification, SepNormViTMAEForPreTraining
from ..recalibration import recalibrate_cls_batchnorm
from .recipes import ImageRecipe, TextRecipe


def train(model, run_dir: Path, train_dataset, *, steps: int, learning_rate: float, batch_size: int, seed: int,
          collator, eval_dataset=None, compute_metrics=None, label_names=None, callbacks=None) -> Trainer:  # fmt: skip
    """Train with the HF Trainer (AdamW, 5 % warm-up then cosine decay), logging to `run_dir`."""
    args = TrainingArguments(
        output_dir=str(run_dir),
        max_steps=steps,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size,
        learning_rate=learning_rate,
        weight_decay=0.05,
        warmup_steps=max(1, steps // 20),
        lr_scheduler_type="cosine",
        logging_steps=max(1, steps // 10),
        save_strategy="no",
        report_to=[],
        seed=seed,
        dataloader_drop_last=True,
        remove_unused_columns=False,
        label_names=label_names,
        use_cpu=True,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=collator,
        compute_metrics=compute_metrics,
        callbacks=callbacks,
    )
    trainer.train()
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "log_history.json").write_text(json.dumps(trainer.state.log_history, indent=1))
    return trainer


def batches(dataset, collator, batch_size: int):
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=collator)


# ---- images ---------------------------------------------------------------------------------------------------


def digits_images(seed: int = 0) -> DatasetDict:
    """scikit-learn's bundled 8x8 digits (1,797 images, 10 classes) as grey images, split 80/20 by class."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = [PILImage.fromarray((image * (255 / 16)).astype(np.uint8), mode="L") for image in digits.images]
    features = Features({"image": Image(), "label": ClassLabel(names=[str(i) for i in range(10)])})
    dataset = Dataset.from_dict({"image": images, "label": digits.target.tolist()}, features=features)
    split = dataset.train_test_split(test_size=0.2, seed=seed, stratify_by_column="label")
    return DatasetDict(train=split["train"], test=split["test"]).cast_column("image", Image(decode=False))


def image_splits(images_dir: str | None, recipe: ImageRecipe) -> tuple[DatasetDict, int]:
    """`train`/`test` splits with an `index` column, and the channel count: digits, or `DIR/train` + `DIR/test`."""
    if images_dir is None:
        splits, channels = digits_images(), 1
    else:
        loaded = load_image_folders(
            f"{images_dir}/train", f"{images_dir}/test", max_train_samples=recipe.max_train_images,
            max_eval_samples=recipe.max_test_images,
        )  # fmt: skip
        splits, channels = DatasetDict(train=loaded["train"], test=loaded["validation"]), 3
    splits = DatasetDict({name: split.add_column("index", list(range(len(split)))) for name, split in splits.items()})
    return splits, channels


def stack_images(examples):
    batch = {"pixel_values": torch.stack([example["pixel_values"] for example in examples])}
    if "labels" in examples[0]:
        batch["labels"] = torch.tensor([example["labels"] for example in examples])
    return batch


def top1_accuracy(prediction) -> dict[str, float]:
    return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}


def run_image_arm(cls_norm: str, seed: int, splits: DatasetDict, channels: int, recipe: ImageRecipe,
                  run_dir: Path) -> tuple[dict[str, float], dict]:  # fmt: skip
    """One image arm; returns its metrics and what the plots need (test [CLS] embeddings, labels, spectrum)."""
    set_seed(seed)
    image_size = first_image_size(splits["train"], channels)
    processor = make_image_processor(image_size, channels)
    augmentation = ImageTransform(processor, channels, recipe.augment, seed)
    train_images = splits["train"].with_transform(augmentation)
    epochs = [AugmentationEpochCallback(augmentation)]
    plain = {name: split.with_transform(ImageTransform(processor, channels, False)) for name, split in splits.items()}
    config = SepNormViTMAEConfig(
        image_size=image_size, num_channels=channels, cls_norm=cls_norm, num_labels=10, **recipe.model
    )

    mae = SepNormViTMAEForPreTraining(config)
    pretrainer = train(
        mae, run_dir / "mae", train_images, steps=recipe.pretrain_steps, learning_rate=recipe.pretrain_learning_rate,
        batch_size=recipe.batch_size, seed=seed, collator=stack_images, eval_dataset=plain["test"],
        label_names=["pixel_values"], callbacks=epochs,
    )  # fmt: skip
    results = {"mae_eval_loss": pretrainer.evaluate()["eval_loss"]}

    classifier = SepNormViTMAEForImageClassification(config)
    classifier.vit.load_state_dict(mae.vit.state_dict())
    train_batches = batches(plain["train"], stack_images, recipe.batch_size)
    recalibrate_cls_batchnorm(classifier, train_batches, max_batches=recipe.recalibration_batches)
    train_embeddings, train_labels = extract_cls_embeddings(classifier, train_batches, return_labels=True)
    test_embeddings, test_labels = extract_cls_embeddings(
        classifier, batches(plain["test"], stack_images, recipe.batch_size), return_labels=True
    )
    results.update(analyze_embeddings(train_embeddings, train_labels, test_embeddings=test_embeddings,
                                      test_labels=test_labels))  # fmt: skip

    finetuner = train(
        classifier, run_dir / "finetune", train_images, steps=recipe.finetune_steps,
        learning_rate=recipe.finetune_learning_rate, batch_size=recipe.batch_size, seed=seed, collator=stack_images,
        eval_dataset=plain["test"], compute_metrics=top1_accuracy, callbacks=epochs,
    )  # fmt: skip
    recalibrate_cls_batchnorm(classifier, train_batches, max_batches=recipe.recalibration_batches)
    results["finetune_accuracy"] = finetuner.evaluate()["eval_accuracy"]
    plots = {"embeddings": test_embeddings, "labels": test_labels, "spectrum": singular_value_spectrum(test_embeddings)}
    return results, plots


# ---- text -----------------------------------------------------------------------------------------------------


def mlm_collator(tokenizer: PreTrainedTokenizerBase):
    return DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)


def glue_main_metric(task_name: str) -> str:
    return {"cola": "matthews_correlation", "stsb": "pearson", "mrpc": "f1", "qqp": "f1"}.get(task_name, "accuracy")


def encode_glue_task(task_name: str, glue_dir: str, tokenizer, recipe: TextRecipe) -> DatasetDict:
    task = get_glue_task(task_name)
    raw = load_glue_from_dir(task_name, glue_dir)
    validation = "validation_matched" if task_name == "mnli" else "validation"
    limits = {"train": recipe.max_glue_train, validation: recipe.max_glue_eval}
    kept = DatasetDict(
        {split: raw[split].shuffle(seed=0).select(range(min(len(raw[split]), limit or len(raw[split]))))
         for split, limit in limits.items()}
    )  # fmt: skip

    def tokenize(batch):
        texts = [batch[column] for column in task.output_text_columns]
        encoded = tokenizer(*texts, truncation=True, max_length=recipe.max_seq_length)
        return {**encoded, "labels": batch["label"]}

    encoded = kept.map(tokenize, batched=True, remove_columns=kept["train"].column_names)
    return DatasetDict(train=encoded["train"], validation=encoded[validation])


def run_text_arm(cls_norm: str, seed: int, blocks: DatasetDict, tokenizer, glue: dict[str, DatasetDict],
                 recipe: TextRecipe, run_dir: Path) -> tuple[dict[str, float], dict]:  # fmt: skip
    """One text arm: MLM pretraining, [CLS] analysis on the first GLUE task, fine-tuning on every task."""
    set_seed(seed)
    config = SepNormBertConfig(
        vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, cls_norm=cls_norm,
        max_position_embeddings=max(512, recipe.max_seq_length), **recipe.model,
    )  # fmt: skip
    mlm = SepNormBertForMaskedLM(config)
    pretrainer = train(
        mlm, run_dir / "mlm", blocks["train"], steps=recipe.pretrain_steps,
        learning_rate=recipe.pretrain_learning_rate, batch_size=recipe.batch_size, seed=seed,
        collator=mlm_collator(tokenizer), eval_dataset=blocks["validation"],
    )  # fmt: skip
    eval_loss = pretrainer.evaluate()["eval_loss"]
    results = {"mlm_eval_loss": eval_loss, "mlm_perplexity": math.exp(min(eval_loss, 50))}
    mlm.save_pretrained(run_dir / "mlm")

    padding = DataCollatorWithPadding(tokenizer)
    analysis_task, analysis_data = next(iter(glue.items()))
    encoder = SepNormBertModel.from_pretrained(run_dir / "mlm")
    train_batches = batches(analysis_data["train"], padding, recipe.batch_size)
    recalibrate_cls_batchnorm(encoder, train_batches, max_batches=recipe.recalibration_batches)
    train_embeddings, train_labels = extract_cls_embeddings(encoder, train_batches, return_labels=True)
    test_embeddings, test_labels = extract_cls_embeddings(
        encoder, batches(analysis_data["validation"], padding, recipe.batch_size), return_labels=True
    )
    if get_glue_task(analysis_task).is_regression:
        train_labels = test_labels = None
    results.update(analyze_embeddings(train_embeddings, train_labels, test_embeddings=test_embeddings,
                                      test_labels=test_labels))  # fmt: skip

    for task_name, data in glue.items():
        task = get_glue_task(task_name)
        classifier = SepNormBertForSequenceClassification.from_pretrained(run_dir / "mlm", num_labels=task.num_labels)
        metric = load_glue_metric(task_name)

        def compute_metrics(prediction, task=task, metric=metric):
            logits = prediction.predictions
            predicted = np.squeeze(logits) if task.is_regression else np.argmax(logits, axis=-1)
            return metric.compute(predictions=predicted, references=prediction.label_ids)

        finetuner = train(
            classifier, run_dir / task_name, data["train"], steps=recipe.finetune_steps,
            learning_rate=recipe.finetune_learning_rate, batch_size=recipe.batch_size, seed=seed, collator=padding,
            eval_dataset=data["validation"], compute_metrics=compute_metrics,
        )  # fmt: skip
        recalibrate_cls_batchnorm(
            classifier, batches(data["train"], padding, recipe.batch_size), max_batches=recipe.recalibration_batches
        )
        metric_name = glue_main_metric(task_name)
        results[f"{task_name}_{metric_name}"] = finetuner.evaluate()[f"eval_{metric_name}"]
    labels = test_labels if test_labels is not None else torch.zeros(len(test_embeddings), dtype=torch.long)
    plots = {"embeddings": test_embeddings, "labels": labels, "spectrum": singular_value_spectrum(test_embeddings)}
    return results, plots
