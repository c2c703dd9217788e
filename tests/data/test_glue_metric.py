"""The local GLUE evaluate module and the Hub-or-local loader ``load_glue_metric``."""

from __future__ import annotations

import importlib
import logging

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import f1_score, matthews_corrcoef

# Fixed predictions; the hand-computed values are written next to them.
GOLD = [1, 0, 1, 1, 0, 0, 1, 0]
PREDICTED = [1, 0, 0, 1, 1, 0, 1, 1]  # 5 of 8 right; TP=3 FP=2 FN=1 TN=2
HAND_ACCURACY = 5 / 8
HAND_F1 = 2 * 3 / (2 * 3 + 2 + 1)
HAND_MATTHEWS = (3 * 2 - 2 * 1) / np.sqrt((3 + 2) * (3 + 1) * (2 + 2) * (2 + 1))
MNLI_GOLD = [0, 1, 2, 2, 1, 0]
MNLI_PREDICTED = [0, 2, 2, 1, 1, 0]  # 4 of 6 right
SCORES_GOLD = [0.0, 1.2, 2.5, 3.1, 4.8, 5.0, 2.0]
SCORES_PREDICTED = [0.3, 1.0, 2.9, 2.7, 4.1, 4.9, 2.2]


@pytest.fixture(scope="module")
def evaluate():
    # Imported here, not at the top: evaluate fixes its cache folders when first imported, and conftest.py
    # points HF_HOME to a temporary folder only when the session starts.
    return importlib.import_module("evaluate")


@pytest.fixture(scope="module")
def glue_metrics():
    return importlib.import_module("hf_sepnorm.metrics")


def expected_values(config: str) -> dict[str, float]:
    """The official metric(s), computed with sklearn/scipy directly, and checked against the hand values."""
    if config == "cola":
        matthews = matthews_corrcoef(GOLD, PREDICTED)
        assert matthews == pytest.approx(HAND_MATTHEWS)
        return {"matthews_correlation": matthews}
    if config in ("mrpc", "qqp"):
        f1 = f1_score(GOLD, PREDICTED)
        assert f1 == pytest.approx(HAND_F1)
        return {"accuracy": HAND_ACCURACY, "f1": f1}
    if config == "stsb":
        # The metric stores scores as float32, as the Hub's does.
        gold, predicted = np.float32(SCORES_GOLD), np.float32(SCORES_PREDICTED)
        return {"pearson": pearsonr(predicted, gold)[0], "spearmanr": spearmanr(predicted, gold)[0]}
    if config.startswith("mnli"):
        return {"accuracy": 4 / 6}
    return {"accuracy": HAND_ACCURACY}


def inputs(config: str) -> dict[str, list]:
    if config == "stsb":
        return {"predictions": SCORES_PREDICTED, "references": SCORES_GOLD}
    if config.startswith("mnli"):
        return {"predictions": MNLI_PREDICTED, "references": MNLI_GOLD}
    return {"predictions": PREDICTED, "references": GOLD}


CONFIGS = ["cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "mnli_matched", "mnli_mismatched", "qnli", "rte", "wnli"]


@pytest.mark.parametrize("config", CONFIGS)
def test_local_module_loaded_by_path_computes_the_official_metrics(evaluate, glue_metrics, config):
    metric = evaluate.load(str(glue_metrics.LOCAL_GLUE_METRIC_PATH.parent), config_name=config)
    assert isinstance(metric, evaluate.Metric)
    result = metric.compute(**inputs(config))
    expected = expected_values(config)
    assert result == pytest.approx(expected, rel=1e-6)
    assert all(type(value) is float for value in result.values())


def test_local_module_loads_from_the_file_path_too(evaluate, glue_metrics):
    metric = evaluate.load(str(glue_metrics.LOCAL_GLUE_METRIC_PATH), config_name="mrpc")
    assert metric.compute(predictions=PREDICTED, references=GOLD) == pytest.approx(expected_values("mrpc"))


def test_metric_accumulates_batches(evaluate, glue_metrics):
    metric = evaluate.load(str(glue_metrics.LOCAL_GLUE_METRIC_PATH.parent), config_name="cola")
    metric.add_batch(predictions=PREDICTED[:3], references=GOLD[:3])
    metric.add_batch(predictions=PREDICTED[3:], references=GOLD[3:])
    assert metric.compute() == pytest.approx({"matthews_correlation": HAND_MATTHEWS})


def test_local_module_rejects_unknown_configuration(evaluate, glue_metrics):
    with pytest.raises(ValueError, match="Unknown GLUE metric configuration 'sts-b'; choose one of cola, sst2"):
        evaluate.load(str(glue_metrics.LOCAL_GLUE_METRIC_PATH.parent), config_name="sts-b")


def test_metric_configs_cover_every_task(glue_metrics):
    assert sorted(glue_metrics.GLUE_METRIC_CONFIGS) == sorted(CONFIGS)


@pytest.fixture
def load_calls(evaluate, monkeypatch):
    """Record the paths given to evaluate.load; the Hub ("glue") fails unless a test says otherwise."""
    calls: list[str] = []
    real_load = evaluate.load
    hub = {"result": ConnectionError("Couldn't reach https://huggingface.co (test)")}

    def load(path, *args, **kwargs):
        calls.append(path)
        if path == "glue":
            if isinstance(hub["result"], Exception):
                raise hub["result"]
            return hub["result"]
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(evaluate, "load", load)
    return calls, hub


@pytest.fixture
def online(monkeypatch, glue_metrics):
    for variable in ("HF_HUB_OFFLINE", "HF_EVALUATE_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(glue_metrics.hub_constants, "HF_HUB_OFFLINE", False)


def test_offline_mode_uses_the_local_module_without_trying_the_hub(glue_metrics, load_calls, monkeypatch, caplog):
    calls, _ = load_calls
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with caplog.at_level(logging.INFO, logger="hf_sepnorm.metrics"):
        metric = glue_metrics.load_glue_metric("stsb")
    assert calls == [str(glue_metrics.LOCAL_GLUE_METRIC_PATH)]
    assert "Offline mode is set: using the local GLUE metric" in caplog.text
    assert metric.compute(**inputs("stsb")) == pytest.approx(expected_values("stsb"), rel=1e-6)


def test_hub_failure_falls_back_to_the_local_module(glue_metrics, load_calls, online, caplog):
    calls, _ = load_calls
    with caplog.at_level(logging.WARNING, logger="hf_sepnorm.metrics"):
        metric = glue_metrics.load_glue_metric("qqp")
    assert calls == ["glue", str(glue_metrics.LOCAL_GLUE_METRIC_PATH)]
    assert "Could not load the GLUE metric from the Hugging Face Hub (ConnectionError" in caplog.text
    assert metric.compute(**inputs("qqp")) == pytest.approx(expected_values("qqp"))


def test_hub_module_is_used_when_it_loads(glue_metrics, load_calls, online):
    calls, hub = load_calls
    hub["result"] = hub_metric = object()
    assert glue_metrics.load_glue_metric("rte") is hub_metric
    assert calls == ["glue"]


def test_unknown_task_is_rejected_before_any_loading(glue_metrics, load_calls):
    calls, _ = load_calls
    with pytest.raises(ValueError, match="Unknown GLUE metric 'mnli-mm'; valid names: cola, sst2"):
        glue_metrics.load_glue_metric("mnli-mm")
    assert calls == []
