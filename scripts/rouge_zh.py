"""ROUGE for Chinese summaries.

`rouge-score`'s default tokenizer keeps only [a-z0-9] and so scores every Chinese summary 0; here
ROUGE-1/2/L F1 are computed over characters (the convention LCSTS results are reported in) and,
optionally, over jieba words. The share of distinct outputs is reported beside them: a model
that collapses to one summary for every input can still reach a non-trivial ROUGE.
"""

from __future__ import annotations

from collections.abc import Sequence

from rouge_score import rouge_scorer

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


class CharacterTokenizer:
    """rouge-score tokenizer: one token per non-space character."""

    def tokenize(self, text: str) -> list[str]:
        return [character for character in text if not character.isspace()]


class JiebaTokenizer:
    """rouge-score tokenizer: jieba words, spaces dropped."""

    def __init__(self) -> None:
        import logging

        import jieba

        jieba.setLogLevel(logging.WARNING)
        self.segmenter = jieba.Tokenizer()

    def tokenize(self, text: str) -> list[str]:
        return [word for word in self.segmenter.cut(text) if word.strip()]


def rouge_scores(predictions: Sequence[str], references: Sequence[str], *, jieba_words: bool = False) -> dict[str, float]:
    """Mean F1 x 100 of ROUGE-1/2/L over characters (and `*_jieba` over words), plus
    `distinct_share`: the fraction of distinct predictions."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not predictions:
        return {}
    scorers = {"": rouge_scorer.RougeScorer(ROUGE_TYPES, tokenizer=CharacterTokenizer())}
    if jieba_words:
        scorers["_jieba"] = rouge_scorer.RougeScorer(ROUGE_TYPES, tokenizer=JiebaTokenizer())
    results: dict[str, float] = {}
    for suffix, scorer in scorers.items():
        totals = dict.fromkeys(ROUGE_TYPES, 0.0)
        for prediction, reference in zip(predictions, references):
            scores = scorer.score(reference, prediction)
            for rouge_type in ROUGE_TYPES:
                totals[rouge_type] += scores[rouge_type].fmeasure
        for rouge_type in ROUGE_TYPES:
            results[rouge_type + suffix] = 100 * totals[rouge_type] / len(predictions)
    results["distinct_share"] = len(set(predictions)) / len(predictions)
    return results
