"""Whole xwlb evenings summarized by the pipeline's default for sectioned documents, beside the rule.

The pipeline splits an evening at its blank lines, skips news briefs, summarizes each story with
the story model (the shipped reference model unless --model) in one batched call and joins the
headlines as the rundowns are joined. Reported with the measures of
reformer_zh/evaluation/section_metrics.py (segment count, alignment, stitching) beside character ROUGE and
the share of distinct outputs, for the method and for the per-story rule (the first sentence of
every story), on one split; seconds per evening on this machine.

    python benchmarks/sections.py --split dev_test --out benchmarks/results/sections_dev_test.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reformer_zh.evaluation.baselines import BASELINES  # noqa: E402
from reformer_zh.evaluation.dev_test_ledger import record_dev_test_scoring  # noqa: E402
from reformer_zh.hardware import machine_record  # noqa: E402
from reformer_zh.release.reference_model import reference_model_dir  # noqa: E402
from reformer_zh.evaluation.rouge_zh import rouge_scores  # noqa: E402
from reformer_zh.evaluation.section_metrics import section_metrics  # noqa: E402
from shared_data import shared_rows, write_results  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "xwlb"
RULE = "story leads of the whole evening"


def scores(predictions: list[str], references: list[str], documents: list[str]) -> dict:
    return {**rouge_scores(predictions, references), **section_metrics(predictions, references, documents)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None,
                        help="a story checkpoint (default: the shipped reference model), or a one-pass checkpoint "
                             "(trained with section_embeddings: the pipeline reads each evening whole, briefs left out)")
    parser.add_argument("--split", choices=["validation", "dev_test"], default="validation")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--batch_size", type=int, default=None, help="default: 32 stories, or 1 whole evening")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0,
                        help="seeds torch's generator before summarizing: an LSH layer draws its rotations from it "
                             "where an input is longer than full_attn_threshold (a whole evening read in one pass)")
    parser.add_argument("--generate", default="",
                        help="generate() options for the pipeline, e.g. min_new_tokens=220,length_penalty=2.0 "
                             "(decoding is chosen on validation)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = shared_rows(parser, DATA / f"program_{args.split}.jsonl.gz", args.limit)
    documents, references = [row["document"] for row in rows], [row["summary"] for row in rows]
    from transformers import pipeline

    model = args.model or str(reference_model_dir())
    summarizer = pipeline("summarization", model=model, trust_remote_code=True)
    one_pass = bool(getattr(summarizer.model.config, "section_embeddings", 0))
    method = "one pass (section rows, briefs left out)" if one_pass else "split and summarize (pipeline default)"
    args.batch_size = args.batch_size or (1 if one_pass else 32)
    torch.manual_seed(args.seed)
    started = time.perf_counter()
    options = {key: json.loads(value) for key, value in (item.split("=", 1) for item in args.generate.split(",") if item)}
    ours = [item["summary_text"] for item in summarizer(documents, batch_size=args.batch_size, **options)]
    seconds = time.perf_counter() - started
    rule = [BASELINES[RULE](document) for document in documents]
    result = {"split": args.split, "evenings": len(rows), "model": model, "machine": machine_record(args.threads),
              "systems": {method: scores(ours, references, documents),
                          f"{RULE} (rule)": scores(rule, references, documents)},
              "seconds_per_evening": round(seconds / len(rows), 3), "batch_size": args.batch_size, "seed": args.seed,
              "generate": options,
              "examples": [{"reference": r, "ours": o} for r, o in list(zip(references, ours))[:3]],
              "command": "python benchmarks/sections.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    print(f"{args.split}: {len(rows)} whole evenings; {result['machine']['cpu']}")
    print(f"{'system':<42} {'R-1':>5} {'R-2':>5} {'R-L':>5} {'dist':>5} {'segs':>5} {'ref':>5} {'+-1':>5} "
          f"{'align':>5} {'stitch':>6}")
    for name, row in result["systems"].items():
        print(f"{name:<42} {row['rouge1']:>5.1f} {row['rouge2']:>5.1f} {row['rougeL']:>5.1f} "
              f"{row['distinct_share']:>5.0%} {row['segments_per_document']:>5.1f} "
              f"{row['reference_segments_per_document']:>5.1f} {row['count_within_1_share']:>5.0%} "
              f"{row['alignment_share']:>5.0%} {row['stitching_share']:>6.1%}")
    print(f"{seconds / len(rows):.2f} s per evening (batch {args.batch_size})")
    if args.split == "dev_test":  # scored once per reported system; the ledger shows any second look
        result["dev_test_scorings"] = record_dev_test_scoring(method, model, options)
    write_results(args.out, result)
    return result


if __name__ == "__main__":
    main()
