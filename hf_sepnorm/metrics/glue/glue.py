"""GLUE benchmark metric: a local copy of the Hub's ``glue`` evaluate module, for offline use.

``evaluate`` copies this file into its modules cache and imports it on its own, so it must not import
anything from ``hf_sepnorm``. The computations are those of the Hub module (sklearn and scipy).
"""

import datasets
import evaluate
import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import f1_score, matthews_corrcoef

_CITATION = """\
@inproceedings{wang2019glue,
  title={{GLUE}: A Multi-Task Benchmark and Analysis Platform for Natural Language Understanding},
  author={Wang, Alex and Singh, Amanpreet and Michael, Julian and Hill, Felix and Levy, Omer and Bowman, Samuel R.},
  note={In the Proceedings of ICLR.},
  year={2019}
}
"""

_DESCRIPTION = """\
GLUE, the General Language Understanding Evaluation benchmark (https://gluebenchmark.com/): the official
metric(s) of each task, selected by the configuration name.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: predicted class ids (float scores for stsb).
    references: gold class ids (float scores for stsb).
Returns, depending on the configuration:
    cola: "matthews_correlation";
    sst2, mnli, mnli_matched, mnli_mismatched, qnli, rte, wnli: "accuracy";
    mrpc, qqp: "accuracy" and "f1" (of the positive class 1);
    stsb: "pearson" and "spearmanr".
Example:
    >>> glue_metric = evaluate.load("path/to/glue", config_name="mrpc")
    >>> glue_metric.compute(predictions=[0, 1], references=[0, 1])
    {'accuracy': 1.0, 'f1': 1.0}
"""


def _accuracy(predictions: np.ndarray, references: np.ndarray) -> dict[str, float]:
    return {"accuracy": float((predictions == references).mean())}


def _accuracy_and_f1(predictions: np.ndarray, references: np.ndarray) -> dict[str, float]:
    return {**_accuracy(predictions, references), "f1": float(f1_score(y_true=references, y_pred=predictions))}


def _matthews_correlation(predictions: np.ndarray, references: np.ndarray) -> dict[str, float]:
    return {"matthews_correlation": float(matthews_corrcoef(references, predictions))}


def _pearson_and_spearman(predictions: np.ndarray, references: np.ndarray) -> dict[str, float]:
    return {
        "pearson": float(pearsonr(predictions, references)[0]),
        "spearmanr": float(spearmanr(predictions, references)[0]),
    }


_METRICS_BY_CONFIG = {
    "cola": _matthews_correlation,
    "sst2": _accuracy,
    "mrpc": _accuracy_and_f1,
    "stsb": _pearson_and_spearman,
    "qqp": _accuracy_and_f1,
    "mnli": _accuracy,
    "mnli_matched": _accuracy,
    "mnli_mismatched": _accuracy,
    "qnli": _accuracy,
    "rte": _accuracy,
    "wnli": _accuracy,
}


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Glue(evaluate.Metric):
    """The official metric(s) of one GLUE task, chosen with ``config_name``."""

    def _info(self) -> evaluate.MetricInfo:
        if self.config_name not in _METRICS_BY_CONFIG:
            raise ValueError(
                f"Unknown GLUE metric configuration {self.config_name!r}; choose one of {', '.join(_METRICS_BY_CONFIG)}"
            )
        value_type = "float32" if self.config_name == "stsb" else "int64"
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value(value_type), "references": datasets.Value(value_type)}
            ),
            reference_urls=["https://gluebenchmark.com/"],
            format="numpy",
        )

    def _compute(self, predictions: np.ndarray, references: np.ndarray) -> dict[str, float]:
        return _METRICS_BY_CONFIG[self.config_name](predictions, references)
