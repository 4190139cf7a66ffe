"""The wheel is the product: built from the checkout, installed into a fresh venv with no
checkout on the path, its commands answer --help, summarize with a checkpoint and publish
(which needs the card template as package data); and the `evaluate` metric loaded by path
scores what an independent loop over rouge-score does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

# wheel builds and fresh venvs: `make test-slow` (tests/conftest.py)
pytestmark = pytest.mark.slow


ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ("reformer-zh-train", "reformer-zh-pretrain", "reformer-zh-summarize", "reformer-zh-publish",
            "reformer-zh-build-tokenizer", "reformer-zh-baselines")
LCSTS_VALIDATION = ROOT.parent / "shared" / "data" / "lcsts" / "validation.jsonl"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # from a copy of the tracked tree: a build/ folder left in the checkout could add stale files
    source = out / "source"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, (t.decode() for t in tracked)):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    # no build isolation: the venv's setuptools builds it, so no download is needed
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(source)], check=True, capture_output=True, timeout=300)
    (path,) = out.glob("reformer_zh-*.whl")
    return path


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh venv holding only the wheel; the dependencies (torch, transformers, ...) are seen
    through a .pth line naming this venv's site-packages, whose own .pth files (this checkout's
    editable install among them) are not processed from there."""
    home = tmp_path_factory.mktemp("venv")
    venv.create(home, with_pip=False)
    python = home / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], check=True, capture_output=True, timeout=300)
    return home


def run_installed(home: Path, command: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "REFORMER_ZH_TRACEBACK")}
    env.update(REFORMER_ZH_ALLOCATOR="system", HF_HUB_OFFLINE="1")
    return subprocess.run([str(home / "bin" / command), *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=300)


def test_the_wheel_ships_the_commands_the_template_the_sample_and_the_metric(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("reformer_zh/release/model_card_template.md", "reformer_zh/sample/train.jsonl",
                   "reformer_zh/evaluation/metrics/rouge_zh/rouge_zh.py", "reformer_zh/evaluation/metrics/rouge_zh/README.md",
                   "modeling_reformer_zh/modeling_reformer_zh.py", "tokenization/tokenization_reformer_zh.py"):
        assert needed in names, f"{needed} is not in {wheel.name}"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    declared = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert all(f"{command} = " in declared for command in COMMANDS), declared
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "License-Expression: Apache-2.0" in metadata and "Requires-Python: >=3.11" in metadata


def test_every_installed_command_answers_help_away_from_the_checkout(installed, tmp_path):
    where = subprocess.run([str(installed / "bin" / "python"), "-c",
                            "import reformer_zh, modeling_reformer_zh; print(reformer_zh.__file__, modeling_reformer_zh.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, check=True).stdout
    assert str(ROOT) not in where and str(installed) in where, where
    for command in COMMANDS:
        result = run_installed(installed, command, "--help", cwd=tmp_path)
        assert result.returncode == 0 and "usage:" in result.stdout, f"{command}: {result.stderr[-2000:]}"


def test_the_installed_commands_summarize_and_publish_a_checkpoint(installed, trained, tmp_path):
    result = run_installed(installed, "reformer-zh-summarize", str(trained), "国务院召开常务会议，部署推进经济工作。",
                           "--min_new_tokens", "3", "--max_new_tokens", "4", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.count("\n") == 1, result.stderr[-2000:]  # one summary line
    out = tmp_path / "repository"
    result = run_installed(installed, "reformer-zh-publish", str(trained), "--repo_id", "someone/tiny", "--dry_run",
                           str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "someone/tiny" in (out / "README.md").read_text(encoding="utf-8")


def test_the_installed_train_command_trains_on_its_sample_and_scores_with_its_metric(installed, tmp_path):
    """No data flags: the sample shipped in the wheel; ROUGE through the metric module in site-packages."""
    out = tmp_path / "run"
    result = run_installed(installed, "reformer-zh-train", "--config_name", "tiny", "--tokenizer_vocab_size", "600",
                           "--max_source_length", "256", "--max_target_length", "16", "--report_to", "none",
                           "--use_cpu", "--do_train", "--do_eval", "--predict_with_generate", "--max_steps", "1",
                           "--max_eval_samples", "4", "--save_strategy", "no", "--output_dir", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((out / "all_results.json").read_text())
    assert "eval_rougeL" in results and 0 <= results["eval_distinct_share"] <= 1
    assert "reformer_zh/sample" in result.stderr and str(ROOT) not in result.stderr


@pytest.mark.skipif(not LCSTS_VALIDATION.exists(), reason=f"shared LCSTS data not found at {LCSTS_VALIDATION}")
def test_the_evaluate_metric_scores_lcsts_as_a_loop_over_rouge_score_does():
    import evaluate
    from rouge_score import rouge_scorer

    from reformer_zh.evaluation.baselines import first_sentence
    from reformer_zh.evaluation.rouge_zh import METRIC_PATH, rouge_scores

    rows = [json.loads(line) for line in LCSTS_VALIDATION.read_text(encoding="utf-8").splitlines()[:300]]
    predictions, references = [first_sentence(r["document"]) for r in rows], [r["summary"] for r in rows]

    class Characters:  # the reference tokenisation, written out independently of the module
        def tokenize(self, text):
            return [c for c in text if not c.isspace()]

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=Characters())
    expected = {key: 0.0 for key in ("rouge1", "rouge2", "rougeL")}
    for prediction, reference in zip(predictions, references):
        for key, score in scorer.score(reference, prediction).items():
            expected[key] += 100 * score.fmeasure / len(rows)
    metric = evaluate.load(str(METRIC_PATH), keep_in_memory=True)
    measured = metric.compute(predictions=predictions, references=references)
    assert measured["rouge1"] > 10  # a real score, not an empty tokenisation
    for key, value in expected.items():
        assert measured[key] == pytest.approx(value, abs=1e-9), key
        assert rouge_scores(predictions, references)[key] == pytest.approx(value, abs=1e-9), key
    words = metric.compute(predictions=predictions, references=references, tokenizer="jieba")
    assert words["rouge1"] != pytest.approx(measured["rouge1"])  # words, not characters
    assert rouge_scores(predictions, references, jieba_words=True)["rouge1_jieba"] == pytest.approx(words["rouge1"])
    assert measured["distinct_share"] == len(set(predictions)) / len(predictions)


def test_the_metric_scores_a_pair_worked_by_hand():
    from reformer_zh.evaluation.rouge_zh import rouge_scores

    # 今天天气很好 / 今天天气不错: 4 of 6 characters shared, 3 of 5 bigrams (今天 天天 天气)
    scores = rouge_scores(["今天天气很好"], ["今天 天气不错"])
    assert scores["rouge1"] == pytest.approx(100 * 4 / 6) and scores["rouge2"] == pytest.approx(60.0)
    with pytest.raises(ValueError, match="choose one of char, jieba"):
        from reformer_zh.evaluation.rouge_zh import load_metric

        load_metric().compute(predictions=["a"], references=["a"], tokenizer="words")


@pytest.mark.skipif(not (ROOT / "reformer_zh" / "reference_model" / "config.json").is_file(),
                    reason="no reference model in this checkout (make reference-model builds one)")
def test_the_installed_command_summarizes_with_the_shipped_model_from_an_empty_folder(wheel, installed, tmp_path):
    names = set(zipfile.ZipFile(wheel).namelist())
    # the model code is not in git's copy of the folder: the build writes it there (setup.py)
    assert {"reformer_zh/reference_model/model.safetensors", "reformer_zh/reference_model/config.json",
            "reformer_zh/reference_model/README.md", "reformer_zh/reference_model/modeling_reformer_zh.py",
            "reformer_zh/reference_model/pipeline_reformer_zh.py",
            "reformer_zh/reference_model/tokenization_reformer_zh.py"} <= names
    result = run_installed(installed, "reformer-zh-summarize", "国务院总理主持召开国务院常务会议，部署进一步做好稳就业工作，"
                           "会议指出，就业是最大的民生。", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip(), result.stderr[-2000:]
    assert any("\u4e00" <= character <= "\u9fff" for character in result.stdout)
