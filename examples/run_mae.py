#!/usr/bin/env python
"""MAE pretraining of SepNormViTMAEForPreTraining on images, with the HF Trainer.

    python examples/run_mae.py --train_dir cifar10/train --validation_dir cifar10/test --output_dir out \
        --do_train --do_eval --config_overrides "patch_size=4,hidden_size=192,num_hidden_layers=6" --cls_norm batch

Folders use the image-folder layout (<dir>/<class>/<image>) or hold MNIST-format idx files (Fashion-MNIST).
The image processor is saved with the model. Runs under `accelerate launch` on any number of processes.
"""

from dataclasses import dataclass, field

import torch
from transformers import Trainer, TrainingArguments, set_seed

from hf_sepnorm import SepNormViTMAEForPreTraining
from hf_sepnorm.data.images import prepare_images
from hf_sepnorm.training import (
    ImageDataArguments,
    SepNormModelArguments,
    load_or_build_model,
    parse_arguments,
    prepare_for_processes,
    push_results,
    take_over_hub_push,
    train_and_evaluate,
)


@dataclass
class MAEArguments:
    num_channels: int = field(default=3, metadata={"help": "1 for grey images, 3 for RGB."})
    mask_ratio: float = field(default=0.75, metadata={"help": "Share of patches masked (new models)."})
    norm_pix_loss: bool = field(default=True, metadata={"help": "Reconstruct per-patch normalized pixels (new models)."})


def collate(examples):
    return {"pixel_values": torch.stack([example["pixel_values"] for example in examples])}


def main(args=None):
    model_args, data_args, mae_args, training_args = parse_arguments(
        SepNormModelArguments, ImageDataArguments, MAEArguments, TrainingArguments, args=args
    )
    training_args.remove_unused_columns = False  # the transform needs the raw image column
    training_args.label_names = ["pixel_values"]  # so that evaluation reports the reconstruction loss
    set_seed(training_args.seed)
    images = prepare_images(
        data_args, mae_args.num_channels, model_args.model_name_or_path, training_args.seed, augment=True
    )

    model = load_or_build_model(
        SepNormViTMAEForPreTraining,
        model_args,
        image_size=images.image_size,
        num_channels=mae_args.num_channels,
        mask_ratio=mae_args.mask_ratio,
        norm_pix_loss=mae_args.norm_pix_loss,
    )
    callbacks = [images.augmentation_callback, *prepare_for_processes(model, training_args, model_args)]
    push = take_over_hub_push(training_args)
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=images.splits["train"] if training_args.do_train else None,
        eval_dataset=images.splits["validation"] if training_args.do_eval else None,
        data_collator=collate,
        processing_class=images.processor,
        callbacks=callbacks,
    )
    metrics = train_and_evaluate(trainer, training_args, model_args)
    if push:
        push_results(trainer, training_args, dataset_name=data_args.dataset_name or "image folder", task_name="mae")
    return metrics


if __name__ == "__main__":
    main()
