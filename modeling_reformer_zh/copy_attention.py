"""Copy attention (pointer-generator; See et al. 2017): the decoder may point at a source
position and copy the token there.

At target position t a dedicated attention head over the encoder output gives a distribution
a_t over the source positions, and a gate p_t = sigmoid(w . [h_t; c_t] + b), where h_t is the
decoder's output state and c_t = sum_i a_t,i v_i the head's context, mixes it with the
vocabulary softmax:

    P(w) = p_t * softmax(z_t)(w) + (1 - p_t) * sum over source positions i holding w of a_t,i

Headlines copy most of their characters from the document, so a decoder that can point has a
direct path from its output to the encoder's positions from the first training step, instead of
learning to route token identity through cross-attention and the shared output embedding.

The model returns log P as its logits. softmax(log P) = P, so `generate()` (greedy, sampling,
beam search, logits processors) and the cross-entropy loss, label smoothing included, work on
them unchanged. The pointer is scattered into the vocabulary one chunk of
`cross_attn_chunk_length` target positions at a time: the largest tensors are the chunk's
[b, chunk, source] scores and [b, chunk, vocab] mixture, never target x source x vocab.
With a generation cache the encoder keys and values are projected once, at the first step, and
kept in the cross-attention cache in the slot after the decoder layers.
Shapes: b batch, t target, S source, V vocabulary, d head size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .configuration_reformer_zh import ReformerZhConfig


@dataclass
class CopyOutput:
    """What the copy head computed: `log_probs` [b, t, V], log P of the mixture, always;
    `section_mass` [b, t, sections] with source_sections; `pointer` [b, t, S] (float32, zero on
    padding) and `gate_logit` [b, t, 1] (p_t = sigmoid of it) when asked for with keep_pointer,
    which the model hands out as its output's `copy_pointer` and `copy_gate_logits`;
    `alignment_loss`, set by the model from `section_mass` (copy_alignment_loss) in training."""

    log_probs: Tensor
    section_mass: Tensor | None = None
    pointer: Tensor | None = None
    gate_logit: Tensor | None = None
    alignment_loss: Tensor | None = None


class ReformerZhCopyAttention(nn.Module):
    def __init__(self, config: ReformerZhConfig) -> None:
        super().__init__()
        head_size = config.copy_attention_head_size or config.attention_head_size
        self.query = nn.Linear(config.hidden_size, head_size, bias=False)
        self.key = nn.Linear(config.hidden_size, head_size, bias=False)
        self.value = nn.Linear(config.hidden_size, head_size, bias=False)
        self.gate = nn.Linear(config.hidden_size + head_size, 1)
        self.scale = head_size**-0.5
        self.chunk_length = config.cross_attn_chunk_length
        # its slot in the cross-attention cache: the decoder layers use 0 .. layers - 1
        self.cache_index = len(config.decoder_attn_layers)

    def encoder_keys_values(self, encoder_hidden_states: Tensor, cache=None) -> tuple[Tensor, Tensor]:
        """[b, S, d] keys and values of the source positions, projected once per generate call."""
        if cache is not None and cache.is_updated.get(self.cache_index, False):
            layer = cache.cross_attention_cache.layers[self.cache_index]
            return layer.keys[:, 0], layer.values[:, 0]
        key, value = self.key(encoder_hidden_states), self.value(encoder_hidden_states)
        if cache is not None:  # stored as one head, [b, 1, S, d], like the cross-attention layers' keys
            cache.cross_attention_cache.update(key[:, None], value[:, None], self.cache_index)
            cache.is_updated[self.cache_index] = True
        return key, value

    def pointer_and_gate(self, decoder_hidden_states: Tensor, key: Tensor, value: Tensor,
                         allowed: Tensor) -> tuple[Tensor, Tensor]:
        """The pointer a [b, t, S] (float32, zero on padding) and the gate logit [b, t, 1]."""
        scores = torch.matmul(self.query(decoder_hidden_states) * self.scale, key.transpose(1, 2)).float()
        pointer = scores.masked_fill(~allowed, torch.finfo(torch.float32).min).softmax(dim=-1)
        context = torch.matmul(pointer.to(value.dtype), value)
        gate_logit = self.gate(torch.cat([decoder_hidden_states, context], dim=-1)).float()
        return pointer, gate_logit

    def forward(
        self,
        decoder_hidden_states: Tensor,
        vocab_logits: Tensor,
        encoder_hidden_states: Tensor,
        source_ids: Tensor,
        encoder_attention_mask: Tensor | None = None,
        cache=None,
        source_sections: Tensor | None = None,
        keep_pointer: bool = False,
    ) -> CopyOutput:
        """decoder_hidden_states [b, t, hidden]; vocab_logits [b, t, V]; encoder_hidden_states
        [b, S, hidden]; source_ids [b, S] (the encoder's input ids); encoder_attention_mask [b, S]
        bool, True for real tokens. Returns log P [b, t, V] in float32; with source_sections
        [b, S] (each position's section index) also the pointer mass on each section,
        [b, t, max index + 1], for `copy_alignment_loss`; with keep_pointer the pointer and gate
        (for tracing a summary back to its source, reformer_zh/serving/attribution.py)."""
        if source_ids.shape != encoder_hidden_states.shape[:2]:
            raise ValueError(
                f"copy attention got source ids of shape {tuple(source_ids.shape)} for an encoder output of "
                f"{tuple(encoder_hidden_states.shape[:2])} positions; pass the `input_ids` the encoder read."
            )
        key, value = self.encoder_keys_values(encoder_hidden_states, cache)
        if encoder_attention_mask is None:
            allowed = torch.ones_like(source_ids, dtype=torch.bool)[:, None, :]
        else:
            allowed = encoder_attention_mask.bool()[:, None, :]
        # computed once for all chunks (and, with a cache, once per generate call): which source
        # position speaks for each token id
        representative = representative_positions(source_ids, cache)
        outputs, section_masses, pointers, gate_logits = [], [], [], []
        sections = None if source_sections is None else int(source_sections.max()) + 1
        for hidden_chunk, logits_chunk in zip(decoder_hidden_states.split(self.chunk_length, dim=1),
                                              vocab_logits.split(self.chunk_length, dim=1)):
            pointer, gate_logit = self.pointer_and_gate(hidden_chunk, key, value, allowed)
            outputs.append(log_mixture(gate_logit, logits_chunk.float().log_softmax(dim=-1), pointer, source_ids,
                                       representative))
            if sections is not None:
                index = source_sections[:, None, :].expand(-1, pointer.shape[1], -1)
                section_masses.append(pointer.new_zeros(*pointer.shape[:2], sections).scatter_add(-1, index, pointer))
            if keep_pointer:
                pointers.append(pointer)
                gate_logits.append(gate_logit)
        joined = {name: torch.cat(parts, dim=1) if parts else None
                  for name, parts in (("section_mass", section_masses), ("pointer", pointers),
                                      ("gate_logit", gate_logits))}
        return CopyOutput(torch.cat(outputs, dim=1), **joined)


def representative_positions(source_ids: Tensor, cache=None) -> Tensor:
    """`first_position_of_each_id(source_ids)`, kept on the generation cache between decoding
    steps: the source does not change, and its sort takes 2.4 ms for 4 beams x 8,192 positions
    (one thread, AMD EPYC) where a one-pass decoding step on a whole evening takes about 13. Kept with the ids it
    was computed from and reused only for equal ids (an O(S) comparison), so a cache reused for
    another source recomputes it."""
    if cache is None:
        return first_position_of_each_id(source_ids)
    kept = getattr(cache, "copy_representative_positions", None)
    if kept is not None and kept[0].shape == source_ids.shape and torch.equal(kept[0], source_ids):
        return kept[1]
    representative = first_position_of_each_id(source_ids)
    cache.copy_representative_positions = (source_ids, representative)
    return representative


def first_position_of_each_id(source_ids: Tensor) -> Tensor:
    """[b, S] -> [b, S]: for every source position, the first position holding the same token id.

    A sort per row, O(S log S): the pointer mass of all occurrences of a token is summed at its
    first position without a [S, S] same-id matrix, which would not fit at 64K positions."""
    sorted_ids, order = source_ids.sort(dim=-1, stable=True)
    run_starts = torch.ones_like(sorted_ids, dtype=torch.bool)
    run_starts[:, 1:] = sorted_ids[:, 1:] != sorted_ids[:, :-1]
    sorted_positions = torch.arange(source_ids.shape[-1], device=source_ids.device).expand_as(sorted_ids)
    # stable sort: a run's first sorted entry is its smallest position; cummax carries it along the run
    run_start = torch.where(run_starts, sorted_positions, 0).cummax(dim=-1).values
    return torch.empty_like(order).scatter_(-1, order, order.gather(-1, run_start))


def log_mixture(gate_logit: Tensor, vocab_log_probs: Tensor, pointer: Tensor, source_ids: Tensor,
                representative: Tensor) -> Tensor:
    """log(p * exp(vocab_log_probs) + (1 - p) * copy), p = sigmoid(gate_logit), in log space, where
    copy(w) is the pointer mass [b, t, S] of the source positions holding w (source_ids [b, S];
    representative from `first_position_of_each_id`). Returns [b, t, V] float32.

    Summing probabilities and then taking the log loses every token whose probability
    underflows float32 (a clamp would then give it a made-up floor and a zero gradient);
    logaddexp of the two log terms is exact wherever either term is representable, and its
    gradient is the true one.

    Only the (at most S) token ids of the source have copy mass; every other entry is
    log p + vocab_log_probs. So the logaddexp runs on [b, t, S] values gathered at the source ids
    and is written over the dense [b, t, V] generate term, instead of a logaddexp over [b, t, V]
    whose backward costs about ten passes over batch x target x vocabulary floats (a third of a
    story training step, benchmarks/profile_step.py). The copy mass of an id is summed at its
    first position; every occurrence then writes the same value, and only the first carries a
    gradient, so duplicates are counted once. A position whose copy mass is 0 (padding, or a
    pointer that underflowed) has copy term -inf: the log is taken of 1 there and masked
    afterwards, so the backward never multiplies a zero gradient by 1/0."""
    target_length = pointer.shape[1]
    representative = representative[:, None, :].expand(-1, target_length, -1)
    copy = torch.zeros_like(pointer).scatter_add_(-1, representative, pointer).gather(-1, representative)
    absent = copy == 0
    copy_log_probs = torch.where(absent, 1.0, copy).log().masked_fill(absent, float("-inf"))
    index = source_ids[:, None, :].expand(-1, target_length, -1)
    generate = nn.functional.logsigmoid(gate_logit) + vocab_log_probs
    at_source = torch.logaddexp(generate.gather(-1, index), nn.functional.logsigmoid(-gate_logit) + copy_log_probs)
    is_first = representative == torch.arange(representative.shape[-1], device=representative.device)
    at_source = torch.where(is_first, at_source, at_source.detach())
    return generate.scatter(-1, index, at_source)


def copy_alignment_loss(section_mass: Tensor, segment_index: Tensor, source_sections: Tensor,
                        target_mask: Tensor) -> Tensor:
    """Guided alignment for whole documents (config `copy_alignment_loss_weight`, issue 35): the
    k-th summary segment should copy from the k-th section, so each target position of segment k
    pays -log of the pointer mass on section k. section_mass [b, t, K] (`forward` with
    source_sections), segment_index [b, t], source_sections [b, S] (padding may hold any
    section), target_mask [b, t] True at real target positions. Positions whose segment has no
    section of the same index in their document are left out (a summary with more segments
    than the document has sections); the mean over the rest, 0 when none is left.

    This holds where the k-th headline belongs to the k-th section, as in the training windows
    that scripts/evenings.py builds from stories; on whole evenings with news briefs (a block of
    short items with no headline of their own) it does not, which is why it is a training-time
    option."""
    sections_in_document = source_sections.amax(dim=1, keepdim=True) + 1
    kept = target_mask & (segment_index < sections_in_document)
    if not kept.any():
        return section_mass.sum() * 0.0  # keeps the graph (and DDP's gradients) connected
    index = segment_index.clamp(max=section_mass.shape[-1] - 1).unsqueeze(-1)
    # + 1e-9: a finite loss and gradient even where the pointer gives the section nothing at all
    mass = section_mass.gather(-1, index).squeeze(-1)
    return -(mass + 1e-9).log()[kept].mean()

