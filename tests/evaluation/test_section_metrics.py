"""The section measures of reformer_zh/evaluation/section_metrics.py on rundowns whose right answer is known."""

from __future__ import annotations

import pytest

from reformer_zh.evaluation.section_metrics import (
    aligned_segments,
    is_stitched,
    lcs_length,
    section_metrics,
    segments_of,
)

SECTIONS = ["国务院总理主持召开常务会议部署稳就业工作。会议指出就业是最大的民生。",
            "全国冬小麦播种基本结束，农业农村部要求抓好冬季田间管理。",
            "国际空间站宇航员完成出舱行走，更换了太阳能电池板。"]
DOCUMENT = "\n\n".join(SECTIONS)
REFERENCE = "国务院部署稳就业工作；全国冬小麦播种基本结束；宇航员完成出舱行走。"


def test_segments_drop_the_closing_mark_and_empty_pieces():
    assert segments_of(REFERENCE) == ["国务院部署稳就业工作", "全国冬小麦播种基本结束", "宇航员完成出舱行走"]
    assert segments_of(" 一；；二。 ") == ["一", "二"] and segments_of("") == []


def test_lcs_length_against_known_values():
    assert lcs_length("ABCBDAB", "BDCABA") == 4 and lcs_length("", "abc") == 0 and lcs_length("甲乙丙", "甲丙") == 2


def test_a_missing_first_segment_shifts_every_later_one():
    headlines = segments_of(REFERENCE)
    assert aligned_segments(headlines, headlines) == 3
    assert aligned_segments(headlines[1:], headlines) == 0  # the right headlines, each one place early
    assert aligned_segments(["无关的内容"], headlines) == 0


def test_a_segment_copied_from_one_section_is_not_stitched_but_one_spliced_from_two_is():
    assert not is_stitched("国务院总理主持召开常务会议", SECTIONS)
    assert not is_stitched("完全不同的标题", SECTIONS)  # copies nothing
    assert is_stitched("国务院总理主持召开常务会议农业农村部要求抓好冬季", SECTIONS)
    # a run found in two sections and a run found in one of them: one section holds everything
    assert not is_stitched("共同前缀八个字符呀甲乙丙丁戊己庚辛", ["共同前缀八个字符呀甲乙丙丁戊己庚辛", "共同前缀八个字符呀"])


def test_the_corpus_measures_on_a_perfect_a_short_and_a_stitched_rundown():
    perfect = section_metrics([REFERENCE], [REFERENCE], [DOCUMENT])
    assert perfect == {"count_within_1_share": 1.0, "segments_per_document": 3.0,
                       "reference_segments_per_document": 3.0, "alignment_share": 1.0, "stitching_share": 0.0}
    short = section_metrics(["全国冬小麦播种基本结束。"], [REFERENCE], [DOCUMENT])
    assert short["count_within_1_share"] == 0.0 and short["alignment_share"] == 0.0
    stitched = section_metrics(["国务院总理主持召开常务会议农业农村部要求抓好冬季；宇航员完成出舱行走，更换了。"],
                               [REFERENCE], [DOCUMENT])
    assert stitched["stitching_share"] == 0.5 and stitched["count_within_1_share"] == 1.0
    with pytest.raises(ValueError, match="one prediction, reference and document"):
        section_metrics(["a"], [], [])
