"""How often each system has been scored on dev_test: one line per scoring, kept in the repository.

dev_test is scored once per reported system; choices are made on validation. A benchmark that
scores dev_test appends a line here (the system's name, the checkpoint, the decoding options, the
date) and writes into its results JSON how many times that same system has now been scored, so a
second look at dev_test, after which a choice could have been tuned on it, shows in the JSON the
README's row names. The ledger starts on 2026-12-07; scorings before it are not in it.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

LEDGER = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "dev_test_ledger.jsonl"


def system_key(method: str, model: str, options: dict) -> dict:
    """What makes two scorings the same system: the method, the checkpoint (its folder name, so
    another checkout's path is the same system) and the decoding options."""
    return {"method": method, "model": Path(model).name, "options": dict(sorted(options.items()))}


def record_dev_test_scoring(method: str, model: str, options: dict, ledger: Path | None = None) -> int:
    """Appends this scoring to `ledger` (default: the repository's, `LEDGER`) and returns how many
    scorings of the same system it holds, this one included."""
    ledger = LEDGER if ledger is None else ledger
    key = system_key(method, model, options)
    earlier = 0
    if ledger.is_file():
        for line in ledger.read_text(encoding="utf-8").splitlines():
            if line.strip():
                entry = json.loads(line)
                earlier += {name: entry.get(name) for name in key} == key
    ledger.parent.mkdir(parents=True, exist_ok=True)
    with ledger.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({**key, "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M")},
                                ensure_ascii=False) + "\n")
    return earlier + 1
