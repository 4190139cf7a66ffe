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
import threading
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
    lsh_routing: the stack's `LSHRouting` (attention_lsh.py) for this forward: which rows take
        LSH, decided once for all layers, and the buckets each LSH layer drew, which the
        reversible recomputation reuses. None where the stack has no LSH layer.
    """

    attention_mask: Tensor | None = None
    encoder_hidden_states: Tensor | None = None
    encoder_attention_mask: Tensor | None = None
    cache: Any = None
    lsh_routing: Any = None


class _RecomputingFlag(threading.local):
    """Per thread: replicas of `nn.DataParallel` run forward and backward in threads of their own."""

    active = False


_RECOMPUTING = _RecomputingFlag()


def is_recomputing() -> bool:
    """True while the reversible backward re-runs a step's forward (in this thread). Layers with
    side effects beyond their output (batch-norm running statistics) use it to act once per
    training step."""
    return _RECOMPUTING.active


@contextlib.contextmanager
def recomputing():
    previous, _RECOMPUTING.active = _RECOMPUTING.active, True
    try:
        yield
    finally:
        _RECOMPUTING.active = previous


def accelerators(devices: set[torch.device]) -> list[torch.device]:
    """The non-CPU devices among `devices`, in a fixed order."""
    return sorted((d for d in devices if d.type != "cpu"), key=str)


class GeneratorState:
    """Torch's generator states before a step ran (CPU and every accelerator device the step
    touches), to replay them in the backward pass.

    Accelerators are reached through `torch.get_device_module(type)`, as `torch.random.fork_rng`
    does: `get_rng_state(index)` / `set_rng_state(state, index)`.
    """

    def __init__(self, devices: Sequence[torch.device]) -> None:
        self.cpu_state = torch.get_rng_state()
        self.device_states: dict[str, dict[int, Tensor]] = {}
        for device in devices:
            module = torch.get_device_module(device.type)
            if not (hasattr(module, "get_rng_state") and hasattr(module, "set_rng_state")):
                raise RuntimeError(
                    f"the reversible backward cannot replay dropout and LSH rotations on device type "
                    f"'{device.type}' (torch.{device.type} has no get_rng_state/set_rng_state); use "
                    "`reversible=False`, or set the dropout probabilities to 0 and `hash_seed`."
                )
            index = device.index if device.index is not None else module.current_device()
            self.device_states.setdefault(device.type, {})[index] = module.get_rng_state(index)

    @contextlib.contextmanager
    def replay(self):
        with contextlib.ExitStack() as stack:
            stack.enter_context(torch.random.fork_rng(devices=[]))  # CPU only
            torch.set_rng_state(self.cpu_state)
            for device_type, states in self.device_states.items():
                stack.enter_context(torch.random.fork_rng(devices=list(states), device_type=device_type))
                module = torch.get_device_module(device_type)
                for index, state in states.items():
                    module.set_rng_state(state, index)
            yield


class AutocastState:
    """Autocast settings of the forward pass, re-entered by the recomputation."""

    def __init__(self, device: torch.device) -> None:
        self.device_type = device.type if torch.amp.is_autocast_available(device.type) else "cpu"
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
        self.step_parameter_devices: list[set[torch.device]] = []  # where each step draws random numbers
        position: dict[int, int] = {}
        for step in self.steps:
            indices = []
            for parameter in step.parameters():
                if id(parameter) not in position:
                    position[id(parameter)] = len(self.parameters)
                    self.parameters.append(parameter)
                indices.append(position[id(parameter)])
            self.step_parameter_indices.append(indices)
            self.step_parameter_devices.append({self.parameters[i].device for i in indices})
        check_not_sharded_inside(self.parameters)
        self.generator_states: list[GeneratorState] = []
        self.autocast_state: AutocastState | None = None


def check_not_sharded_inside(parameters: Sequence[nn.Parameter]) -> None:
    """FSDP2 (`fully_shard`) on a module inside a reversible stack would train it silently wrong.

    Sharding the whole model is fine: its pre-forward hook gathers every parameter before the
    stack runs, so the parameters handed to the autograd function are whole tensors whose
    gradients FSDP reduce-scatters. A step or layer sharded on its own still holds its sharded
    `DTensor` parameters when the stack collects them, and gathers fresh ones each time it runs;
    the recomputation in our backward differentiates with respect to those fresh tensors, not the
    collected ones, so the step's gradients would come out as None (measured: every step
    parameter without a gradient) instead of an error.
    """
    if not torch.distributed.is_available():
        return
    from torch.distributed.tensor import DTensor

    sharded = next((p for p in parameters if isinstance(p, DTensor)), None)
    if sharded is not None:
        raise RuntimeError(
            "a reversible stack received a sharded (FSDP2 DTensor) parameter of shape "
            f"{tuple(sharded.shape)}: `fully_shard` was applied to a module inside the stack, whose "
            "parameters the reversible backward cannot gather. Shard the whole model only "
            "(`fully_shard(model)`; with the Trainer, fsdp_config auto_wrap_policy NO_WRAP), or set "
            "`reversible=False` to shard the residual steps one by one."
        )


def join_chunks(parts: list[Tensor]) -> Tensor:
    """Sequence chunks [b, c, ...] back into one [b, s, ...] (no copy for a single chunk)."""
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


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
                devices = accelerators(run.step_parameter_devices[index] | {a.device})
                run.generator_states.append(GeneratorState(devices))
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

            trainable = [(i, run.parameters[i]) for i in run.step_parameter_indices[index] if run.parameters[i].requires_grad]
            reads_encoder = encoder_leaf is not None and encoder_leaf.requires_grad and getattr(step, "reads_encoder", False)
            # A chunked position-wise step (feed-forward) is recomputed and differentiated one
            # chunk at a time, in the forward's chunk order, so its intermediate activations
            # exist for one chunk only; the replayed generator then hands each chunk the same
            # dropout masks as in the forward.
            chunk_size = getattr(step, "position_wise_chunk_size", 0) or kept.shape[1]
            updated_parts, grad_kept_parts = [], []
            with run.generator_states[index].replay(), run.autocast_state(), recomputing():
                for start in range(0, kept.shape[1], chunk_size):
                    rows = slice(start, start + chunk_size)
                    with torch.enable_grad():
                        kept_leaf = kept[:, rows].detach().requires_grad_(True)
                        delta = step(kept_leaf, context)
                    inputs = [kept_leaf] + [p for _, p in trainable]
                    if reads_encoder:
                        inputs.append(encoder_leaf)
                    grads = torch.autograd.grad(delta, inputs, grad_updated[:, rows].to(delta.dtype), allow_unused=True)
                    with torch.no_grad():
                        updated_parts.append(updated[:, rows] - delta.detach())  # invert: X = Y - F(kept)
                        grad_kept_parts.append(grads[0] if grads[0] is not None else torch.zeros_like(kept_leaf))
                        for (i, _), grad in zip(trainable, grads[1 : 1 + len(trainable)]):
                            if grad is not None:
                                parameter_grads[i] = grad if parameter_grads[i] is None else parameter_grads[i] + grad
                        if reads_encoder and grads[-1] is not None:
                            encoder_grad = grads[-1] if encoder_grad is None else encoder_grad + grads[-1]
                    del delta, kept_leaf, grads
            updated = join_chunks(updated_parts)
            grad_kept = grad_kept + join_chunks(grad_kept_parts)

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
