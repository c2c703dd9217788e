"""Analysis of [CLS] embeddings: how uniformly they spread and how much they carry (Chen et al., NeurIPS 2023, claim
that separate normalization makes the [CLS] embedding less collapsed and more informative).

- `extract_cls_embeddings`: the final [CLS] embeddings of a SepNorm BERT or ViT-MAE model (unmasked images for MAE);
- metrics: `uniformity`, `alignment`, `singular_value_spectrum`, `normalized_singular_values`, `effective_rank`,
  `linear_probe_accuracy` and their summary `analyze_embeddings`;
- PNG charts: `plot_spectra`, `plot_embedding_projection`, `plot_projections`.

Needs scikit-learn (linear probe) and matplotlib (charts), which `hf_sepnorm` itself does not require.
"""

from .extraction import extract_cls_embeddings
from .metrics import (
    alignment,
    analyze_embeddings,
    effective_rank,
    linear_probe_accuracy,
    normalized_singular_values,
    singular_value_spectrum,
    uniformity,
)
from .plots import plot_embedding_projection, plot_projections, plot_spectra

__all__ = [
    "extract_cls_embeddings",
    "uniformity",
    "alignment",
    "singular_value_spectrum",
    "normalized_singular_values",
    "effective_rank",
    "linear_probe_accuracy",
    "analyze_embeddings",
    "plot_spectra",
    "plot_embedding_projection",
    "plot_projections",
]
