"""Issue 33's training-speed changes that must not change results, or must change them exactly
as claimed: the log-probability label smoother, the learning-rate cool-down, the bf16 decision."""

from __future__ import annotations

import pytest
import torch
from transformers import get_scheduler
from transformers.trainer_pt_utils import LabelSmoother

from reformer_zh.hardware import cpu_bf16_decision
from reformer_zh.training.label_smoothing import LogProbabilityLabelSmoother
from reformer_zh.training.training_budget import TimeBudgetCallback, add_cooldown, cooldown_factor


@pytest.mark.parametrize("num_items_in_batch", [None, 7])
def test_the_log_probability_smoother_equals_transformers_smoother_on_log_probabilities(num_items_in_batch):
    generator = torch.Generator().manual_seed(0)
    # The model hands the smoother log P = log_softmax(z): gradients are compared with respect to z,
    # where transformers' second log_softmax is the identity and so must leave them unchanged.
    logits = torch.randn(3, 5, 13, generator=generator, requires_grad=True)
    log_probs = logits.log_softmax(-1)
    labels = torch.randint(0, 13, (3, 5), generator=generator)
    labels[0, 3:] = -100
    ours = LogProbabilityLabelSmoother(epsilon=0.1)({"logits": log_probs}, labels, num_items_in_batch=num_items_in_batch)
    theirs = LabelSmoother(epsilon=0.1)({"logits": log_probs}, labels, num_items_in_batch=num_items_in_batch)
    assert torch.allclose(ours, theirs, atol=1e-6)
    ours_grad = torch.autograd.grad(ours, logits, retain_graph=True)[0]
    assert torch.allclose(ours_grad, torch.autograd.grad(theirs, logits, retain_graph=True)[0], atol=1e-7)
    shifted = LogProbabilityLabelSmoother(epsilon=0.1)({"logits": log_probs}, labels, shift_labels=True)
    assert torch.allclose(shifted, LabelSmoother(epsilon=0.1)({"logits": log_probs}, labels, shift_labels=True), atol=1e-6)


def test_the_cool_down_factor_is_one_then_falls_linearly_to_zero():
    assert [cooldown_factor(share, 0.2) for share in (0.0, 0.5, 0.8, 0.9, 1.0, 1.3)] == pytest.approx(
        [1.0, 1.0, 1.0, 0.5, 0.0, 0.0])
    assert cooldown_factor(0.99, 0.0) == 1.0


def learning_rates(steps: int, max_steps: int, cooldown_share: float, budget: TimeBudgetCallback) -> list[float]:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = get_scheduler("constant_with_warmup", optimizer, num_warmup_steps=2, num_training_steps=max_steps)
    add_cooldown(scheduler, cooldown_share, budget, max_steps)
    rates = []
    for _ in range(steps):
        rates.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return rates


def test_a_step_budget_warms_up_holds_then_cools_to_zero_over_its_last_fifth():
    budget = TimeBudgetCallback(None)
    rates = learning_rates(10, 10, 0.2, budget)
    assert rates == pytest.approx([0.0, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5])
    assert budget.cooldown_started_step == 9


def test_a_time_budget_cools_by_the_clock(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr("reformer_zh.training.training_budget.time.perf_counter", lambda: clock[0])
    budget = TimeBudgetCallback(minutes=1.0)
    budget.on_train_begin(None, None, None)
    clock[0] += 54.0  # 90% of the minute spent at step 3 of a million: halfway down
    rates = learning_rates(4, 1_000_000, 0.2, budget)
    assert rates[-1] == pytest.approx(0.5)


def test_the_cool_down_refuses_a_schedule_it_cannot_scale():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
    with pytest.raises(ValueError, match="LambdaLR kind"):
        add_cooldown(plateau, 0.2, TimeBudgetCallback(None), 10)


def test_bf16_is_off_without_bf16_hardware_and_never_probed_there():
    def probe(dtype):
        raise AssertionError("no timing without bf16 hardware")

    on, why = cpu_bf16_decision("auto", flags={"avx2", "fma"}, probe=probe)
    assert not on and "emulated" in why


def test_bf16_is_on_only_where_the_hardware_has_it_and_it_measures_faster():
    faster = {torch.bfloat16: 1.0, torch.float32: 2.0}
    on, why = cpu_bf16_decision("auto", flags={"amx_bf16", "avx512_bf16"}, probe=faster.get)
    assert on and "2.0x" in why
    slower = {torch.bfloat16: 3.0, torch.float32: 2.0}
    assert not cpu_bf16_decision("auto", flags={"avx512_bf16"}, probe=slower.get)[0]
    assert cpu_bf16_decision("on", flags=set(), probe=None)[0]
    assert not cpu_bf16_decision("off", flags={"amx_bf16"}, probe=None)[0]
    with pytest.raises(ValueError, match="auto, on or off"):
        cpu_bf16_decision("yes")
