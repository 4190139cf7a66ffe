"""Chinese ROUGE as an `evaluate` metric: ROUGE-1/2/L F1 over characters or jieba words.

`rouge-score`'s default tokenizer keeps only [a-z0-9] and so scores every Chinese summary 0.
This module scores characters (the convention LCSTS results are reported in: one token per
non-space character) or, with `tokenizer="jieba"`, jieba words, and reports exact means of
the per-pair F1 x 100 (no bootstrap, so the numbers are deterministic), plus `distinct_share`,
the fraction of distinct predictions: a model that collapses to one summary for every input
can still reach a non-trivial ROUGE.

The file is self-contained (rouge-score, jieba), so it loads offline by path and can be
published as a Hub metric:

    import evaluate
    rouge = evaluate.load("path/to/reformer_zh/evaluation/metrics/rouge_zh")
    rouge.compute(predictions=["今天天气很好"], references=["今天天气不错"])
    # {'rouge1': 66.66..., 'rouge2': 60.0, 'rougeL': 66.66..., 'distinct_share': 1.0}
"""

from __future__ import annotations

import datasets
import evaluate
from rouge_score import rouge_scorer

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
TOKENIZERS = ("char", "jieba")

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of generated summaries (str).
    references: list of reference summaries (str), one per prediction.
    tokenizer: "char" (default: every non-space character is a token) or "jieba" (words).
Returns:
    rouge1, rouge2, rougeL: mean F1 x 100 over the pairs; distinct_share: distinct predictions / all.
"""


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


def mean_rouge_f1(predictions, references, tokenizer: str = "char") -> dict[str, float]:
    """Mean F1 x 100 of ROUGE-1/2/L over the pairs, and the share of distinct predictions."""
    if tokenizer not in TOKENIZERS:
        raise ValueError(f"tokenizer={tokenizer!r}: choose one of {', '.join(TOKENIZERS)}")
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not predictions:
        return {}
    scorer = rouge_scorer.RougeScorer(ROUGE_TYPES, tokenizer=CharacterTokenizer() if tokenizer == "char" else JiebaTokenizer())
    totals = dict.fromkeys(ROUGE_TYPES, 0.0)
    for prediction, reference in zip(predictions, references):
        scores = scorer.score(reference, prediction)
        for rouge_type in ROUGE_TYPES:
            totals[rouge_type] += scores[rouge_type].fmeasure
    return {**{rouge_type: 100 * total / len(predictions) for rouge_type, total in totals.items()},
            "distinct_share": len(set(predictions)) / len(predictions)}


@evaluate.utils.file_utils.add_start_docstrings(__doc__, _KWARGS_DESCRIPTION)
class RougeZh(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__,
            citation="Lin, ROUGE: A Package for Automatic Evaluation of Summaries (2004).",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Value("string")}),
            codebase_urls=["https://github.com/google-research/google-research/tree/master/rouge"],
        )

    def _compute(self, predictions, references, tokenizer: str = "char"):
        return mean_rouge_f1(predictions, references, tokenizer)
