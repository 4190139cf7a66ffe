"""Summarize Chinese documents with a reformer-zh checkpoint.

    python scripts/summarize.py MODEL "文档一" "文档二"
    python scripts/summarize.py MODEL --file docs.jsonl --output summaries.jsonl   # jsonl with a "document" field
    cat doc.txt | python scripts/summarize.py MODEL                                 # stdin: one document per line

Prints one summary per input (or writes jsonl with --output). MODEL is a folder or a Hub id;
it goes through `pipeline("summarization", trust_remote_code=True)`, the same path users take.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def read_inputs(args) -> tuple[list[dict], list[str]]:
    """The rows to summarize and, for each, where it came from (for error messages)."""
    if args.texts:
        return [{"document": text} for text in args.texts], [f"argument {i + 1}" for i in range(len(args.texts))]
    if args.file:
        path = Path(args.file)
        if not path.is_file():
            raise FileNotFoundError(f"--file {path} does not exist")
        numbered = [(number, line) for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                    if line.strip()]
        where = [f"line {number} of {path}" for number, _ in numbered]
        if path.suffix == ".jsonl":
            rows = [json.loads(line) for _, line in numbered]
            missing = [i for i, row in enumerate(rows) if args.text_column not in row]
            if missing:
                raise ValueError(f"--file {path}: {where[missing[0]]} has no '{args.text_column}' field "
                                 f"(fields: {sorted(rows[missing[0]])}); name it with --text_column")
            return rows, where
        return [{"document": line} for _, line in numbered], where
    numbered = [(number, line) for number, line in enumerate(sys.stdin.read().splitlines(), 1) if line.strip()]
    return [{"document": line} for _, line in numbered], [f"line {number} of standard input" for number, _ in numbered]


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="checkpoint folder or Hub id")
    parser.add_argument("texts", nargs="*", help="documents; none: --file or stdin")
    parser.add_argument("--file", help=".jsonl (with --text_column) or .txt (one document per line)")
    parser.add_argument("--text_column", default="document")
    parser.add_argument("--output", help="write jsonl here instead of printing")
    parser.add_argument("--num_beams", type=int, default=4)
    parser.add_argument("--max_new_tokens", type=int, default=64)
    parser.add_argument("--min_new_tokens", type=int, default=None)
    parser.add_argument("--batch_size", type=int, default=1)
    parser.add_argument("--no_truncation", action="store_true", help="fail on inputs longer than the model's positions")
    args = parser.parse_args(argv)

    import modeling_reformer_zh  # noqa: F401  (registers the Auto classes when the project is installed)
    from transformers import pipeline

    rows, where = read_inputs(args)
    if not rows:
        raise ValueError("no input: give texts, --file, or pipe documents on stdin")
    texts = [row[args.text_column] if args.text_column in row else row["document"] for row in rows]
    for text, origin in zip(texts, where):  # before the model loads: a bad row costs no waiting
        if not isinstance(text, str):
            raise ValueError(f"the document of {origin} is a {type(text).__name__}, not text")
        if not text.strip():
            raise ValueError(f"document {origin} is empty: there is nothing to summarize; drop it or give its text")
    summarizer = pipeline("summarization", model=args.model, trust_remote_code=True)
    generate = dict(num_beams=args.num_beams, max_new_tokens=args.max_new_tokens)
    if args.min_new_tokens is not None:
        generate["min_new_tokens"] = args.min_new_tokens
    results = summarizer(texts, batch_size=args.batch_size, truncation=not args.no_truncation, **generate)
    summaries = [result["summary_text"] for result in results]
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            for row, summary in zip(rows, summaries):
                handle.write(json.dumps({**row, "summary_generated": summary}, ensure_ascii=False) + "\n")
    else:
        for summary in summaries:
            print(summary)
    return summaries


if __name__ == "__main__":
    from reformer_zh.commands import summarize

    summarize()
