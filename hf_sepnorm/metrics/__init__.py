"""The GLUE metric for `evaluate`: the Hub's ``glue`` module when the Hub is reachable, else the local copy."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import evaluate
from huggingface_hub import HfApi
from huggingface_hub import constants as hub_constants
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

from ..hub.http_client import hub_http_client

logger = logging.getLogger(__name__)

# Resolved from this file, so it works from an editable install and from a wheel (as package data).
LOCAL_GLUE_METRIC_PATH = Path(__file__).parent / "glue" / "glue.py"
HUB_GLUE_METRIC_ID = "evaluate-metric/glue"
_OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_EVALUATE_OFFLINE", "TRANSFORMERS_OFFLINE")


def load_glue_metric(task_name: str) -> evaluate.EvaluationModule:
    """The GLUE metric of a task (``"cola"``, ..., ``"mnli_matched"``): the Hub's ``glue`` module, or, offline or
    when the Hub cannot be reached, the identical copy shipped with this package. Which one is used is logged."""
    reason = _why_hub_unusable()
    if reason is None:
        try:
            metric = evaluate.load("glue", task_name)
            logger.info("Using the GLUE metric from the Hugging Face Hub")
            return metric
        except Exception as error:  # any failure to get the Hub module means: use the identical local one
            reason = f"{type(error).__name__}: {error}"
    logger.warning("Using the local GLUE metric %s (%s)", LOCAL_GLUE_METRIC_PATH, reason)
    return evaluate.load(str(LOCAL_GLUE_METRIC_PATH), config_name=task_name)


def _why_hub_unusable() -> str | None:
    # evaluate reads only its own offline variable, and only when imported: read them all now.
    if hub_constants.HF_HUB_OFFLINE or any(
        os.environ.get(name, "").upper() in {"1", "ON", "YES", "TRUE"} for name in _OFFLINE_VARIABLES
    ):
        return "offline mode is set"
    try:  # one request, without the retries evaluate makes over a dead connection
        HfApi().space_info(HUB_GLUE_METRIC_ID, timeout=10)
    except (OfflineModeIsEnabled, hub_http_client().TransportError) as error:
        return f"the Hub cannot be reached: {type(error).__name__}: {error}"
    except HfHubHTTPError as error:  # a mirror or Hub that answers but lacks the Space, or fails (5xx)
        status = error.response.status_code if error.response is not None else "an error"
        return f"the Hub answered {status} for the {HUB_GLUE_METRIC_ID} Space: {type(error).__name__}"
    except Exception as error:  # any other failure of the probe: the local copy is identical
        return f"the Hub probe failed: {type(error).__name__}: {error}"
    return None


__all__ = ["LOCAL_GLUE_METRIC_PATH", "load_glue_metric"]
