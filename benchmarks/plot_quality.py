"""Plot the learning curves of benchmarks/quality.py: ROUGE-L against training minutes (validation;
dev_test in files written before quality.py stopped scoring dev_test along training).

One line per system (points from `--curve_minutes`, the last at the end of the budget),
the first-sentence baseline as a dashed line, so a reader sees when each model starts reading its
input. The right panel gives the share of distinct summaries at the same points: a collapsed model
writes one summary for every input, whatever its ROUGE.

    python benchmarks/plot_quality.py benchmarks/results/quality_copy_vs_bart.json
    python benchmarks/plot_quality.py benchmarks/results/quality_copy_vs_bart.json \
        benchmarks/results/quality_pretrain.json --out benchmarks/results/quality_curves.png

Several files (runs with the same settings) are drawn on the same axes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def curve_split(results: dict) -> str:
    """The split the curves were scored on: validation, or dev_test in files from before 2026-12-07."""
    points = [p for entry in results.values() for p in entry.get("curve", [])]
    return "dev_test" if points and "dev_test_rougeL" in points[0] else "validation"


def curve_points(entry: dict, split: str) -> list[tuple[float, float, float]]:
    """(minutes, ROUGE-L, distinct share) along training; quality.py takes the last point when
    the budget runs out."""
    return [(p["minutes"], p[f"{split}_rougeL"], p[f"{split}_distinct_share"]) for p in entry.get("curve", [])]


def main(argv: list[str] | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+", help="JSON files written by benchmarks/quality.py with --curve_minutes")
    parser.add_argument("--out", default=None, help="default: the first results path with .png")
    args = parser.parse_args(argv)
    results = {}
    for path in args.results:
        results.update(json.loads(Path(path).read_text())["results"])

    split = curve_split(results)
    figure, (rouge_axis, distinct_axis) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, entry in results.items():
        if name == "lead" or split not in entry:
            continue
        points = curve_points(entry, split)
        if not points:
            continue
        minutes, rouge, distinct = zip(*points)
        label = f"{name} ({entry.get('parameters_millions', float('nan')):.1f}M, {entry.get('steps', '?')} steps)"
        rouge_axis.plot(minutes, rouge, marker="o", label=label)
        distinct_axis.plot(minutes, [100 * d for d in distinct], marker="o", label=name)
    if "lead" in results:
        rouge_axis.axhline(results["lead"][split]["rougeL"], linestyle="--", color="gray", label="first sentence")
    rouge_axis.set(xlabel="training minutes (2-core CPU)", ylabel=f"{split} ROUGE-L (character F1)",
                   title="ROUGE-L along training")
    distinct_axis.set(xlabel="training minutes (2-core CPU)", ylabel="% distinct summaries", ylim=(0, 105),
                      title="distinct summaries along training")
    for axis in (rouge_axis, distinct_axis):
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    out = Path(args.out or Path(args.results[0]).with_suffix(".png"))
    figure.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
