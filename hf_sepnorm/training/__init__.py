"""What the example scripts share: arguments, the starting model, multi-process [CLS] statistics, the run flow."""

from .arguments import ImageDataArguments, SepNormModelArguments, parse_arguments
from .distributed import ClsStatisticsCallback, ClsSyncBatchNorm, convert_cls_batchnorm_to_sync
from .models import freeze_backbone_for_linear_probe, load_or_build_model
from .runner import prepare_for_processes, push_results, take_over_hub_push, train_and_evaluate

__all__ = [
    "ImageDataArguments",
    "SepNormModelArguments",
    "parse_arguments",
    "ClsStatisticsCallback",
    "ClsSyncBatchNorm",
    "convert_cls_batchnorm_to_sync",
    "freeze_backbone_for_linear_probe",
    "load_or_build_model",
    "prepare_for_processes",
    "push_results",
    "take_over_hub_push",
    "train_and_evaluate",
]
