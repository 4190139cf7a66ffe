"""benchmarks/gpu_check.py, the script a lent GPU runs, checked on the CPU with tiny models: its
equivalence checks pass where the code is right, and it says what to do where there is no GPU."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import gpu_check  # noqa: E402


def test_the_whole_script_runs_on_the_cpu_and_writes_one_json(tmp_path):
    out = tmp_path / "gpu_check.json"
    result = gpu_check.main(["--device", "cpu", "--tiny", "--lengths", "256", "--check_length", "256",
                             "--steps", "1", "--out", str(out)])
    assert json.loads(out.read_text()) == result
    assert result["all_checks_passed"] and len(result["checks"]) == 3, result["checks"]
    assert [(point["system"], point["status"]) for point in result["bf16_training_steps"]] == [("ours", "ok"),
                                                                                             ("led", "ok")]
    assert all(point["tokens_per_second"] > 0 for point in result["bf16_training_steps"])


def test_a_replay_that_differs_fails_the_check(monkeypatch):
    """The reversible check compares real gradients: runs under different seeds (dropout masks and
    rotations the backward would not replay) are far apart, and the check says so."""
    seeds = iter([1, 2])
    real_seed = torch.manual_seed
    monkeypatch.setattr(torch, "manual_seed", lambda seed: real_seed(next(seeds) if seed == 1 else seed))
    assert not gpu_check.reversible_replay(torch.device("cpu"), 256, tiny=True)["passed"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is here")
def test_without_a_gpu_it_says_how_to_check_the_script_instead(capsys):
    with pytest.raises(SystemExit) as stopped:
        gpu_check.main([])
    assert stopped.value.code == 2 and "--device cpu --tiny" in capsys.readouterr().err
