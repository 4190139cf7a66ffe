"""The README's results table holds only numbers its JSON files hold: each row names a results
JSON (and the object in it that holds the row's scores), and every number cell of the row must
equal that JSON's value rounded as the cell shows it. Editing a number by hand, or rerunning a
benchmark without updating the README, fails here."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_README_LINES = 250

# column header -> key in the row's object (or, for the training columns, in its "training" block);
# "distinct" is a share shown as a percentage
COLUMN_KEYS = {"R-1": "rouge1", "R-2": "rouge2", "R-L": "rougeL", "distinct": "distinct_share",
               "training minutes": "minutes_training", "steps": "train_steps"}


def results_table(text: str) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the first table under '## Results'."""
    section = text.split("\n## Results\n", 1)[1].split("\n## ", 1)[0].splitlines()
    start = next(i for i, line in enumerate(section) if line.startswith("|"))
    lines = []
    for line in section[start:]:  # the first table only: its lines run until one that is not a row
        if not line.startswith("|"):
            break
        lines.append(line)
    cells = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines]
    return cells[0], cells[2:]  # cells[1] is the alignment row


def resolve(obj: dict, path: str):
    """obj's value at a dotted path whose keys may themselves hold spaces (not dots)."""
    for key in path.split("."):
        if not isinstance(obj, dict) or key not in obj:
            raise KeyError(f"{key!r} of {path!r} is not in the JSON")
        obj = obj[key]
    return obj


def shown(cell: str) -> tuple[float, int, bool]:
    """The number a cell shows, its decimals, and whether it is a percentage."""
    text = cell.replace(",", "").replace("*", "")
    match = re.fullmatch(r"(-?\d+(?:\.(\d+))?)(%?)", text)
    assert match, f"not a number: {cell!r}"
    return float(match.group(1)), len(match.group(2) or ""), bool(match.group(3))


def named_json(cell: str) -> tuple[dict, dict]:
    """The row's JSON (whole) and the object its second backticked name points at."""
    names = re.findall(r"`([^`]+)`", cell)
    assert len(names) == 2, f"the JSON cell must name a file and an object in it: {cell!r}"
    whole = json.loads((ROOT / names[0]).read_text(encoding="utf-8"))
    return whole, resolve(whole, names[1])


def readme_rows():
    header, rows = results_table(README.read_text(encoding="utf-8"))
    return [dict(zip(header, row)) for row in rows]


def test_the_readme_is_short():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines; move detail to docs/"


def check_row(row: dict) -> None:
    whole, scores = named_json(row["JSON"])
    checked = 0
    for column, key in COLUMN_KEYS.items():
        cell = row.get(column, "")
        if not cell:
            continue
        source = scores if key in scores else (whole.get("training") or {})
        assert key in source, f"column {column!r} shows {cell} but the JSON holds no {key!r}"
        number, decimals, percent = shown(cell)
        value = source[key] * (100 if percent else 1)
        assert round(value, decimals) == number, f"column {column!r} shows {cell}; the JSON holds {value}"
        checked += 1
    assert checked >= 4, "a results row shows at least ROUGE-1/2/L and the distinct share"
    if row.get("CPU"):
        assert row["CPU"] == whole["machine"]["cpu"], f"CPU {row['CPU']!r}; the JSON was measured on {whole['machine']['cpu']!r}"


@pytest.mark.parametrize("row", readme_rows(), ids=lambda row: f"{row['system']} / {row['task']}")
def test_every_number_of_a_results_row_is_its_json_value(row):
    check_row(row)


def test_a_changed_number_is_caught():
    """The check itself: a results row with one digit changed fails."""
    row = readme_rows()[0]
    changed = dict(row, **{"R-L": row["R-L"][:-1] + str((int(row["R-L"][-1]) + 1) % 10)})
    with pytest.raises(AssertionError, match="R-L"):
        check_row(changed)


YARDSTICK_MARK = re.compile(r"<!-- yardstick table: (.+?) -->\n")


def test_the_yardstick_table_is_the_one_its_jsons_render():
    """The README's table of every set and shape (issue 43) is `benchmarks/yardstick.py`'s
    comparison_table of the JSONs its marker names (`label=path` pairs), character for character."""
    from reformer_zh.evaluation.yardstick_table import comparison_table

    text = README.read_text(encoding="utf-8")
    match = YARDSTICK_MARK.search(text)
    assert match, "README.md has no '<!-- yardstick table: label=path ... -->' marker above its yardstick table"
    results = {label: json.loads((ROOT / path).read_text(encoding="utf-8"))
               for label, path in (pair.split("=", 1) for pair in match.group(1).split())}
    shown_table = text[match.end():].split("\n\n", 1)[0].strip()
    assert shown_table == comparison_table(results)
