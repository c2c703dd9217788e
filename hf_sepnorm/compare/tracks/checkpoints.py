"""The checkpoints a track's run writes: loading the encoder of a pretraining checkpoint, and dropping the weights
once measured."""

from __future__ import annotations

from pathlib import Path

from ...conversion import expected_load_warnings_silenced
from ...families import family_of


def load_encoder(model_class, folder, **kwargs):
    """`model_class` from a pretraining checkpoint: the decoder / MLM head is left out (and, for ViT-MAE, a classifier
    head the readouts never use is added), so transformers' load report of that is expected, not news: held back, as
    `convert` holds it back, with the other warnings shown."""
    with expected_load_warnings_silenced(family_of(model_class.config_class.model_type)):
        return model_class.from_pretrained(folder, **kwargs)


def drop_weights(run_dir: Path, keep: Path | None = None) -> None:
    """A run's weights are not kept (the comparison keeps their logs and metrics: a `small` run would otherwise leave
    gigabytes behind), except those in `keep`, the folder `--push_to_hub` publishes."""
    for weights in [*run_dir.rglob("*.safetensors"), *run_dir.rglob("*.safetensors.index.json")]:
        if keep is None or not weights.is_relative_to(keep):
            weights.unlink()
