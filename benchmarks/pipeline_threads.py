"""Seconds a document through `summarizer(text)` at each thread count, side by side in one process.

A story's summary is about 26 decoder steps of some 1,700 small operations each ([4 beams, 256]
by [256, 256] products, layer norms, views: torch.profiler counted 215,576 operator calls for 129
decoder steps of 5 validation stories, the shipped model), where splitting every operation over two threads may cost more in
synchronisation than it saves; a whole evening's encoder works on thousands of positions, where
two threads should pay. This measures both on validation documents with the shipped model (or
--model), the thread counts taking turns round by round so that a drift of the machine falls on
all of them alike, and counts the summaries that differ from the first count's (reductions
split differently may round differently). Measured on an AMD EPYC, alone: one thread is no
faster for a story and slower for an evening (benchmarks/results/pipeline_threads.json), so the
pipeline keeps the caller's thread count.

    python benchmarks/pipeline_threads.py --stories 40 --evenings 4 --rounds 2 \\
        --out benchmarks/results/pipeline_threads.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "benchmarks"))

from reformer_zh.hardware import machine_record  # noqa: E402
from reformer_zh.release.reference_model import reference_model_dir  # noqa: E402
from shared_data import command_line, shared_rows, write_results  # noqa: E402

XWLB = ROOT.parent / "shared" / "data" / "xwlb"
KINDS = {"stories": XWLB / "story_validation.jsonl.gz", "evenings": XWLB / "program_validation.jsonl.gz"}


def timed_summaries(summarizer, documents: list[str], threads: int) -> tuple[list[str], list[float]]:
    """Each document's summary and seconds, one `summarizer(document)` call at a time."""
    torch.set_num_threads(threads)
    summaries, seconds = [], []
    for document in documents:
        started = time.perf_counter()
        summaries.append(summarizer(document)[0]["summary_text"])
        seconds.append(time.perf_counter() - started)
    return summaries, seconds


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="checkpoint folder (default: the shipped reference model)")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts, the first the reference")
    parser.add_argument("--stories", type=int, default=40)
    parser.add_argument("--evenings", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    thread_counts = [int(count) for count in args.threads.split(",")]
    if min(thread_counts) < 1 or args.rounds < 1:
        parser.error("thread counts and --rounds must be positive")
    if args.stories < 0 or args.evenings < 0 or args.stories + args.evenings == 0:
        parser.error("--stories and --evenings are counts of documents, at least one of them positive")
    from transformers import pipeline

    model = args.model or str(reference_model_dir())
    summarizer = pipeline("summarization", model=model, trust_remote_code=True)
    documents = {kind: [row["document"] for row in shared_rows(parser, path, limit)]
                 for (kind, path), limit in zip(KINDS.items(), (args.stories, args.evenings)) if limit}
    for kind, texts in documents.items():  # warm-up: the first call builds caches and pages in weights
        timed_summaries(summarizer, texts[:1], thread_counts[0])
    seconds = {kind: {count: [] for count in thread_counts} for kind in documents}
    summaries = {kind: {} for kind in documents}
    for _ in range(args.rounds):
        for count in thread_counts:
            for kind, texts in documents.items():
                written, taken = timed_summaries(summarizer, texts, count)
                seconds[kind][count].append(sum(taken) / len(taken))
                summaries[kind][count] = written
    result = {"model": model, "machine": machine_record(max(thread_counts)), "rounds": args.rounds, "kinds": {},
              "command": command_line("pipeline_threads.py", argv)}
    reference = thread_counts[0]
    for kind, texts in documents.items():
        result["kinds"][kind] = {
            "documents": len(texts),
            "median_characters": statistics.median(len(text) for text in texts),
            "seconds_per_document": {str(count): [round(value, 4) for value in seconds[kind][count]]
                                     for count in thread_counts},
            "summaries_differing_from_first_count": {
                str(count): sum(a != b for a, b in zip(summaries[kind][count], summaries[kind][reference]))
                for count in thread_counts[1:]},
        }
    print(f"{'kind':<10} {'docs':>5} " + " ".join(f"{f'{count} thread(s) s/doc':>20}" for count in thread_counts))
    for kind, row in result["kinds"].items():
        cells = " ".join(f"{'/'.join(f'{value:.3f}' for value in row['seconds_per_document'][str(count)]):>20}"
                         for count in thread_counts)
        print(f"{kind:<10} {row['documents']:>5} {cells}   differing: {row['summaries_differing_from_first_count']}")
    write_results(args.out, result)
    return result


if __name__ == "__main__":
    from reformer_zh.cli import run_command

    run_command(main)
