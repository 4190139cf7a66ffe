"""Training-step time of two or more checkouts of this repository, measured in one run.

Each checkout's own `benchmarks/train_step.py` measures a point in a fresh process (its own
code on its own path, same allocator and threads); the checkouts take turns point by point,
`--rounds` times, so that a slower or busier stretch of the machine hits all of them alike.
Reports the median seconds per step and each checkout's ratio to the first.

    git worktree add /tmp/before <commit>
    python benchmarks/ab_step.py --trees /tmp/before,. --lengths 4096,16384 --out benchmarks/results/ab_step.json

`--step story` measures the story step instead: each checkout's own `benchmarks/story_step.py`
(reformer-zh beside the plain `nn.Transformer` twin, `--settings` of it) in a fresh process
per round, so each checkout's ratio to the plain twin is measured beside the twin's own time.

    python benchmarks/ab_step.py --step story --trees /tmp/before,. --rounds 3 --out benchmarks/results/ab_story_step.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from train_step import child_environment, find_jemalloc, run_child

from reformer_zh.hardware import machine_record


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
    parser.add_argument("--step", choices=["long", "story"], default="long",
                        help="long: train_step.py at --lengths; story: story_step.py at --settings")
    parser.add_argument("--settings", default="fp32, dropout 0;bf16 autocast, dropout 0",
                        help="--step story: story_step.py settings, separated by ';'")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    trees = args.trees.split(",")
    labels = args.labels.split(",") if args.labels else [commit_of(t) for t in trees]
    if args.step == "story":
        return compare_story_steps(args, trees, labels)
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


def compare_story_steps(args, trees: list[str], labels: list[str]) -> None:
    """Each tree's story_step.py, one fresh process per tree and round, trees taking turns."""
    runs: dict[tuple[str, str], list[dict]] = {}
    for _ in range(args.rounds):
        for tree, label in zip(trees, labels):
            with tempfile.TemporaryDirectory() as folder:
                out = Path(folder) / "story_step.json"
                command = [sys.executable, str(Path(tree) / "benchmarks/story_step.py"), "--steps", str(args.steps),
                           "--threads", str(args.threads), "--settings", args.settings, "--out", str(out)]
                finished = subprocess.run(command, capture_output=True, text=True, env=child_environment(args.allocator))
                if finished.returncode != 0:
                    raise SystemExit(f"{label}: {(finished.stderr.strip().splitlines() or [''])[-1]}")
                for setting, row in json.loads(out.read_text())["settings"].items():
                    runs.setdefault((label, setting), []).append(row)
                    print(f"{label:>12}  {setting:<28} ours {row['reformer_zh_seconds']:.2f} s  "
                          f"plain {row['plain_seconds']:.2f} s  ratio {row['ratio_to_plain']:.2f}", flush=True)
    results = []
    print(f"\n{'tree':>12}  {'setting':<28} {'ours s':>7} {'plain s':>8} {'ours/plain':>10} {'vs first tree':>13}")
    for setting in dict.fromkeys(setting for _, setting in runs):
        baseline = statistics.median(row["reformer_zh_seconds"] for row in runs[(labels[0], setting)])
        for label in labels:
            rows = runs[(label, setting)]
            ours = statistics.median(row["reformer_zh_seconds"] for row in rows)
            plain = statistics.median(row["plain_seconds"] for row in rows)
            ratio = statistics.median(row["ratio_to_plain"] for row in rows)
            results.append({"tree": label, "setting": setting, "reformer_zh_seconds": ours, "plain_seconds": plain,
                            "ratio_to_plain": ratio, "speedup_vs_first_tree": baseline / ours, "rounds": rows})
            print(f"{label:>12}  {setting:<28} {ours:>7.2f} {plain:>8.2f} {ratio:>10.2f} {baseline / ours:>13.2f}")
    if args.out:
        machine = {**machine_record(args.threads), "allocator": f"{args.allocator} (in every measuring process)"}
        Path(args.out).write_text(json.dumps({"benchmark": "ab_step --step story", "machine": machine,
                                              "settings": vars(args), "results": results,
                                              "command": "python benchmarks/ab_step.py " + " ".join(sys.argv[1:])},
                                             indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
