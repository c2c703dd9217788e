"""Fine-tuning or linear probing of SepNormViTMAEForImageClassification, with the HF Trainer.

    hf-sepnorm image-classification --model_name_or_path mae-checkpoint --train_dir cifar10/train \
        --validation_dir cifar10/test --output_dir out --do_train --do_eval [--linear_probe]

Starts from a SepNorm or stock ViT-MAE checkpoint (the classifier head is new; the checkpoint's config and image
processor stand) or from scratch. Reports top-1 and top-5 accuracy. With --recalibrate_cls_norm true (off by
default: measured to hurt on average, docs/cls_statistics.md) the [CLS] BatchNorm statistics are re-estimated on
unmasked training images: before training when linear probing (the frozen encoder normalizes [CLS] with them, and
they come from masked pretraining), and by SepNormTrainer after training. --use_peft trains LoRA adapters.
"""

from dataclasses import dataclass, field

import numpy as np
import torch
from datasets import ClassLabel
from transformers import set_seed

from hf_sepnorm import SepNormViTMAEForImageClassification
from hf_sepnorm.adapters import PeftArguments, apply_peft
from hf_sepnorm.errors import InputError
from hf_sepnorm.data.images import describe_image_folders
from hf_sepnorm.scripts.ending import train_and_evaluate, write_model_card
from hf_sepnorm.training import (
    ImageDataArguments,
    SepNormModelArguments,
    SepNormTrainer,
    SepNormTrainingArguments,
    check_checkpoint_kind,
    freeze_backbone_for_linear_probe,
    load_or_build_model,
    parse_arguments,
    prepare_model_images,
    run_main,
)

# A new model's settings; a checkpoint keeps its own unless the flag is given.
NEW_MODEL_DEFAULTS = {"classifier_pooling": "cls"}


@dataclass
class ClassificationArguments:
    linear_probe: bool = field(default=False, metadata={"help": "Freeze the encoder; train only the classifier."})
    num_channels: int | None = field(default=None, metadata={"help": "1 for grey images, 3 for RGB (new model: 3)."})
    classifier_pooling: str | None = field(
        default=None, metadata={"help": "What the classifier pools (new model: cls).", "choices": ["cls", "mean"]}
    )


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
    model_args, data_args, task_args, peft_args, training_args = parse_arguments(
        SepNormModelArguments, ImageDataArguments, ClassificationArguments, PeftArguments, SepNormTrainingArguments,
        args=args,
    )  # fmt: skip
    if task_args.linear_probe and peft_args.use_peft:
        raise InputError("--linear_probe trains only the classifier, and --use_peft trains LoRA weights inside the "
                         "encoder: give one of them, not both.")  # fmt: skip
    training_args.remove_unused_columns = False  # the transform needs the raw image column
    check_checkpoint_kind(SepNormViTMAEForImageClassification, model_args)
    set_seed(training_args.seed)

    images = prepare_model_images(model_args, data_args, task_args.num_channels, seed=training_args.seed,
                                  augment=not task_args.linear_probe)
    if not isinstance(images.splits["train"].features.get("label"), ClassLabel):
        raise InputError("Classification needs labelled images: <dir>/<class>/<image> with two or more class folders.")
    label_names = images.splits["train"].features["label"].names

    model = load_or_build_model(
        SepNormViTMAEForImageClassification,
        model_args,
        new_model_fields={**NEW_MODEL_DEFAULTS, "num_channels": images.num_channels, "image_size": images.image_size},
        num_labels=len(label_names),
        id2label=dict(enumerate(label_names)),
        label2id={name: i for i, name in enumerate(label_names)},
        **{name: getattr(task_args, name) for name in ("num_channels", "classifier_pooling") if getattr(task_args, name)},
    )
    if task_args.linear_probe:
        freeze_backbone_for_linear_probe(model)
    model = apply_peft(model, peft_args)

    trainer = SepNormTrainer(
        model=model,
        args=training_args,
        train_dataset=images.splits["train"],  # also what the [CLS] BatchNorm statistics are re-estimated on
        eval_dataset=images.splits["validation"] if training_args.do_eval else None,
        data_collator=collate,
        processing_class=images.processor,
        compute_metrics=top_k_accuracy,
        callbacks=[images.augmentation_callback],
    )

    if training_args.do_train and task_args.linear_probe and training_args.resume_from_checkpoint is None:
        trainer.recalibrate_cls_batchnorm()  # the frozen encoder trains the head with these statistics
    results = train_and_evaluate(trainer, train_dataset=images.splits.get("train"))
    write_model_card(trainer, finetuned_from=model_args.model_name_or_path, dataset_tags=data_args.dataset_name,
                     dataset_args=data_args.dataset_config_name,
                     data_files=describe_image_folders(data_args, images.splits))  # fmt: skip
    return results


if __name__ == "__main__":
    run_main(main)
