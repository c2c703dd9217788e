"""The local GLUE evaluate module, and ``load_glue_metric``: the Hub's module when reachable, else the local one."""

from __future__ import annotations

import importlib
import logging
import socket
import time

import huggingface_hub
import numpy as np
import pytest
from hub_server import hub_server  # noqa: F401 - `hub_server` is a fixture

# Fixed predictions; the values computed by hand are written next to them.
GOLD = [1, 0, 1, 1, 0, 0, 1, 0]
PREDICTED = [1, 0, 0, 1, 1, 0, 1, 1]  # 5 of 8 right; TP=3 FP=2 FN=1 TN=2
MNLI_GOLD, MNLI_PREDICTED = [0, 1, 2, 2, 1, 0], [0, 2, 2, 1, 1, 0]  # 4 of 6 right
SCORES_GOLD = [0.0, 1.2, 2.5, 3.1, 4.8, 5.0, 2.0]
SCORES_PREDICTED = [0.3, 1.0, 2.9, 2.7, 4.1, 4.9, 2.2]  # ranks 1 2 5 4 6 7 3 against 1 2 4 5 6 7 3: sum d^2 = 2
HAND = {
    "cola": {"matthews_correlation": (3 * 2 - 2 * 1) / np.sqrt((3 + 2) * (3 + 1) * (2 + 2) * (2 + 1))},
    "mrpc": {"accuracy": 5 / 8, "f1": 2 * 3 / (2 * 3 + 2 + 1)},
    "qqp": {"accuracy": 5 / 8, "f1": 2 * 3 / (2 * 3 + 2 + 1)},
    "stsb": {"pearson": float(np.corrcoef(np.float32(SCORES_PREDICTED), np.float32(SCORES_GOLD))[0, 1]),
             "spearmanr": 1 - 6 * 2 / (7 * (7**2 - 1))},
    **{name: {"accuracy": 4 / 6} for name in ("mnli", "mnli_matched", "mnli_mismatched")},
    **{name: {"accuracy": 5 / 8} for name in ("sst2", "qnli", "rte", "wnli", "hans")},
}  # fmt: skip


def inputs(config: str) -> dict[str, list]:
    if config == "stsb":
        return {"predictions": SCORES_PREDICTED, "references": SCORES_GOLD}
    if config.startswith("mnli"):
        return {"predictions": MNLI_PREDICTED, "references": MNLI_GOLD}
    return {"predictions": PREDICTED, "references": GOLD}


@pytest.fixture(scope="module")
def evaluate():
    # Imported here: evaluate fixes its cache folders when first imported, and conftest.py points HF_HOME to a
    # temporary folder only when the session starts.
    return importlib.import_module("evaluate")


@pytest.fixture(scope="module")
def glue_metrics():
    return importlib.import_module("hf_sepnorm.metrics")


@pytest.mark.parametrize("config", HAND)
def test_local_module_computes_the_official_metrics(evaluate, glue_metrics, config):
    metric = evaluate.load(str(glue_metrics.LOCAL_GLUE_METRIC_PATH), config_name=config)
    result = metric.compute(**inputs(config))
    assert result == pytest.approx(HAND[config], rel=1e-6)
    assert all(type(value) is float for value in result.values())


def test_local_module_accumulates_batches_and_loads_from_its_folder(evaluate, glue_metrics):
    metric = evaluate.load(str(glue_metrics.LOCAL_GLUE_METRIC_PATH.parent), config_name="cola")
    metric.add_batch(predictions=PREDICTED[:3], references=GOLD[:3])
    metric.add_batch(predictions=PREDICTED[3:], references=GOLD[3:])
    assert metric.compute() == pytest.approx(HAND["cola"])


def test_local_module_rejects_an_unknown_configuration(evaluate, glue_metrics):
    with pytest.raises(KeyError, match="Unknown GLUE configuration 'sts-b'; choose one of cola, stsb"):
        evaluate.load(str(glue_metrics.LOCAL_GLUE_METRIC_PATH), config_name="sts-b")


@pytest.fixture
def load_calls(evaluate, monkeypatch):
    """The paths given to evaluate.load; the Hub's "glue" answers `hub["result"]` (raised if an exception)."""
    calls: list[str] = []
    real_load = evaluate.load
    hub = {"result": OSError("Couldn't find a module script (test)")}

    def load(path, *args, **kwargs):
        calls.append(path)
        if path != "glue":
            return real_load(path, *args, **kwargs)
        if isinstance(hub["result"], Exception):
            raise hub["result"]
        return hub["result"]

    monkeypatch.setattr(evaluate, "load", load)
    return calls, hub


@pytest.fixture
def online(monkeypatch, glue_metrics):
    for variable in ("HF_HUB_OFFLINE", "HF_EVALUATE_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


@pytest.fixture
def reachable_hub(online, monkeypatch, glue_metrics):
    """A Hub that answers the reachability request (the local test Hub serves models only)."""
    monkeypatch.setattr(glue_metrics.HfApi, "space_info", lambda self, repo_id, **kwargs: object())


def test_offline_mode_uses_the_local_module_without_any_request(glue_metrics, load_calls, monkeypatch, caplog):
    calls, _ = load_calls
    monkeypatch.setenv("HF_EVALUATE_OFFLINE", "1")
    monkeypatch.setattr(glue_metrics.HfApi, "space_info", lambda *args, **kwargs: pytest.fail("a Hub request"))
    with caplog.at_level(logging.WARNING, logger="hf_sepnorm.metrics"):
        metric = glue_metrics.load_glue_metric("stsb")
    assert calls == [str(glue_metrics.LOCAL_GLUE_METRIC_PATH)]
    assert "(offline mode is set)" in caplog.text
    assert metric.compute(**inputs("stsb")) == pytest.approx(HAND["stsb"], rel=1e-6)


def test_unreachable_hub_uses_the_local_module_at_once(glue_metrics, load_calls, online, monkeypatch, caplog):
    calls, _ = load_calls
    with socket.socket() as probe:  # a port nobody listens on: connections are refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="hf_sepnorm.metrics"):
        metric = glue_metrics.load_glue_metric("mrpc")
    assert time.monotonic() - start < 10  # evaluate alone retries for ~10 s
    assert calls == [str(glue_metrics.LOCAL_GLUE_METRIC_PATH)]
    assert "the Hub cannot be reached: ConnectError" in caplog.text
    assert metric.compute(**inputs("mrpc")) == pytest.approx(HAND["mrpc"])


def test_hub_module_failure_falls_back_to_the_local_module(glue_metrics, load_calls, reachable_hub, caplog):
    calls, _ = load_calls
    with caplog.at_level(logging.WARNING, logger="hf_sepnorm.metrics"):
        metric = glue_metrics.load_glue_metric("qqp")
    assert calls == ["glue", str(glue_metrics.LOCAL_GLUE_METRIC_PATH)]
    assert "(OSError: Couldn't find a module script (test))" in caplog.text
    assert metric.compute(**inputs("qqp")) == pytest.approx(HAND["qqp"])


def test_hub_module_is_used_when_it_loads(glue_metrics, load_calls, reachable_hub):
    calls, hub = load_calls
    hub["result"] = hub_metric = object()
    assert glue_metrics.load_glue_metric("rte") is hub_metric
    assert calls == ["glue"]


def test_a_hub_that_answers_without_the_glue_space_uses_the_local_module(
    glue_metrics, load_calls, online, hub_server, caplog  # noqa: F811
):
    """A mirror, or a Hub in an outage, answers the probe with an HTTP error (here 404: no such Space): the
    identical local module is used, and the log says why."""
    calls, _ = load_calls
    with caplog.at_level(logging.WARNING, logger="hf_sepnorm.metrics"):
        metric = glue_metrics.load_glue_metric("sst2")
    assert calls == [str(glue_metrics.LOCAL_GLUE_METRIC_PATH)]
    assert "the Hub answered 404 for the evaluate-metric/glue Space: RepositoryNotFoundError" in caplog.text
    assert ("GET", "/api/spaces/evaluate-metric/glue") in hub_server.requests
    assert metric.compute(**inputs("sst2")) == pytest.approx(HAND["sst2"])


def test_a_hub_answering_5xx_uses_the_local_module(glue_metrics, load_calls, online, monkeypatch, caplog):
    from huggingface_hub.errors import HfHubHTTPError

    from hf_sepnorm.hub.http_client import hub_http_client

    def failing(self, repo_id, **kwargs):
        request = hub_http_client().Request("GET", "https://hub.invalid/api/spaces/evaluate-metric/glue")
        raise HfHubHTTPError("503 Service Unavailable", response=hub_http_client().Response(503, request=request))

    monkeypatch.setattr(glue_metrics.HfApi, "space_info", failing)
    calls, _ = load_calls
    with caplog.at_level(logging.WARNING, logger="hf_sepnorm.metrics"):
        glue_metrics.load_glue_metric("cola")
    assert calls == [str(glue_metrics.LOCAL_GLUE_METRIC_PATH)] and "the Hub answered 503" in caplog.text
