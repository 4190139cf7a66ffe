"""Position-wise feed-forward, optionally run over sequence chunks.

Chunking bounds the [s, feed_forward_size] activation to [chunk, feed_forward_size]; since the
layer is position-wise the result is identical (tests/test_feed_forward.py checks it).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from transformers.activations import ACT2FN

from .configuration_reformer_zh import ReformerZhConfig


class ReformerZhFeedForward(nn.Module):
    def __init__(self, config: ReformerZhConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.feed_forward_size)
        self.activation = ACT2FN[config.hidden_act]
        self.dropout_p = config.hidden_dropout_prob
        self.output = nn.Linear(config.feed_forward_size, config.hidden_size)
        self.chunk_size = config.chunk_size_feed_forward

    def forward(self, hidden_states: Tensor) -> Tensor:
        if self.chunk_size and hidden_states.shape[1] > self.chunk_size:
            return torch.cat([self._forward(chunk) for chunk in hidden_states.split(self.chunk_size, dim=1)], dim=1)
        return self._forward(hidden_states)

    def _forward(self, hidden_states: Tensor) -> Tensor:
        hidden_states = self.activation(self.dense(hidden_states))
        hidden_states = nn.functional.dropout(hidden_states, p=self.dropout_p, training=self.training)
        return self.output(hidden_states)
