"""The Trainer's `checkpoint-N` folders of an output_dir: which are complete, and which one a run resumes from.

Below both `arguments.py` (which refuses an output_dir holding another run's checkpoints) and `trainer.py`.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from transformers.trainer import FSDP_MODEL_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from transformers.utils import ADAPTER_SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME

from ..errors import InputError, MissingInputError

logger = logging.getLogger(__name__)

# What a checkpoint's weights are saved as: the model, sharded or not, a LoRA adapter, FSDP's own state dict files.
CHECKPOINT_WEIGHTS = (SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME, ADAPTER_SAFE_WEIGHTS_NAME, f"{FSDP_MODEL_NAME}*")
# `resume_from_checkpoint` values that mean "the last complete checkpoint of output_dir"
LAST_CHECKPOINT = ("true", "last")


def resumed_checkpoint(resume_from_checkpoint: str | bool | None, output_dir: str) -> str | None:
    """The checkpoint a run resumes from: `True`/"true"/"last" is the last complete one of `output_dir`; a given
    folder must be complete. None when the run does not resume."""
    if resume_from_checkpoint is None or resume_from_checkpoint is False:
        return None
    if resume_from_checkpoint is True or resume_from_checkpoint.lower() in LAST_CHECKPOINT:
        checkpoint = last_complete_checkpoint(output_dir)
        if checkpoint is None:
            raise MissingInputError(
                f"--resume_from_checkpoint {resume_from_checkpoint}: no complete checkpoint in {output_dir}."
            )
        logger.info("Resuming from %s, the last complete checkpoint", checkpoint)
        return str(checkpoint)
    last = last_complete_checkpoint(str(Path(resume_from_checkpoint).parent))
    if not Path(resume_from_checkpoint).is_dir():
        raise MissingInputError(
            f"--resume_from_checkpoint {resume_from_checkpoint}: no such folder. The last complete checkpoint beside "
            f"it is {last}; --resume_from_checkpoint true takes the last complete one of --output_dir."
        )
    if not checkpoint_is_complete(Path(resume_from_checkpoint)):
        raise InputError(
            f"--resume_from_checkpoint {resume_from_checkpoint} is not a complete checkpoint (no readable "
            f"trainer_state.json or weights: its save was interrupted). The last complete one is {last}."
        )
    return resume_from_checkpoint


def checkpoint_is_complete(checkpoint: Path) -> bool:
    """The Trainer writes a checkpoint's trainer_state.json last: a save killed before it ends leaves none, or a
    partial one."""
    try:
        json.loads((checkpoint / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return any(next(checkpoint.glob(pattern), None) is not None for pattern in CHECKPOINT_WEIGHTS)


def checkpoint_folders(output_dir: str) -> list[Path]:
    """The `checkpoint-N` folders of `output_dir`, by increasing N (complete or not)."""
    return sorted(
        (path for path in Path(output_dir).glob(f"{PREFIX_CHECKPOINT_DIR}-*") if path.name.split("-")[-1].isdigit()),
        key=lambda path: int(path.name.split("-")[-1]),
    )


def last_complete_checkpoint(output_dir: str) -> Path | None:
    """The highest-numbered complete `checkpoint-N` of `output_dir` (the Trainer's own choice for
    `resume_from_checkpoint=True`, the highest-numbered one, may be a save that was killed half-way)."""
    return next((path for path in reversed(checkpoint_folders(output_dir)) if checkpoint_is_complete(path)), None)


def remove_checkpoints(output_dir: str) -> list[str]:
    """Remove the `checkpoint-N` folders of `output_dir`; returns their names."""
    folders = checkpoint_folders(output_dir)
    for folder in folders:
        shutil.rmtree(folder)
    return [folder.name for folder in folders]
