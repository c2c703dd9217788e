"""Training SepNorm models with the HF Trainer: `SepNormTrainer`, its arguments, the starting model, multi-process
[CLS] statistics, a head's start where the constant predictor is, and the standardized-[CLS] control arm of a
comparison."""

from .arguments import ImageDataArguments, SepNormModelArguments, SepNormTrainingArguments, parse_arguments, run_main
from .checkpoints import last_complete_checkpoint, resumed_checkpoint
from .controls import BATCHNORM_EPS, frozen_standardization, standardize_cls_features
from .distributed import ClsStatisticsCallback, ClsSyncBatchNorm, convert_cls_batchnorm_to_sync
from .heads import init_head_bias_from_class_frequencies, init_head_bias_from_labels
from .models import (
    check_checkpoint_kind,
    checkpoint_config,
    fit_to_positions,
    freeze_backbone_for_linear_probe,
    image_input_settings,
    prepare_model_images,
    load_or_build_model,
    model_class_for_checkpoint,
)
from .trainer import SepNormTrainer

__all__ = [
    "ImageDataArguments",
    "SepNormModelArguments",
    "SepNormTrainingArguments",
    "parse_arguments",
    "run_main",
    "ClsStatisticsCallback",
    "ClsSyncBatchNorm",
    "convert_cls_batchnorm_to_sync",
    "check_checkpoint_kind",
    "checkpoint_config",
    "fit_to_positions",
    "freeze_backbone_for_linear_probe",
    "image_input_settings",
    "prepare_model_images",
    "load_or_build_model",
    "model_class_for_checkpoint",
    "SepNormTrainer",
    "last_complete_checkpoint",
    "resumed_checkpoint",
    "standardize_cls_features",
    "frozen_standardization",
    "BATCHNORM_EPS",
    "init_head_bias_from_labels",
    "init_head_bias_from_class_frequencies",
]
