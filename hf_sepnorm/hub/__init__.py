"""Publishing SepNorm checkpoints to the Hugging Face Hub: model cards and one-commit pushes."""

from .cards import hub_base_model, render_model_card
from .push import CheckpointFolderError, HubPushError, push_to_hub

__all__ = ["CheckpointFolderError", "HubPushError", "hub_base_model", "push_to_hub", "render_model_card"]
