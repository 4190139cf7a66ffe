"""The pipeline and `reformer-zh-summarize` (reformer_zh/serving/summarize.py) on a tiny trained
checkpoint: summaries from both, empty documents refused in one line, the shipped model by default,
the demo, and --explain."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from utils import BRIEF, ROOT, STORY

sys.path.insert(0, str(ROOT / "scripts"))

from reformer_zh.serving import summarize  # noqa: E402


def test_pipeline_and_cli_return_summaries(trained, tmp_path, capsys):
    from transformers import pipeline

    summarizer = pipeline("summarization", model=str(trained), trust_remote_code=True)
    # a model trained for 12 steps may still prefer special tokens; forbid them to get visible text
    visible = dict(min_new_tokens=2, suppress_tokens=[0, 1, 2, 4])
    document = "博物馆推出古代丝绸文物特展，展出一百二十件珍贵展品。"
    single = summarizer(document, max_new_tokens=6, **visible)
    assert isinstance(single, list) and set(single[0]) == {"summary_text"} and single[0]["summary_text"]
    # the pipeline is generate + decode, nothing else
    tokenizer, model = summarizer.tokenizer, summarizer.model
    expected = model.generate(**tokenizer(document, return_tensors="pt"), max_new_tokens=6, **visible)
    assert single[0]["summary_text"] == tokenizer.decode(expected[0], skip_special_tokens=True)
    batch = summarizer(["医院开设夜间儿科门诊。", "市图书馆延长开放时间。"], max_new_tokens=4,
                       num_beams=2, batch_size=2, **visible)
    assert len(batch) == 2 and all(item["summary_text"] for item in batch)
    assert pipeline(model=str(trained), trust_remote_code=True)("医院开设夜间儿科门诊。", **visible)[0]["summary_text"]
    with pytest.raises(ValueError, match="truncation=True"):
        summarizer("长" * 2000, truncation=False)

    documents = tmp_path / "docs.jsonl"
    documents.write_text('{"id": 1, "document": "医院开设夜间儿科门诊。"}\n', encoding="utf-8")
    output = tmp_path / "out.jsonl"
    summarize.main([str(trained), "--file", str(documents), "--output", str(output), "--min_new_tokens", "2",
                    "--max_new_tokens", "4", "--num_beams", "1"])
    row = json.loads(output.read_text(encoding="utf-8"))
    assert row["id"] == 1 and "summary_generated" in row
    summaries = summarize.main([str(trained), "第一篇文档。", "第二篇文档。", "--min_new_tokens", "1", "--max_new_tokens", "3"])
    assert len(summaries) == 2 and capsys.readouterr().out.count("\n") >= 2


def test_the_command_refuses_an_empty_document_in_one_line(trained, tmp_path):
    documents = tmp_path / "docs.jsonl"
    documents.write_text('{"document": "医院开设夜间儿科门诊。"}\n{"document": "   "}\n', encoding="utf-8")
    for args in (["--file", str(documents)], [" "]):
        result = subprocess.run([sys.executable, str(ROOT / "scripts" / "summarize.py"), str(trained), *args],
                                capture_output=True, text=True, cwd=ROOT,
                                env={**os.environ, "REFORMER_ZH_ALLOCATOR": "system", "REFORMER_ZH_TRACEBACK": "0"})
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert "error: document " in result.stderr and "is empty" in result.stderr, result.stderr


def test_the_command_uses_the_shipped_model_by_default_and_any_checkpoint_with_model(trained, tmp_path, monkeypatch,
                                                                                     capsys):
    from reformer_zh.release import reference_model

    monkeypatch.setattr(reference_model, "REFERENCE_MODEL_DIR", trained)  # stands in for the shipped folder
    options = ["--min_new_tokens", "1", "--max_new_tokens", "3", "--num_beams", "1"]
    by_default = summarize.main(["医院开设夜间儿科门诊。", *options])
    assert summarize.main(["--model", str(trained), "医院开设夜间儿科门诊。", *options]) == by_default
    assert summarize.main([str(trained), "医院开设夜间儿科门诊。", *options]) == by_default  # the older form
    documents = tmp_path / "docs.txt"
    documents.write_text("医院开设夜间儿科门诊。\n\n市图书馆延长开放时间。\n", encoding="utf-8")
    assert len(summarize.main(["--file", str(documents), *options])) == 2
    assert "2/2" in capsys.readouterr().err  # the progress bar on a file
    monkeypatch.setattr(reference_model, "REFERENCE_MODEL_DIR", tmp_path / "none")
    with pytest.raises(FileNotFoundError, match="--model"):
        summarize.main(["医院开设夜间儿科门诊。"])


def test_only_a_folder_or_a_model_id_is_taken_for_the_older_model_argument(tmp_path):
    assert summarize.names_a_model(str(tmp_path)) and summarize.names_a_model("someone/reformer-zh-lcsts")
    assert summarize.names_a_model(str(tmp_path / "missing_checkpoint"))  # fails as a model, not summarized as text
    assert not summarize.names_a_model("医院开设夜间儿科门诊。")
    assert not summarize.names_a_model("比分 3/1 获胜") and not summarize.names_a_model("1/2的居民")


def test_the_demo_summarizes_the_sample_with_the_shipped_model_beside_the_first_sentence(trained, monkeypatch, capsys):
    import demo

    from reformer_zh.release import reference_model

    monkeypatch.setattr(reference_model, "REFERENCE_MODEL_DIR", trained)  # stands in for the shipped folder
    scores = demo.main(["--num_beams", "1"])
    assert set(scores) == {"reformer-zh (shipped)", "first sentence"}
    printed = capsys.readouterr().out
    assert printed.count("参考:") == 3 and printed.count("首句:") == 3 and printed.count("模型:") == 3
    assert f"model: {trained}" in printed


@pytest.mark.slow
def test_explain_marks_copied_runs_of_the_same_summary_the_command_writes(trained, capsys):
    """--explain prints the summary the command writes, with brackets around copied runs only."""
    document = json.loads((ROOT / "reformer_zh" / "sample" / "validation.jsonl").read_text(encoding="utf-8")
                          .splitlines()[0])["document"]
    flags = ["--model", str(trained), "--num_beams", "2", "--max_new_tokens", "8", "--no_split_sections"]
    plain = summarize.main(flags + [document])
    marked = summarize.main(flags + ["--explain", document])
    assert [m.replace("[", "").replace("]", "") for m in marked] == plain
    assert capsys.readouterr().out.splitlines()[-1] == marked[0]
    # a sectioned document: by section (the default) and in one pass, as the command reads it
    evening = f"{document}\n\n{BRIEF}\n\n{STORY}"
    for split in ([], ["--no_split_sections"]):
        flags = ["--model", str(trained), "--num_beams", "2", "--max_new_tokens", "8", *split]
        plain = summarize.main(flags + [evening])
        marked = summarize.main(flags + ["--explain", evening])
        assert [m.replace("[", "").replace("]", "") for m in marked] == plain
        if not split:  # two stories, the brief skipped: two segments
            assert plain[0].count("；") == 1 and plain[0].endswith("。")
