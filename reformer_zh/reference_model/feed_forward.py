"""Position-wise feed-forward, and running position-wise work over sequence chunks.

What chunking (`chunk_size_feed_forward`) bounds: the [b, s, feed_forward_size] intermediate
becomes [b, chunk, feed_forward_size] wherever no autograd graph is kept, i.e. at inference
and in the reversible stack's forward, and also in the reversible backward, which recomputes
and differentiates a chunked step one chunk at a time (reversible.py). Under plain autograd
(`reversible=False`) every chunk's activations are kept for the backward, so chunking bounds
nothing there. Since the work is position-wise the result equals the unchunked one.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from transformers.activations import ACT2FN

from .configuration_reformer_zh import ReformerZhConfig


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
