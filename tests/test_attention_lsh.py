"""LSH attention against exact attention where they must agree, and its invariances."""

from __future__ import annotations

import math

import pytest
import torch

from modeling_reformer_zh.attention_lsh import (
    ReformerZhLSHSelfAttention,
    derive_num_buckets,
    draw_rotations,
    exact_shared_qk_attention,
    hash_vectors,
    lsh_attention,
)
from utils import ReformerZhModelTester, assert_close


def naive_shared_qk_attention(query_key, value, key_mask, causal):
    """Loop reference: softmax over allowed keys, own key only when nothing else is allowed."""
    batch_size, num_heads, seq_length, head_size = query_key.shape
    output = torch.zeros_like(value)
    keys = query_key / query_key.norm(dim=-1, keepdim=True)
    for b in range(batch_size):
        for h in range(num_heads):
            for i in range(seq_length):
                allowed = [
                    j
                    for j in range(seq_length)
                    if j != i and (key_mask is None or key_mask[b, j]) and (not causal or j <= i)
                ]
                if not allowed:
                    output[b, h, i] = value[b, h, i]
                    continue
                logits = torch.stack([query_key[b, h, i] @ keys[b, h, j] for j in allowed]) / math.sqrt(head_size)
                output[b, h, i] = (torch.softmax(logits, 0)[:, None] * value[b, h, allowed]).sum(0)
    return output


def random_inputs(seed=0, batch_size=2, num_heads=2, seq_length=16, head_size=8):
    generator = torch.Generator().manual_seed(seed)
    query_key = torch.randn(batch_size, num_heads, seq_length, head_size, generator=generator, dtype=torch.float64)
    value = torch.randn(batch_size, num_heads, seq_length, head_size, generator=generator, dtype=torch.float64)
    return query_key, value


def run_lsh(query_key, value, *, num_hashes, num_buckets, chunk_length, before, after, key_mask=None, causal=False, seed=0):
    rotations = draw_rotations(
        num_heads=query_key.shape[1],
        head_size=query_key.shape[-1],
        num_hashes=num_hashes,
        num_buckets=num_buckets,
        seed=seed,
        device=query_key.device,
        dtype=query_key.dtype,
    )
    return lsh_attention(
        query_key,
        value,
        buckets=hash_vectors(query_key, rotations, num_buckets),
        num_buckets=num_buckets,
        key_mask=key_mask,
        causal=causal,
        chunk_length=chunk_length,
        num_chunks_before=before,
        num_chunks_after=after,
        dropout_p=0.0,
        training=False,
    )


@pytest.mark.parametrize("causal", [False, True])
def test_exact_path_matches_loop_reference(causal):
    query_key, value = random_inputs()
    key_mask = torch.ones(2, 16, dtype=torch.bool)
    key_mask[1, 11:] = False
    expected = naive_shared_qk_attention(query_key, value, key_mask, causal)
    actual = exact_shared_qk_attention(
        query_key, query_key, value, query_positions=torch.arange(16), key_mask=key_mask, causal=causal,
        dropout_p=0.0, training=False,
    )
    assert_close(actual[0], expected[0], atol=1e-10)
    assert_close(actual[1, :, :11], expected[1, :, :11], atol=1e-10)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("num_hashes", [1, 4])
def test_lsh_with_one_chunk_equals_full_shared_qk(causal, num_hashes):
    """A chunk covering the whole input makes every round exact, so LSH is full attention."""
    query_key, value = random_inputs()
    key_mask = torch.ones(2, 16, dtype=torch.bool)
    key_mask[0, 13:] = False
    expected = naive_shared_qk_attention(query_key, value, key_mask, causal)
    actual = run_lsh(query_key, value, num_hashes=num_hashes, num_buckets=8, chunk_length=16, before=0, after=0,
                     key_mask=key_mask, causal=causal)
    assert_close(actual[0, :, :13], expected[0, :, :13], atol=1e-10)
    assert_close(actual[1], expected[1], atol=1e-10)


@pytest.mark.parametrize("causal", [False, True])
def test_lsh_whose_look_around_covers_every_chunk_is_exact(causal):
    """Several chunks, sorting and un-sorting, but every chunk sees the whole round: still exact.

    (Causal too: in bucket order an earlier position may sit in a later chunk, so the window
    must reach both ways; the causal mask, applied by position, does the rest.)"""
    query_key, value = random_inputs(seed=1, seq_length=16)
    expected = naive_shared_qk_attention(query_key, value, None, causal)
    actual = run_lsh(query_key, value, num_hashes=3, num_buckets=8, chunk_length=4, before=3, after=3,
                     causal=causal)
    assert_close(actual, expected, atol=1e-10)


def test_more_hash_rounds_never_change_an_exact_result():
    query_key, value = random_inputs(seed=2)
    one = run_lsh(query_key, value, num_hashes=1, num_buckets=4, chunk_length=16, before=0, after=0)
    many = run_lsh(query_key, value, num_hashes=6, num_buckets=4, chunk_length=16, before=0, after=0)
    assert_close(many, one, atol=1e-10)


def test_small_chunks_differ_from_full_attention():
    """Guard against a test suite that passes because chunking is a no-op."""
    query_key, value = random_inputs(seed=3, seq_length=32)
    exact = naive_shared_qk_attention(query_key, value, None, False)
    lsh = run_lsh(query_key, value, num_hashes=1, num_buckets=8, chunk_length=4, before=0, after=0)
    assert (lsh - exact).abs().max() > 1e-3


def test_lsh_attends_within_buckets():
    """Two well-separated clusters: with one chunk per cluster, each token reads only its cluster."""
    torch.manual_seed(0)
    direction = torch.randn(8, dtype=torch.float64)
    cluster = torch.where(torch.arange(16) % 2 == 0, 1.0, -1.0).double()  # interleaved in position
    query_key = (cluster[:, None] * direction + 0.01 * torch.randn(16, 8, dtype=torch.float64))[None, None]
    value = cluster[:, None].expand(16, 8)[None, None].clone()
    output = run_lsh(query_key, value, num_hashes=2, num_buckets=2, chunk_length=8, before=0, after=0)
    assert_close(output[0, 0, :, 0], cluster, atol=1e-9)


def test_causal_first_token_reads_itself():
    query_key, value = random_inputs(seed=4)
    output = run_lsh(query_key, value, num_hashes=2, num_buckets=8, chunk_length=4, before=1, after=0, causal=True)
    assert_close(output[:, :, 0], value[:, :, 0], atol=1e-12)


def test_causal_lsh_never_reads_the_future():
    query_key, value = random_inputs(seed=5)
    base = run_lsh(query_key, value, num_hashes=2, num_buckets=4, chunk_length=4, before=1, after=0, causal=True)
    changed_value = value.clone()
    changed_value[:, :, 10:] += 100.0
    changed = run_lsh(query_key, changed_value, num_hashes=2, num_buckets=4, chunk_length=4, before=1, after=0, causal=True)
    assert_close(changed[:, :, :10], base[:, :, :10], atol=1e-10)
    assert (changed[:, :, 10:] - base[:, :, 10:]).abs().max() > 1.0


def test_hashing_is_deterministic_for_a_seed_and_leaves_the_global_generator_alone():
    query_key, _ = random_inputs()
    state = torch.get_rng_state()
    first = hash_vectors(query_key, draw_rotations(num_heads=2, head_size=8, num_hashes=2, num_buckets=8, seed=7,
                                                   device=query_key.device, dtype=query_key.dtype), 8)
    second = hash_vectors(query_key, draw_rotations(num_heads=2, head_size=8, num_hashes=2, num_buckets=8, seed=7,
                                                    device=query_key.device, dtype=query_key.dtype), 8)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(first, second)
    other = hash_vectors(query_key, draw_rotations(num_heads=2, head_size=8, num_hashes=2, num_buckets=8, seed=8,
                                                   device=query_key.device, dtype=query_key.dtype), 8)
    assert not torch.equal(first, other)
    assert first.min() >= 0 and first.max() < 8


def test_derived_num_buckets():
    assert derive_num_buckets(16, 4) == [8]
    assert derive_num_buckets(4, 4) == [2]
    assert derive_num_buckets(20, 4) == [16]  # rounded up to a power of two
    assert derive_num_buckets(4096, 64) == [128]
    assert derive_num_buckets(65536, 64) == [32, 64]  # factorised: 2048 buckets


def make_layer(**overrides):
    config = ReformerZhModelTester().get_config(num_buckets=4, **overrides)
    torch.manual_seed(0)
    return ReformerZhLSHSelfAttention(config, layer_idx=0, is_causal=False).double().eval()


def test_padding_never_changes_real_tokens():
    layer = make_layer()
    hidden = torch.randn(1, 13, 32, dtype=torch.float64)
    unpadded = layer(hidden)  # padded to 16 inside the layer
    padded_hidden = torch.cat([hidden, torch.randn(1, 7, 32, dtype=torch.float64)], dim=1)
    mask = torch.zeros(1, 20, dtype=torch.bool)
    mask[:, :13] = True
    padded = layer(padded_hidden, attention_mask=mask)
    assert_close(padded[:, :13], unpadded, atol=1e-10)


def test_output_of_a_sequence_does_not_depend_on_the_batch():
    layer = make_layer()
    first = torch.randn(1, 16, 32, dtype=torch.float64)
    second = torch.randn(1, 16, 32, dtype=torch.float64)
    alone = layer(first)
    together = layer(torch.cat([first, second]))
    assert_close(together[:1], alone, atol=1e-10)


def test_threshold_switches_to_exact_attention():
    layer = make_layer(full_attn_threshold=16)
    hidden = torch.randn(2, 16, 32, dtype=torch.float64)
    query_key = layer.query_key(hidden).view(2, 16, 2, 8).transpose(1, 2)
    value = layer.value(hidden).view(2, 16, 2, 8).transpose(1, 2)
    expected = layer.output(naive_shared_qk_attention(query_key, value, None, False).transpose(1, 2).reshape(2, 16, 16))
    assert_close(layer(hidden), expected, atol=1e-10)


def test_chunked_hashing_equals_argmax_over_both_signs():
    query_key, _ = random_inputs(seed=6, seq_length=40)
    rotations = draw_rotations(num_heads=2, head_size=8, num_hashes=3, num_buckets=16, seed=1,
                               device=query_key.device, dtype=query_key.dtype)
    rotated = torch.einsum("bhsd,hdnr->bhnsr", query_key, rotations)
    expected = torch.cat([rotated, -rotated], dim=-1).argmax(dim=-1)
    assert torch.equal(hash_vectors(query_key, rotations, 16, chunk_length=7), expected)


def test_factorised_hashing_is_the_mixed_radix_of_two_hashes():
    query_key, _ = random_inputs(seed=7, seq_length=24)
    rotations = draw_rotations(num_heads=2, head_size=8, num_hashes=2, num_buckets=[4, 6], seed=1,
                               device=query_key.device, dtype=query_key.dtype)
    assert rotations.shape[-1] == 2 + 3
    first = hash_vectors(query_key, rotations[..., :2], 4)
    second = hash_vectors(query_key, rotations[..., 2:], 6)
    combined = hash_vectors(query_key, rotations, [4, 6])
    assert torch.equal(combined, first + 4 * second)
    assert combined.max() < 24 and len(combined.unique()) > 6


def loop_lsh_reference(query_key, value, buckets, *, num_buckets, key_mask, causal, chunk_length, before, after,
                       memory=None):
    """LSH attention written out with loops, from given buckets [b, h, n, s].

    Per round: sort by (bucket, position), padding in a bucket past the last; cut into chunks;
    a query meets the keys of its chunk and of `before`/`after` neighbouring chunks of that round
    (no wrap-around) that it may read (not itself, not padding, not the future when causal), its
    own key (logit -1e4) only when it meets no other. Each met key j has log(m_ij) subtracted,
    m_ij = the number of rounds in which the query meets it, the memory log(n); the round's
    softmax gives an output and a log-normaliser Z_r; rounds are combined with softmax(Z) weights.
    """
    batch_size, num_heads, seq_length, head_size = query_key.shape
    num_hashes = buckets.shape[2]
    scale = head_size**-0.5
    keys = query_key / query_key.norm(dim=-1, keepdim=True)
    output = torch.zeros_like(value)
    for b in range(batch_size):
        real = [key_mask is None or bool(key_mask[b, t]) for t in range(seq_length)]
        for h in range(num_heads):
            chunk_of = []  # chunk_of[r][t]: chunk of token t in round r
            for r in range(num_hashes):
                bucket = [int(buckets[b, h, r, t]) if real[t] else num_buckets for t in range(seq_length)]
                order = sorted(range(seq_length), key=lambda t: (bucket[t], t))
                chunk = [0] * seq_length
                for slot, token in enumerate(order):
                    chunk[token] = slot // chunk_length
                chunk_of.append(chunk)

            def meets(r, i, j):
                return -before <= chunk_of[r][j] - chunk_of[r][i] <= after

            for i in range(seq_length):
                readable = [j for j in range(seq_length) if j != i and real[j] and (not causal or j <= i)]
                round_outputs, round_normalizers = [], []
                for r in range(num_hashes):
                    met = [j for j in readable if meets(r, i, j)]
                    logits = [scale * query_key[b, h, i] @ keys[b, h, j]
                              - math.log(sum(meets(s, i, j) for s in range(num_hashes))) for j in met]
                    vectors = [value[b, h, j] for j in met]
                    if not met:
                        logits, vectors = [torch.tensor(-1e4, dtype=value.dtype)], [value[b, h, i]]
                    if memory is not None:
                        for slot in range(memory.keys.shape[1]):
                            logits.append(scale * query_key[b, h, i] @ memory.keys[h, slot] - math.log(num_hashes))
                            vectors.append(memory.values[h, slot])
                    logits = torch.stack(logits)
                    round_normalizers.append(torch.logsumexp(logits, 0))
                    round_outputs.append((torch.softmax(logits, 0)[:, None] * torch.stack(vectors)).sum(0))
                weights = torch.softmax(torch.stack(round_normalizers), 0)
                output[b, h, i] = sum(w * o for w, o in zip(weights, round_outputs))
    return output


def union_attention(query_key, value, met_by_any_round, memory=None):
    """What the corrected combination equals: one softmax over the keys any round found (and the
    memory), each once. met_by_any_round: [b, h, s, s] bool."""
    scale = query_key.shape[-1] ** -0.5
    keys = query_key / query_key.norm(dim=-1, keepdim=True)
    logits = scale * query_key @ keys.transpose(-1, -2)
    logits = logits.masked_fill(~met_by_any_round, float("-inf"))
    values = value
    if memory is not None:
        memory_logits = scale * torch.einsum("bhsd,hmd->bhsm", query_key, memory.keys.to(query_key.dtype))
        logits = torch.cat([logits, memory_logits], dim=-1)
        values = torch.cat([value, memory.values.to(value.dtype)[None].expand(value.shape[0], -1, -1, -1)], dim=2)
    return torch.softmax(logits, -1) @ values


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("with_memory", [False, True])
@pytest.mark.parametrize("num_hashes,after", [(2, 0), (3, 1)])
def test_lsh_equals_the_loop_reference_on_given_buckets(causal, with_memory, num_hashes, after):
    """Few buckets, small chunks: most pairs meet in several rounds, so counting a duplicate key
    once per round, or weighting the rounds uniformly, moves the result."""
    from modeling_reformer_zh.persistent_memory import PersistentMemory

    query_key, value = random_inputs(seed=5)
    generator = torch.Generator().manual_seed(6)
    buckets = torch.randint(0, 4, (2, 2, num_hashes, 16), generator=generator)
    key_mask = torch.ones(2, 16, dtype=torch.bool)
    key_mask[1, 13:] = False
    memory = None
    if with_memory:
        memory = PersistentMemory(num_heads=2, num_slots=3, head_size=8).double()
        torch.nn.init.normal_(memory.keys, generator=generator)
        torch.nn.init.normal_(memory.values, generator=generator)
    settings = dict(num_buckets=4, key_mask=key_mask, causal=causal, chunk_length=4, before=1, after=after)
    expected = loop_lsh_reference(query_key, value, buckets, memory=memory, **settings)
    actual = lsh_attention(query_key, value, buckets=buckets, num_buckets=4, key_mask=key_mask, causal=causal,
                           chunk_length=4, num_chunks_before=1, num_chunks_after=after, dropout_p=0.0,
                           training=False, memory=memory)
    real = key_mask[:, None, :, None].expand(-1, 2, -1, -1)[..., 0]
    assert_close(actual[real], expected[real], atol=1e-10)

    # the union claim, for queries that meet at least one other key in some round
    met = torch.zeros(2, 2, 16, 16, dtype=torch.bool)
    for r in range(num_hashes):
        order = (torch.where(key_mask[:, None, :], buckets[:, :, r], 4) * 16 + torch.arange(16)).argsort(-1)
        chunk = order.argsort(-1) // 4
        distance = chunk[..., None, :] - chunk[..., :, None]
        met |= (distance >= -1) & (distance <= after)
    met &= key_mask[:, None, None, :] & ~torch.eye(16, dtype=torch.bool)
    if causal:
        met &= torch.ones(16, 16).tril().bool()
    union = union_attention(query_key, value, met, memory)
    has_keys = met.any(-1) & real
    assert has_keys.sum() > 0.75 * real.sum()  # the claim is checked on most queries
    assert_close(actual[has_keys], union[has_keys], atol=1e-10)
