"""Chinese ROUGE (reformer_zh/evaluation/rouge_zh.py)."""

from __future__ import annotations

import sys

import pytest

from utils import ROOT

sys.path.insert(0, str(ROOT / "scripts"))

from reformer_zh.evaluation.rouge_zh import rouge_scores  # noqa: E402


def test_character_rouge_scores_chinese_and_reports_collapse():
    scores = rouge_scores(["北京大学", "北京大学"], ["北京大学", "清华大学"])
    assert scores["rouge1"] == pytest.approx(75.0)  # 4/4 and 2/4 characters
    assert scores["distinct_share"] == 0.5
    assert rouge_scores(["天气很好"], ["今天天气很好"], jieba_words=True)["rouge1_jieba"] > 0
