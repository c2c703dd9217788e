"""What the example scripts share: arguments, the starting model, multi-process [CLS] statistics, the run flow."""

from .arguments import SepNormModelArguments, parse_arguments
from .distributed import ClsStatisticsCallback, ClsSyncBatchNorm, convert_cls_batchnorm_to_sync
from .models import load_or_build_model
from .runner import prepare_for_processes, push_results, take_over_hub_push, train_and_evaluate

__all__ = [
    "SepNormModelArguments",
    "parse_arguments",
    "ClsStatisticsCallback",
    "ClsSyncBatchNorm",
    "convert_cls_batchnorm_to_sync",
    "load_or_build_model",
    "prepare_for_processes",
    "push_results",
    "take_over_hub_push",
    "train_and_evaluate",
]
