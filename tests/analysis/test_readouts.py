"""Readouts a per-feature rescaling cannot fake (hf_sepnorm.analysis.readouts): known answers on constructed data."""

import math

import numpy as np
import pytest
import torch

from hf_sepnorm.analysis import (
    READOUTS,
    Standardizer,
    effective_rank,
    knn_accuracy,
    linear_probe,
    majority_class_accuracy,
    readout_summary,
    standardized_effective_rank,
    standardized_uniformity,
    uniformity,
)


def blobs(num_per_class: int, num_classes: int = 4, dim: int = 8, spread: float = 1.0, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    centers = 6.0 * torch.eye(num_classes, dim)
    labels = torch.arange(num_classes).repeat_interleave(num_per_class)
    return centers[labels] + spread * torch.randn(len(labels), dim, generator=generator), labels


def rescaled(embeddings: torch.Tensor, seed: int = 1) -> torch.Tensor:
    """A per-feature affine map x -> a * x + b with a > 0 spanning six orders of magnitude and a large offset: what a
    BatchNorm's standardization (or its absence) does to each feature."""
    generator = torch.Generator().manual_seed(seed)
    scale = 10.0 ** (6 * torch.rand(embeddings.shape[1], generator=generator, dtype=torch.float64) - 3)
    offset = 100.0 * torch.randn(embeddings.shape[1], generator=generator, dtype=torch.float64)
    return embeddings.double() * scale + offset


def test_standardizer_uses_training_statistics_only():
    train = torch.tensor([[0.0, 5.0], [2.0, 5.0]])
    standardize = Standardizer.fit(train)
    assert torch.equal(standardize.mean, torch.tensor([1.0, 5.0], dtype=torch.float64))
    # a feature constant on train (std 0) is only centred
    assert torch.allclose(standardize(torch.tensor([[3.0, 7.0]])), torch.tensor([[2.0, 2.0]], dtype=torch.float64))
    with pytest.raises(ValueError, match="2 features"):
        standardize(torch.zeros(1, 3))


def test_linear_probe_separates_blobs_and_chooses_C_on_train_only():
    train, train_labels = blobs(60)
    test, test_labels = blobs(40, seed=1)
    result = linear_probe(train, train_labels, test, test_labels)
    assert result.accuracy == 1.0 and result.test_samples == 160
    assert result.C in (1e-3, 1e-2, 1e-1, 1.0, 10.0)


def test_linear_probe_on_labels_independent_of_the_features_is_at_chance():
    generator = torch.Generator().manual_seed(0)
    train, test = torch.randn(800, 8, generator=generator), torch.randn(1000, 8, generator=generator)
    train_labels, test_labels = torch.randint(0, 4, (800,), generator=generator), torch.randint(0, 4, (1000,), generator=generator)
    # test accuracy ~ Binomial(1000, 1/4) / 1000 whatever the probe does: std 0.0137, 0.06 is 4.4 std
    assert linear_probe(train, train_labels, test, test_labels).accuracy == pytest.approx(0.25, abs=0.06)


def test_cross_validation_picks_strong_regularization_for_noise_and_weak_for_a_clean_signal():
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(300, 50, generator=generator)
    labels = (features[:, 0] > 0).long()
    clean = linear_probe(features, labels, features[:50], labels[:50])
    assert clean.C >= 1.0  # a perfectly linear rule: little penalty is best
    noise_labels = torch.randint(0, 2, (300,), generator=generator)
    noisy = linear_probe(features, noise_labels, features[:50], noise_labels[:50])
    assert noisy.C < clean.C


def test_linear_probe_needs_two_training_samples_of_every_class():
    train, labels = torch.randn(5, 3), torch.tensor([0, 0, 0, 0, 1])
    with pytest.raises(ValueError, match="2 training samples of every class"):
        linear_probe(train, labels, train, labels)


def test_knn_on_blobs_is_perfect_and_on_a_known_layout_follows_the_vote():
    train, train_labels = blobs(60)
    test, test_labels = blobs(40, seed=1)
    assert knn_accuracy(train, train_labels, test, test_labels) == 1.0

    # 1-D: k=3 nearest by cosine after standardization. Train points +1 (class 0, twice) and -1 (class 1, three
    # times) in 2-D so that cosine distinguishes directions.
    train = torch.tensor([[1.0, 0.1], [1.0, -0.1], [-1.0, 0.1], [-1.0, -0.1], [-1.0, 0.0]])
    train_labels = torch.tensor([0, 0, 1, 1, 1])
    test = torch.tensor([[2.0, 0.0], [-2.0, 0.0]])
    assert knn_accuracy(train, train_labels, test, torch.tensor([0, 1]), k=2) == 1.0
    # with k = 5 every test point sees all five: class 1 wins the vote for both
    assert knn_accuracy(train, train_labels, test, torch.tensor([1, 1]), k=5) == 1.0


def test_standardized_spread_readouts_are_those_of_the_standardized_test_set():
    train, _ = blobs(50)
    test, _ = blobs(30, seed=1)
    standardized = Standardizer.fit(train)(test)
    assert standardized_uniformity(train, test) == pytest.approx(uniformity(standardized), abs=1e-12)
    assert standardized_effective_rank(train, test) == pytest.approx(effective_rank(standardized), abs=1e-12)


def test_every_primary_readout_is_unchanged_by_a_per_feature_rescaling_while_the_raw_ones_move():
    train, train_labels = blobs(60, spread=3.0)  # overlapping classes: accuracies strictly between chance and 1
    test, test_labels = blobs(40, spread=3.0, seed=1)
    original = readout_summary(train, train_labels, test, test_labels)
    changed = readout_summary(rescaled(train), train_labels, rescaled(test), test_labels)
    assert 0.3 < original["linear_probe_accuracy"] < 1.0 and 0.3 < original["knn_accuracy"] < 1.0
    assert changed["linear_probe_accuracy"] == original["linear_probe_accuracy"]
    assert changed["knn_accuracy"] == original["knn_accuracy"]
    assert changed["uniformity"] == pytest.approx(original["uniformity"], abs=1e-9)
    assert changed["effective_rank"] == pytest.approx(original["effective_rank"], abs=1e-9)
    # the raw-vector rows are not protected: the offset collapses the vectors' directions, the scales the spectrum
    assert changed["raw_uniformity"] > original["raw_uniformity"] + 1.0
    assert abs(changed["raw_effective_rank"] - original["raw_effective_rank"]) > 1.0
    assert set(original) == set(READOUTS)


def test_readouts_score_every_test_sample():
    train, train_labels = blobs(30)
    test, test_labels = blobs(1, num_classes=4, seed=3)  # 4 test samples: each counts 0.25
    test[0] = -test[0]  # one sample pushed to the far side: the probe and k-NN get it wrong
    summary = readout_summary(train, train_labels, test, test_labels)
    assert summary["linear_probe_accuracy"] == 0.75 and summary["knn_accuracy"] == 0.75


def test_readout_summary_without_labels_gives_the_spread_rows_only():
    train, _ = blobs(20)
    summary = readout_summary(train, None, train)
    assert set(summary) == {"uniformity", "effective_rank", "raw_uniformity", "raw_effective_rank"}
    with pytest.raises(ValueError, match="test_labels"):
        readout_summary(train, torch.zeros(len(train)), train)


def test_isotropic_gaussian_standardized_rank_is_near_the_dimension():
    generator = torch.Generator().manual_seed(0)
    train, test = torch.randn(4000, 16, generator=generator), torch.randn(4000, 16, generator=generator)
    # after standardization an anisotropic copy is isotropic again
    scale = 10.0 ** torch.linspace(-3, 3, 16)
    assert standardized_effective_rank(train * scale, test * scale) > 15.5
    assert effective_rank(test * scale) < 4


def test_majority_class_accuracy():
    assert majority_class_accuracy(np.array([1, 1, 0]), np.array([1, 0, 0, 0])) == 0.25
    assert math.isclose(majority_class_accuracy(torch.tensor([2, 2, 3]), torch.tensor([2, 2, 2])), 1.0)
