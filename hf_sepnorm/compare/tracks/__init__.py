"""The tracks of `hf-sepnorm compare`, one file each. A track prepares its data once, computes its baselines once, and
runs one arm and seed through the package's training scripts, then reads out the frozen [CLS] embeddings on held-out
data (`Track`):

- `ImageTrack` (image.py): MAE pretraining from scratch, readouts on the test images, fine-tuning;
- `ScratchTextTrack` (scratch_text.py): masked-LM pretraining from scratch, readouts on a GLUE task's sentences,
  GLUE fine-tuning;
- `PretrainedTextTrack` (pretrained_text.py): a pretrained stock BERT converted to each arm; readouts of the
  starting checkpoint, GLUE fine-tuning and, with text files, unsupervised SimCSE evaluated on STS-B.

The two text tracks share their GLUE fine-tuning, baselines and convergence checks (glue.py). Every track also reads
out the same architecture's [CLS] at random initialization (per arm and seed): the validity gate of the report
compares the trained [CLS] with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from ..readouts import Metric
from ..recipes import Arm
from .image import ImageTrack
from .pretrained_text import PretrainedTextTrack
from .scratch_text import ScratchTextTrack


class Track(Protocol):
    """What `run_comparison` and the report read of a track (the report reads them from results.json)."""

    name: str  # the track's key in results.json and its runs' folder
    title: str
    plotted: str  # what the plotted embeddings are, for the plots' captions
    recipe: object  # the track's recipe (compare.recipes), the same for every arm and seed
    data: dict  # data sizes, shown in the report
    metrics: list[Metric]  # the report's rows, in order
    gate: list[tuple[str, str]]  # (trained row, its reference row): trained [CLS] must beat it
    learning_check: dict | None  # the pretraining loss against the trivial predictor's (a baseline's name)
    convergence_checks: list[dict]  # per fine-tuned task: its loss row against the constant predictor's
    published_folder: str  # the folder of a run holding the model `--push_to_hub` publishes (its card included)

    def baselines(self) -> dict[str, tuple[float, str]]:
        """Name -> (value, what it is): chance, constant and raw-input predictors on the same held-out data."""

    def run(self, arm: Arm, seed: int, run_dir: Path) -> tuple[dict[str, float], dict]:
        """Train and measure one arm and seed in `run_dir`: the metrics of every row, and the plot data (seed 0's
        test embeddings and labels)."""


__all__ = ["Track", "ImageTrack", "ScratchTextTrack", "PretrainedTextTrack"]
