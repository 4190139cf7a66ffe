"""The analytic FLOP count of benchmarks/scaling.py against the matmuls torch really runs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry, sdpa_backward_flop_count, sdpa_flop_count

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import scaling  # noqa: E402


def cpu_flash_attention_flops(func, args) -> int | None:
    """torch's SDPA formulas for its CPU flash-attention kernels, which flop_registry lacks."""
    if func is torch.ops.aten._scaled_dot_product_flash_attention_for_cpu.default:
        return sdpa_flop_count(args[0].shape, args[1].shape, args[2].shape)
    if func is torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward.default:
        return sdpa_backward_flop_count(args[0].shape, args[1].shape, args[2].shape, args[3].shape)
    return None


class CountFlops(TorchDispatchMode):
    """Sums torch's own FLOP formulas (mm, bmm, addmm, SDPA, ...) over every op a step dispatches."""

    def __init__(self) -> None:
        super().__init__()
        self.flops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if (flops := cpu_flash_attention_flops(func, args)) is not None:
            self.flops += flops
        elif func._overloadpacket in flop_registry:
            self.flops += flop_registry[func._overloadpacket](*args, **kwargs, out_val=out)
        return out


@pytest.mark.parametrize("system,recomputed", [("ours-plain", 1.0), ("ours", 4 / 3)])
def test_step_flops_formula_matches_the_matmuls_torch_runs(system, recomputed):
    """ours-plain: the formula is the count; ours: the reversible backward re-runs the forward
    (one more forward on top of the three a step counts), which the formula leaves out on purpose."""
    torch.manual_seed(0)
    model, step = scaling.build(system, 1024, depth=2)
    with CountFlops() as counter:
        step()
    formula = scaling.step_flops(system, 1024, 2)
    assert counter.flops == pytest.approx(formula * recomputed, rel=0.03)
