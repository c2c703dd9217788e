"""Analysis of [CLS] embeddings: what they carry and how they spread (Chen et al., NeurIPS 2023, claim that separate
normalization makes the [CLS] embedding less collapsed and more informative).

- `extract_cls_embeddings`: the final [CLS] embeddings of a SepNorm BERT or ViT-MAE model (unmasked images for MAE);
- readouts on held-out embeddings after a training-fitted standardization, which a per-feature rescaling cannot
  fake: `linear_probe` / `linear_probe_accuracy`, `knn_accuracy`, `standardized_uniformity`,
  `standardized_effective_rank`, all of them at once with `readout_summary` (`READOUTS` lists them), and the
  `majority_class_accuracy` baseline;
- raw-vector metrics: `uniformity`, `alignment`, `singular_value_spectrum`, `normalized_singular_values`,
  `effective_rank`;
- PNG charts: `plot_spectra`, `plot_embedding_projection`, `plot_projections`.

scikit-learn (the probe) and matplotlib (the charts) are dependencies of hf_sepnorm (setup.cfg).
"""

from .extraction import extract_cls_embeddings
from .metrics import alignment, effective_rank, normalized_singular_values, singular_value_spectrum, uniformity
from .plots import plot_embedding_projection, plot_projections, plot_spectra
from .readouts import (
    READOUTS,
    ProbeResult,
    Standardizer,
    knn_accuracy,
    linear_probe,
    linear_probe_accuracy,
    majority_class_accuracy,
    readout_summary,
    standardized_effective_rank,
    standardized_uniformity,
)

__all__ = [
    "extract_cls_embeddings",
    "READOUTS",
    "ProbeResult",
    "Standardizer",
    "linear_probe",
    "linear_probe_accuracy",
    "knn_accuracy",
    "standardized_uniformity",
    "standardized_effective_rank",
    "readout_summary",
    "majority_class_accuracy",
    "uniformity",
    "alignment",
    "singular_value_spectrum",
    "normalized_singular_values",
    "effective_rank",
    "plot_spectra",
    "plot_embedding_projection",
    "plot_projections",
]
