"""Whole meetings in one pass: a smoke test of 5K-31K-character inputs on real text (issue 13).

Summarizes every VCSum `meeting_dev` transcript (20 meetings of 4,650-30,529 characters, median 14,508; each
paragraph kept as an [NL] token) with one checkpoint through the summarization pipeline, the
path users take, timing each meeting, and scores the summaries against the meetings' overall
summaries beside the first-N-characters baseline (N = the median reference length). Inputs
longer than the model's positions are truncated, and the JSON says how many were.

    python benchmarks/meetings.py outputs/xwlb-program --out benchmarks/results/meetings_xwlb_program.json
    python benchmarks/meetings.py outputs/xwlb-program --max_positions 32768 --out ...  # every meeting whole
    python benchmarks/meetings.py --as_it_comes --out ...  # the shipped model, the pipeline's own defaults

`--as_it_comes` calls the pipeline as a user does, `summarizer(document)` with nothing else: the
checkpoint's generation config and reading length (the shipped model: 4 beams, the first 256
tokens, truncated with a warning), and the default method for a document without blank lines
(one summary; split-and-summarize needs sections).

This is not a claim of quality: the checkpoint was trained on news rundowns, not meetings.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MEETINGS = ROOT.parent / "shared" / "data" / "vcsum" / "meeting_dev.jsonl"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", default=None, help="checkpoint folder (default: the shipped reference model)")
    parser.add_argument("--as_it_comes", action="store_true",
                        help="the pipeline's own defaults: no beams, length or truncation arguments")
    parser.add_argument("--meetings", default=str(MEETINGS))
    parser.add_argument("--num_beams", type=int, default=4)
    parser.add_argument("--max_new_tokens", type=int, default=400, help="the longest meeting_dev summary is 330 characters")
    parser.add_argument("--limit", type=int, default=None, help="the first N meetings only")
    parser.add_argument("--max_positions", type=int, default=None,
                        help="grow the checkpoint's position tables to this many tokens before summarizing "
                             "(resize_position_embeddings), so longer meetings are read whole; positions past "
                             "the trained ones start untrained")
    parser.add_argument("--out", default=None, help="write the results here as JSON")
    args = parser.parse_args(argv)
    if not Path(args.meetings).is_file():
        parser.exit(2, f"error: {args.meetings} is not there; this benchmark reads the shared VCSum data in place "
                       "(../shared/data/vcsum next to this checkout).\n")

    import torch
    from transformers import pipeline

    import modeling_reformer_zh  # noqa: F401  (registers the Auto classes)
    from reformer_zh.evaluation.baselines import first_characters
    from reformer_zh.evaluation.rouge_zh import rouge_scores
    from tokenization.build_vocab import read_jsonl

    from modeling_reformer_zh.pipeline_reformer_zh import summarization_defaults
    from reformer_zh.hardware import machine_record
    from reformer_zh.release.reference_model import reference_model_dir

    rows = read_jsonl(args.meetings)[: args.limit]
    args.model = args.model or str(reference_model_dir())
    summarizer = pipeline("summarization", model=args.model, trust_remote_code=True)
    trained_positions = summarizer.model.config.max_position_embeddings
    if args.max_positions:
        summarizer.model.resize_position_embeddings(args.max_positions)
    max_tokens = summarizer.model.config.max_position_embeddings  # after --max_positions
    references = [row["summary"] for row in rows]
    lead_chars = int(statistics.median(len(r) for r in references))
    predictions, seconds, input_tokens = [], [], []
    for row in rows:
        input_tokens.append(len(summarizer.tokenizer(row["document"])["input_ids"]))
        started = time.perf_counter()
        with torch.inference_mode():
            if args.as_it_comes:
                result = summarizer(row["document"])
            else:
                result = summarizer(row["document"], truncation=True, num_beams=args.num_beams,
                                    max_new_tokens=args.max_new_tokens)
        seconds.append(time.perf_counter() - started)
        predictions.append(result[0]["summary_text"])
        print(f"{len(row['document']):>6} characters, {seconds[-1]:5.1f} s: {predictions[-1][:60]}", flush=True)
    results = {
        "model": args.model, "meetings": len(rows),
        "decoding": "the pipeline's defaults" if args.as_it_comes else {"num_beams": args.num_beams,
                                                                         "max_new_tokens": args.max_new_tokens},
        "max_input_tokens": ((summarization_defaults(summarizer.model.config).get("max_input_tokens") or max_tokens)
                             if args.as_it_comes else max_tokens),
        "trained_positions": trained_positions,
        "truncated_meetings": sum(n > max_tokens for n in input_tokens),
        "meetings_past_trained_positions": sum(n > trained_positions for n in input_tokens),
        "document_characters_median": statistics.median(len(r["document"]) for r in rows),
        "seconds_per_meeting": {"median": statistics.median(seconds), "max": max(seconds), "all": seconds},
        "model_scores": rouge_scores(predictions, references),
        f"first {lead_chars} characters": rouge_scores([first_characters(r["document"], lead_chars) for r in rows],
                                                       references),
        "summary_characters_median": statistics.median(len(p) for p in predictions),
        "reference_characters_median": statistics.median(len(r) for r in references),
        "machine": machine_record(),
        "command": "python benchmarks/meetings.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "examples": [{"prediction": p, "reference": r} for p, r in zip(predictions[:3], references[:3])],
    }
    print(json.dumps({k: v for k, v in results.items() if k != "examples"}, indent=2, ensure_ascii=False))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    return results


if __name__ == "__main__":
    from reformer_zh.cli import run_command

    run_command(main)
