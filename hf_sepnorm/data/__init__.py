"""Data loading for fine-tuning and evaluating SepNorm models offline."""

from .glue import (
    GLUE_TASKS,
    HUB_DATASET_ID,
    GlueFormatError,
    GlueTask,
    get_glue_task,
    glue_features,
    load_glue,
    load_glue_from_dir,
    write_glue_predictions,
)

__all__ = [
    "GLUE_TASKS",
    "HUB_DATASET_ID",
    "GlueFormatError",
    "GlueTask",
    "get_glue_task",
    "glue_features",
    "load_glue",
    "load_glue_from_dir",
    "write_glue_predictions",
]
