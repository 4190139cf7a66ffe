"""Token and position embeddings.

Axial position embeddings (Reformer, sec. 5 / transformers' `AxialPositionEmbeddings`) factor
the position table: position p = (p // a2, p % a2) gets the concatenation of one row of a
[a1, d1] table and one row of a [a2, d2] table, so 64K positions cost (a1*d1 + a2*d2)
parameters instead of 64K * hidden. Indexing positions directly (instead of broadcasting the
full a1 x a2 grid) accepts every length up to `max_position_embeddings` and any offset, which
cached decoding needs (transformers#17295 is the length restriction this avoids).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .configuration_reformer_zh import ReformerZhConfig


class ReformerZhAxialPositionEmbeddings(nn.Module):
    def __init__(self, config: ReformerZhConfig) -> None:
        super().__init__()
        self.second_factor = config.axial_pos_shape[1]
        self.rows = nn.Parameter(torch.empty(config.axial_pos_shape[0], config.axial_pos_embds_dim[0]))
        self.columns = nn.Parameter(torch.empty(config.axial_pos_shape[1], config.axial_pos_embds_dim[1]))

    def forward(self, position_ids: Tensor) -> Tensor:
        """position_ids [s] -> [s, hidden]."""
        return torch.cat([self.rows[position_ids // self.second_factor], self.columns[position_ids % self.second_factor]], dim=-1)

    @torch.no_grad()
    def grow(self, num_positions: int, std: float) -> list[int]:
        """Cover `num_positions` by adding rows (the first factor) drawn at `std`; the trained
        rows and the column table stay, so every position that existed keeps its embedding.
        Returns the new axial shape."""
        rows_needed = -(-num_positions // self.second_factor)
        if rows_needed > self.rows.shape[0]:
            extra = self.rows.new_empty(rows_needed - self.rows.shape[0], self.rows.shape[1]).normal_(0.0, std)
            self.rows = nn.Parameter(torch.cat([self.rows, extra]))
        return [self.rows.shape[0], self.second_factor]


class ReformerZhPositionEmbeddings(nn.Module):
    """A learned table of `max_position_embeddings` rows (`axial_pos_embds=False`)."""

    def __init__(self, config: ReformerZhConfig) -> None:
        super().__init__()
        self.embedding = nn.Embedding(config.max_position_embeddings, config.hidden_size)

    def forward(self, position_ids: Tensor) -> Tensor:
        return self.embedding(position_ids)

    @torch.no_grad()
    def grow(self, num_positions: int, std: float) -> None:
        """Add table rows drawn at `std` up to `num_positions`; the existing rows stay."""
        old = self.embedding.weight
        if num_positions > old.shape[0]:
            extra = old.new_empty(num_positions - old.shape[0], old.shape[1]).normal_(0.0, std)
            self.embedding = nn.Embedding.from_pretrained(torch.cat([old, extra]), freeze=False)


class ReformerZhEmbeddings(nn.Module):
    """Shared token embedding plus this stack's own position embedding, then dropout."""

    def __init__(self, config: ReformerZhConfig, token_embeddings: nn.Embedding, random_offset: bool = False) -> None:
        super().__init__()
        self.token_embeddings = token_embeddings
        # training-only: start at a random position so that rows beyond the training lengths learn
        # too (config `encoder_position_offset_in_training`); the encoder's only, never the decoder's
        self.random_offset = random_offset
        if config.axial_pos_embds:
            self.position_embeddings = ReformerZhAxialPositionEmbeddings(config)
        else:
            self.position_embeddings = ReformerZhPositionEmbeddings(config)
        self.max_positions = config.max_position_embeddings
        self.dropout_p = config.hidden_dropout_prob
        # with `scale_embedding` the tied table is drawn at std hidden^-0.5 (unit-scale logits) and
        # looked-up tokens are brought back to unit scale here, as BART's `embed_scale` does
        self.token_scale = config.hidden_size**0.5 if config.scale_embedding else 1.0

    def forward(self, input_ids: Tensor | None = None, inputs_embeds: Tensor | None = None, past_length: int = 0) -> Tensor:
        if inputs_embeds is None:
            inputs_embeds = self.token_embeddings(input_ids) * self.token_scale
        seq_length = inputs_embeds.shape[1]
        if past_length + seq_length > self.max_positions:
            raise ValueError(
                f"The input reaches position {past_length + seq_length}, beyond `max_position_embeddings` "
                f"({self.max_positions}); truncate it (tokenizer(..., truncation=True, max_length={self.max_positions})) "
                "or use a config with a larger `max_position_embeddings` (and `axial_pos_shape` covering it)."
            )
        start = past_length
        if self.training and self.random_offset:
            start = int(torch.randint(self.max_positions - seq_length + 1, ()))
        position_ids = torch.arange(start, start + seq_length, device=inputs_embeds.device)
        hidden_states = inputs_embeds + self.position_embeddings(position_ids).to(inputs_embeds.dtype)
        return nn.functional.dropout(hidden_states, p=self.dropout_p, training=self.training)
