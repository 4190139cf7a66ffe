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

import json
import logging
import time
from pathlib import Path

import torch
from transformers import TrainerCallback

logger = logging.getLogger("train")


def decided_by_main_process(flag: bool, args) -> bool:
    """Under DDP every process must act at the same step (one that stops or saves alone leaves the
    others waiting in a collective), so rank 0's clock decides for all; alone, `flag` itself."""
    decision = torch.tensor([float(flag)])
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        decision = decision.to(args.device) if torch.distributed.get_backend() == "nccl" else decision
        torch.distributed.broadcast(decision, src=0)
    return bool(decision.item())


BUDGET_FILE = "time_budget.json"  # in every checkpoint folder: the training seconds spent up to it


class TimeBudgetCallback(TrainerCallback):
    """Stops training once `minutes` of training time have passed, and records the step at which
    the learning-rate cool-down began (`cooldown_started_step`).

    The minutes are of training, across interruptions: every checkpoint records the seconds
    spent up to it (`time_budget.json`), and a run resumed from it starts with them spent
    (`resume_from`), so a 120-minute budget interrupted at minute 50 trains 70 more.

    Under DDP the main process decides for all (`decided_by_main_process`)."""

    def __init__(self, minutes: float | None) -> None:
        self.seconds = None if minutes is None else minutes * 60
        self.started = None
        self.spent_before = 0.0  # training seconds of the runs this one resumes
        self.cooldown_started_step = None

    def resume_from(self, checkpoint: str | Path | None) -> None:
        """Count the training seconds recorded in `checkpoint` as spent (none recorded: none)."""
        record = Path(checkpoint) / BUDGET_FILE if checkpoint else None
        if record is not None and record.is_file():
            self.spent_before = float(json.loads(record.read_text())["training_seconds"])
            logger.info("resuming with %.1f training minutes already spent", self.spent_before / 60)

    def spent_seconds(self) -> float:
        running = 0.0 if self.started is None else time.perf_counter() - self.started
        return self.spent_before + running

    def elapsed_share(self) -> float:
        """The share of the minutes spent so far (0 before training begins)."""
        if self.started is None or self.seconds is None:
            return 0.0
        return self.spent_seconds() / self.seconds

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.perf_counter()

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if state.is_world_process_zero and folder.is_dir():
            (folder / BUDGET_FILE).write_text(json.dumps({"training_seconds": round(self.spent_seconds(), 1)}) + "\n")
        return control

    def on_step_end(self, args, state, control, **kwargs):
        if self.seconds is None:
            return control
        if decided_by_main_process(self.spent_seconds() >= self.seconds, args):
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


class SaveEveryMinutesCallback(TrainerCallback):
    """Saves a checkpoint every `minutes` of training, so that an interrupted long run loses at
    most that much (`--save_every_minutes`; the Trainer's own strategies count steps or epochs).
    Under DDP the main process's clock decides for every process (`decided_by_main_process`)."""

    def __init__(self, minutes: float) -> None:
        self.seconds = minutes * 60
        self.last = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.last = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if decided_by_main_process(time.perf_counter() - self.last >= self.seconds, args):
            control.should_save = True
            self.last = time.perf_counter()
        return control
