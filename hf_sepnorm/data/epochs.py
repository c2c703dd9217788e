"""Per-example random draws that a resumed run repeats exactly."""

from __future__ import annotations

import math

from transformers import TrainerCallback


class EpochCallback(TrainerCallback):
    """Tells a transform or collator that seeds its random draws by (seed, epoch, example index) which epoch the
    Trainer is in, through its `epoch` attribute.

    Draws from the global random state would not repeat after a resume: the data loader has already collated the
    next batch when a checkpoint is saved, so the saved random state is one batch ahead.
    """

    def __init__(self, seeded):
        self.seeded = seeded

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.seeded.epoch = math.floor(state.epoch or 0)
