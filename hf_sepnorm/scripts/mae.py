"""MAE pretraining of SepNormViTMAEForPreTraining on images, with the HF Trainer.

    hf-sepnorm mae --train_dir cifar10/train --validation_dir cifar10/test --output_dir out \
        --do_train --do_eval --config_overrides "patch_size=4,hidden_size=192,num_hidden_layers=6" --cls_norm batch

Folders use the image-folder layout (<dir>/<class>/<image>) or hold MNIST-format idx files (Fashion-MNIST).
The image processor is saved with the model. Continuing from a checkpoint (--model_name_or_path) keeps its config
and its image processor; only the flags given change them. Runs under `accelerate launch` on any number of processes.
"""

import dataclasses
from dataclasses import dataclass, field

import torch
from transformers import set_seed

from hf_sepnorm import SepNormViTMAEForPreTraining
from hf_sepnorm.data.images import describe_image_folders
from hf_sepnorm.scripts.ending import train_and_evaluate, write_model_card
from hf_sepnorm.training import (
    ImageDataArguments,
    SepNormModelArguments,
    SepNormTrainer,
    SepNormTrainingArguments,
    check_checkpoint_kind,
    load_or_build_model,
    parse_arguments,
    prepare_model_images,
    run_main,
)

# A new model's settings; a checkpoint keeps its own unless the flag is given.
NEW_MODEL_DEFAULTS = {"mask_ratio": 0.75, "norm_pix_loss": True}


@dataclass
class MAEArguments:
    num_channels: int | None = field(default=None, metadata={"help": "1 for grey images, 3 for RGB (new model: 3)."})
    mask_ratio: float | None = field(default=None, metadata={"help": "Share of patches masked (new model: 0.75)."})
    norm_pix_loss: bool | None = field(
        default=None, metadata={"help": "Reconstruct per-patch normalized pixels (new model: true)."}
    )


def collate(examples):
    return {"pixel_values": torch.stack([example["pixel_values"] for example in examples])}


def main(args=None):
    model_args, data_args, mae_args, training_args = parse_arguments(
        SepNormModelArguments, ImageDataArguments, MAEArguments, SepNormTrainingArguments, args=args
    )
    training_args.remove_unused_columns = False  # the transform needs the raw image column
    training_args.label_names = ["pixel_values"]  # so that evaluation reports the reconstruction loss
    check_checkpoint_kind(SepNormViTMAEForPreTraining, model_args)
    set_seed(training_args.seed)

    images = prepare_model_images(model_args, data_args, mae_args.num_channels, seed=training_args.seed,
                                  augment=True)
    model = load_or_build_model(
        SepNormViTMAEForPreTraining,
        model_args,
        new_model_fields={**NEW_MODEL_DEFAULTS, "num_channels": images.num_channels, "image_size": images.image_size},
        **{name: value for name, value in dataclasses.asdict(mae_args).items() if value is not None},
    )

    trainer = SepNormTrainer(
        model=model,
        args=training_args,
        train_dataset=images.splits["train"] if training_args.do_train else None,
        eval_dataset=images.splits["validation"] if training_args.do_eval else None,
        data_collator=collate,
        processing_class=images.processor,
        callbacks=[images.augmentation_callback],
    )

    results = train_and_evaluate(trainer, train_dataset=images.splits.get("train"))
    write_model_card(trainer, finetuned_from=model_args.model_name_or_path, dataset_tags=data_args.dataset_name,
                     dataset_args=data_args.dataset_config_name,
                     data_files=describe_image_folders(data_args, images.splits))  # fmt: skip
    return results


if __name__ == "__main__":
    run_main(main)
