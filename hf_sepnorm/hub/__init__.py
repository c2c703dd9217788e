"""Publishing SepNorm checkpoints to the Hugging Face Hub: model cards and one-commit pushes."""

from .cards import render_model_card
from .push import CheckpointFolderError, HubPushError, push_to_hub

__all__ = ["CheckpointFolderError", "HubPushError", "push_to_hub", "render_model_card"]
