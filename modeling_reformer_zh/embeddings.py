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


def section_index(input_ids: Tensor, break_token_id: int, rows: int | None = None) -> Tensor:
    """[b, s] -> [b, s] the section of every position: the number of section breaks (two
    consecutive `break_token_id`, a blank line) that end before it, at most rows - 1 when
    `rows` is given (an embedding table's size; the alignment loss counts every one). A break's
    own two tokens belong to the section they close. (The tokenizer writes at most two line
    breaks in a row.)"""
    is_break = input_ids == break_token_id
    ends = torch.zeros_like(is_break)
    ends[:, 1:] = is_break[:, 1:] & is_break[:, :-1]
    closed_before = ends.long().cumsum(dim=1) - ends.long()
    return closed_before if rows is None else closed_before.clamp(max=rows - 1)


class ReformerZhSectionEmbeddings(nn.Module):
    """A learned row per section index (config `section_embeddings`), added to the encoder's
    input; zero at initialisation (see `ReformerZhConfig`)."""

    def __init__(self, config: ReformerZhConfig) -> None:
        super().__init__()
        self.rows = config.section_embeddings
        self.break_token_id = config.section_break_token_id
        self.table = nn.Parameter(torch.zeros(config.section_embeddings, config.hidden_size))

    def forward(self, input_ids: Tensor) -> Tensor:
        return self.table[section_index(input_ids, self.break_token_id, self.rows)]


def summary_segment_index(decoder_input_ids: Tensor, separator_token_id: int, rows: int | None = None) -> Tensor:
    """[b, t] -> [b, t] the summary segment each decoder position writes: the separators among its
    inputs so far, its own input included (the input after a separator starts the next segment),
    at most rows - 1 when `rows` is given. Decoder inputs are the labels shifted right, so the position that writes a
    separator still belongs to the segment the separator ends."""
    index = (decoder_input_ids == separator_token_id).long().cumsum(dim=1)
    return index if rows is None else index.clamp(max=rows - 1)


class ReformerZhSummarySegmentEmbeddings(nn.Module):
    """A learned row per summary segment index (config `summary_segment_embeddings`), added to the
    decoder's input; zero at initialisation, like the encoder's section rows."""

    def __init__(self, config: ReformerZhConfig) -> None:
        super().__init__()
        self.rows = config.summary_segment_embeddings
        self.separator_token_id = config.summary_separator_token_id
        self.table = nn.Parameter(torch.zeros(config.summary_segment_embeddings, config.hidden_size))

    def forward(self, segment_index: Tensor) -> Tensor:
        return self.table[segment_index.clamp(max=self.rows - 1)]


class ReformerZhEmbeddings(nn.Module):
    """Shared token embedding plus this stack's own position embedding, then dropout."""

    def __init__(self, config: ReformerZhConfig, token_embeddings: nn.Embedding, random_offset: bool = False,
                 sections: bool = False, summary_segments: bool = False) -> None:
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
        # the encoder's only: which section of a sectioned document each position is in
        self.section_embeddings = ReformerZhSectionEmbeddings(config) if sections else None
        # the decoder's only: which summary segment each position writes
        self.summary_segment_embeddings = ReformerZhSummarySegmentEmbeddings(config) if summary_segments else None

    def forward(self, input_ids: Tensor | None = None, inputs_embeds: Tensor | None = None, past_length: int = 0,
                segment_index: Tensor | None = None) -> Tensor:
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
        if self.section_embeddings is not None:
            if input_ids is None:
                raise ValueError("section_embeddings find sections in the token ids: pass `input_ids`, not "
                                 "`inputs_embeds`.")
            hidden_states = hidden_states + self.section_embeddings(input_ids).to(hidden_states.dtype)
        if self.summary_segment_embeddings is not None:
            hidden_states = hidden_states + self.summary_segment_embeddings(
                self.decoder_segment_index(input_ids, segment_index, past_length)).to(hidden_states.dtype)
        return nn.functional.dropout(hidden_states, p=self.dropout_p, training=self.training)

    def decoder_segment_index(self, input_ids: Tensor | None, segment_index: Tensor | None, past_length: int) -> Tensor:
        """The given index, or the one the decoder inputs imply when they are all there (no cache)."""
        if segment_index is not None:
            return segment_index
        if input_ids is None:
            raise ValueError("summary_segment_embeddings count the separators in the decoder's token ids: pass "
                             "`decoder_input_ids` (not `decoder_inputs_embeds`) or `decoder_segment_index`.")
        if past_length:
            raise ValueError(
                "with a cache the decoder sees only its newest tokens, so it cannot count the summary separators "
                "written before them: pass `decoder_segment_index` for the new positions (generate() does)."
            )
        module = self.summary_segment_embeddings
        return summary_segment_index(input_ids, module.separator_token_id, module.rows)

