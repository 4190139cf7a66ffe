"""FSDP2 and DeepSpeed with the reversible stacks (reformer_zh/training/sharding.py, the guards in
modeling_reformer_zh): what works is equal to one process, what cannot work fails early
with a message naming the alternatives. Two gloo processes on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from utils import TINY
from utils import ReformerZhModelTester

from modeling_reformer_zh import ReformerZhForConditionalGeneration
from reformer_zh.training import train
from reformer_zh.training.sharding import check_sharding_arguments

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fully_shard_cases(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("fsdp") / "cases.json"
    # One retry: once in a clean-clone CI run (2026-12-04) rank 0 aborted inside the gloo launcher
    # ("terminate called without an active exception", SIGABRT) and the same commit passed on the
    # next run; a second failure is reported with both runs' output.
    failures = []
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
             str(ROOT / "tests" / "fsdp_worker.py"), str(out)],
            capture_output=True, text=True, timeout=300, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        if result.returncode == 0:
            return json.loads(out.read_text())
        failures.append(result.stderr[-3000:])
    raise AssertionError("\n--- retry ---\n".join(failures))


@pytest.mark.parametrize("case", ["model/reversible", "model/plain", "steps/plain"])
def test_sharded_gradients_equal_the_unsharded_full_batch(fully_shard_cases, case):
    result = fully_shard_cases[case]
    assert "error" not in result, result
    assert result["without_gradient"] == []
    # two half-batch means averaged against one full-batch mean: float rounding only
    assert result["max_difference"] < 1e-6, result


def test_steps_sharded_inside_a_reversible_stack_fail_instead_of_losing_their_gradients(fully_shard_cases):
    assert "sharded (FSDP2 DTensor) parameter" in fully_shard_cases["steps/reversible"].get("error", ""), \
        fully_shard_cases["steps/reversible"]


def test_sharded_layers_fail_with_what_to_shard_instead(fully_shard_cases):
    assert "which the stack never calls" in fully_shard_cases["layers/plain"].get("error", ""), \
        fully_shard_cases["layers/plain"]


def parsed_training_arguments(*flags: str):
    from transformers import HfArgumentParser, Seq2SeqTrainingArguments

    (arguments,) = HfArgumentParser(Seq2SeqTrainingArguments).parse_args_into_dataclasses(
        args=["--output_dir", "unused", "--use_cpu", *flags])
    return arguments


def wrapped_by_accelerate(model, training_args) -> list[str]:
    """The modules accelerate's FSDP2 preparation would shard on their own, from the plugin
    arguments the Trainer builds (fsdp_plugin_args), as on a GPU; the root is always sharded."""
    from accelerate.utils import FullyShardedDataParallelPlugin
    from accelerate.utils.fsdp_utils import fsdp2_prepare_auto_wrap_policy

    plugin = FullyShardedDataParallelPlugin(**training_args.fsdp_plugin_args)
    plugin.set_auto_wrap_policy(model)
    policy = fsdp2_prepare_auto_wrap_policy(plugin, model)
    return sorted({type(m).__name__ for m in model.modules() if policy is not None and policy(m)})


@pytest.mark.parametrize("reversible", [True, False])
def test_fsdp_through_accelerate_shards_only_what_the_model_can_train(reversible):
    """The placements of fully_shard_cases, reached from the Trainer's flags: a reversible model
    is sharded whole, a plain one by residual step (its `_no_split_modules`), never by layer."""
    model = ReformerZhForConditionalGeneration(ReformerZhModelTester().get_config(reversible=reversible))
    arguments = parsed_training_arguments("--fsdp", "full_shard")
    note = check_sharding_arguments(model, arguments, on_accelerator=True)
    if reversible:
        assert "shards the whole model" in note
        assert wrapped_by_accelerate(model, arguments) == []
    else:
        assert note is None
        assert wrapped_by_accelerate(model, arguments) == [
            "ReformerZhCrossAttentionStep", "ReformerZhFeedForwardStep", "ReformerZhSelfAttentionStep"]


@pytest.mark.parametrize(
    "flags,pattern",
    [
        (["--fsdp", "--fsdp_config", '{"auto_wrap_policy": "TRANSFORMER_BASED_WRAP"}'],
         r"TRANSFORMER_BASED_WRAP shards modules inside the reversible stacks.*NO_WRAP"),
        (["--fsdp", "full_shard", "--fsdp_config", '{"version": 1}'], r"version 1 \(FSDP1, .*not supported"),
        # accelerate drops the FSDP plugin on the CPU
        (["--fsdp", "full_shard"], r"applies FSDP on GPUs .* only; on the CPU .* --fsdp ignored"),
    ],
)
def test_sharding_that_cannot_train_or_would_be_ignored_fails_before_training(tmp_path, flags, pattern):
    with pytest.raises(ValueError, match=pattern):
        train.main(TINY + ["--do_train", "--max_steps", "1", "--output_dir", str(tmp_path / "out"), *flags])
    assert not (tmp_path / "out" / "model.safetensors").exists()


# DeepSpeed: not a dependency (its sdist needs torch at build time: `pip install wheel` then
# `DS_BUILD_OPS=0 pip install --no-build-isolation deepspeed`); it runs on the CPU with gloo
ZERO = {"train_micro_batch_size_per_gpu": "auto", "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto", "zero_allow_untested_optimizer": True}
NO_RANDOMNESS = ["--config_overrides", "hash_seed=0,hidden_dropout_prob=0.0,attention_probs_dropout_prob=0.0"]
THREE_STEPS = ["--do_train", "--max_steps", "3", "--save_strategy", "no", "--train_sampling_strategy", "sequential"]


def zero_config(tmp_path: Path, stage: int) -> str:
    path = tmp_path / f"zero{stage}.json"
    optimization = {"stage": stage, "stage3_gather_16bit_weights_on_model_save": True} if stage == 3 else {"stage": stage}
    path.write_text(json.dumps({**ZERO, "zero_optimization": optimization}))
    return str(path)


def run_two_processes(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(ROOT / "scripts" / "train.py"), *args],
        capture_output=True, text=True, timeout=600, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def largest_weight_difference(first: Path, second: Path) -> float:
    from safetensors.torch import load_file

    one, two = load_file(first / "model.safetensors"), load_file(second / "model.safetensors")
    # DeepSpeed saves the tied copies of the token table too; they equal model.shared.weight
    return max((one[name] - two[name]).abs().max().item() for name in one)


def half_batches(args: list[str]) -> list[str]:
    args = list(args)
    args[args.index("--per_device_train_batch_size") + 1] = "2"
    return args


@pytest.fixture
def deepspeed():
    return pytest.importorskip("deepspeed", reason="DeepSpeed is not installed (see the comment above ZERO)")


def test_zero2_on_two_processes_matches_one_process(deepspeed, tmp_path):
    args = TINY + THREE_STEPS + NO_RANDOMNESS
    train.main(args + ["--output_dir", str(tmp_path / "single")])
    result = run_two_processes(half_batches(args) + ["--output_dir", str(tmp_path / "zero2"),
                                                     "--deepspeed", zero_config(tmp_path, 2)])
    assert result.returncode == 0, result.stderr[-3000:]
    # as for DDP (tests/training/test_train_command.py): rounding moves Adam's weights by ~1e-5 in three steps at most
    assert largest_weight_difference(tmp_path / "single", tmp_path / "zero2") < 1e-4


def test_zero3_trains_a_plain_model_like_one_process_and_refuses_a_reversible_one(deepspeed, tmp_path):
    # ZeRO-3 builds a new model's weights partitioned, with other random numbers: start both from a checkpoint
    start = tmp_path / "start"
    train.main(TINY + THREE_STEPS + [NO_RANDOMNESS[0], NO_RANDOMNESS[1] + ",reversible=false", "--output_dir", str(start)])
    args = TINY + THREE_STEPS + ["--model_name_or_path", str(start), "--tokenizer_name", str(start / "tokenizer")]
    args = [a for a in args if a not in ("--config_name", "tiny")]
    train.main(args + ["--output_dir", str(tmp_path / "single")])
    zero3 = ["--deepspeed", zero_config(tmp_path, 3)]
    result = run_two_processes(half_batches(args) + ["--output_dir", str(tmp_path / "zero3"), *zero3])
    assert result.returncode == 0, result.stderr[-3000:]
    assert largest_weight_difference(tmp_path / "single", tmp_path / "zero3") < 1e-4
    # reversible: without the check the backward fails inside ZeRO-3 ("invalid gradient ... [0]")
    refused = run_two_processes(half_batches(TINY + THREE_STEPS + NO_RANDOMNESS)
                                + ["--output_dir", str(tmp_path / "reversible"), *zero3])
    assert refused.returncode != 0 and "ZeRO-3 partitions the parameters of the reversible stacks" in refused.stderr
    assert not (tmp_path / "reversible" / "model.safetensors").exists()
