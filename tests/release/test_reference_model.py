"""The model that ships with the package (reformer_zh/release/reference_model.py): a trained checkpoint
becomes a self-contained folder that loads without this project, and the shipped folder itself
summarizes better than the first sentence."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reformer_zh.release import reference_model
from reformer_zh.release.publish import BLOCK_PROJECT_IMPORTS

ROOT = Path(__file__).resolve().parents[2]
STORIES = ROOT.parent / "shared" / "data" / "xwlb" / "story_validation.jsonl.gz"  # tests never read dev_test
RESULTS = {
    "recipe": "xwlb-story", "machine": {"cpu": "Test CPU", "threads": 2, "bf16_hardware": [], "torch": "2.13"},
    "minutes_total": 1.0, "minutes_training": 0.5, "train_steps": 12,
    "reproduce_by_steps": "python scripts/recipe.py xwlb-story --max_steps 12",
    "dev_test": {"rouge1": 50.0, "rouge2": 40.0, "rougeL": 47.5, "distinct_share": 0.97, "samples": 1112},
    "dev_test_baselines": {"first sentence": {"rouge1": 42.6, "rouge2": 33.1, "rougeL": 39.3, "distinct_share": 0.99}},
}


@pytest.mark.slow
def test_a_checkpoint_ships_as_a_small_folder_that_loads_without_the_project(trained, tmp_path, monkeypatch):
    results = tmp_path / "recipe_results.json"
    root = reference_model.PACKAGE_ROOT
    command = f"python scripts/train.py --train_file {root.parent}/shared/data/x.jsonl --output_dir {root}/outputs/x"
    results.write_text(json.dumps({**RESULTS, "train_command": command}))
    monkeypatch.chdir(tmp_path)  # a folder named relative to where the command runs (--out candidates/x)
    out = reference_model.ship(trained, results, Path("shipped"))  # validate() loads it without the project
    config = json.loads((out / "config.json").read_text())
    assert config["dtype"] == "float32" and "summarization" in config["custom_pipelines"]
    from safetensors import safe_open

    with safe_open(str(out / "model.safetensors"), "pt") as weights:
        assert {weights.get_tensor(name).dtype for name in weights.keys()} == {__import__("torch").bfloat16}
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "(float32, documents cut to 256 tokens) | 50.0 | 40.0 | 47.5 | 97.0% |" in card
    assert "first sentence (rule) | 42.6" in card and "no commercial use" in card and "Test CPU" in card
    assert not (out / "training_args.bin").exists() and reference_model.folder_megabytes(out) < 25
    shipped = json.loads((out / "recipe_results.json").read_text())
    assert shipped["train_command"] == ("python scripts/train.py --train_file ../shared/data/x.jsonl "
                                        "--output_dir ./outputs/x")  # no local folder in a shipped file
    assert "license: other" in card and "headlines of CCTV evening-news stories" in card and "judgments" not in card
    # the pipeline reads the 256 tokens the model trained on unless a call asks for more
    assert config["task_specific_params"]["summarization"]["max_input_tokens"] == 256
    from transformers import pipeline

    summarizer = pipeline("summarization", model=str(out), trust_remote_code=True)
    long = "医院开设夜间儿科门诊。" * 60  # 660 tokens and [EOS]
    assert summarizer.preprocess(long)["input_ids"].shape[1] == 256
    assert summarizer.preprocess(long, max_input_tokens=1000)["input_ids"].shape[1] == 661


@pytest.mark.slow
def test_a_general_model_ships_with_its_yardstick_table_and_its_datas_terms(trained, tmp_path):
    """Issue 43: a model trained on several sets; weights trained on research-only data carry
    those terms (license `other`), and the card shows its scores on every set beside the rule."""
    results = tmp_path / "recipe_results.json"
    results.write_text(json.dumps({**RESULTS, "recipe": "general", "dev_test": {},
                                   "started_from": f"{reference_model.PACKAGE_ROOT}/outputs/general-long"}))
    row = {"documents": 3, "rule_name": "first sentence", "rule": {"rougeL": 20.0}, "series_title_share": 0.0,
           "ours": {"rougeL": 31.25, "distinct_share": 1.0}, "seconds_per_document": 0.5}
    yardstick = tmp_path / "yardstick.json"
    yardstick.write_text(json.dumps({"split": "validation", "sets": {"lcsts": row}}))
    checkpoint = Path(shutil.copytree(trained, tmp_path / "mixed"))  # `trained` is shared read-only
    command = f"python -m reformer_zh.training.interpolate_weights --base {reference_model.PACKAGE_ROOT}/outputs/a"
    (checkpoint / "interpolation.json").write_text(json.dumps({"base_share": 0.4, "command": command}))
    out = reference_model.ship(checkpoint, results, tmp_path / "shipped", repo_id="x/reformer-zh-general",
                               datasets=("xwlb", "csl", "cail2020"), yardstick_file=yardstick)
    card = (out / "README.md").read_text(encoding="utf-8")
    assert ("0.4 of that one's, 0.6 of its own (WiSE-FT; `python -m reformer_zh.training.interpolate_weights "
            "--base ./outputs/a`)") in card and (out / "interpolation.json").is_file()
    assert "license: other" in card and "license_name: research-only" in card
    assert "- started from the checkpoint `./outputs/general-long` (a fine-tune or a continued run" in card
    assert "| lcsts | 3 | first sentence | 20.0 | 31.2 | 100% | 0% | 0.50 |" in card
    assert "司法大数据院" in card and "Apache-2.0 as stated by CSL" in card and "a headline model" not in card


def test_a_missing_reference_model_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setattr(reference_model, "REFERENCE_MODEL_DIR", tmp_path / "none")
    with pytest.raises(FileNotFoundError, match="make reference-model"):
        reference_model.reference_model_dir()


shipped = pytest.mark.skipif(not (reference_model.REFERENCE_MODEL_DIR / "config.json").is_file(),
                             reason="no reference model in this checkout (make reference-model builds one)")

SUMMARIZE_WITHOUT_PROJECT = BLOCK_PROJECT_IMPORTS + """
import json
from transformers import pipeline

folder, documents = sys.argv[1], json.loads(sys.stdin.read())
summarizer = pipeline("summarization", model=folder, trust_remote_code=True)
print(json.dumps([row["summary_text"] for row in summarizer(documents, num_beams=4, batch_size=16)], ensure_ascii=False))
"""


def summarize_without_project(documents: list[str], tmp_path: Path) -> list[str]:
    script = tmp_path / "summarize.py"
    script.write_text(SUMMARIZE_WITHOUT_PROJECT)
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HF_HUB_OFFLINE": "1",
                   "HF_HOME": str(tmp_path / "hf_home"), "OMP_NUM_THREADS": "2"}
    result = subprocess.run([sys.executable, str(script), str(reference_model.reference_model_dir())],
                            input=json.dumps(documents), capture_output=True, text=True, cwd=tmp_path,
                            env=environment, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def first_sentence_and_ours(rows: list[dict], tmp_path: Path) -> tuple[dict, dict]:
    from reformer_zh.evaluation.baselines import BASELINES
    from reformer_zh.evaluation.rouge_zh import rouge_scores

    references = [row["summary"] for row in rows]
    ours = summarize_without_project([row["document"] for row in rows], tmp_path)
    assert all(summary.strip() for summary in ours)
    first = [BASELINES["first sentence"](row["document"]) for row in rows]
    return rouge_scores(first, references), rouge_scores(ours, references)


def test_git_holds_no_copy_of_the_model_code_in_the_shipped_folder():
    """Issue 45: one copy of every line; the folder's code is written from the project's."""
    tracked = subprocess.run(["git", "ls-files", "reformer_zh/reference_model"], cwd=reference_model.PACKAGE_ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
    assert "reformer_zh/reference_model/model.safetensors" in tracked
    assert not [name for name in tracked if name.endswith(".py")], tracked


def test_the_folder_gets_the_projects_code_written_where_missing_or_stale_and_nothing_else(tmp_path):
    from reformer_zh.release.remote_code import remote_code_files, write_remote_code

    names = [path.name for path in remote_code_files()]
    assert {"modeling_reformer_zh.py", "pipeline_reformer_zh.py", "document_sections.py",
            "tokenization_reformer_zh.py"} <= set(names) and "__init__.py" not in names
    assert write_remote_code(tmp_path) == names
    (tmp_path / "pipeline_reformer_zh.py").write_text("# an old copy\n")
    assert write_remote_code(tmp_path) == ["pipeline_reformer_zh.py"] and write_remote_code(tmp_path) == []
    assert all((tmp_path / path.name).read_bytes() == path.read_bytes() for path in remote_code_files())
    (tmp_path / "feed_forward.py").write_text("# a module the project has since renamed\n")
    (tmp_path / "config.json").write_text("{}")
    assert write_remote_code(tmp_path) == [] and not (tmp_path / "feed_forward.py").exists()
    assert (tmp_path / "config.json").is_file()  # only code is the project's to remove


@pytest.mark.slow
@shipped
def test_the_shipped_model_beats_the_first_sentence_on_the_embedded_sample(tmp_path):
    from tokenization.build_vocab import read_jsonl

    rows = read_jsonl(ROOT / "reformer_zh" / "sample" / "validation.jsonl")
    first, ours = first_sentence_and_ours(rows, tmp_path)
    # the sample is a different source (written news briefs, not CCTV transcripts): a weak bar
    assert ours["rougeL"] > 0.8 * first["rougeL"], (ours, first)


@pytest.mark.slow
@shipped
@pytest.mark.skipif(not STORIES.is_file(), reason=f"xwlb data not found at {STORIES}")
def test_the_shipped_model_beats_the_first_sentence_on_50_validation_stories(tmp_path):
    from tokenization.build_vocab import read_jsonl

    first, ours = first_sentence_and_ours(read_jsonl(STORIES)[:50], tmp_path)
    assert ours["rougeL"] > first["rougeL"] + 3, (ours, first)
    assert ours["distinct_share"] >= 0.9


def test_the_shipped_folder_names_no_local_folder_and_carries_its_datas_terms():
    """Issue 44: the folder in the package holds no path of the machine that trained it, and its
    card's license is that of its research-only data, not the code's apache-2.0."""
    folder = reference_model.REFERENCE_MODEL_DIR
    for path in folder.iterdir():
        if path.suffix in (".json", ".md", ".txt"):
            text = path.read_text(encoding="utf-8")
            assert str(reference_model.PACKAGE_ROOT) not in text and "/home/" not in text, path.name
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert "license: other" in card and "license_name: research-only" in card and "no commercial use" in card
