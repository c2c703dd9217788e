#!/usr/bin/env python
"""Fine-tuning or linear probing of SepNormViTMAEForImageClassification, with the HF Trainer.

    python examples/run_image_classification.py --model_name_or_path mae-checkpoint --train_dir cifar10/train \
        --validation_dir cifar10/test --output_dir out --do_train --do_eval [--linear_probe]

Starts from a SepNorm or stock ViT-MAE checkpoint (the classifier head is new) or from scratch. Reports top-1 and
top-5 accuracy. The [CLS] BatchNorm statistics are re-estimated on unmasked training images: before training when
linear probing (the frozen encoder's statistics come from masked pretraining), after it when fine-tuning.
"""

from dataclasses import dataclass, field

import numpy as np
import torch
from datasets import ClassLabel
from transformers import Trainer, TrainingArguments, set_seed

from hf_sepnorm import SepNormViTMAEForImageClassification
from hf_sepnorm.data.images import prepare_images
from hf_sepnorm.training import (
    ImageDataArguments,
    SepNormModelArguments,
    freeze_backbone_for_linear_probe,
    load_or_build_model,
    parse_arguments,
    prepare_for_processes,
    push_results,
    take_over_hub_push,
    train_and_evaluate,
)
from hf_sepnorm.training.runner import recalibrate


@dataclass
class ClassificationArguments:
    linear_probe: bool = field(default=False, metadata={"help": "Freeze the encoder; train only the classifier."})
    num_channels: int = field(default=3, metadata={"help": "1 for grey images, 3 for RGB."})
    classifier_pooling: str = field(default="cls", metadata={"help": "cls or mean.", "choices": ["cls", "mean"]})


def collate(examples):
    return {
        "pixel_values": torch.stack([example["pixel_values"] for example in examples]),
        "labels": torch.tensor([example["labels"] for example in examples]),
    }


def top_k_accuracy(eval_prediction) -> dict[str, float]:
    logits, labels = eval_prediction.predictions, eval_prediction.label_ids
    ranked = np.argsort(-logits, axis=-1)
    metrics = {"accuracy": float((ranked[:, 0] == labels).mean())}
    if logits.shape[-1] > 5:
        metrics["top5_accuracy"] = float((ranked[:, :5] == labels[:, None]).any(axis=-1).mean())
    return metrics


def main(args=None):
    model_args, data_args, task_args, training_args = parse_arguments(
        SepNormModelArguments, ImageDataArguments, ClassificationArguments, TrainingArguments, args=args
    )
    training_args.remove_unused_columns = False  # the transform needs the raw image column
    set_seed(training_args.seed)
    images = prepare_images(
        data_args,
        task_args.num_channels,
        model_args.model_name_or_path,
        training_args.seed,
        augment=not task_args.linear_probe,
    )
    if not isinstance(images.splits["train"].features.get("label"), ClassLabel):
        raise ValueError("Classification needs labelled images: <dir>/<class>/<image> with two or more class folders.")
    label_names = images.splits["train"].features["label"].names

    model = load_or_build_model(
        SepNormViTMAEForImageClassification,
        model_args,
        image_size=images.image_size,
        num_channels=task_args.num_channels,
        num_labels=len(label_names),
        id2label=dict(enumerate(label_names)),
        label2id={name: i for i, name in enumerate(label_names)},
        classifier_pooling=task_args.classifier_pooling,
    )
    if task_args.linear_probe:
        freeze_backbone_for_linear_probe(model)
    callbacks = [images.augmentation_callback, *prepare_for_processes(model, training_args, model_args)]
    push = take_over_hub_push(training_args)
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=images.splits["train"],
        eval_dataset=images.splits["validation"] if training_args.do_eval else None,
        data_collator=collate,
        processing_class=images.processor,
        compute_metrics=top_k_accuracy,
        callbacks=callbacks,
    )
    if task_args.linear_probe and training_args.do_train:
        recalibrate(trainer, model_args)
    metrics = train_and_evaluate(
        trainer, training_args, model_args, recalibrate_before_evaluation=not task_args.linear_probe
    )
    if push:
        push_results(trainer, training_args, data_args.dataset_name or "image folder", "image-classification")
    return metrics


if __name__ == "__main__":
    main()
