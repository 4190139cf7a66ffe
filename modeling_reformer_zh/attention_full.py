"""Full (dense) self-attention: every query reads every allowed key.

The exact reference for short inputs and the default decoder self-attention, whose cache is
exact. Shapes: b batch, h heads, s sequence, d head dim.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .attention_utils import QueryKeyValueAttention
from .configuration_reformer_zh import ReformerZhConfig


class ReformerZhFullSelfAttention(QueryKeyValueAttention):
    """Dense multi-head self-attention with separate query, key and value projections."""

    def __init__(self, config: ReformerZhConfig, layer_idx: int, is_causal: bool) -> None:
        super().__init__(config, layer_idx)
        self.is_causal = is_causal

    def forward(self, hidden_states: Tensor, attention_mask: Tensor | None = None, cache=None) -> Tensor:
        """attention_mask [b, keys] bool (True = real); with a cache it covers past and new keys."""
        query = self.heads(self.query, hidden_states)
        key = self.heads(self.key, hidden_states)
        value = self.heads(self.value, hidden_states)
        past_length = 0
        if cache is not None:
            past_length = cache.get_seq_length(self.layer_idx)
            key, value = cache.update(key, value, self.layer_idx)
        query_positions = torch.arange(past_length, past_length + query.shape[2], device=query.device)
        key_positions = torch.arange(key.shape[2], device=query.device)
        allowed = torch.ones(query.shape[2], key.shape[2], dtype=torch.bool, device=query.device)
        if self.is_causal:
            allowed = key_positions[None, :] <= query_positions[:, None]
        if attention_mask is not None:
            allowed = allowed & attention_mask[:, None, None, :]
        output = self.attend(query, key, value, allowed)
        return self.project_output(output)
