"""Activation checkpointing with a [CLS] BatchNorm: the backward pass recomputes a layer's forward, which must
normalize with the same batch statistics but not update the running statistics a second time.

It travels with every checkpoint (remote code) beside `sepnorm.py`, which uses it: standard library only.
"""

import contextlib

_recomputing_activations = False


@contextlib.contextmanager
def _batch_statistics_frozen():
    global _recomputing_activations
    previous, _recomputing_activations = _recomputing_activations, True
    try:
        yield
    finally:
        _recomputing_activations = previous


def is_recomputing_activations() -> bool:
    """True while activation checkpointing recomputes a layer's forward inside the backward pass."""
    return _recomputing_activations


def checkpoint_updating_statistics_once(checkpoint_fn):
    """Wrap an activation-checkpointing function so that [CLS] BatchNorm running statistics are updated by the
    forward pass only, not a second time when the backward pass recomputes the layer (reentrant or not)."""

    def checkpoint(function, *args, **kwargs):
        calls = 0

        def forward_then_recompute(*inner_args, **inner_kwargs):
            nonlocal calls
            calls += 1
            if calls == 1:
                return function(*inner_args, **inner_kwargs)
            with _batch_statistics_frozen():
                return function(*inner_args, **inner_kwargs)

        return checkpoint_fn(forward_then_recompute, *args, **kwargs)

    return checkpoint
