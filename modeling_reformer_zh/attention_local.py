"""Local (chunked sliding-window) self-attention.

The sequence is cut into chunks of `local_attn_chunk_length`; each chunk attends to itself,
`local_num_chunks_before` chunks before it and (encoder only) `local_num_chunks_after` after.
Causal in the decoder, where the cached step reads exactly the window the full forward reads:
keys from the start of chunk (chunk(i) - before) up to position i.

Shapes: b batch, h heads, s sequence, C chunks, c chunk length, w window, d head dim.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .attention_utils import (
    chunked_attention_options,
    QueryKeyValueAttention,
    look_around_positions,
    look_around_vectors,
    masked_attention,
    pad_to_multiple,
)
from .configuration_reformer_zh import ReformerZhConfig


def local_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    *,
    key_mask: Tensor | None,
    # from `causal` on, the options lsh_attention takes too (a deliberate twin: both layers pass
    # them with attention_utils.chunked_attention_options)
    causal: bool,
    chunk_length: int,
    num_chunks_before: int,
    num_chunks_after: int,
    dropout_p: float,
    training: bool,
    memory=None,
) -> Tensor:
    """query, key, value [b, h, s, d] with s a multiple of `chunk_length` -> [b, h, s, d].
    `memory`: a `PersistentMemory` every query also reads, or None."""
    batch_size, num_heads, seq_length, head_size = query.shape
    num_chunks = seq_length // chunk_length
    chunk_shape = (batch_size, num_heads, num_chunks, chunk_length, head_size)
    query_chunks = query.reshape(chunk_shape)
    key_chunks = look_around_vectors(key.reshape(chunk_shape), num_chunks_before, num_chunks_after)
    value_chunks = look_around_vectors(value.reshape(chunk_shape), num_chunks_before, num_chunks_after)

    query_positions = torch.arange(seq_length, device=query.device).view(num_chunks, chunk_length)
    key_positions = look_around_positions(query_positions, num_chunks_before, num_chunks_after, -1)
    allowed = (key_positions >= 0)[:, None, :]  # [C, 1, w]
    if causal:
        allowed = allowed & (key_positions[:, None, :] <= query_positions[:, :, None])
    if key_mask is not None:
        chunked_mask = key_mask.view(batch_size, num_chunks, chunk_length)
        window_mask = look_around_positions(chunked_mask, num_chunks_before, num_chunks_after, False)
        allowed = allowed & window_mask[:, None, :, None, :]  # [b, 1, C, 1, w]
    output, _ = masked_attention(
        query_chunks,
        key_chunks,
        value_chunks,
        allowed,
        scale=head_size**-0.5,
        dropout_p=dropout_p,
        training=training,
        memory=memory,
    )
    return output.reshape(batch_size, num_heads, seq_length, head_size)


class ReformerZhLocalSelfAttention(QueryKeyValueAttention):
    """Chunked sliding-window self-attention with separate query, key and value projections."""

    def __init__(self, config: ReformerZhConfig, layer_idx: int, is_causal: bool) -> None:
        super().__init__(config, layer_idx)
        self.is_causal = is_causal
        self.chunk_length = config.local_attn_chunk_length
        self.num_chunks_before = config.local_num_chunks_before
        self.num_chunks_after = 0 if is_causal else config.local_num_chunks_after

    def forward(self, hidden_states: Tensor, attention_mask: Tensor | None = None, cache=None) -> Tensor:
        query = self.heads(self.query, hidden_states)
        key = self.heads(self.key, hidden_states)
        value = self.heads(self.value, hidden_states)
        seq_length = query.shape[2]
        if cache is not None:
            output = self._cached(query, key, value, attention_mask, cache)
        else:
            if attention_mask is None and seq_length % self.chunk_length:
                attention_mask = torch.ones(query.shape[0], seq_length, dtype=torch.bool, device=query.device)
            if attention_mask is not None:
                attention_mask = pad_to_multiple(attention_mask, self.chunk_length, dim=1, value=False)
            output = local_attention(
                pad_to_multiple(query, self.chunk_length, dim=2),
                pad_to_multiple(key, self.chunk_length, dim=2),
                pad_to_multiple(value, self.chunk_length, dim=2),
                key_mask=attention_mask,
                **chunked_attention_options(self),
            )[:, :, :seq_length]
        return self.project_output(output)

    def _cached(self, query: Tensor, key: Tensor, value: Tensor, attention_mask: Tensor | None, cache) -> Tensor:
        """Causal decoding: new queries read the cached keys of their window, nothing more."""
        past_length = cache.get_seq_length(self.layer_idx)
        all_keys, all_values = cache.update(key, value, self.layer_idx)
        query_positions = torch.arange(past_length, past_length + query.shape[2], device=query.device)
        # The earliest key any new query may read: the start of chunk(first query) - before.
        window_start = max(0, (past_length // self.chunk_length - self.num_chunks_before) * self.chunk_length)
        key_positions = torch.arange(window_start, all_keys.shape[2], device=query.device)
        query_chunks = query_positions[:, None] // self.chunk_length
        allowed = (key_positions[None, :] <= query_positions[:, None]) & (
            key_positions[None, :] // self.chunk_length >= query_chunks - self.num_chunks_before
        )
        if attention_mask is not None:
            allowed = allowed & attention_mask[:, None, None, window_start:]
        output, _ = masked_attention(
            query,
            all_keys[:, :, window_start:],
            all_values[:, :, window_start:],
            allowed,
            scale=self.head_size**-0.5,
            dropout_p=self.dropout_p,
            training=self.training,
            memory=self.memory,
        )
        return output
