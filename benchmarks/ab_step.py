"""Training-step time of two or more checkouts of this repository, measured in one run.

Each checkout's own `benchmarks/train_step.py` measures a point in a fresh process (its own
code on its own path, same allocator and threads); the checkouts take turns point by point,
`--rounds` times, so that a slower or busier stretch of the machine hits all of them alike.
Reports the median seconds per step and each checkout's ratio to the first.

    git worktree add /tmp/before <commit>
    python benchmarks/ab_step.py --trees /tmp/before,. --lengths 4096,16384 --out benchmarks/results/ab_step.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from train_step import find_jemalloc, run_child


def commit_of(tree: str) -> str:
    return subprocess.run(["git", "-C", tree, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trees", required=True, help="comma-separated checkouts; the first is the baseline")
    parser.add_argument("--lengths", default="4096,16384")
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--allocator", choices=["jemalloc", "system"], default="jemalloc" if find_jemalloc() else "system")
    parser.add_argument("--labels", default=None, help="comma-separated names for the trees (default: their commits)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    trees = args.trees.split(",")
    labels = args.labels.split(",") if args.labels else [commit_of(t) for t in trees]
    times: dict[tuple[str, int], list[float]] = {}
    peaks: dict[tuple[str, int], float] = {}
    for _ in range(args.rounds):
        for length in map(int, args.lengths.split(",")):
            for tree, label in zip(trees, labels):
                command = [sys.executable, str(Path(tree) / "benchmarks/train_step.py"), "--child",
                           f"{length},{args.depth},1", "--steps", str(args.steps), "--threads", str(args.threads)]
                point = run_child(command, allocator=args.allocator, memory_cap_gib=18, time_cap_s=900)
                if point["status"] != "ok":
                    raise SystemExit(f"{label} at {length}: {point}")
                times.setdefault((label, length), []).append(point["seconds_per_step"])
                peaks[(label, length)] = max(peaks.get((label, length), 0.0), point["peak_rss_gib"])
                print(f"{label:>12} {length:>6}  {point['seconds_per_step']:.2f} s  {point['peak_rss_gib']:.2f} GiB", flush=True)
    results = []
    print(f"\n{'tree':>12} {'length':>6} {'median s':>9} {'ratio':>6} {'peak GiB':>9}")
    for length in map(int, args.lengths.split(",")):
        baseline = statistics.median(times[(labels[0], length)])
        for label in labels:
            median = statistics.median(times[(label, length)])
            results.append({"tree": label, "length": length, "seconds_per_step": median, "runs": times[(label, length)],
                            "ratio_to_first": median / baseline, "peak_rss_gib": peaks[(label, length)]})
            print(f"{label:>12} {length:>6} {median:>9.2f} {median / baseline:>6.2f} {peaks[(label, length)]:>9.2f}")
    if args.out:
        Path(args.out).write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M"), "settings": vars(args),
                                              "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
