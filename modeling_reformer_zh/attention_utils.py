"""Shared pieces of the attention layers: head split/merge, chunk look-around, mask values.

Shapes: b batch, h heads, s sequence, c chunk length, C number of chunks, w look-around
window (chunks before + 1 + chunks after, times c), d head dim.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .persistent_memory import PersistentMemory


def split_heads(hidden_states: Tensor, num_heads: int, head_size: int) -> Tensor:
    """[b, s, h*d] -> [b, h, s, d]."""
    batch_size, seq_length, _ = hidden_states.shape
    return hidden_states.view(batch_size, seq_length, num_heads, head_size).transpose(1, 2)


def merge_heads(hidden_states: Tensor) -> Tensor:
    """[b, h, s, d] -> [b, s, h*d]."""
    batch_size, num_heads, seq_length, head_size = hidden_states.shape
    return hidden_states.transpose(1, 2).reshape(batch_size, seq_length, num_heads * head_size)


def combine_heads(hidden_states: Tensor, mode: str) -> Tensor:
    """[b, h, s, d] -> the output projection's input: [b, s, h*d] ("concat") or [b, s, d] ("mean").

    "mean" keeps one head-sized vector per position: the output projection is h times smaller,
    and every head writes into the same d coordinates, so heads must agree on a shared basis.
    """
    if mode == "mean":
        return hidden_states.mean(dim=1)
    return merge_heads(hidden_states)


def output_projection(config) -> torch.nn.Linear:
    """The attention output projection; its input size follows `config.head_combine`."""
    inputs = config.attention_head_size
    if config.head_combine == "concat":
        inputs *= config.num_attention_heads
    return torch.nn.Linear(inputs, config.hidden_size, bias=False)


def mask_value(dtype: torch.dtype) -> float:
    """The logit of a forbidden key: the dtype's most negative finite value.

    Finite (never -inf) so that a row with every key masked gives a uniform softmax instead of NaN.
    """
    return torch.finfo(dtype).min


def self_mask_value(dtype: torch.dtype) -> float:
    """The logit of a token's own key in shared-QK attention.

    With shared QK a query's dot product with itself is always the largest, so the paper
    forbids it "except when it has no other valid attention target" (sec. 2.2): a large negative
    value that still beats `mask_value`. -1e4 fits fp16 and is far below any real logit, whose
    keys are unit length.
    """
    return -1e4


def look_around_vectors(chunks: Tensor, num_before: int, num_after: int) -> Tensor:
    """Concatenate each chunk of [..., C, c, d] vectors with its neighbours: [..., C, w, d].

    w = (num_before + 1 + num_after) * c. Missing neighbours at the edges are zeros (there is no
    wrap-around); `look_around_positions` marks them invalid for the mask.
    """
    return _look_around(chunks, num_before, num_after, 0.0, trailing_dims=1)


def look_around_positions(chunks: Tensor, num_before: int, num_after: int, pad_value: int | bool) -> Tensor:
    """The same for [..., C, c] positions or masks: [..., C, w], `pad_value` at the edges."""
    return _look_around(chunks, num_before, num_after, pad_value, trailing_dims=0)


def _look_around(chunks: Tensor, num_before: int, num_after: int, pad_value, trailing_dims: int) -> Tensor:
    if num_before == 0 and num_after == 0:
        return chunks
    chunk_dim = chunks.dim() - 2 - trailing_dims
    num_chunks = chunks.shape[chunk_dim]
    pad_shape = list(chunks.shape)
    pieces = []
    for shift in range(-num_before, num_after + 1):
        if shift == 0:
            pieces.append(chunks)
            continue
        available = max(num_chunks - abs(shift), 0)
        pad_shape[chunk_dim] = num_chunks - available
        padding = torch.full(pad_shape, pad_value, dtype=chunks.dtype, device=chunks.device)
        if shift < 0:  # chunk i sees chunk i + shift; the first -shift chunks see padding
            pieces.append(torch.cat([padding, chunks.narrow(chunk_dim, 0, available)], dim=chunk_dim))
        else:
            pieces.append(torch.cat([chunks.narrow(chunk_dim, num_chunks - available, available), padding], dim=chunk_dim))
    return torch.cat(pieces, dim=chunk_dim + 1)


def round_up(length: int, multiple: int) -> int:
    """The smallest multiple of `multiple` that is >= `length`."""
    return -(-length // multiple) * multiple


def pad_to_multiple(tensor: Tensor, multiple: int, dim: int, value: float | int | bool = 0) -> Tensor:
    """Right-pad `tensor` along `dim` to a multiple of `multiple`."""
    length = tensor.shape[dim]
    padded_length = round_up(length, multiple)
    if padded_length == length:
        return tensor
    pad_shape = list(tensor.shape)
    pad_shape[dim] = padded_length - length
    padding = torch.full(pad_shape, value, dtype=tensor.dtype, device=tensor.device)
    return torch.cat([tensor, padding], dim=dim)


def subtract_log_(logits: Tensor, counts: Tensor, num_slices: int = 8) -> None:
    """logits -= log(counts), in place, a slice at a time: the float copy of the counts then
    takes 1/num_slices of the logits' memory (the counts themselves are one byte each)."""
    flat_logits, flat_counts = logits.view(-1, logits.shape[-1]), counts.reshape(-1, counts.shape[-1])
    step = -(-flat_logits.shape[0] // num_slices)
    for start in range(0, flat_logits.shape[0], step):
        length = min(step, flat_logits.shape[0] - start)
        flat_logits.narrow(0, start, length).sub_(flat_counts.narrow(0, start, length).to(logits.dtype).log_())


def broadcast_shape(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """`torch.broadcast_shapes` for the few short shapes attention combines at every decoding
    step, without its cost: the torch function goes through torch._refs (29 us a call against
    4 us here, four shapes, one thread; two calls an attention layer a decoding step were 5% of
    a headline's time through the pipeline under cProfile). Raises RuntimeError, as torch does,
    for shapes that do not broadcast."""
    rank = max(len(shape) for shape in shapes)
    result = []
    for sizes in zip(*((1,) * (rank - len(shape)) + tuple(shape) for shape in shapes)):
        size = 1
        for candidate in sizes:
            if candidate != 1:
                if size != 1 and size != candidate:
                    raise RuntimeError(f"shapes {[tuple(shape) for shape in shapes]} do not broadcast together")
                size = candidate
        result.append(size)
    return tuple(result)


def masked_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    allowed: Tensor,
    *,
    scale: float,
    dropout_p: float,
    training: bool,
    self_mask: Tensor | None = None,
    return_log_normalizer: bool = False,
    memory: PersistentMemory | None = None,
    key_multiplicity: Tensor | None = None,
    memory_multiplicity: int = 1,
    fused: bool = True,
) -> tuple[Tensor, Tensor | None]:
    """Softmax attention under an explicit mask; every attention kind ends here.

    Where neither the log-normaliser nor multiplicities are asked for (every kind but LSH), it
    runs as one `scaled_dot_product_attention` (`fused_masked_attention`), which never stores the
    [q, k] probabilities; `fused=False` forces the explicit softmax (the reference in tests).

    Args:
        query: [..., q, d]; key, value: [..., k, d].
        allowed: bool, broadcastable to [..., q, k]; True where the query may read the key.
        self_mask: bool, broadcastable to [..., q, k]; True at a query's own key (shared-QK only).
        return_log_normalizer: also return the log-sum-exp of the logits, which LSH uses to weigh
            its hash rounds (otherwise None, and one fused softmax is used).
        memory: persistent key/values every query also reads, always allowed; they share the
            softmax (and the log-normalizer) with the real keys.
        key_multiplicity: integer tensor of the logits' shape [..., q, k], or None: in how many
            of the attention passes that are later combined (LSH hash rounds) the query meets
            this key. Its logit is lowered by log(multiplicity), so that after the combination
            the key weighs as much as once in a single softmax (Kitaev et al. 2020, appendix A).
        memory_multiplicity: the same for the memory keys, which every pass meets.
    Returns:
        The attended values [..., q, d] and the log-sum-exp of the logits [..., q] or None.
    """
    if fused and not return_log_normalizer and key_multiplicity is None:
        output = fused_masked_attention(
            query, key, value, allowed, scale=scale, dropout_p=dropout_p if training else 0.0,
            self_mask=self_mask, memory=memory,
        )
        return output, None
    query = query * scale  # scale the smaller operand
    logits = torch.matmul(query, key.transpose(-1, -2))
    if key_multiplicity is not None:
        subtract_log_(logits, key_multiplicity)
    if self_mask is not None:
        logits = logits.masked_fill_(self_mask, self_mask_value(logits.dtype))
    logits = logits.masked_fill_(~allowed, mask_value(logits.dtype))
    if memory is not None:
        memory_keys, memory_values = memory.for_query(query)
        memory_logits = torch.matmul(query, memory_keys.transpose(-1, -2))
        if memory_multiplicity > 1:
            memory_logits = memory_logits - math.log(memory_multiplicity)
        logits = torch.cat([logits, memory_logits], dim=-1)
    log_normalizer = None
    if return_log_normalizer:
        log_normalizer = torch.logsumexp(logits, dim=-1, keepdim=True)
        probs = torch.exp(logits - log_normalizer)
        log_normalizer = log_normalizer.squeeze(-1)
    else:
        probs = torch.softmax(logits, dim=-1)
    if training and dropout_p > 0:
        probs = torch.nn.functional.dropout(probs, p=dropout_p, training=True)
    if memory is not None:
        probs, memory_probs = probs.split([key.shape[-2], memory_values.shape[-2]], dim=-1)
        return torch.matmul(probs, value) + torch.matmul(memory_probs, memory_values), log_normalizer
    return torch.matmul(probs, value), log_normalizer


def fused_masked_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    allowed: Tensor,
    *,
    scale: float,
    dropout_p: float,
    self_mask: Tensor | None = None,
    memory: PersistentMemory | None = None,
) -> Tensor:
    """`masked_attention` as one `torch.nn.functional.scaled_dot_product_attention` call (its
    arguments are `masked_attention`'s, a deliberate twin: the two are tested equal).

    The mask becomes an additive bias of the same values the explicit path writes into the
    logits (0, `self_mask_value` at a shared-QK query's own key, `mask_value` where forbidden:
    finite, so a row with every key forbidden stays uniform instead of NaN). SDPA's fused CPU
    and GPU kernels take 4-d inputs [N, H, q, d] with a mask broadcast over H, so the leading
    dims are rearranged: a mask with one row for all queries is expanded over the leading dims
    (which all become N, so q, k, v keep their layout); otherwise the dims along which the mask
    varies become N and those it broadcasts over become H, and the bias is never expanded to
    the full [..., q, k].
    """
    if memory is not None:  # memory keys join every query's keys, always allowed
        memory_keys, memory_values = memory.for_query(query)
        leading = broadcast_shape(key.shape[:-2], memory_keys.shape[:-2])
        key = torch.cat([key.expand(*leading, *key.shape[-2:]), memory_keys.expand(*leading, *memory_keys.shape[-2:])], -2)
        value = torch.cat(
            [value.expand(*leading, *value.shape[-2:]), memory_values.expand(*leading, *memory_values.shape[-2:])], -2
        )
    num_queries, num_keys = query.shape[-2], key.shape[-2]
    mask_shape = broadcast_shape(allowed.shape, self_mask.shape if self_mask is not None else (1, 1))
    bias = torch.zeros(mask_shape, dtype=query.dtype, device=query.device)
    if self_mask is not None:
        bias = bias.masked_fill_(self_mask, self_mask_value(query.dtype))
    bias = bias.masked_fill_(~allowed, mask_value(query.dtype))
    if memory is not None:
        bias = torch.cat([bias, bias.new_zeros(*bias.shape[:-1], num_keys - bias.shape[-1])], dim=-1)
    else:
        # A query with every key forbidden reads the uniform mean of the values (as in the
        # explicit path), which depends neither on the query nor on the keys. A row of huge
        # biases would get that mean but not its gradient (the kernels' log-sum-exp absorbs
        # log(k)): such a row gets a zero query and a zero bias instead, which is exact.
        no_key = ~allowed.any(dim=-1, keepdim=True)
        bias = bias.masked_fill_(no_key, 0.0)
        query = query.masked_fill(no_key, 0.0)

    leading = broadcast_shape(query.shape[:-2], key.shape[:-2], value.shape[:-2], bias.shape[:-2])
    if bias.shape[-2] == 1:
        # One mask row for all queries (every non-causal kind): expanding it over the leading
        # dims costs leading x k values and lets q, k, v keep their layout (no copies).
        bias = bias.expand(*leading, *bias.shape[-2:])
    bias_leading = (1,) * (len(leading) - (bias.dim() - 2)) + tuple(bias.shape[:-2])
    varying = [i for i, size in enumerate(bias_leading) if size > 1]
    broadcast = [i for i, size in enumerate(bias_leading) if size == 1]
    order = varying + broadcast
    num_varying = math.prod(leading[i] for i in varying)

    def to_4d(tensor: Tensor) -> Tensor:  # [..., n, d] -> [N, H, n, d]
        tensor = tensor.expand(*leading, *tensor.shape[-2:]).permute(*order, len(leading), len(leading) + 1)
        return tensor.reshape(num_varying, -1, *tensor.shape[-2:])

    bias_4d = bias.reshape(*bias_leading, *bias.shape[-2:]).permute(*order, len(leading), len(leading) + 1)
    bias_4d = bias_4d.reshape(num_varying, 1, *bias.shape[-2:])
    output = torch.nn.functional.scaled_dot_product_attention(
        to_4d(query), to_4d(key), to_4d(value), attn_mask=bias_4d, dropout_p=dropout_p, scale=scale
    )
    permuted_shape = [leading[i] for i in order] + [num_queries, value.shape[-1]]
    inverse = sorted(range(len(order)), key=order.__getitem__)
    return output.reshape(permuted_shape).permute(*inverse, len(leading), len(leading) + 1)


def chunked_attention_options(layer: torch.nn.Module) -> dict:
    """What the chunked attention kinds (local, LSH) pass alike to their attention function: the
    layer's causality, chunk look-around, dropout and persistent memory."""
    return dict(causal=layer.is_causal, chunk_length=layer.chunk_length, num_chunks_before=layer.num_chunks_before,
                num_chunks_after=layer.num_chunks_after, dropout_p=layer.dropout_p, training=layer.training,
                memory=layer.memory)


class QueryKeyValueAttention(torch.nn.Module):
    """Base of the attention kinds with separate query, key and value projections (local, full,
    cross): the projections, the head layout and the dropout rate they share."""

    def __init__(self, config, layer_idx: int, self_attention: bool = True) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.num_heads = config.num_attention_heads
        self.head_size = config.attention_head_size
        self.dropout_p = config.attention_probs_dropout_prob
        self.head_combine = config.head_combine
        all_head_size = self.num_heads * self.head_size
        self.query = torch.nn.Linear(config.hidden_size, all_head_size, bias=False)
        self.key = torch.nn.Linear(config.hidden_size, all_head_size, bias=False)
        self.value = torch.nn.Linear(config.hidden_size, all_head_size, bias=False)
        self.output = output_projection(config)
        self.memory = PersistentMemory.from_config(config) if self_attention else None

    def attend(self, query: Tensor, key: Tensor, value: Tensor, allowed: Tensor) -> Tensor:
        """`masked_attention` with this layer's scale, dropout and persistent memory (None for
        cross-attention): [b, h, q, d]."""
        return masked_attention(query, key, value, allowed, scale=self.head_size**-0.5, dropout_p=self.dropout_p,
                                training=self.training, memory=self.memory)[0]

    def project_output(self, attended: Tensor) -> Tensor:
        """[b, h, s, d] -> [b, s, hidden], heads combined as `config.head_combine` says."""
        return self.output(combine_heads(attended, self.head_combine))

    def heads(self, projection: torch.nn.Linear, hidden_states: Tensor) -> Tensor:
        """[b, s, hidden] -> [b, h, s, d] through one of the projections."""
        return split_heads(projection(hidden_states), self.num_heads, self.head_size)
