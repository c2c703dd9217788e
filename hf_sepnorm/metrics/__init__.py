"""Evaluation metrics that work offline (GLUE)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import evaluate
from huggingface_hub import constants as hub_constants

from ..data.glue import GLUE_TASKS

logger = logging.getLogger(__name__)

# Resolved from this file, so it works from an editable install and from a wheel (as package data).
LOCAL_GLUE_METRIC_PATH = Path(__file__).parent / "glue" / "glue.py"
# The GLUE metric's configurations: one per task, plus MNLI's two validation sets.
GLUE_METRIC_CONFIGS = (*GLUE_TASKS, "mnli_matched", "mnli_mismatched")
_OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_EVALUATE_OFFLINE", "TRANSFORMERS_OFFLINE")


def load_glue_metric(task_name: str) -> evaluate.EvaluationModule:
    """Load the GLUE metric for a task: the Hub's ``glue`` module, else the local copy shipped here.

    The local copy is used when offline mode is set (``HF_HUB_OFFLINE``, ``HF_EVALUATE_OFFLINE`` or
    ``TRANSFORMERS_OFFLINE``) or when loading from the Hub fails for any reason (no connection, Hub
    error, ...). Both compute the same values. Which one was used is logged.

    Args:
        task_name: a GLUE task (``"cola"``, ...), or ``"mnli_matched"``/``"mnli_mismatched"``.
    """
    if task_name not in GLUE_METRIC_CONFIGS:
        raise ValueError(f"Unknown GLUE metric {task_name!r}; valid names: {', '.join(GLUE_METRIC_CONFIGS)}")
    if _offline_mode():
        # evaluate reads its own offline flag only at import time and ignores HF_HUB_OFFLINE: skip the Hub
        # rather than wait for network timeouts.
        logger.info("Offline mode is set: using the local GLUE metric %s", LOCAL_GLUE_METRIC_PATH)
        return _load_local_glue_metric(task_name)
    try:
        metric = evaluate.load("glue", task_name)
    except Exception as error:  # any failure to get the Hub module means: use the identical local one
        logger.warning(
            "Could not load the GLUE metric from the Hugging Face Hub (%s: %s); using the local copy %s",
            type(error).__name__,
            error,
            LOCAL_GLUE_METRIC_PATH,
        )
        return _load_local_glue_metric(task_name)
    logger.info("Using the GLUE metric from the Hugging Face Hub")
    return metric


def _offline_mode() -> bool:
    # Read the variables now rather than trust huggingface_hub's copy, made when it was first imported.
    set_now = any(os.environ.get(name, "").upper() in {"1", "ON", "YES", "TRUE"} for name in _OFFLINE_VARIABLES)
    return set_now or hub_constants.HF_HUB_OFFLINE


def _load_local_glue_metric(task_name: str) -> evaluate.EvaluationModule:
    return evaluate.load(str(LOCAL_GLUE_METRIC_PATH), config_name=task_name)


__all__ = ["GLUE_METRIC_CONFIGS", "LOCAL_GLUE_METRIC_PATH", "load_glue_metric"]
