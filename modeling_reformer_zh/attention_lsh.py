"""LSH self-attention (Kitaev, Kaiser & Levskaya 2020, sec. 2-3).

Queries and keys share one projection (shared-QK); keys are unit length. Each hash round
buckets the vectors by angular LSH (random rotation, argmax over [xR; -xR]), sorts them by
(bucket, position), cuts the sorted sequence into chunks and lets every chunk attend to itself
and its neighbours. Rounds are un-sorted and combined by the log-sum-exp of their logits, the
round's share of the full softmax normaliser. A key that a query meets in m of the rounds has
log(m) subtracted from its logit in each of them (paper, appendix A; trax's
`allow_duplicate_attention=False`), and the persistent memory, met in every round, log(num_hashes):
the combination is then exactly one softmax over the union of the keys the rounds found.

Differences from transformers' Reformer:
- padding tokens get a bucket of their own past the last real bucket, so they sort to the end
  of every round and cannot move the chunk boundaries of real tokens (padding never changes
  the output of a real token);
- chunks look around inside their own hash round, with no wrap-around;
- in training, random rotations come from torch's generator (replayed by the reversible
  backward) unless `hash_seed` is set; in eval mode they are fixed per layer (`hash_seed`, or
  `INFERENCE_HASH_SEED` when it is None), so a document gets the same buckets in every pass: the
  same summary on every call, and `--explain`'s second pass reads what generation read. The
  global generator is never reseeded.

Shapes: b batch, h heads, n hash rounds, s sequence, C chunks, c chunk length,
w look-around window, d head dim, r num_buckets / 2 rotations.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import Tensor, nn

# the rotations of layer k in eval mode when `hash_seed` is None: INFERENCE_HASH_SEED + k. Any
# fixed draw is as good as another; fresh draws per call made a long document's summary vary
# between calls and its explanation describe a computation other than the one that wrote it.
INFERENCE_HASH_SEED = 20200113  # the Reformer paper's arXiv date

from .attention_utils import (
    chunked_attention_options,
    combine_heads,
    look_around_positions,
    look_around_vectors,
    masked_attention,
    output_projection,
    pad_to_multiple,
    round_up,
    split_heads,
)
from .configuration_reformer_zh import ReformerZhConfig
from .persistent_memory import PersistentMemory


# Above this many buckets a derived count is factorised into two hashes (as transformers'
# Reformer does): one angular hash into 2048 buckets costs d x 1024 multiply-adds per token
# and round, two into 32 x 64 cost d x 48, with the same number of (intersected) buckets.
FACTORIZE_ABOVE = 128


def derive_num_buckets(seq_length: int, chunk_length: int) -> list[int]:
    """Bucket factors for an input: about two buckets per chunk (paper, sec. 3: chunk length
    m = 2 * length / n_buckets), rounded up to a power of two so that nearby lengths share one
    count, and split into two factors above `FACTORIZE_ABOVE`."""
    exponent = math.ceil(math.log2(max(2.0, 2.0 * seq_length / chunk_length)))
    if 2**exponent <= FACTORIZE_ABOVE:
        return [2**exponent]
    return [2 ** (exponent // 2), 2 ** (exponent - exponent // 2)]


def bucket_factors(num_buckets: int | list[int]) -> list[int]:
    """`num_buckets` as the config holds it (an int, or a list of factors) -> list of factors."""
    return list(num_buckets) if isinstance(num_buckets, (list, tuple)) else [num_buckets]


def draw_rotations(
    *,
    num_heads: int,
    head_size: int,
    num_hashes: int,
    num_buckets: int | list[int],
    seed: int | None,
    device: torch.device,
    dtype: torch.dtype,
) -> Tensor:
    """Random rotations [h, d, n, r] for angular LSH, r = sum of factor / 2 over the factors.

    With `seed`, a private generator makes them reproducible without touching torch's global
    generator; without, they come from the global generator, whose state the reversible
    backward saves and replays.
    """
    shape = (num_heads, head_size, num_hashes, sum(f // 2 for f in bucket_factors(num_buckets)))
    if seed is not None:
        generator = torch.Generator(device="cpu").manual_seed(seed)
        return torch.randn(shape, generator=generator, dtype=torch.float32).to(device=device, dtype=dtype)
    return torch.randn(shape, device=device, dtype=dtype)


def hash_vectors(
    vectors: Tensor, rotations: Tensor, num_buckets: int | list[int], *, chunk_length: int = 4096
) -> Tensor:
    """Angular LSH: bucket = argmax([xR; -xR]). vectors [b, h, s, d] -> buckets [b, h, n, s].

    With several factors, each gets its own slice of the rotations and the bucket is the
    mixed-radix number of the per-factor buckets. The rotated vectors grow with the number of
    buckets, so they are produced `chunk_length` positions at a time, and argmax over [xR; -xR]
    is taken as argmax(xR) or r + argmin(xR), whichever extreme is larger, without building
    [xR; -xR].
    """
    factors = bucket_factors(num_buckets)
    buckets = []
    with torch.no_grad():  # buckets are integers: no gradient flows through hashing
        for chunk in vectors.split(chunk_length, dim=2):
            rotated = torch.einsum("bhsd,hdnr->bhnsr", chunk, rotations)
            chunk_buckets, offset, stride = 0, 0, 1
            for factor in factors:
                part = rotated[..., offset : offset + factor // 2]
                largest, largest_index = part.max(dim=-1)
                smallest, smallest_index = part.min(dim=-1)
                factor_buckets = torch.where(largest >= -smallest, largest_index, smallest_index + factor // 2)
                chunk_buckets = chunk_buckets + stride * factor_buckets
                offset, stride = offset + factor // 2, stride * factor
            buckets.append(chunk_buckets)
    return torch.cat(buckets, dim=-1)


def normalize_keys(query_key: Tensor) -> Tensor:
    """Shared-QK keys are the queries scaled to unit length (paper, sec. 2.2)."""
    return query_key / query_key.norm(dim=-1, keepdim=True).clamp_min(1e-6)


def exact_shared_qk_attention(
    query: Tensor,
    query_key: Tensor,
    value: Tensor,
    *,
    query_positions: Tensor,
    key_mask: Tensor | None,
    causal: bool,
    dropout_p: float,
    training: bool,
    memory: PersistentMemory | None = None,
) -> Tensor:
    """The attention LSH approximates: every query reads every allowed key (and the memory).

    Args:
        query: [b, h, q, d] shared-QK vectors of the queries.
        query_key, value: [b, h, k, d] shared-QK vectors and values of all keys (positions 0..k-1).
        query_positions: [q] positions of the queries among the keys.
        key_mask: [b, k] bool, True for real tokens, or None.
    Returns:
        [b, h, q, d]
    """
    key_length = query_key.shape[-2]
    key_positions = torch.arange(key_length, device=query.device)
    self_mask = query_positions[:, None] == key_positions[None, :]
    allowed = torch.ones_like(self_mask)
    if causal:
        allowed = key_positions[None, :] <= query_positions[:, None]
    if key_mask is not None:
        allowed = allowed & key_mask[:, None, None, :]
    output, _ = masked_attention(
        query,
        normalize_keys(query_key),
        value,
        allowed,
        self_mask=self_mask,
        scale=query.shape[-1] ** -0.5,
        dropout_p=dropout_p,
        training=training,
        memory=memory,
    )
    return output


def take_rows(vectors: Tensor, index: Tensor) -> Tensor:
    """vectors [..., s, d], index [..., m] (same leading dims) -> [..., m, d]: row index[i] of each slice.

    The same result as `vectors.gather(-2, index[..., None].expand(..., d))`, done as one
    `index_select` over the flattened rows: the gather's backward is a per-element scatter-add,
    4-5x slower on CPU than index_select's row-wise index_add (170 vs 36 ms forward + backward
    for 4 heads x 2 rounds x 16K rows of 64).
    """
    *leading, seq_length, head_size = vectors.shape
    num_slices = vectors[..., 0, 0].numel()
    offsets = torch.arange(num_slices, device=index.device).view(*leading, 1) * seq_length
    rows = vectors.reshape(num_slices * seq_length, head_size).index_select(0, (index + offsets).reshape(-1))
    return rows.view(*index.shape, head_size)


def round_multiplicity(
    token_chunks: Tensor, query_positions: Tensor, key_positions: Tensor, num_chunks_before: int, num_chunks_after: int
) -> Tensor:
    """In how many hash rounds each (query, key) pair of the sorted chunks meets.

    Query i meets key j in round r when j's chunk in r lies in the look-around window of i's
    chunk in r; masks depend on positions only, so an allowed pair is allowed in every round.

    Args:
        token_chunks: [b, h, n, s] the chunk each token sits in, per round.
        query_positions: [b, h, n, C, c] token at each query slot; key_positions: [b, h, n, C, w]
            token at each key slot (-1 past the edges).
    Returns:
        [b, h, n, C, c, w] uint8 counts in [1, n] (past-the-edge slots hold some count: they
        are masked anyway).
    """
    batch_size, num_heads, num_hashes, _ = token_chunks.shape
    # A slot's own round always meets it (that is how it got into the window): start at 1 and
    # test the other rounds only.
    counts = torch.ones(*query_positions.shape, key_positions.shape[-1], dtype=torch.uint8, device=token_chunks.device)
    for this_round in range(num_hashes):
        query_index = query_positions[:, :, this_round].reshape(batch_size, num_heads, -1)
        key_index = key_positions[:, :, this_round].clamp_min(0).reshape(batch_size, num_heads, -1)
        for other_round in range(num_hashes):
            if other_round == this_round:
                continue
            chunks = token_chunks[:, :, other_round]  # [b, h, s]
            query_chunks = chunks.gather(2, query_index).view(query_positions[:, :, this_round].shape)[..., :, None]
            key_chunks = chunks.gather(2, key_index).view(key_positions[:, :, this_round].shape)[..., None, :]
            counts[:, :, this_round] += (key_chunks >= query_chunks - num_chunks_before) & (
                key_chunks <= query_chunks + num_chunks_after
            )
    return counts


def lsh_attention(
    query_key: Tensor,
    value: Tensor,
    *,
    buckets: Tensor,
    num_buckets: int,
    key_mask: Tensor | None,
    causal: bool,
    chunk_length: int,
    num_chunks_before: int,
    num_chunks_after: int,
    dropout_p: float,
    training: bool,
    memory: PersistentMemory | None = None,
) -> Tensor:
    """Chunked attention over the bucket-sorted sequence, rounds combined by log-sum-exp.

    The result is the softmax over the union of the keys each query meets in any round (each
    counted once, see `round_multiplicity`), plus the persistent `memory`, which joins every
    chunk of every round and is counted once too.

    Args:
        query_key, value: [b, h, s, d], s a multiple of `chunk_length`.
        buckets: [b, h, n, s] bucket of every vector in every round, in [0, num_buckets).
        key_mask: [b, s] bool, True for real tokens, or None.
    Returns:
        [b, h, s, d]
    """
    batch_size, num_heads, seq_length, head_size = query_key.shape
    num_hashes = buckets.shape[2]
    if seq_length % chunk_length:
        raise ValueError(f"sequence length {seq_length} is not a multiple of the chunk length {chunk_length}")
    num_chunks = seq_length // chunk_length

    positions = torch.arange(seq_length, device=query_key.device)
    if key_mask is not None:
        # Padding sorts after every real token of its round, in a bucket of its own.
        buckets = torch.where(key_mask[:, None, None, :], buckets, num_buckets)
    sort_keys = buckets * seq_length + positions  # unique: (bucket, position) order
    sorted_positions = sort_keys.argsort(dim=-1)  # [b, h, n, s]: which token sits at each slot
    unsort_index = sorted_positions.argsort(dim=-1)

    def gather_vectors(vectors: Tensor) -> Tensor:  # [b, h, s, d] -> [b, h, n, C, c, d]
        gathered = take_rows(vectors, sorted_positions.reshape(batch_size, num_heads, num_hashes * seq_length))
        return gathered.view(batch_size, num_heads, num_hashes, num_chunks, chunk_length, head_size)

    sorted_queries = gather_vectors(query_key)
    sorted_keys = look_around_vectors(gather_vectors(normalize_keys(query_key)), num_chunks_before, num_chunks_after)
    sorted_values = look_around_vectors(gather_vectors(value), num_chunks_before, num_chunks_after)

    query_positions = sorted_positions.view(batch_size, num_heads, num_hashes, num_chunks, chunk_length)
    key_positions = look_around_positions(query_positions, num_chunks_before, num_chunks_after, -1)
    allowed = allowed_keys(query_positions, key_positions, sorted_positions, key_mask, causal,
                           num_chunks_before, num_chunks_after)
    self_mask = key_positions[..., None, :] == query_positions[..., :, None]
    multiplicity = None
    if num_hashes > 1:
        multiplicity = round_multiplicity(
            unsort_index // chunk_length, query_positions, key_positions, num_chunks_before, num_chunks_after
        )

    output, log_normalizer = masked_attention(
        sorted_queries,
        sorted_keys,
        sorted_values,
        allowed,
        self_mask=self_mask,
        scale=head_size**-0.5,
        dropout_p=dropout_p,
        training=training,
        return_log_normalizer=True,
        memory=memory,
        key_multiplicity=multiplicity,
        memory_multiplicity=num_hashes,
    )
    output = output.view(batch_size, num_heads, num_hashes, seq_length, head_size)
    log_normalizer = log_normalizer.view(batch_size, num_heads, num_hashes, seq_length)
    return combine_rounds(take_rows(output, unsort_index), log_normalizer.gather(3, unsort_index))


def allowed_keys(query_positions: Tensor, key_positions: Tensor, sorted_positions: Tensor, key_mask: Tensor | None,
                 causal: bool, num_chunks_before: int, num_chunks_after: int) -> Tensor:
    """[b, h, n, C, c, w]-broadcastable mask of the keys each sorted query may attend: neighbours
    that exist (not past the edges), are real tokens, and, when causal, do not come later."""
    batch_size, num_heads, num_hashes, num_chunks, chunk_length = query_positions.shape
    allowed = key_positions >= 0  # neighbours past the edges do not exist
    if key_mask is not None:
        sorted_mask = key_mask[:, None, None, :].expand(-1, num_heads, num_hashes, -1).gather(3, sorted_positions)
        sorted_mask = sorted_mask.view(batch_size, num_heads, num_hashes, num_chunks, chunk_length)
        allowed = allowed & look_around_positions(sorted_mask, num_chunks_before, num_chunks_after, False)
    allowed = allowed[..., None, :]  # [b, h, n, C, 1, w]
    if causal:
        allowed = allowed & (key_positions[..., None, :] <= query_positions[..., :, None])
    return allowed


def combine_rounds(output: Tensor, log_normalizer: Tensor) -> Tensor:
    """[b, h, n, s, d] per-round outputs in token order and their [b, h, n, s] log normalisers ->
    [b, h, s, d]. Round r attended with normaliser Z_r (duplicates discounted); its share of the
    union is Z_r / sum(Z) (paper, eq. 4-6 and appendix A)."""
    round_weights = torch.softmax(log_normalizer, dim=2)
    return (output * round_weights[..., None]).sum(dim=2)


class ReformerZhLSHSelfAttention(nn.Module):
    """Multi-round, shared-QK LSH self-attention, causal in the decoder.

    Inputs of at most `full_attn_threshold` tokens, and every cached decoding step, take the
    exact shared-QK path instead (see the module docstring of the config for the cache).
    """

    def __init__(self, config: ReformerZhConfig, layer_idx: int, is_causal: bool) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.is_causal = is_causal
        self.num_heads = config.num_attention_heads
        self.head_size = config.attention_head_size
        self.num_hashes = config.num_hashes
        self.num_buckets = config.num_buckets
        # every layer of both stacks gets its own rotations (decoder layers after the encoder's)
        layer_offset = layer_idx + (len(config.encoder_attn_layers) if is_causal else 0)
        self.hash_seed = None if config.hash_seed is None else config.hash_seed + layer_offset
        self.inference_hash_seed = INFERENCE_HASH_SEED + layer_offset if self.hash_seed is None else self.hash_seed
        self.chunk_length = config.lsh_attn_chunk_length
        self.num_chunks_before = config.lsh_num_chunks_before
        self.num_chunks_after = 0 if is_causal else config.lsh_num_chunks_after
        self.full_attn_threshold = config.full_attn_threshold
        self.dropout_p = config.attention_probs_dropout_prob
        all_head_size = self.num_heads * self.head_size
        self.query_key = nn.Linear(config.hidden_size, all_head_size, bias=False)
        self.value = nn.Linear(config.hidden_size, all_head_size, bias=False)
        self.output = output_projection(config)
        self.head_combine = config.head_combine
        self.memory = PersistentMemory.from_config(config)

    def forward(
        self, hidden_states: Tensor, attention_mask: Tensor | None = None, cache=None, routing: "LSHRouting | None" = None
    ) -> Tensor:
        """hidden_states [b, s, hidden]; attention_mask [b, keys] bool (True = real) or None;
        cache: a `DynamicCache` of this stack's self-attention (decoder only); routing: the
        stack's `LSHRouting` for this forward (built here when None)."""
        query_key = split_heads(self.query_key(hidden_states), self.num_heads, self.head_size)
        value = split_heads(self.value(hidden_states), self.num_heads, self.head_size)
        seq_length = query_key.shape[2]

        if cache is not None:
            past_length = cache.get_seq_length(self.layer_idx)
            all_query_key, all_value = cache.update(query_key, value, self.layer_idx)
            output = exact_shared_qk_attention(
                query_key,
                all_query_key,
                all_value,
                query_positions=torch.arange(past_length, past_length + seq_length, device=query_key.device),
                key_mask=attention_mask,
                causal=self.is_causal,
                dropout_p=self.dropout_p,
                training=self.training,
                memory=self.memory,
            )
        else:
            output = self._self_attention(query_key, value, attention_mask, routing)
        return self.output(combine_heads(output, self.head_combine))

    def _self_attention(
        self, query_key: Tensor, value: Tensor, attention_mask: Tensor | None, routing: "LSHRouting | None"
    ) -> Tensor:
        """Exact attention for rows of at most `full_attn_threshold` real tokens, LSH for the rest
        (see `LSHRouting`)."""
        if routing is None:  # a layer called on its own; the stacks route once for all layers
            routing = LSHRouting.build(
                attention_mask,
                query_key.shape[2],
                full_attn_threshold=self.full_attn_threshold,
                chunk_length=self.chunk_length,
                num_buckets=self.num_buckets,
            )
        if routing.route == "exact":  # every row exact: no copies
            return self._exact(query_key, value, attention_mask)
        if routing.route == "lsh":  # every row LSH (the long-input case): no copies
            return self._lsh(query_key, value, attention_mask, routing)

        def select(tensor: Tensor | None, rows: Tensor) -> Tensor | None:
            return None if tensor is None else tensor[rows]

        exact = self._exact(
            select(query_key, routing.exact_rows), select(value, routing.exact_rows),
            select(attention_mask, routing.exact_rows),
        )
        lsh = self._lsh(
            select(query_key, routing.lsh_rows), select(value, routing.lsh_rows),
            select(attention_mask, routing.lsh_rows), routing,
        )
        return torch.cat([exact, lsh])[routing.restore_order]

    def _exact(self, query_key: Tensor, value: Tensor, attention_mask: Tensor | None) -> Tensor:
        return exact_shared_qk_attention(
            query_key,
            query_key,
            value,
            query_positions=torch.arange(query_key.shape[2], device=query_key.device),
            key_mask=attention_mask,
            causal=self.is_causal,
            dropout_p=self.dropout_p,
            training=self.training,
            memory=self.memory,
        )

    def _lsh(self, query_key: Tensor, value: Tensor, attention_mask: Tensor | None, routing: "LSHRouting") -> Tensor:
        seq_length = query_key.shape[2]
        if seq_length % self.chunk_length:
            # Pad inside the layer (training included) and cut back; pads are masked keys.
            if attention_mask is None:
                attention_mask = torch.ones(query_key.shape[0], seq_length, dtype=torch.bool, device=query_key.device)
            query_key = pad_to_multiple(query_key, self.chunk_length, dim=2)
            value = pad_to_multiple(value, self.chunk_length, dim=2)
            attention_mask = pad_to_multiple(attention_mask, self.chunk_length, dim=1, value=False)
        output = lsh_attention(
            query_key,
            value,
            buckets=self._buckets(query_key, routing),
            num_buckets=routing.total_buckets,
            key_mask=attention_mask,
            **chunked_attention_options(self),
        )
        return output[:, :, :seq_length]

    def _buckets(self, query_key: Tensor, routing: "LSHRouting") -> Tensor:
        """[b, h, n, s] buckets of the LSH rows; each group of rows (one bucket count) is hashed
        with its own rotations. Padding later sorts after every real bucket of any group.

        The first call in a forward stores them in `routing`; the reversible backward's
        recomputation reuses them instead of hashing the reconstructed inputs again: those differ
        from the forward's in the last bits (in bf16 enough to move near-tied vectors to other
        buckets), and the gradient must be that of the function the forward computed.
        """
        saved = routing.saved_buckets.get(self.layer_idx)
        if saved is not None:
            if self._seed() is None:
                # draw the rotations anyway, so that the global generator (the dropout masks after
                # this point) advances exactly as in the forward; seeded ones use a private one
                for factors, _ in routing.lsh_groups:
                    self._rotations(factors, query_key)
            return saved
        buckets = None
        for factors, rows in routing.lsh_groups:
            group_buckets = hash_vectors(
                query_key if rows is None else query_key[rows], self._rotations(factors, query_key), list(factors)
            )
            if rows is None:  # one group holds every row
                buckets = group_buckets
                continue
            if buckets is None:
                batch_size, _, padded_length, _ = query_key.shape
                buckets = group_buckets.new_empty(batch_size, self.num_heads, self.num_hashes, padded_length)
            buckets[rows] = group_buckets
        routing.saved_buckets[self.layer_idx] = buckets
        return buckets

    def _rotations(self, factors: tuple[int, ...], query_key: Tensor) -> Tensor:
        return draw_rotations(
            num_heads=self.num_heads,
            head_size=self.head_size,
            num_hashes=self.num_hashes,
            num_buckets=list(factors),
            seed=self._seed(),
            device=query_key.device,
            dtype=query_key.dtype,
        )

    def _seed(self) -> int | None:
        """The rotations' seed: None (torch's generator) only in training without `hash_seed`."""
        return self.hash_seed if self.training else self.inference_hash_seed


@dataclasses.dataclass
class LSHRouting:
    """How every LSH layer of one stack treats each row of a batch, decided once per forward.

    A row of at most `full_attn_threshold` real tokens takes exact attention, a longer one LSH,
    with a bucket count derived from its own (padded) length unless `num_buckets` is fixed: so
    neither the path nor the buckets of a sequence depend on what else is in the batch. The
    decision needs the real lengths on the host: one synchronisation per stack (none without a
    mask, or with a fixed bucket count and no threshold), not one per layer.

    Attributes:
        route: "exact" or "lsh" when every row takes that route (the layers then work on the
            batch as it is), "mixed" otherwise.
        exact_rows, lsh_rows: index tensors of the rows of each route ("mixed" only).
        restore_order: puts [exact rows; LSH rows] back into batch order ("mixed" only).
        lsh_groups: (bucket factors, rows among the LSH rows or None for all of them), in a fixed
            order so the forward and the recomputation draw rotations alike.
        total_buckets: the largest bucket count of any group (padding's bucket comes after it).
        saved_buckets: layer index -> the [b, h, n, s] buckets it drew in this forward.
    """

    route: str
    lsh_groups: list[tuple[tuple[int, ...], Tensor | None]]
    total_buckets: int
    exact_rows: Tensor | None = None
    lsh_rows: Tensor | None = None
    restore_order: Tensor | None = None
    saved_buckets: dict[int, Tensor] = dataclasses.field(default_factory=dict)

    @classmethod
    def build(
        cls,
        attention_mask: Tensor | None,
        seq_length: int,
        *,
        full_attn_threshold: int,
        chunk_length: int,
        num_buckets: int | list[int] | None,
    ) -> "LSHRouting":
        """attention_mask [b, s] bool (True = real) or None."""
        device = attention_mask.device if attention_mask is not None else None
        needs_lengths = attention_mask is not None and (full_attn_threshold > 0 or num_buckets is None)
        if not needs_lengths:
            if seq_length <= full_attn_threshold:  # (with a mask here the threshold is 0)
                return cls(route="exact", lsh_groups=[], total_buckets=0)
            factors = num_buckets or derive_num_buckets(round_up(seq_length, chunk_length), chunk_length)
            factors = tuple(bucket_factors(factors))
            return cls(route="lsh", lsh_groups=[(factors, None)], total_buckets=math.prod(factors))
        lengths = attention_mask.sum(dim=-1).tolist()
        exact = [row for row, length in enumerate(lengths) if length <= full_attn_threshold]
        lsh = [row for row, length in enumerate(lengths) if length > full_attn_threshold]
        groups: dict[tuple[int, ...], list[int]] = {}
        for position, row in enumerate(lsh):
            factors = num_buckets or derive_num_buckets(round_up(lengths[row], chunk_length), chunk_length)
            groups.setdefault(tuple(bucket_factors(factors)), []).append(position)
        as_index = lambda rows: torch.tensor(rows, device=device)  # noqa: E731
        lsh_groups = [(f, None if len(rows) == len(lsh) else as_index(rows)) for f, rows in sorted(groups.items())]
        total_buckets = max((math.prod(f) for f in groups), default=0)
        if not exact or not lsh:
            return cls(route="exact" if exact else "lsh", lsh_groups=lsh_groups, total_buckets=total_buckets)
        return cls(
            route="mixed",
            lsh_groups=lsh_groups,
            total_buckets=total_buckets,
            exact_rows=as_index(exact),
            lsh_rows=as_index(lsh),
            restore_order=as_index(exact + lsh).argsort(),
        )
