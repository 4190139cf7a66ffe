"""Local and full attention against loop references; the window and padding rules."""

from __future__ import annotations

import math

import pytest
import torch

from modeling_reformer_zh.attention_full import ReformerZhFullSelfAttention
from modeling_reformer_zh.attention_local import ReformerZhLocalSelfAttention, local_attention
from utils import ReformerZhModelTester, assert_close


def naive_window_attention(query, key, value, allowed):
    """allowed(i, j) -> bool. Loop reference of softmax attention."""
    batch_size, num_heads, seq_length, head_size = query.shape
    output = torch.zeros_like(value)
    for b in range(batch_size):
        for h in range(num_heads):
            for i in range(seq_length):
                keys = [j for j in range(seq_length) if allowed(b, i, j)]
                logits = torch.stack([query[b, h, i] @ key[b, h, j] for j in keys]) / math.sqrt(head_size)
                output[b, h, i] = (torch.softmax(logits, 0)[:, None] * value[b, h, keys]).sum(0)
    return output


def random_qkv(seed=0, seq_length=16):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(2, 2, seq_length, 8, generator=generator, dtype=torch.float64) for _ in range(3)]


@pytest.mark.parametrize("causal,before,after", [(False, 1, 1), (False, 1, 0), (True, 1, 0), (True, 2, 0), (False, 0, 2)])
def test_local_matches_window_reference(causal, before, after):
    query, key, value = random_qkv()
    key_mask = torch.ones(2, 16, dtype=torch.bool)
    key_mask[1, 14:] = False
    chunk = 4

    def allowed(b, i, j):
        in_window = i // chunk - before <= j // chunk <= i // chunk + after
        return in_window and key_mask[b, j] and (not causal or j <= i)

    expected = naive_window_attention(query, key, value, allowed)
    actual = local_attention(query, key, value, key_mask=key_mask, causal=causal, chunk_length=chunk,
                             num_chunks_before=before, num_chunks_after=after, dropout_p=0.0, training=False)
    assert_close(actual[0], expected[0], atol=1e-10)
    assert_close(actual[1, :, :14], expected[1, :, :14], atol=1e-10)


@pytest.mark.parametrize("causal", [False, True])
def test_local_covering_everything_equals_full_attention(causal):
    config = ReformerZhModelTester().get_config(local_num_chunks_before=3, local_num_chunks_after=3)
    torch.manual_seed(0)
    local = ReformerZhLocalSelfAttention(config, 0, causal).double()
    full = ReformerZhFullSelfAttention(config, 0, causal).double()
    full.load_state_dict(local.state_dict())
    hidden = torch.randn(2, 16, 32, dtype=torch.float64)
    assert_close(local(hidden), full(hidden), atol=1e-10)


def test_local_pads_inside_and_ignores_padding():
    config = ReformerZhModelTester().get_config(local_num_chunks_after=1)
    torch.manual_seed(0)
    layer = ReformerZhLocalSelfAttention(config, 0, False).double()
    hidden = torch.randn(1, 13, 32, dtype=torch.float64)
    unpadded = layer(hidden)
    mask = torch.zeros(1, 18, dtype=torch.bool)
    mask[:, :13] = True
    padded = layer(torch.cat([hidden, torch.randn(1, 5, 32, dtype=torch.float64)], 1), attention_mask=mask)
    assert_close(padded[:, :13], unpadded, atol=1e-10)


def test_full_attention_matches_reference_with_padding():
    config = ReformerZhModelTester().get_config()
    torch.manual_seed(0)
    layer = ReformerZhFullSelfAttention(config, 0, True).double()
    hidden = torch.randn(2, 9, 32, dtype=torch.float64)
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[0, 7:] = False
    query = layer.query(hidden).view(2, 9, 2, 8).transpose(1, 2)
    key = layer.key(hidden).view(2, 9, 2, 8).transpose(1, 2)
    value = layer.value(hidden).view(2, 9, 2, 8).transpose(1, 2)
    expected = naive_window_attention(query, key, value, lambda b, i, j: j <= i and bool(mask[b, j]))
    expected = layer.output(expected.transpose(1, 2).reshape(2, 9, 16))
    actual = layer(hidden, attention_mask=mask)
    assert_close(actual[0, :7], expected[0, :7], atol=1e-10)
    assert_close(actual[1], expected[1], atol=1e-10)
