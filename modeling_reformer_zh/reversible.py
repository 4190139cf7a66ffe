"""Reversible residual layers (RevNet; Reformer, sec. 4) and their plain-autograd twin.

A stack is a sequence of residual *steps* (attention, cross-attention, feed-forward) applied
alternately to two streams, each step reading one stream and adding into the other:

    step 0: a = a + F0(b)          (Y1 = X1 + Attention(X2))
    step 1: b = b + F1(a)          (Y2 = X2 + FeedForward(Y1))
    step 2: a = a + F2(b)  ...

Each step is inverted exactly by subtraction (a = a' - F(b)), so the backward pass keeps only
the two output streams and recomputes each step's activations on the way down, in reverse.
Memory is then independent of depth. `reversible=False` runs the very same function with
ordinary autograd, which stores every activation: the twin that tests and benchmarks compare.

The recomputation must see exactly what the forward saw: dropout masks and LSH rotations
come from torch's generator, so each step's generator state is saved before it runs and
replayed inside `torch.random.fork_rng` (the global generator is never reseeded, which is what
breaks transformers' Reformer under DataParallel), and autocast is re-entered as it was.

The encoder output enters the decoder's function as an input: every cross-attention step adds
its share to one gradient, which autograd then sends into the encoder once per training step.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn


@dataclasses.dataclass
class StepContext:
    """What a residual step reads besides its input stream.

    attention_mask: [b, s] bool, True for real tokens (self-attention keys), or None.
    encoder_hidden_states: [b, S, hidden] for cross-attention steps, or None.
    encoder_attention_mask: [b, S] bool, or None.
    cache: the generation cache (`EncoderDecoderCache`), never present in a reversible pass.
    """

    attention_mask: Tensor | None = None
    encoder_hidden_states: Tensor | None = None
    encoder_attention_mask: Tensor | None = None
    cache: Any = None


_RECOMPUTING = False


def is_recomputing() -> bool:
    """True while the reversible backward re-runs a step's forward. Layers with side effects
    beyond their output (batch-norm running statistics) use it to act once per training step."""
    return _RECOMPUTING


@contextlib.contextmanager
def recomputing():
    global _RECOMPUTING
    previous, _RECOMPUTING = _RECOMPUTING, True
    try:
        yield
    finally:
        _RECOMPUTING = previous


class GeneratorState:
    """Torch's generator state before a step ran, to replay it in the backward pass."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cpu_state = torch.get_rng_state()
        self.cuda_state = torch.cuda.get_rng_state(device) if device.type == "cuda" else None

    @contextlib.contextmanager
    def replay(self):
        devices = [self.device] if self.cuda_state is not None else []
        with torch.random.fork_rng(devices=devices):
            torch.set_rng_state(self.cpu_state)
            if self.cuda_state is not None:
                torch.cuda.set_rng_state(self.cuda_state, self.device)
            yield


class AutocastState:
    """Autocast settings of the forward pass, re-entered by the recomputation."""

    def __init__(self, device: torch.device) -> None:
        self.device_type = device.type if device.type in ("cpu", "cuda") else "cpu"
        self.enabled = torch.is_autocast_enabled(self.device_type)
        self.dtype = torch.get_autocast_dtype(self.device_type)

    def __call__(self):
        return torch.autocast(device_type=self.device_type, dtype=self.dtype, enabled=self.enabled)


def coupled_forward(steps: Sequence[nn.Module], a: Tensor, b: Tensor, context: StepContext) -> tuple[Tensor, Tensor]:
    """The plain twin: the same alternating residual steps under ordinary autograd."""
    for index, step in enumerate(steps):
        if index % 2 == 0:
            a = a + step(b, context)
        else:
            b = b + step(a, context)
    return a, b


class _ReversibleRun:
    """Everything the autograd function needs besides tensors: steps, masks, saved states."""

    def __init__(self, steps: Sequence[nn.Module], context: StepContext) -> None:
        self.steps = list(steps)
        self.context = context
        self.parameters: list[nn.Parameter] = []
        self.step_parameter_indices: list[list[int]] = []
        position: dict[int, int] = {}
        for step in self.steps:
            indices = []
            for parameter in step.parameters():
                if id(parameter) not in position:
                    position[id(parameter)] = len(self.parameters)
                    self.parameters.append(parameter)
                indices.append(position[id(parameter)])
            self.step_parameter_indices.append(indices)
        self.generator_states: list[GeneratorState] = []
        self.autocast_state: AutocastState | None = None


class ReversibleFunction(torch.autograd.Function):
    """forward(run, a, b, encoder_hidden_states | None, *parameters) -> (a', b').

    Parameters are explicit inputs so that their gradients are returned like any other (no
    side effects on `.grad`, so `torch.autograd.grad`, DDP hooks and gradcheck all see them).
    """

    @staticmethod
    def forward(ctx, run: _ReversibleRun, a: Tensor, b: Tensor, encoder_hidden_states: Tensor | None, *parameters):
        run.autocast_state = AutocastState(a.device)
        run.generator_states = []
        context = dataclasses.replace(run.context, encoder_hidden_states=encoder_hidden_states)
        with torch.no_grad():
            for index, step in enumerate(run.steps):
                run.generator_states.append(GeneratorState(a.device))
                if index % 2 == 0:
                    a = a + step(b, context)
                else:
                    b = b + step(a, context)
        ctx.run = run
        ctx.has_encoder = encoder_hidden_states is not None
        if ctx.has_encoder:
            ctx.save_for_backward(a, b, encoder_hidden_states)
        else:
            ctx.save_for_backward(a, b)
        return a, b

    @staticmethod
    def backward(ctx, grad_a: Tensor, grad_b: Tensor):
        run: _ReversibleRun = ctx.run
        saved = ctx.saved_tensors
        a, b = saved[0].detach(), saved[1].detach()
        encoder_leaf = None
        encoder_grad = None
        if ctx.has_encoder:
            encoder_leaf = saved[2].detach().requires_grad_(ctx.needs_input_grad[3])
        context = dataclasses.replace(run.context, encoder_hidden_states=encoder_leaf)
        parameter_grads: list[Tensor | None] = [None] * len(run.parameters)

        for index in reversed(range(len(run.steps))):
            step = run.steps[index]
            updates_a = index % 2 == 0
            kept, updated = (b, a) if updates_a else (a, b)
            grad_kept, grad_updated = (grad_b, grad_a) if updates_a else (grad_a, grad_b)

            step_parameters = [run.parameters[i] for i in run.step_parameter_indices[index]]
            trainable = [(i, p) for i, p in zip(run.step_parameter_indices[index], step_parameters) if p.requires_grad]
            with torch.enable_grad(), run.generator_states[index].replay(), run.autocast_state(), recomputing():
                kept_leaf = kept.detach().requires_grad_(True)
                delta = step(kept_leaf, context)
            inputs = [kept_leaf] + [p for _, p in trainable]
            reads_encoder = encoder_leaf is not None and encoder_leaf.requires_grad and getattr(step, "reads_encoder", False)
            if reads_encoder:
                inputs.append(encoder_leaf)
            grads = torch.autograd.grad(delta, inputs, grad_updated.to(delta.dtype), allow_unused=True)

            with torch.no_grad():
                updated = updated - delta.detach()  # invert the step: X = Y - F(kept)
                if grads[0] is not None:
                    grad_kept = grad_kept + grads[0]
                for (i, _), grad in zip(trainable, grads[1 : 1 + len(trainable)]):
                    if grad is not None:
                        parameter_grads[i] = grad if parameter_grads[i] is None else parameter_grads[i] + grad
                if reads_encoder and grads[-1] is not None:
                    encoder_grad = grads[-1] if encoder_grad is None else encoder_grad + grads[-1]
            del delta, kept_leaf, grads

            if updates_a:
                a, grad_b = updated, grad_kept
            else:
                b, grad_a = updated, grad_kept

        return (None, grad_a, grad_b, encoder_grad, *parameter_grads)


def reversible_forward(
    steps: Sequence[nn.Module], a: Tensor, b: Tensor, context: StepContext
) -> tuple[Tensor, Tensor]:
    """Run `steps` with the memory-saving reversible backward."""
    if context.cache is not None:
        raise ValueError("a generation cache cannot be filled inside a reversible pass; use the plain forward")
    run = _ReversibleRun(steps, dataclasses.replace(context, encoder_hidden_states=None))
    return ReversibleFunction.apply(run, a, b, context.encoder_hidden_states, *run.parameters)


def run_stack(
    steps: Sequence[nn.Module], hidden_states: Tensor, context: StepContext, *, reversible: bool
) -> tuple[Tensor, Tensor]:
    """Both streams start as `hidden_states`. The reversible backward is used when it can save
    memory: gradients are being recorded and no cache is being filled."""
    if reversible and torch.is_grad_enabled() and context.cache is None:
        return reversible_forward(steps, hidden_states, hidden_states, context)
    return coupled_forward(steps, hidden_states, hidden_states, context)
