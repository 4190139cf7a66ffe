"""A user's mistake on the command line ends in one `error:` line and exit status 2, for every
tool, never in a traceback (reformer_zh/cli.py); REFORMER_ZH_TRACEBACK=1 brings the traceback back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"


def run_tool(script: str, *args: str, **environment: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "REFORMER_ZH_TRACEBACK"}
    env.update(REFORMER_ZH_ALLOCATOR="system", **environment)
    return subprocess.run([sys.executable, str(SCRIPTS / script), *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=300)


def assert_clean_error(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("error: ") or "\nerror: " in result.stderr, result.stderr
    assert message in result.stderr, result.stderr


def test_publish_refuses_a_pickle_checkpoint_in_one_line(tmp_path):
    (tmp_path / "pytorch_model.bin").write_bytes(b"not loaded")
    result = run_tool("publish.py", str(tmp_path), "--repo_id", "someone/x", "--dry_run", str(tmp_path / "out"))
    assert_clean_error(result, "re-save it as safetensors")


@pytest.mark.parametrize("flag,value,message", [
    ("--max_train_minutes", "-1", "--max_train_minutes must be positive"),
    ("--target_length_bucket", "-8", "--target_length_bucket is a number of tokens"),
])
def test_train_reports_a_bad_flag_value_in_one_line(tmp_path, flag, value, message):
    result = run_tool("train.py", "--output_dir", str(tmp_path), "--do_train", flag, value)
    assert_clean_error(result, message)


@pytest.mark.parametrize("recipe,setting,message", [
    ("general", "cail=2824", "no mixture part is called 'cail'"),
    ("general", "cail2020=0", "must be a positive whole number"),
    ("general", "cail2020=many", "must be a positive whole number"),
    ("xwlb-story", "cail2020=2824", "the xwlb-story recipe trains on one file"),
])
def test_recipe_reports_a_bad_mixture_reweighting_in_one_line(recipe, setting, message):
    result = run_tool("recipe.py", recipe, "--mixture_rows", setting, "--dry_run")
    assert_clean_error(result, message)


def test_summarize_reports_a_missing_checkpoint_in_one_line(tmp_path):
    result = run_tool("summarize.py", str(tmp_path / "no_such_checkpoint"), "一篇文档。")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr


@pytest.mark.parametrize("script", ["baselines.py", "evenings.py", "build_tokenizer.py"])
def test_data_tools_report_a_missing_file_in_one_line(script, tmp_path):
    missing = str(tmp_path / "missing.jsonl")
    args = {"baselines.py": [missing], "evenings.py": [missing, missing, str(tmp_path / "o.jsonl")],
            "build_tokenizer.py": ["--train_file", missing, "--output_dir", str(tmp_path / "t")]}[script]
    result = run_tool(script, *args)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "missing.jsonl" in result.stderr


def test_the_traceback_comes_back_on_request(tmp_path):
    (tmp_path / "pytorch_model.bin").write_bytes(b"not loaded")
    result = run_tool("publish.py", str(tmp_path), "--repo_id", "someone/x", "--dry_run", str(tmp_path / "out"),
                      REFORMER_ZH_TRACEBACK="1")
    assert result.returncode == 1 and "Traceback" in result.stderr and "PublishError" in result.stderr
