"""How spread out a set of embeddings is: uniformity, alignment, singular value spectrum, effective rank.

All metrics take an (N, d) tensor (one embedding per row) and compute in fp64. They measure raw vectors; the
readouts of `readouts.py` apply them after a training-fitted standardization, which a rescaling cannot fake.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F


def _unit_rows(embeddings: torch.Tensor) -> torch.Tensor:
    """The rows of `embeddings` L2-normalized, in fp64, detached."""
    if embeddings.ndim != 2:
        raise ValueError(f"Expected an (N, d) tensor of embeddings, got shape {tuple(embeddings.shape)}.")
    return F.normalize(embeddings.detach().to(torch.float64), dim=1)


def uniformity(embeddings: torch.Tensor, t: float = 2.0) -> float:
    """Uniformity of Wang & Isola (2020): log E_{x != y} exp(-t ||f(x) - f(y)||^2) over L2-normalized embeddings.

    The average runs over all pairs of distinct samples. It is 0 for collapsed embeddings (all equal) and lower the
    more uniformly the embeddings cover the unit sphere. Memory is O(N^2): subsample for N beyond ~10^4.
    """
    if embeddings.shape[0] < 2:
        raise ValueError("Uniformity needs at least 2 embeddings.")
    squared_distances = torch.pdist(_unit_rows(embeddings)).square()
    # log of the mean of exponentials, computed as a logsumexp so that large t cannot underflow to log(0)
    return float(torch.logsumexp(-t * squared_distances, dim=0) - math.log(squared_distances.numel()))


def alignment(embeddings_a: torch.Tensor, embeddings_b: torch.Tensor, alpha: float = 2.0) -> float:
    """Alignment of Wang & Isola (2020): E ||f(x) - f(y)||^alpha over positive pairs (row i of `embeddings_a` with
    row i of `embeddings_b`), L2-normalized. 0 for identical pairs, 2^alpha for antipodal ones; lower is better."""
    if embeddings_a.shape != embeddings_b.shape:
        shapes = f"{tuple(embeddings_a.shape)} and {tuple(embeddings_b.shape)}"
        raise ValueError(f"Positive pairs need equal shapes, got {shapes}.")
    distances = (_unit_rows(embeddings_a) - _unit_rows(embeddings_b)).norm(dim=1)
    return float(distances.pow(alpha).mean())


def singular_value_spectrum(embeddings: torch.Tensor, center: bool = True) -> torch.Tensor:
    """The singular values (fp64, descending) of the embedding matrix, centered over the samples by default: the
    spectrum of the embeddings' covariance, whose fast decay is dimensional collapse (Jing et al., 2022)."""
    if embeddings.ndim != 2:
        raise ValueError(f"Expected an (N, d) tensor of embeddings, got shape {tuple(embeddings.shape)}.")
    matrix = embeddings.detach().to(torch.float64)
    if center:
        matrix = matrix - matrix.mean(dim=0, keepdim=True)
    return torch.linalg.svdvals(matrix)


def _as_spectrum(embeddings_or_singular_values: torch.Tensor) -> torch.Tensor:
    """Singular values as given (1-D) or of the centered embeddings (2-D)."""
    if embeddings_or_singular_values.ndim == 2:
        return singular_value_spectrum(embeddings_or_singular_values)
    if embeddings_or_singular_values.ndim != 1:
        raise ValueError("Expected (N, d) embeddings or a 1-D tensor of singular values.")
    singular_values = embeddings_or_singular_values.detach().to(torch.float64)
    if (singular_values < 0).any():
        raise ValueError("Singular values cannot be negative.")
    return singular_values


def normalized_singular_values(embeddings_or_singular_values: torch.Tensor) -> torch.Tensor:
    """The singular values divided by their sum, p_i = s_i / sum_j s_j (descending if the input is embeddings).

    An all-zero spectrum (embeddings collapsed to a single point) gives (1, 0, ..., 0): the most collapsed
    distribution, so that the effective rank of collapsed embeddings is 1, the bottom of its [1, d] range.
    """
    singular_values = _as_spectrum(embeddings_or_singular_values)
    total = singular_values.sum()
    if total == 0:
        return F.one_hot(torch.tensor(0), singular_values.numel()).to(torch.float64)
    return singular_values / total


def effective_rank(embeddings_or_singular_values: torch.Tensor) -> float:
    """Effective rank of Roy & Vetterli (2007): exp of the Shannon entropy of the normalized singular values.

    Takes (N, d) embeddings (their centered spectrum is used) or singular values. It lies in [1, rank]: 1 for rank-1
    (or collapsed) embeddings, close to d for isotropic ones.
    """
    probabilities = normalized_singular_values(embeddings_or_singular_values)
    return float(torch.special.entr(probabilities).sum().exp())
