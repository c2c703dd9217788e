"""Readouts of frozen embeddings that a per-feature rescaling cannot fake.

A [CLS] BatchNorm standardizes every feature over the data it is evaluated on; ShareNorm leaves a shared offset and
unequal feature scales. Uniformity or effective rank of raw vectors reward that standardization by itself, whatever
the embedding carries. Every readout here therefore first standardizes the features with statistics fitted on the
*training* embeddings (mean and standard deviation per feature), then measures on held-out *test* embeddings:

- `linear_probe`: logistic regression, its L2 strength chosen by cross-validation on the training set only, scored
  on every test sample;
- `knn_accuracy`: k-nearest-neighbour vote (k = 20, cosine similarity) of the training embeddings;
- `standardized_uniformity`, `standardized_effective_rank`: uniformity and effective rank of the standardized test
  embeddings.

For any per-feature affine map x -> a * x + b (a > 0) applied to both sets, all four give exactly the answer they
give without it (tested). `readout_summary` collects them, with the raw-vector uniformity and effective rank as
secondary rows (`raw_uniformity`, `raw_effective_rank`), which such a map does change.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch
from torch.nn import functional as F

from .metrics import effective_rank, uniformity

PROBE_C_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
KNN_K = 20
MAX_UNIFORMITY_SAMPLES = 4096


def _as_float64(embeddings) -> torch.Tensor:
    tensor = torch.as_tensor(np.asarray(embeddings) if not isinstance(embeddings, torch.Tensor) else embeddings)
    tensor = tensor.detach().cpu().to(torch.float64)
    if tensor.ndim != 2:
        raise ValueError(f"Expected an (N, d) array of embeddings, got shape {tuple(tensor.shape)}.")
    return tensor


def _as_labels(labels) -> np.ndarray:
    array = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    return array.reshape(-1)


@dataclasses.dataclass(frozen=True)
class Standardizer:
    """scikit-learn's `StandardScaler` fitted on training embeddings, applied to torch tensors (float64): per-feature
    mean and population standard deviation; features constant on the training set are only centred."""

    mean: torch.Tensor
    std: torch.Tensor

    @classmethod
    def fit(cls, train_embeddings) -> Standardizer:
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(_as_float64(train_embeddings).numpy())
        return cls(torch.from_numpy(scaler.mean_), torch.from_numpy(scaler.scale_))

    def __call__(self, embeddings) -> torch.Tensor:
        embeddings = _as_float64(embeddings)
        if embeddings.shape[1] != self.mean.numel():
            raise ValueError(f"Fitted on {self.mean.numel()} features, got {embeddings.shape[1]}.")
        return (embeddings - self.mean) / self.std


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    accuracy: float
    C: float  # the inverse L2 strength cross-validation chose
    test_samples: int


def linear_probe(
    train_embeddings,
    train_labels,
    test_embeddings,
    test_labels,
    *,
    Cs: Sequence[float] = PROBE_C_GRID,
    folds: int = 5,
    max_iter: int = 2000,
    seed: int = 0,
) -> ProbeResult:
    """Logistic regression on training-standardized embeddings, C chosen by stratified `folds`-fold cross-validation
    on the training set alone (scikit-learn's `LogisticRegressionCV`, accuracy), refitted on all of it and scored on
    every test sample."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    standardize = Standardizer.fit(train_embeddings)
    train_x, test_x = standardize(train_embeddings).numpy(), standardize(test_embeddings).numpy()
    train_y, test_y = _as_labels(train_labels), _as_labels(test_labels)
    if len(train_y) != len(train_x) or len(test_y) != len(test_x):
        raise ValueError("One label per embedding is needed, in the training and the test set.")
    smallest_class = np.unique(train_y, return_counts=True)[1].min()
    folds = int(min(folds, smallest_class))
    if folds < 2:
        raise ValueError("Cross-validating the probe needs at least 2 training samples of every class.")
    probe = LogisticRegressionCV(Cs=list(Cs), cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
                                 scoring="accuracy", max_iter=max_iter, l1_ratios=(0.0,), use_legacy_attributes=False)  # fmt: skip
    probe.fit(train_x, train_y)
    return ProbeResult(float(probe.score(test_x, test_y)), float(np.ravel(probe.C_)[0]), len(test_y))


def knn_accuracy(train_embeddings, train_labels, test_embeddings, test_labels, *, k: int = KNN_K,
                 chunk_size: int = 1024) -> float:  # fmt: skip
    """Accuracy of a k-nearest-neighbour majority vote by cosine similarity between training-standardized
    embeddings (a tie goes to the tied class with the larger summed similarity)."""
    standardize = Standardizer.fit(train_embeddings)
    train = F.normalize(standardize(train_embeddings), dim=1)
    test = F.normalize(standardize(test_embeddings), dim=1)
    train_y = torch.as_tensor(_as_labels(train_labels)).long()
    test_y = torch.as_tensor(_as_labels(test_labels)).long()
    classes, train_index = torch.unique(train_y, return_inverse=True)
    k = min(k, len(train))
    correct = 0
    for start in range(0, len(test), chunk_size):
        similarity, neighbours = (test[start : start + chunk_size] @ train.T).topk(k, dim=1)
        votes = torch.zeros(len(neighbours), len(classes), dtype=torch.float64)
        votes.scatter_add_(1, train_index[neighbours], torch.ones_like(similarity))
        tie_break = torch.zeros_like(votes).scatter_add_(1, train_index[neighbours], similarity)
        predicted = classes[(votes + 1e-6 * tie_break / k).argmax(dim=1)]
        correct += int((predicted == test_y[start : start + chunk_size]).sum())
    return correct / len(test)


def _subsample(embeddings: torch.Tensor, max_samples: int) -> torch.Tensor:
    if len(embeddings) <= max_samples:
        return embeddings
    keep = torch.randperm(len(embeddings), generator=torch.Generator().manual_seed(0))[:max_samples]
    return embeddings[keep]


def standardized_uniformity(train_embeddings, test_embeddings, *, max_samples: int = MAX_UNIFORMITY_SAMPLES) -> float:
    """Uniformity (Wang & Isola; lower = more uniform) of the test embeddings after training-fitted standardization
    (at most `max_samples` of them, a fixed random subset: memory is quadratic)."""
    return uniformity(_subsample(Standardizer.fit(train_embeddings)(test_embeddings), max_samples))


def standardized_effective_rank(train_embeddings, test_embeddings) -> float:
    """Effective rank (higher = less collapsed) of the test embeddings after training-fitted standardization."""
    return effective_rank(Standardizer.fit(train_embeddings)(test_embeddings))


# Each readout: whether higher is better, and what it is (the description of its row in reports)
READOUTS = {
    "linear_probe_accuracy": (True, "linear probe on test [CLS] (C by 5-fold CV on train)"),
    "knn_accuracy": (True, f"{KNN_K}-NN accuracy on test [CLS] (cosine, train-standardized)"),
    "uniformity": (False, "uniformity of train-standardized test [CLS]"),
    "effective_rank": (True, "effective rank of train-standardized test [CLS]"),
    "raw_uniformity": (False, "secondary: uniformity of raw test [CLS] vectors (rescaling changes it)"),
    "raw_effective_rank": (True, "secondary: effective rank of raw test [CLS] vectors (rescaling changes it)"),
}


def readout_summary(train_embeddings, train_labels, test_embeddings, test_labels=None, *,
                    max_uniformity_samples: int = MAX_UNIFORMITY_SAMPLES) -> dict[str, float]:  # fmt: skip
    """Every readout of `READOUTS` on the test embeddings, fitted on the training ones. The probe and k-NN need
    class labels; with `train_labels=None` (e.g. a regression task) only the spread readouts are returned."""
    train, test = _as_float64(train_embeddings), _as_float64(test_embeddings)
    summary = {}
    if train_labels is not None:
        if test_labels is None:
            raise ValueError("The probe and k-NN need `test_labels` with `train_labels`.")
        summary["linear_probe_accuracy"] = linear_probe_accuracy(train, train_labels, test, test_labels)
        summary["knn_accuracy"] = knn_accuracy(train, train_labels, test, test_labels)
    summary["uniformity"] = standardized_uniformity(train, test, max_samples=max_uniformity_samples)
    summary["effective_rank"] = standardized_effective_rank(train, test)
    summary["raw_uniformity"] = uniformity(_subsample(test, max_uniformity_samples))
    summary["raw_effective_rank"] = effective_rank(test)
    return summary


def linear_probe_accuracy(train_embeddings, train_labels, test_embeddings, test_labels, **probe_options) -> float:
    """The test accuracy of `linear_probe` (C chosen by cross-validation on the training set)."""
    return linear_probe(train_embeddings, train_labels, test_embeddings, test_labels, **probe_options).accuracy


def majority_class_accuracy(train_labels, test_labels) -> float:
    """Test accuracy of always predicting the most frequent training class (the trivial baseline)."""
    train_y, test_y = _as_labels(train_labels), _as_labels(test_labels)
    values, counts = np.unique(train_y, return_counts=True)
    return float((test_y == values[counts.argmax()]).mean())
