"""ROUGE for Chinese summaries, through the `evaluate` metric in reformer_zh/evaluation/metrics/rouge_zh.

`rouge_scores` is what train.py's `compute_metrics`, the recipes and the benchmarks report:
ROUGE-1/2/L F1 x 100 over characters (the convention LCSTS results are reported in) and,
optionally, over jieba words (`*_jieba`), with the share of distinct outputs beside them.
The scoring itself lives in the metric module, so the numbers here and those of
`evaluate.load(METRIC_PATH)` are one computation.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

METRIC_PATH = Path(__file__).resolve().parent / "metrics" / "rouge_zh"


@functools.cache
def load_metric():
    """The rouge_zh `evaluate` module, loaded by path (offline) once per process."""
    import evaluate

    # keep_in_memory: no Arrow cache file, so ranks and parallel runs never contend for one
    return evaluate.load(str(METRIC_PATH), keep_in_memory=True)


def rouge_scores(predictions: Sequence[str], references: Sequence[str], *, jieba_words: bool = False) -> dict[str, float]:
    """Mean F1 x 100 of ROUGE-1/2/L over characters (and `*_jieba` over words), plus
    `distinct_share`: the fraction of distinct predictions."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not predictions:
        return {}
    metric = load_metric()
    results = metric.compute(predictions=list(predictions), references=list(references), tokenizer="char")
    if jieba_words:
        words = metric.compute(predictions=list(predictions), references=list(references), tokenizer="jieba")
        results.update({f"{key}_jieba": value for key, value in words.items() if key != "distinct_share"})
    return results
