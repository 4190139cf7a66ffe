"""Whole xwlb evenings cut at story boundaries into training windows (issue 13).

A program row of ../shared/data/xwlb is one evening: its stories in broadcast order separated
by a blank line, and the rundown, the headlines of its main stories in the same order joined by
`；` and closed by `。`. News briefs (a block of short items, each under its own title line) get
no headline. The story files hold every main story with its headline, so each block of an
evening is matched to its headline by its text (95% of validation evenings and all of dev_test
rebuild their rundown exactly; the rest are left out of training). Then any run of consecutive
blocks is itself a correct (document, rundown) pair. Training on windows of at most
--max_chars characters keeps every pair exact (truncating a whole evening would ask for
headlines of stories the model never saw) and sets the step cost; evaluation still reads
whole evenings.

    python scripts/evenings.py ../shared/data/xwlb/program_train.jsonl.gz \
        ../shared/data/xwlb/story_train.jsonl.gz outputs/windows.jsonl --max_chars 4096
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STORY_BREAK = "\n\n"
HEADLINE_JOIN = "；"
RUNDOWN_END = "。"


def rundown(headlines: list[str]) -> str:
    return HEADLINE_JOIN.join(headlines) + RUNDOWN_END


def headlined_blocks(row: dict, headline_of: dict[str, str]) -> list[tuple[str, str | None]] | None:
    """The evening's blocks, each with its headline (None for a brief), or None when the
    matched headlines do not rebuild the evening's rundown exactly."""
    blocks = [block.strip() for block in row["document"].split(STORY_BREAK) if block.strip()]
    pairs = [(block, headline_of.get(block)) for block in blocks]
    found = [headline for _, headline in pairs if headline is not None]
    return pairs if found and rundown(found) == row["summary"].strip() else None


def windows(row: dict, headline_of: dict[str, str], max_chars: int, skip_briefs: bool = False) -> list[dict]:
    """Consecutive runs of whole blocks of at most `max_chars` characters (a longer block is a
    window of its own), each with the rundown of its headlined stories; windows of briefs
    only are dropped, and an evening whose rundown cannot be rebuilt gives []. `skip_briefs`
    leaves the blocks without a headline out first, so the k-th headline of every window
    summarizes its k-th block (the one-pass model's alignment loss assumes it; the pipeline
    drops the briefs it recognises before the model reads an evening)."""
    pairs = headlined_blocks(row, headline_of)
    if pairs is None:
        return []
    if skip_briefs:
        pairs = [(block, headline) for block, headline in pairs if headline is not None]
    runs, current, length = [], [], 0
    for block, headline in pairs:
        added = len(block) + (len(STORY_BREAK) if current else 0)
        if current and length + added > max_chars:
            runs.append(current)
            current, length, added = [], 0, len(block)
        current.append((block, headline))
        length += added
    runs.append(current)
    result = []
    for run in runs:
        headlines = [headline for _, headline in run if headline is not None]
        if headlines:
            result.append({"id": f"{row.get('id', 'row')}-w{len(result)}",
                           "document": STORY_BREAK.join(block for block, _ in run), "summary": rundown(headlines)})
    return result


def write_windows(input_file: str | Path, story_file: str | Path, output_file: str | Path, max_chars: int,
                  skip_briefs: bool = False) -> dict:
    """Cut every evening of `input_file` into windows written to `output_file` (jsonl), the
    headlines taken from `story_file` (the story rows of the same split)."""
    from tokenization.build_vocab import read_jsonl

    headline_of = {row["document"].strip(): row["summary"] for row in read_jsonl(story_file)}
    rows = read_jsonl(input_file)
    written = unmatched = 0
    Path(output_file).parent.mkdir(parents=True, exist_ok=True)
    with open(output_file, "w", encoding="utf-8") as handle:
        for row in rows:
            cut = windows(row, headline_of, max_chars, skip_briefs)
            unmatched += not cut
            for window in cut:
                handle.write(json.dumps(window, ensure_ascii=False) + "\n")
                written += 1
    return {"evenings": len(rows), "unmatched_evenings": unmatched, "windows": written, "max_chars": max_chars,
            "skip_briefs": skip_briefs}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input_file", help="program rows: jsonl (or .jsonl.gz) with document and summary")
    parser.add_argument("story_file", help="story rows of the same split: each main story with its headline")
    parser.add_argument("output_file")
    parser.add_argument("--max_chars", type=int, default=4096, help="longest window, in characters")
    parser.add_argument("--skip_briefs", action="store_true",
                        help="leave out the blocks without a headline (news briefs), so block k goes with headline k")
    args = parser.parse_args(argv)
    if args.max_chars < 1:
        parser.error(f"--max_chars must be positive, got {args.max_chars}")
    for path in (args.input_file, args.story_file):
        if not Path(path).is_file():
            parser.exit(2, f"error: {path} does not exist\n")
    summary = write_windows(args.input_file, args.story_file, args.output_file, args.max_chars, args.skip_briefs)
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    from reformer_zh.cli import run_command

    run_command(main)
