"""Long-document data (issue 13): xwlb evenings cut into exact training windows
(scripts/evenings.py) and the baselines a reader of part or all of the evening reaches."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import evenings  # noqa: E402
from reformer_zh.evaluation.baselines import first_characters, story_leads  # noqa: E402

STORIES = ["主席会见外宾。双方交换意见。", "各地春耕生产有序开展。", "国内联播快讯\n某地开通新线路。\n某地举办展会。", "国际油价上涨。"]
HEADLINES = {STORIES[0]: "主席会见外宾", STORIES[1]: "春耕生产有序开展", STORIES[3]: "国际油价上涨"}
EVENING = {"id": "xwlb-1", "document": "\n\n".join(STORIES), "summary": "主席会见外宾；春耕生产有序开展；国际油价上涨。"}


def test_windows_keep_whole_stories_with_exactly_their_headlines():
    cut = evenings.windows(EVENING, HEADLINES, max_chars=32)
    # 14 + 2 + 11 characters fit in 32, the brief would not; the brief (23), the break and the
    # last story (7) make the second window, whose rundown has only the headlined story
    assert [w["summary"] for w in cut] == ["主席会见外宾；春耕生产有序开展。", "国际油价上涨。"]
    assert [w["document"] for w in cut] == ["\n\n".join(STORIES[:2]), "\n\n".join(STORIES[2:])]
    assert all(len(w["document"]) <= 32 for w in cut)
    # at 30 the brief no longer fits beside the last story: alone, with no headline, it is dropped
    assert [w["document"] for w in evenings.windows(EVENING, HEADLINES, max_chars=30)] == [
        "\n\n".join(STORIES[:2]), STORIES[3]]
    assert [w["id"] for w in cut] == ["xwlb-1-w0", "xwlb-1-w1"]
    whole = evenings.windows(EVENING, HEADLINES, max_chars=10_000)
    assert whole == [{"id": "xwlb-1-w0", "document": EVENING["document"], "summary": EVENING["summary"]}]


def test_skipping_briefs_pairs_the_kth_block_of_every_window_with_its_kth_headline():
    whole = evenings.windows(EVENING, HEADLINES, max_chars=10_000, skip_briefs=True)
    assert whole == [{"id": "xwlb-1-w0", "document": "\n\n".join([STORIES[0], STORIES[1], STORIES[3]]),
                      "summary": EVENING["summary"]}]
    for window in evenings.windows(EVENING, HEADLINES, max_chars=20, skip_briefs=True):
        blocks, headlines = window["document"].split("\n\n"), window["summary"].rstrip("。").split("；")
        assert [HEADLINES[block] for block in blocks] == headlines


def test_a_window_of_briefs_only_is_dropped_and_an_unmatched_evening_gives_nothing():
    brief_last = {**EVENING, "document": "\n\n".join([STORIES[0], STORIES[2]]), "summary": "主席会见外宾。"}
    assert [w["summary"] for w in evenings.windows(brief_last, HEADLINES, max_chars=16)] == ["主席会见外宾。"]
    wrong = {**EVENING, "summary": "主席会见外宾；国际油价上涨。"}  # a headline without its story
    assert evenings.windows(wrong, HEADLINES, max_chars=10_000) == []
    assert evenings.windows(EVENING, {}, max_chars=10_000) == []


def test_write_windows_reads_compressed_rows_and_counts_what_it_left_out(tmp_path):
    import gzip

    programs, stories = tmp_path / "program.jsonl.gz", tmp_path / "story.jsonl"
    wrong = {**EVENING, "id": "xwlb-2", "summary": "别的；标题。"}
    with gzip.open(programs, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(json.dumps(r, ensure_ascii=False) for r in (EVENING, wrong)) + "\n")
    stories.write_text("\n".join(json.dumps({"document": d, "summary": h}, ensure_ascii=False)
                                 for d, h in HEADLINES.items()) + "\n", encoding="utf-8")
    out = tmp_path / "windows.jsonl"
    summary = evenings.main([str(programs), str(stories), str(out), "--max_chars", "32"])
    assert summary == {"evenings": 2, "unmatched_evenings": 1, "windows": 2, "max_chars": 32, "skip_briefs": False}
    assert [json.loads(line)["id"] for line in out.read_text(encoding="utf-8").splitlines()] == ["xwlb-1-w0", "xwlb-1-w1"]


def test_story_leads_read_only_what_fits_and_write_a_rundown():
    assert story_leads(EVENING["document"]) == "主席会见外宾；各地春耕生产有序开展；国内联播快讯\n某地开通新线路；国际油价上涨。"
    assert story_leads(EVENING["document"], first_line=True) == "主席会见外宾；各地春耕生产有序开展；国内联播快讯；国际油价上涨。"
    assert story_leads(EVENING["document"], max_chars=20) == "主席会见外宾；各地春耕。"  # the second story is cut
    assert first_characters(EVENING["document"], 5) == "主席会见外"
    assert story_leads("") == ""


def test_baselines_command_scores_the_named_baselines_and_rejects_unknown_names(tmp_path, capsys):
    import pytest

    from reformer_zh.evaluation import baselines

    data = tmp_path / "evenings.jsonl"
    data.write_text(json.dumps(EVENING, ensure_ascii=False) + "\n", encoding="utf-8")
    scores = baselines.main([str(data), "--names", "story leads with brief titles,first 287 characters",
                             "--out", str(tmp_path / "scores.json")])[str(data)]
    # the brief-title leads rebuild three of the four headlines nearly word for word
    assert scores["story leads with brief titles"]["rougeL"] > scores["first 287 characters"]["rougeL"] > 0
    assert json.loads((tmp_path / "scores.json").read_text())[str(data)].keys() == scores.keys()
    with pytest.raises(SystemExit) as error:
        baselines.main([str(data), "--names", "lead-3"])
    assert error.value.code == 2 and "unknown baseline 'lead-3'" in capsys.readouterr().err
