"""A document of a million characters through `summarizer(document)` as a user calls it: does it
end, in how long and in how much memory (issue 44 item 2)?

The document is whole validation evenings of xwlb, one after another until it reaches
--characters, pasted in the shape --shape names (blank lines between stories, single newlines, or
one block); the pipeline finds its sections (document_sections.py), summarizes them in batches
and joins the segments. Recorded: seconds, peak resident memory, sections found and how, the
summary's length, the machine.

    python benchmarks/long_document.py --out benchmarks/results/long_document.json
    python benchmarks/long_document.py --characters 100000 --shape "one block"
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "benchmarks"))  # after the project: benchmarks/tokenization.py would shadow its package

from reformer_zh.hardware import machine_record  # noqa: E402
from reformer_zh.release.reference_model import reference_model_dir  # noqa: E402
from tokenization.build_vocab import read_jsonl  # noqa: E402
from yardstick import EVENINGS, one_block, single_newlines  # noqa: E402

SHAPES = {"blank lines": lambda text: text, "single newlines": single_newlines, "one block": one_block}


def long_document(characters: int, shape: str) -> str:
    """Validation evenings in `shape` (again from the first when they run out: all of them hold
    about 620,000 characters), joined as the shape joins stories, cut to `characters`."""
    evenings = [SHAPES[shape](row["document"]) for row in read_jsonl(EVENINGS["validation"])]
    pieces, total = [], 0
    while total < characters:
        pieces.append(evenings[len(pieces) % len(evenings)])
        total += len(pieces[-1])
    joint = "\n\n" if shape == "blank lines" else ("\n" if shape == "single newlines" else "")
    return joint.join(pieces)[:characters]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="default: the shipped reference model")
    parser.add_argument("--characters", type=int, default=1_000_000)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="single newlines")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.characters < 1:
        parser.error(f"--characters must be positive, got {args.characters}")
    if not EVENINGS["validation"].is_file():
        parser.exit(2, f"error: {EVENINGS['validation']} is not there; this benchmark reads the shared xwlb data.\n")
    torch.set_num_threads(args.threads)
    from transformers import pipeline

    document = long_document(args.characters, args.shape)
    model = args.model or str(reference_model_dir())
    summarizer = pipeline("summarization", model=model, trust_remote_code=True)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    started = time.perf_counter()
    reading = summarizer.plan_reading(document)  # what the call below decides again
    planned = time.perf_counter() - started
    started = time.perf_counter()
    summary = summarizer(document)[0]["summary_text"]
    seconds = time.perf_counter() - started
    result = {"model": model, "characters": len(document), "shape": args.shape, "machine": machine_record(args.threads),
              "read": reading.how, "sections": len(reading.found.sections), "found_by": reading.found.found_by,
              "skipped_briefs": len(reading.found.skipped), "seconds_finding_sections": round(planned, 1),
              "seconds_summarizing": round(seconds, 1), "peak_rss_mib_before": round(rss_before),
              "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10),
              "summary_characters": len(summary), "summary_opening": summary[:200],
              "command": "python benchmarks/long_document.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    print(json.dumps(result, ensure_ascii=False, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
