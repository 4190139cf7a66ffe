"""A tiny model must learn to copy and to reverse through cross-attention (reformer-pytorch#90
is a cross-attention that could not): near-zero loss and exact greedy outputs, seeded, CPU."""

from __future__ import annotations

import time

import pytest
import torch

from modeling_reformer_zh import ReformerZhForConditionalGeneration

from utils import ReformerZhModelTester

EOS, START, FIRST_SYMBOL, NUM_SYMBOLS, LENGTH = 3, 2, 5, 12, 8


# training runs of minutes: `make test-slow` (tests/conftest.py)
pytestmark = pytest.mark.slow


def make_batch(generator: torch.Generator, batch_size: int, reverse: bool):
    source = torch.randint(FIRST_SYMBOL, FIRST_SYMBOL + NUM_SYMBOLS, (batch_size, LENGTH), generator=generator)
    target = source.flip(1) if reverse else source
    labels = torch.cat([target, torch.full((batch_size, 1), EOS)], dim=1)
    return source, labels


@pytest.mark.parametrize("reverse", [False, True], ids=["copy", "reverse"])
def test_learns_to_copy_and_reverse(reverse):
    torch.manual_seed(0)
    # the shared tiny tester's config, widened: the tasks need more room than its 32 dimensions
    config = ReformerZhModelTester(
        vocab_size=FIRST_SYMBOL + NUM_SYMBOLS, hidden_size=64, num_attention_heads=4, attention_head_size=16,
        feed_forward_size=128, axial_pos_shape=[4, 8], axial_pos_embds_dim=[16, 48], max_position_embeddings=32,
    ).get_config()
    model = ReformerZhForConditionalGeneration(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    for step in range(400):
        source, labels = make_batch(generator, 32, reverse)
        loss = model(input_ids=source, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    elapsed = time.perf_counter() - started
    model.eval()
    source, labels = make_batch(torch.Generator().manual_seed(123), 64, reverse)
    with torch.no_grad():
        final_loss = model(input_ids=source, labels=labels).loss.item()
        generated = model.generate(input_ids=source, max_new_tokens=LENGTH + 1, do_sample=False, num_beams=1)
    exact = (generated[:, 1:] == labels).all(dim=1).float().mean().item()
    print(f"{'reverse' if reverse else 'copy'}: loss {final_loss:.4f}, exact {exact:.2%}, {elapsed:.1f} s")
    assert final_loss < 0.05
    assert exact == 1.0  # (the elapsed time is printed, not asserted: timings belong to benchmarks/)
