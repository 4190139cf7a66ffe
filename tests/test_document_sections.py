"""modeling_reformer_zh/document_sections.py: a document's sections found from its text, in
whatever shape it was pasted (blank lines, headings, learned story boundaries), and the briefs it
skips named."""

from __future__ import annotations

import logging
import math
import random

import pytest

from modeling_reformer_zh.document_sections import (
    document_sections, headed_sections, heading_of, numeral_value, sentence_features, sentences_of,
    story_sections)

REPORT = ("为做好今年的各项工作，结合本地实际，现提出如下意见。\n一、总体要求\n坚持以人民为中心。\n（一）主要目标\n到2027年基本建成。\n"
          "（二）基本原则\n统筹兼顾。\n二、主要任务\n新建道路120公里。\n三、保障措施\n加强组织领导。")
BRIEF = "简讯标题一\n这条简讯的内容比标题长得多。\n简讯标题二\n那条简讯的内容也比标题长得多。"


def test_heading_kinds_and_numbers_that_are_not_headings():
    assert heading_of("一、总体要求") == ("numeral", 1) and heading_of("（十二）主要目标") == ("bracketed numeral", 12)
    assert heading_of("第二十三条 工作要求") == ("chapter", 23) and heading_of("2. 存在问题") == ("number", 2)
    assert heading_of("1.5亿元投资已经到位。") is None and heading_of("今天，会议召开。") is None
    assert [numeral_value(text) for text in ("一", "十", "十二", "二十", "二十三", "9", "一二", "十二三")] == \
        [1, 10, 12, 20, 23, 9, None, None]


def test_a_line_that_opens_like_a_heading_cuts_nothing_unless_the_numbering_goes_on():
    assert headed_sections("第一条新闻很重要。\n第一条新闻的第二段。\n其他内容。") is None
    assert headed_sections("三、不从一开始\n四、也不行") is None


def test_a_report_is_cut_at_its_top_level_headings_and_keeps_a_long_preamble():
    sections = headed_sections(REPORT)
    assert [section.split("\n")[0] for section in sections] == ["为做好今年的各项工作，结合本地实际，现提出如下意见。", "一、总体要求",
                                                                 "二、主要任务", "三、保障措施"]
    assert "（二）基本原则\n统筹兼顾。" in sections[1]  # sub-headings stay inside their section
    assert headed_sections("一、只有一个标题\n正文。") is None


def test_a_headed_report_keeps_every_section_even_one_that_looks_like_a_brief():
    headed = "一、工作安排\n第一项安排\n内容写得比标题更长一些。\n第二项安排\n内容也写得比标题更长一些。\n二、要求\n按时完成任务。"
    found = document_sections(headed)
    assert found.found_by == "headings" and found.skipped == [] and len(found.kept) == 2


def test_blank_lines_come_first_and_briefs_are_skipped_by_index():
    found = document_sections(f"第一条新闻。\n\n{BRIEF}\n\n第二条新闻。")
    assert found.found_by == "blank lines" and found.skipped == [1]
    assert found.kept == ["第一条新闻。", "第二条新闻。"]
    assert document_sections(BRIEF).found_by == "whole"  # a brief alone is read whole
    assert document_sections("一篇没有分段的短文。").found_by == "whole"


def test_sentences_keep_their_punctuation_and_know_the_line_breaks():
    sentences, after_break = sentences_of("他说：“好。”然后走了！\n第二段开始。没有句号")
    assert sentences == ["他说：“好。”", "然后走了！", "第二段开始。", "没有句号"]
    assert after_break == [False, False, True, False]


def test_story_sections_cut_where_the_model_scores_a_start():
    model = {"weights": {"p2:本台": 5.0, "bias": -1.0}, "threshold": 0.0, "min_section_characters": 10,
             "min_document_characters": 20}
    document = "第一条新闻说了很多事情。还有第二句话。\n本台消息，第二条新闻开始了。它也有第二句。本台短"
    assert story_sections(document, model) == ["第一条新闻说了很多事情。还有第二句话。",
                                                "本台消息，第二条新闻开始了。它也有第二句。本台短"]
    # the last "本台" would start a section of 2 characters after one of 26: the minimum is for the
    # section being closed, so it is cut only where the one before is long enough
    assert story_sections(document, {**model, "min_section_characters": 100}) is None
    assert story_sections(document, {**model, "min_document_characters": 1000}) is None
    found = document_sections(document, model)
    assert found.found_by == "story boundaries" and len(found.sections) == 2
    assert document_sections(document).found_by == "whole"  # without a model nothing is cut


def test_a_model_that_reads_meaning_cuts_where_the_meaning_changes_and_needs_it_given():
    model = {"weights": {"meaning1:-5:False": 5.0, "bias": -1.0}, "threshold": 0.0, "min_section_characters": 10,
             "min_document_characters": 20, "reads_meaning": True}
    document = "第一条新闻说了很多事情。还有第二句话。第二条新闻开始了。它也有第二句。"
    asked = []

    def meaning_of(sentences):  # the sentences either side of the third one are unlike (cosine -0.5)
        asked.append(sentences)
        return {1: [0.0, 0.9, -0.5, 0.9]}

    assert story_sections(document, model, meaning_of) == ["第一条新闻说了很多事情。还有第二句话。", "第二条新闻开始了。它也有第二句。"]
    assert asked == [sentences_of(document)[0]]
    assert "meaning1:-5:False" in sentence_features(*sentences_of(document), {1: [0.0, 0.9, -0.5, 0.9]})[1]
    with pytest.raises(ValueError, match="reads the sentences' meaning"):
        document_sections(document, model)
    assert story_sections(document, {**model, "reads_meaning": False}) is None  # the same weights never fire


def test_the_pipeline_names_the_briefs_it_skips(caplog):
    from types import SimpleNamespace

    from modeling_reformer_zh.pipeline_reformer_zh import plan_reading, warn_skipped_sections

    config = SimpleNamespace(task_specific_params=None)
    with caplog.at_level(logging.WARNING):
        warn_skipped_sections([plan_reading(document, config) for document in ["一篇短文。", f"第一条新闻。\n\n{BRIEF}"]])
    assert "document 1: 1 of its 2 sections" in caplog.text and "简讯标题一" in caplog.text
    assert "document 0" not in caplog.text


def test_brief_items_cut_apart_by_the_story_model_are_joined_and_skipped():
    from modeling_reformer_zh.document_sections import with_briefs_together

    story = "今天，一条新闻开始了，它写得很长很长。"
    items = ["简讯标题一\n这条简讯的内容比标题长得多。", "简讯标题二\n那条简讯的内容也比标题长得多。"]
    assert with_briefs_together([story, *items, story]) == [story, "\n".join(items), story]
    assert with_briefs_together([story, items[0], story]) == [story, items[0], story]  # one titled section alone
    model = {"weights": {"p2:简讯": 5.0, "p2:今天": 5.0, "bias": -1.0}, "threshold": 0.0,
             "min_section_characters": 10, "min_document_characters": 20}
    found = document_sections("\n".join([story, *items, story]), model)
    assert found.found_by == "story boundaries" and found.skipped == [1] and len(found.sections) == 3


def brute_force_story_starts(lengths, logits, min_characters, prior):
    """Every way to cut the sentences, scored as best_story_starts defines the best."""
    from itertools import combinations

    from modeling_reformer_zh.document_sections import MIN_START_LOGIT, length_log_prior, log_sigmoid

    candidates = [index for index in range(1, len(lengths)) if logits[index] > MIN_START_LOGIT]
    best = (-math.inf, None)
    for size in range(len(candidates) + 1):
        for starts in combinations(candidates, size):
            bounds = [0, *starts, len(lengths)]
            sizes = [sum(lengths[a:b]) for a, b in zip(bounds, bounds[1:])]
            if len(sizes) > 1 and min(sizes) < min_characters:
                continue
            score = sum(log_sigmoid(logits[i]) if i in starts else log_sigmoid(-logits[i]) for i in candidates)
            score += sum(length_log_prior(size, prior) for size in sizes)
            best = max(best, (score, list(starts)), key=lambda pair: pair[0])
    return best[1]


@pytest.mark.parametrize("seed", range(20))
def test_best_story_starts_is_the_best_of_every_way_to_cut(seed):
    """The dynamic programme against enumeration: random sentence lengths and logits (some under
    MIN_START_LOGIT), with and without a length prior."""
    from modeling_reformer_zh.document_sections import best_story_starts

    rng = random.Random(seed)
    lengths = [rng.randint(5, 120) for _ in range(rng.randint(2, 11))]
    logits = [0.0, *(rng.uniform(-8.0, 4.0) for _ in lengths[1:])]
    prior = {"log_mean": math.log(150), "log_sd": 0.5, "weight": rng.choice([0.5, 2.0])} if seed % 2 else None
    min_characters = rng.choice([0, 40])
    assert best_story_starts(lengths, logits, min_characters, prior) == brute_force_story_starts(
        lengths, logits, min_characters, prior)


def test_the_length_prior_keeps_a_run_of_likely_starts_from_cutting_every_sentence():
    """Eight sentences of 100 characters, each a little likelier than not to start a story and the
    fifth far likelier: alone they give eight stories; with stories of about 400 characters
    expected, two."""
    from modeling_reformer_zh.document_sections import best_story_starts

    lengths, logits = [100] * 8, [0.0, 0.2, 0.2, 0.2, 4.0, 0.2, 0.2, 0.2]
    assert best_story_starts(lengths, logits, 40, None) == [1, 2, 3, 4, 5, 6, 7]
    assert best_story_starts(lengths, logits, 40, {"log_mean": math.log(400), "log_sd": 0.3, "weight": 1.0}) == [4]
