"""`make demo`: the model that ships with the package summarizes, in well under a minute.

Three stories of the embedded sample (reformer_zh/sample/validation.jsonl) with their reference
headline, the first sentence (the rule to beat) and the shipped model's summary side by side,
then character ROUGE of both over the whole sample (30 short Chinese news items). Nothing is
trained: `make demo-train` shows the training path instead.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="a checkpoint folder (default: the shipped reference model)")
    parser.add_argument("--num_beams", type=int, default=4)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    from transformers import pipeline

    from reformer_zh.evaluation.baselines import first_sentence
    from reformer_zh.release.reference_model import reference_model_dir
    from reformer_zh.evaluation.rouge_zh import rouge_scores

    model = args.model or str(reference_model_dir())
    summarizer = pipeline("summarization", model=model, trust_remote_code=True)
    sample = ROOT / "reformer_zh" / "sample" / "validation.jsonl"
    rows = [json.loads(line) for line in sample.read_text(encoding="utf-8").splitlines() if line.strip()]
    ours = [row["summary_text"] for row in summarizer([row["document"] for row in rows], num_beams=args.num_beams,
                                                      batch_size=16)]
    firsts = [first_sentence(row["document"]) for row in rows]
    for row, first, summary in list(zip(rows, firsts, ours))[:3]:
        print(f"\n文档:     {row['document'][:70]}…\n参考:     {row['summary']}\n首句:     {first}\n模型:     {summary}")
    references = [row["summary"] for row in rows]
    scores = {"reformer-zh (shipped)": rouge_scores(ours, references), "first sentence": rouge_scores(firsts, references)}
    print(f"\nthe embedded sample ({len(rows)} news items), character ROUGE F1:")
    for name, row in scores.items():
        print(f"  {name:<22} ROUGE-1 {row['rouge1']:5.1f}  ROUGE-2 {row['rouge2']:5.1f}  ROUGE-L {row['rougeL']:5.1f}  "
              f"distinct {row['distinct_share']:.0%}")
    print(f"{time.perf_counter() - started:.0f} s; model: {model}\n"
          "summarize your own text: .venv/bin/reformer-zh-summarize \"一篇新闻……\"")
    return scores


if __name__ == "__main__":
    from reformer_zh.cli import run_command

    run_command(main)
