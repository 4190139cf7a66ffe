"""The fused (scaled_dot_product_attention) path of masked_attention against the explicit one."""

from __future__ import annotations

import pytest
import torch

from modeling_reformer_zh.attention_utils import broadcast_shape, masked_attention
from modeling_reformer_zh.persistent_memory import PersistentMemory
from utils import assert_close


def random(*shape, generator):
    return torch.randn(*shape, generator=generator, dtype=torch.float64, requires_grad=True)


# (query, key/value, allowed, self_mask) shapes: what each attention kind passes
LAYOUTS = {
    "full, key mask": ((2, 3, 5, 4), (2, 3, 7, 4), (2, 1, 1, 7), None),
    "causal": ((2, 3, 7, 4), (2, 3, 7, 4), (7, 7), None),
    "cross, one mask row": ((2, 3, 5, 4), (2, 3, 9, 4), (2, 1, 1, 9), None),
    "local chunks": ((2, 3, 4, 3, 4), (2, 3, 4, 6, 4), (2, 1, 4, 1, 6), None),
    "local chunks, causal": ((2, 3, 4, 3, 4), (2, 3, 4, 6, 4), (2, 1, 4, 3, 6), None),
    "shared-QK exact, self mask": ((2, 3, 6, 4), (2, 3, 6, 4), (2, 1, 1, 6), (6, 6)),
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("with_memory", [False, True])
def test_fused_equals_explicit_outputs_and_gradients(layout, with_memory):
    query_shape, key_shape, allowed_shape, self_mask_shape = LAYOUTS[layout]
    generator = torch.Generator().manual_seed(0)
    query, key, value = random(*query_shape, generator=generator), random(*key_shape, generator=generator), \
        random(*key_shape, generator=generator)
    allowed = torch.rand(allowed_shape, generator=generator) > 0.3
    allowed.view(-1, allowed_shape[-1])[0] = False  # one row (or column block) with every key forbidden
    self_mask = None
    if self_mask_shape is not None:
        self_mask = torch.eye(self_mask_shape[0], dtype=torch.bool)
    memory = None
    if with_memory:
        memory = PersistentMemory(num_heads=3, num_slots=2, head_size=4).double()
        torch.nn.init.normal_(memory.keys, generator=generator)
        torch.nn.init.normal_(memory.values, generator=generator)
    results = []
    for fused in (True, False):
        output, _ = masked_attention(query, key, value, allowed, scale=0.5, dropout_p=0.0, training=False,
                                     self_mask=self_mask, memory=memory, fused=fused)
        inputs = [query, key, value] + (list(memory.parameters()) if memory is not None else [])
        results.append((output, torch.autograd.grad((output * torch.arange(output.numel()).view_as(output)).sum(),
                                                    inputs)))
    (fused_output, fused_grads), (explicit_output, explicit_grads) = results
    assert_close(fused_output, explicit_output, atol=1e-10)
    for fused_grad, explicit_grad in zip(fused_grads, explicit_grads):
        assert_close(fused_grad, explicit_grad, atol=1e-9)


def test_fused_dropout_drops_and_keeps_the_expectation():
    generator = torch.Generator().manual_seed(0)
    query, key, value = (torch.randn(1, 2, 64, 8, generator=generator) for _ in range(3))
    allowed = torch.ones(1, 1, 1, 64, dtype=torch.bool)
    plain, _ = masked_attention(query, key, value, allowed, scale=0.3, dropout_p=0.0, training=True)
    dropped = torch.stack([masked_attention(query, key, value, allowed, scale=0.3, dropout_p=0.5, training=True)[0]
                           for _ in range(200)])
    assert not torch.allclose(dropped[0], plain)
    assert (dropped.mean(0) - plain).abs().mean() < 0.1 * plain.abs().mean()


def test_broadcast_shape_agrees_with_torch_and_refuses_what_torch_refuses():
    generator = torch.Generator().manual_seed(0)
    for _ in range(300):
        rank = int(torch.randint(0, 5, (), generator=generator))
        full = torch.randint(0, 4, (rank,), generator=generator).tolist()
        # each shape a suffix of the full one with some sizes set to 1 and, now and then, a wrong size
        shapes = []
        for _ in range(int(torch.randint(1, 5, (), generator=generator))):
            keep = int(torch.randint(0, rank + 1, (), generator=generator))
            shape = [size if torch.rand((), generator=generator) < 0.6 else 1 for size in full[rank - keep:]]
            if shape and torch.rand((), generator=generator) < 0.1:
                shape[0] += 2
            shapes.append(torch.Size(shape))
        try:
            expected = tuple(torch.broadcast_shapes(*shapes))
        except RuntimeError:
            with pytest.raises(RuntimeError, match="do not broadcast"):
                broadcast_shape(*shapes)
            continue
        assert broadcast_shape(*shapes) == expected, shapes
