"""A SepNorm that ends a feed-forward which transformers runs one sequence chunk at a time
(`apply_chunking_to_forward` with `layer.chunk_size_feed_forward > 0`): applied to a chunk, it would take the chunk's
row 0 for [CLS], so it defers to the layer's whole output.

It travels with every checkpoint (remote code) beside `sepnorm.py`, which uses it: standard library and torch only.
"""

import functools

import torch
from torch import nn


def normalize_whole_output_of(norm: nn.Module, layer: nn.Module) -> None:
    """Make `norm` (a `SepNormLayerNorm` ending `layer`'s feed-forward) normalize `layer`'s whole output, once, when
    the feed-forward runs on chunks; it is a pass-through for the chunks then (`norm.deferred_to_layer_output`)."""
    layer.register_forward_pre_hook(functools.partial(_defer_while_chunking, norm))
    layer.register_forward_hook(functools.partial(_normalize_deferred_output, norm), prepend=True)


def _defer_while_chunking(norm: nn.Module, layer: nn.Module, args) -> None:
    chunking = layer.chunk_size_feed_forward > 0
    if norm.deferred_to_layer_output != chunking:  # no attribute write in the usual unchunked case (compiles as is)
        norm.deferred_to_layer_output = chunking


def _normalize_deferred_output(norm: nn.Module, layer: nn.Module, args, output: torch.Tensor):
    # The flag stays set: transformers (5.25) checkpoints a layer's `forward` without its hooks, so the backward's
    # recomputation of the layer sees only the flag the pre-hook left, and must defer as the forward did.
    if norm.deferred_to_layer_output:
        return norm.normalize(output)
    return None
