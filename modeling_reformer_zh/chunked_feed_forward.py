"""Chunked feed-forward (the Reformer paper's sec. 3): the position-wise feed-forward step of every
layer, run over sequence chunks.

What chunking (`chunk_size_feed_forward`) bounds: the [b, s, feed_forward_size] intermediate
becomes [b, chunk, feed_forward_size] wherever no autograd graph is kept, i.e. at inference
and in the reversible stack's forward, and also in the reversible backward, which recomputes
and differentiates a chunked step one chunk at a time (reversible.py reads the step's
`position_wise_chunk_size`; the only part of the idea outside this file). Under plain autograd
(`reversible=False`) every chunk's activations are kept for the backward, so chunking bounds
nothing there. Since the work is position-wise the result equals the unchunked one.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from transformers.activations import ACT2FN

from .configuration_reformer_zh import ReformerZhConfig
from .product_key_memory import ProductKeyMemory
from .reversible import StepContext


def apply_in_chunks(function: Callable[[Tensor], Tensor], hidden_states: Tensor, chunk_size: int) -> Tensor:
    """function over [b, s, ...] applied to `chunk_size` positions at a time (0: in one piece)."""
    if not chunk_size or hidden_states.shape[1] <= chunk_size:
        return function(hidden_states)
    return torch.cat([function(chunk) for chunk in hidden_states.split(chunk_size, dim=1)], dim=1)


class ReformerZhFeedForward(nn.Module):
    """dense -> activation -> dropout -> dense, position by position."""

    def __init__(self, config: ReformerZhConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.feed_forward_size)
        self.activation = ACT2FN[config.hidden_act]
        self.dropout_p = config.hidden_dropout_prob
        self.output = nn.Linear(config.feed_forward_size, config.hidden_size)

    def forward(self, hidden_states: Tensor) -> Tensor:
        hidden_states = self.activation(self.dense(hidden_states))
        hidden_states = nn.functional.dropout(hidden_states, p=self.dropout_p, training=self.training)
        return self.output(hidden_states)


class ReformerZhFeedForwardStep(nn.Module):
    """LayerNorm -> feed-forward and/or product-key memory -> dropout, over sequence chunks of
    `chunk_size_feed_forward` positions when set.

    In the layers listed by `pkm_layers` / `decoder_pkm_layers` the memory replaces the
    feed-forward (`pkm_mode="replace"`) or adds its read to it (`"add"`).

    `position_wise_chunk_size` (> 0) tells the reversible backward that the whole step is
    position-wise and chunked, so it may recompute and differentiate it chunk by chunk. A
    batch-norm memory query is not position-wise in training (batch statistics): such a step
    chunks only its feed-forward and is recomputed in one piece.
    """

    reads_encoder = False

    def __init__(self, config: ReformerZhConfig, with_memory: bool = False) -> None:
        super().__init__()
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        replaced = with_memory and config.pkm_mode == "replace"
        self.feed_forward = None if replaced else ReformerZhFeedForward(config)
        self.memory = ProductKeyMemory(config) if with_memory else None
        self.dropout_p = config.hidden_dropout_prob
        position_wise = not with_memory or config.pkm_query_norm != "batch"
        self.position_wise_chunk_size = config.chunk_size_feed_forward if position_wise else 0
        self.feed_forward_chunk_size = 0 if position_wise else config.chunk_size_feed_forward

    def forward(self, hidden_states: Tensor, context: StepContext) -> Tensor:
        return apply_in_chunks(self._forward, hidden_states, self.position_wise_chunk_size)

    def _forward(self, hidden_states: Tensor) -> Tensor:
        normed = self.layer_norm(hidden_states)
        output = None
        if self.feed_forward is not None:
            output = apply_in_chunks(self.feed_forward, normed, self.feed_forward_chunk_size)
        if self.memory is not None:
            output = self.memory(normed) if output is None else output + self.memory(normed)
        return nn.functional.dropout(output, p=self.dropout_p, training=self.training)
