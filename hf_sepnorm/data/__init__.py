"""Data loading for fine-tuning and evaluating SepNorm models offline."""

from .glue import (
    GLUE_TASKS,
    HUB_DATASET_ID,
    available_glue_splits,
    GlueTask,
    get_glue_task,
    load_glue,
    training_rows,
    write_glue_predictions,
)

__all__ = [
    "GLUE_TASKS",
    "HUB_DATASET_ID",
    "GlueTask",
    "available_glue_splits",
    "get_glue_task",
    "load_glue",
    "training_rows",
    "write_glue_predictions",
]
