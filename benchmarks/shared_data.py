"""What several benchmarks do alike: read a split of the shared data in place (one `error:` line
when it is not there) and write their results JSON."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tokenization.build_vocab import read_jsonl


def shared_rows(parser: argparse.ArgumentParser, path: Path, limit: int | None = None) -> list[dict]:
    """The first `limit` rows of a shared data file (all with None), or exit 2 naming it."""
    if not path.is_file():
        parser.exit(2, f"error: {path} is not there; this benchmark reads the shared data in place "
                       "(../shared/data next to this checkout).\n")
    return read_jsonl(path)[:limit]


def write_results(out: str | None, result: dict) -> None:
    """The results JSON at `out` (nothing without one), Chinese text as written."""
    if out:
        Path(out).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")


def command_line(script: str, argv: list[str] | None) -> str:
    """The command that ran `script` with `argv` (the process's own arguments when None), for the
    results JSON."""
    return f"python benchmarks/{script} " + " ".join(argv if argv is not None else sys.argv[1:])
