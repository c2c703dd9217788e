"""GLUE benchmark metric for `evaluate`: the official metric(s) of each task, chosen by the configuration name.

The local copy of the Hub's ``glue`` module (same configurations, features and values), for offline use. `evaluate`
copies this file into its modules cache and imports it alone: it must not import ``hf_sepnorm``.
"""

import datasets
import evaluate
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
_DESCRIPTION = "GLUE, the General Language Understanding Evaluation benchmark (https://gluebenchmark.com/)."
_KWARGS_DESCRIPTION = """
Args:
    predictions: predicted class ids (float scores for stsb).
    references: gold class ids (float scores for stsb).
Returns: cola: matthews_correlation; mrpc, qqp: accuracy, f1; stsb: pearson, spearmanr; the others: accuracy.
"""


def _accuracy(predictions, references):
    return {"accuracy": float((predictions == references).mean())}


def _accuracy_and_f1(predictions, references):
    return {**_accuracy(predictions, references), "f1": float(f1_score(y_true=references, y_pred=predictions))}


_METRICS = {
    "cola": lambda predictions, references: {"matthews_correlation": float(matthews_corrcoef(references, predictions))},
    "stsb": lambda predictions, references: {"pearson": float(pearsonr(predictions, references)[0]),
                                             "spearmanr": float(spearmanr(predictions, references)[0])},
    "mrpc": _accuracy_and_f1,
    "qqp": _accuracy_and_f1,
    **dict.fromkeys(["sst2", "mnli", "mnli_mismatched", "mnli_matched", "qnli", "rte", "wnli", "hans"], _accuracy),
}  # fmt: skip


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Glue(evaluate.Metric):
    def _info(self):
        if self.config_name not in _METRICS:
            raise KeyError(f"Unknown GLUE configuration {self.config_name!r}; choose one of {', '.join(_METRICS)}")
        value = datasets.Value("float32" if self.config_name == "stsb" else "int64")
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": value, "references": value}),
            reference_urls=["https://gluebenchmark.com/"],
            format="numpy",
        )

    def _compute(self, predictions, references):
        return _METRICS[self.config_name](predictions, references)
