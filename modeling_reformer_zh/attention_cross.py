"""Cross-attention from the decoder to the encoder output.

Dense over the encoder positions, computed in chunks of `cross_attn_chunk_length` queries so
that a long target never materialises one (target x source) score matrix. With a cache the
encoder keys and values are projected once per `generate` call, at the first step.
Shapes: b batch, h heads, t target, S source, d head dim.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .attention_utils import QueryKeyValueAttention
from .configuration_reformer_zh import ReformerZhConfig


class ReformerZhCrossAttention(QueryKeyValueAttention):
    def __init__(self, config: ReformerZhConfig, layer_idx: int) -> None:
        super().__init__(config, layer_idx, self_attention=False)
        self.query_chunk_length = config.cross_attn_chunk_length

    def forward(
        self,
        hidden_states: Tensor,
        encoder_hidden_states: Tensor,
        encoder_attention_mask: Tensor | None = None,
        cache=None,
    ) -> Tensor:
        """hidden_states [b, t, hidden]; encoder_hidden_states [b, S, hidden];
        encoder_attention_mask [b, S] bool (True = real); cache: an `EncoderDecoderCache`."""
        query = self.heads(self.query, hidden_states)
        if cache is not None and cache.is_updated.get(self.layer_idx, False):
            layer = cache.cross_attention_cache.layers[self.layer_idx]
            key, value = layer.keys, layer.values
        else:
            key = self.heads(self.key, encoder_hidden_states)
            value = self.heads(self.value, encoder_hidden_states)
            if cache is not None:
                key, value = cache.cross_attention_cache.update(key, value, self.layer_idx)
                cache.is_updated[self.layer_idx] = True
        if encoder_attention_mask is None:
            allowed = torch.ones(1, 1, 1, key.shape[2], dtype=torch.bool, device=key.device)
        else:
            allowed = encoder_attention_mask[:, None, None, :]
        outputs = [self.attend(chunk, key, value, allowed) for chunk in query.split(self.query_chunk_length, dim=2)]
        return self.project_output(torch.cat(outputs, dim=2))
