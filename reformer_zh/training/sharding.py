"""FSDP2 and DeepSpeed with the reversible stacks: what train.py lets through, and why.

A reversible stack is one autograd Function per stack that takes every step's parameters as
inputs and recomputes the steps inside its backward (modeling_reformer_zh/reversible.py). That
fixes where sharding can go (measured in tests/training/test_sharding.py, 2 gloo processes):

Accelerate applies FSDP on GPUs only (a CPU run is MULTI_CPU data parallelism, with --fsdp
dropped), so train.py refuses --fsdp on the CPU; the placements below were measured by calling
`fully_shard` directly on gloo (what accelerate's fsdp2_prepare_model calls on a GPU).

- FSDP2 on the whole model (`auto_wrap_policy: NO_WRAP`): the root gathers every parameter
  before the stacks run and reduce-scatters their gradients after; equal to one process. The
  optimizer state and gradients are sharded, the parameters are whole during a step. This is
  what train.py uses for a reversible model when the FSDP config names no wrapping.
- FSDP2 per residual step (transformers' default TRANSFORMER_BASED_WRAP over the model's
  `_no_split_modules`): works for `reversible=False`; inside a reversible stack the steps'
  gradients would be lost, so the model refuses it.
- FSDP1 (deprecated in transformers 5): refused, not tested.
- DeepSpeed ZeRO-1/2 keep whole parameters, as DDP does, and are let through; not run here (no
  GPU lent to this project's tests, and DeepSpeed needs a GPU backend). ZeRO-3 gathers a module's
  parameters in its forward hooks and frees them after, in an order it records from the forward;
  the reversible backward re-runs the steps in reverse inside one Function, which that schedule
  does not expect: refused for reversible models, untested for plain ones.
"""

from __future__ import annotations

ALTERNATIVES = ("DDP (torchrun / accelerate launch without --fsdp), FSDP2 over the whole model "
                "(--fsdp --fsdp_config '{\"auto_wrap_policy\": \"NO_WRAP\"}'), DeepSpeed ZeRO-2, or "
                "--config_overrides reversible=false")


def chose_wrapping(fsdp_config: dict) -> bool:
    """Whether the user's fsdp_config says what to wrap (transformers fills in min_num_params=0)."""
    return ("auto_wrap_policy" in fsdp_config or fsdp_config.get("transformer_layer_cls_to_wrap") is not None
            or fsdp_config.get("min_num_params", 0) > 0)


def check_sharding_arguments(model, training_args, on_accelerator: bool) -> str | None:
    """Before training: refuse sharding that cannot train the model right; for a reversible
    model under FSDP2 with no wrapping chosen, shard the whole model (the one placement that
    works) and return a line saying so, for the log. `on_accelerator`: whether the run trains on
    GPUs (or another accelerator), the only devices accelerate applies FSDP on."""
    reversible = bool(getattr(model.config, "reversible", False))  # False for the BART baseline
    plugin = training_args.fsdp_plugin_args
    note = None
    if plugin is not None:
        if plugin.get("fsdp_version") != 2:
            raise ValueError(f"fsdp_config version {plugin.get('fsdp_version')} (FSDP1, deprecated in transformers 5) is "
                             "not supported by this script: use FSDP2, the default (drop \"version\" from --fsdp_config).")
        if reversible and plugin.get("auto_wrap_policy") != "NO_WRAP":
            if chose_wrapping(training_args.fsdp_config):
                raise ValueError(
                    f"--fsdp_config auto_wrap_policy {plugin.get('auto_wrap_policy')} shards modules inside the "
                    "reversible stacks, whose backward recomputes them inside one autograd function and would lose "
                    f"their gradients. Use one of: {ALTERNATIVES}."
                )
            plugin["auto_wrap_policy"] = "NO_WRAP"
            plugin.pop("transformer_cls_names_to_wrap", None)
            note = ("FSDP2 shards the whole model (auto_wrap_policy NO_WRAP): a reversible stack cannot be sharded "
                    "step by step (reformer_zh/training/sharding.py).")
        if not on_accelerator:
            # accelerate turns a CPU run into MULTI_CPU data parallelism and drops the FSDP
            # plugin: --fsdp would be ignored without a word
            raise ValueError("--fsdp: accelerate applies FSDP on GPUs (and other accelerators) only; on the CPU the run "
                             "would be plain data parallelism (DDP) with --fsdp ignored. Drop --fsdp to train with DDP.")
    deepspeed_config = getattr(training_args, "hf_deepspeed_config", None)
    if training_args.deepspeed and reversible and deepspeed_config is not None and deepspeed_config.is_zero3():
        raise ValueError(f"DeepSpeed ZeRO-3 partitions the parameters of the reversible stacks, whose backward "
                         f"re-gathers them outside the order ZeRO-3 schedules. Use one of: {ALTERNATIVES}.")
    return note
