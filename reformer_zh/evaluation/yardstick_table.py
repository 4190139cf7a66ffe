"""The yardstick's table (benchmarks/yardstick.py, issue 43): systems side by side on every set
and shape, each set's rule beside them. In the package, because the shipped model's card shows
it too; the README's table is this function's output (tests/test_readme_results.py checks it)."""

from __future__ import annotations


def comparison_table(results: dict[str, dict]) -> str:
    """A markdown table of label -> yardstick result JSON, on the sets every system was scored on."""
    labels = list(results)
    first = results[labels[0]]
    header = ["set", "documents", "rule", "rule R-L", *(f"{label} R-L" for label in labels),
              *(f"{label} distinct" for label in labels), f"{labels[-1]} `【` opens", f"{labels[-1]} s/doc"]
    lines = ["| " + " | ".join(header) + " |", "|---|---:|---|" + "---:|" * (len(header) - 3)]
    for name, row in first["sets"].items():
        rows = [results[label]["sets"].get(name) for label in labels]
        if any(other is None or other["documents"] != row["documents"] for other in rows):
            continue  # only sets every system was scored on, on the same documents
        last = rows[-1]
        title = "" if last["series_title_share"] is None else f"{last['series_title_share']:.0%}"
        cells = [name, f"{row['documents']:,}", row["rule_name"], f"{row['rule']['rougeL']:.1f}",
                 *(f"{other['ours']['rougeL']:.1f}" for other in rows),
                 *(f"{other['ours']['distinct_share']:.0%}" for other in rows), title,
                 f"{last['seconds_per_document']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
