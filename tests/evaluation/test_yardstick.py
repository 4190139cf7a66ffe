"""benchmarks/yardstick.py: the shapes it pastes, its rules and measures, on made-up documents and
a stand-in summarizer (the real pipeline's path is tested in tests/test_pipeline.py and tests/serving/test_summarize_cli.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import yardstick  # noqa: E402

EVENING = "第一条新闻开头。\n它的第二段。\n\n第二条新闻开头。\n\n简讯标题\n简讯内容很长很长。"


def test_the_three_shapes_of_an_evening():
    assert yardstick.as_given(EVENING) == EVENING
    assert yardstick.single_newlines(EVENING) == "第一条新闻开头。\n它的第二段。\n第二条新闻开头。\n简讯标题\n简讯内容很长很长。"
    assert yardstick.one_block(EVENING) == "第一条新闻开头。它的第二段。第二条新闻开头。简讯标题简讯内容很长很长。"


def test_rules_first_sentence_story_leads_and_median_length():
    documents, references = ["甲乙丙。丁戊。", "一二三四五六七八九十"], ["甲乙丙", "一二三四五"]
    assert yardstick.rule_summaries("first sentence", documents, references) == (["甲乙丙。", "一二三四五六七八九十"],
                                                                               "first sentence")
    lead, name = yardstick.rule_summaries("first N characters", documents, ["一二", "一二三四"])
    assert lead == ["甲乙丙", "一二三"] and name == "first 3 characters"
    leads, name = yardstick.rule_summaries("story leads", [EVENING], ["x"])
    assert leads == ["第一条新闻开头；第二条新闻开头；简讯标题\n简讯内容很长很长。"] and name == "first sentence of every story"


def test_series_title_share_counts_only_where_the_reference_has_none():
    outputs = ["【系列】标题", "【系列】标题", "普通标题", "【系列】对的"]
    references = ["标题", "标题", "标题", "【系列】对的"]
    assert yardstick.series_title_share(outputs, references) == pytest.approx(2 / 3)
    assert yardstick.series_title_share(["【a】"], ["【a】"]) is None


def test_represented_share_reads_the_section_bodies_not_their_headings():
    sections = [["一、总体要求\n坚持以人民为中心", "二、主要任务\n新建城市道路120公里"]]
    assert yardstick.represented_share(["坚持以人民为中心；新建城市道路"], sections) == 1.0
    assert yardstick.represented_share(["坚持以人民为中心"], sections) == 0.5
    assert yardstick.represented_share(["总体要求；主要任务"], sections) == 0.0  # headings alone


def test_score_set_calls_each_document_alone_as_given_in_its_shape():
    calls = []

    def summarizer(document, **options):
        calls.append((document, options))
        return [{"summary_text": "【栏目】" + document[:4]}]

    item = yardstick.YardstickSet("made up", {}, "story leads", yardstick.one_block, evening=True)
    result = yardstick.score_set(item, [{"document": EVENING, "summary": "第一条新闻；第二条新闻。"}], summarizer,
                                 {"num_beams": 2})
    assert calls == [(yardstick.one_block(EVENING), {"num_beams": 2})]
    assert result["series_title_share"] == 1.0 and result["documents"] == 1
    assert result["rule"]["reference_segments_per_document"] == 2  # section measures against the true stories
    assert result["examples"][0]["ours"] == "【栏目】第一条新"


def test_options_and_set_names_are_checked(capsys):
    assert yardstick.parse_options("num_beams=2,early_stopping=true") == {"num_beams": 2, "early_stopping": True}
    with pytest.raises(ValueError, match="must be JSON"):
        yardstick.parse_options("num_beams=two")
    with pytest.raises(SystemExit):
        yardstick.main(["--sets", "lcsts,nonesuch"])
    assert "unknown set 'nonesuch'" in capsys.readouterr().err


def test_the_comparison_table_shows_only_sets_every_system_scored_on_the_same_documents():
    from reformer_zh.evaluation.yardstick_table import comparison_table

    def row(documents, rouge_l, seconds=0.5):
        return {"documents": documents, "rule_name": "first sentence", "rule": {"rougeL": 20.0},
                "ours": {"rougeL": rouge_l, "distinct_share": 0.5}, "series_title_share": None,
                "seconds_per_document": seconds}

    old = {"sets": {"a": row(10, 30.0), "b": row(5, 10.0), "c": row(3, 1.0)}}
    new = {"sets": {"a": row(10, 40.04, 0.25), "b": row(4, 12.0)}}
    lines = comparison_table({"old": old, "new": new}).splitlines()
    assert lines[0] == ("| set | documents | rule | rule R-L | old R-L | new R-L | old distinct | new distinct | "
                        "new `【` opens | new s/doc |")
    assert lines[2:] == ["| a | 10 | first sentence | 20.0 | 30.0 | 40.0 | 50% | 50% |  | 0.25 |"]
