"""Extractive baselines every summarizer here is measured against."""

from __future__ import annotations

import re

SENTENCE_END = re.compile(r"(?<=[。！？!?])")


def first_sentence(document: str) -> str:
    """The document's first sentence (up to and with the first 。！？!?): the lead baseline
    LCSTS papers report, and a strong one for news headlines."""
    return SENTENCE_END.split(document, maxsplit=1)[0]


def first_characters(document: str, count: int) -> str:
    """The document's first `count` characters (the long-input issue's length-matched lead:
    287 characters is the median xwlb rundown)."""
    return document[:count]


def story_leads(document: str, max_chars: int | None = None, first_line: bool = False) -> str:
    """The first sentence of every story (blocks separated by a blank line) that starts within
    the first `max_chars` characters, written as a rundown is (`；` between them, `。` at the
    end): what a reader limited to `max_chars` characters reaches with leads (None: the whole
    document). `first_line` stops a lead at a line break too, so a news brief (short items each
    under a title line) contributes its first title instead of its title and first item."""
    visible = document if max_chars is None else document[:max_chars]
    leads = []
    for block in filter(None, (b.strip() for b in visible.split("\n\n"))):
        lead = first_sentence(block.split("\n")[0] if first_line else block)
        leads.append(lead.rstrip("。！？!?"))
    return "；".join(leads) + "。" if leads else ""


# by name, for scripts/recipe.py and the benchmarks
BASELINES = {
    "first sentence": first_sentence,
    "first 287 characters": lambda document: first_characters(document, 287),
    "story leads in the first 1024 characters": lambda document: story_leads(document, 1024),
    "story leads of the whole evening": story_leads,
    "story leads with brief titles": lambda document: story_leads(document, first_line=True),
}


def main(argv: list[str] | None = None) -> dict:
    """Score baselines on data files: python scripts/baselines.py FILE [FILE ...] [--names ...] [--out JSON]."""
    import argparse
    import json
    import sys
    from pathlib import Path

    from reformer_zh.evaluation.rouge_zh import rouge_scores
    from tokenization.build_vocab import read_jsonl

    parser = argparse.ArgumentParser(description="Character ROUGE F1 of the extractive baselines on jsonl(.gz) files "
                                                 "with document and summary columns.")
    parser.add_argument("files", nargs="+")
    parser.add_argument("--names", default=",".join(BASELINES), help=f"comma-separated, from: {', '.join(BASELINES)}")
    parser.add_argument("--out", default=None, help="write the scores here as JSON")
    args = parser.parse_args(argv)
    names = args.names.split(",")
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        parser.error(f"unknown baseline {unknown[0]!r}; choose from: {', '.join(BASELINES)}")
    scores = {}
    for file in args.files:
        if not Path(file).is_file():
            parser.exit(2, f"error: {file} does not exist\n")
        rows = read_jsonl(file)
        references = [r["summary"] for r in rows]
        scores[file] = {n: rouge_scores([BASELINES[n](r["document"]) for r in rows], references) for n in names}
        for name, result in scores[file].items():
            print(f"{Path(file).name:<32} {name:<46} R-1 {result['rouge1']:5.1f}  R-2 {result['rouge2']:5.1f}  "
                  f"R-L {result['rougeL']:5.1f}")
    if args.out:
        Path(args.out).write_text(json.dumps(scores, indent=2, ensure_ascii=False) + "\n")
    return scores


if __name__ == "__main__":
    from reformer_zh.commands import baselines

    baselines()
