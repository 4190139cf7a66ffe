"""Training inside a budget of wall-clock minutes: stop when it is spent, and cool the learning
rate to zero over its last share.

A recipe trains for `--max_train_minutes` with a huge `--max_steps`, so a step-based schedule
never decays: the run would end at full learning rate, on whatever the last batches pushed the
weights to. `--lr_cooldown_share 0.2` multiplies the schedule by a factor that falls linearly
from 1 to 0 over the last 20% of the budget: of the minutes when `--max_train_minutes` bounds
the run, of `--max_steps` otherwise (so `--max_steps N` with the same share reproduces a timed
run of N steps on another machine, its cool-down starting at 0.8 N instead of wherever 80% of the
minutes fell).
"""

from __future__ import annotations

import logging
import time

import torch
from transformers import TrainerCallback

logger = logging.getLogger("train")


class TimeBudgetCallback(TrainerCallback):
    """Stops training once `minutes` of wall-clock time have passed since training began, and
    records the step at which the learning-rate cool-down began (`cooldown_started_step`).

    Under DDP every process must stop at the same step (a process that stops alone leaves the
    others waiting in an all-reduce), so the main process decides and broadcasts each step."""

    def __init__(self, minutes: float | None) -> None:
        self.seconds = None if minutes is None else minutes * 60
        self.started = None
        self.cooldown_started_step = None

    def elapsed_share(self) -> float:
        """The share of the minutes spent so far (0 before training begins)."""
        if self.started is None or self.seconds is None:
            return 0.0
        return (time.perf_counter() - self.started) / self.seconds

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self.seconds is None:
            return control
        stop = torch.tensor([float(time.perf_counter() - self.started >= self.seconds)])
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            stop = stop.to(args.device) if torch.distributed.get_backend() == "nccl" else stop
            torch.distributed.broadcast(stop, src=0)
        if stop.item():
            if not control.should_training_stop:
                logger.info("--max_train_minutes %.1f reached at step %d: stopping training", self.seconds / 60,
                            state.global_step)
            control.should_training_stop = True
        return control


def cooldown_factor(share_done: float, cooldown_share: float) -> float:
    """1 until `1 - cooldown_share` of the budget is spent, then linearly down to 0 at its end."""
    if cooldown_share <= 0:
        return 1.0
    return min(1.0, max(0.0, (1.0 - share_done) / cooldown_share))


def add_cooldown(scheduler, cooldown_share: float, budget: TimeBudgetCallback, max_steps: int) -> None:
    """Multiplies every learning-rate lambda of `scheduler` (a LambdaLR: transformers' linear,
    cosine and constant schedules all are) by the cool-down factor of whichever budget is further
    spent, the minutes or `max_steps`. The logged learning rate is the one applied."""
    if not isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR):
        raise ValueError(f"--lr_cooldown_share needs a schedule of the LambdaLR kind (linear, cosine, constant, "
                         f"constant_with_warmup, ...), not {type(scheduler).__name__}: drop one of the two.")

    def share_done(step: int) -> float:  # whichever bound ends the run first
        return max(budget.elapsed_share(), step / max_steps)

    def cooled(schedule):
        def factor(step: int) -> float:
            value = cooldown_factor(share_done(step), cooldown_share)
            # 1e-9: (1 - 0.8) / 0.2 rounds to just under 1 at exactly the start of the cool-down
            if value < 1.0 - 1e-9 and budget.cooldown_started_step is None:
                budget.cooldown_started_step = step
                logger.info("learning-rate cool-down to 0 over the last %.0f%% of the budget begins at step %d",
                            100 * cooldown_share, step)
            return schedule(step) * value

        return factor

    scheduler.lr_lambdas = [cooled(schedule) for schedule in scheduler.lr_lambdas]
