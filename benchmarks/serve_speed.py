"""How long the page of `reformer-zh-serve` takes for a whole evening: the server's own function
(summary, copy account per section) on xwlb evenings, with the shipped model, on this machine.

    python benchmarks/serve_speed.py --evenings 5 --out benchmarks/results/serve_speed.json

Issue 37's target: an evening of about 7,000 characters in under 15 s on 2 cores.
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

from reformer_zh.hardware import machine_record  # noqa: E402
from reformer_zh.release.reference_model import reference_model_dir  # noqa: E402
from reformer_zh.serving.explanation import summarize_with_sources  # noqa: E402
from shared_data import command_line, write_results  # noqa: E402
from tokenization.build_vocab import read_jsonl  # noqa: E402

EVENINGS = ROOT.parent / "shared" / "data" / "xwlb" / "program_validation.jsonl.gz"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="default: the shipped model")
    parser.add_argument("--evenings", type=int, default=5, help="the first N validation evenings")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if not EVENINGS.is_file():
        parser.exit(2, f"error: {EVENINGS} is not there; this benchmark reads the shared xwlb data in place.\n")
    torch.set_num_threads(args.threads)
    from transformers import pipeline

    model = args.model or str(reference_model_dir())
    started = time.perf_counter()
    summarizer = pipeline("summarization", model=model, trust_remote_code=True)
    load_seconds = time.perf_counter() - started
    rows = []
    for row in read_jsonl(EVENINGS)[: args.evenings]:
        started = time.perf_counter()
        answer = summarize_with_sources(summarizer, row["document"], num_beams=4, max_new_tokens=64)
        rows.append({"characters": len(row["document"]), "sections": len(answer["sections"]),
                     "segments": len(answer["segments"]), "seconds": round(time.perf_counter() - started, 2)})
        print(rows[-1], flush=True)
    result = {"machine": machine_record(args.threads), "model": model, "load_seconds": round(load_seconds, 2),
              "median_characters": statistics.median(r["characters"] for r in rows),
              "median_seconds": statistics.median(r["seconds"] for r in rows),
              "max_seconds": max(r["seconds"] for r in rows), "evenings": rows,
              "command": command_line("serve_speed.py", argv)}
    print(f"median {result['median_seconds']} s for {result['median_characters']} characters "
          f"(at most {result['max_seconds']} s); the model loads in {result['load_seconds']} s")
    write_results(args.out, result)
    return result


if __name__ == "__main__":
    main()
