"""Does bf16 autocast train the same model as fp32? Loss curves of the story recipe, two seeds each.

Issue 33 item 2: bf16 autocast is on by default for CPU training where the CPU has bf16
instructions; this checks that its loss curve stays within seed noise of fp32. Each run is
`scripts/train.py` itself (the recipe's flags, `--max_steps N`, `--cpu_bf16 on|off`, a seed),
the loss read from the Trainer's log every `--logging_steps`. The table compares, at each logged
step, the gap between the precisions (same seed) with the gap between the seeds (same
precision): bf16 is within seed noise when the first is not larger than the second.

    python benchmarks/bf16_loss_curve.py --steps 300 --out benchmarks/results/bf16_loss_curve.json

About 35 minutes on 2 cores for 300 steps (fp32 steps are 2-3x slower than bf16 ones).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from reformer_zh.hardware import machine_record  # noqa: E402
from shared_data import command_line, write_results  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "xwlb"


def recipe_flags() -> list[str]:
    """The xwlb-story recipe's train.py flags, without its clock budget and evaluation."""
    from recipe import COMMON_FLAGS, RECIPES

    recipe = RECIPES["xwlb-story"]
    flags = [f for f in COMMON_FLAGS + recipe.flags]
    drop = {"--do_eval", "--do_predict", "--predict_with_generate"}
    kept, skip = [], False
    for flag in flags:
        if skip:
            skip = False
            continue
        if flag in drop:
            continue
        if flag in ("--max_steps", "--seed", "--logging_steps", "--lr_cooldown_share"):
            skip = True  # set per run below
            continue
        kept.append(flag)
    return kept


def losses(output_dir: Path) -> dict[int, float]:
    state = json.loads((output_dir / "trainer_state.json").read_text(encoding="utf-8"))
    return {entry["step"]: entry["loss"] for entry in state["log_history"] if "loss" in entry}


def run(precision: str, seed: int, args, work: Path) -> dict[int, float]:
    output_dir = work / f"{precision}-{seed}"
    command = [sys.executable, str(ROOT / "scripts" / "train.py"), "--train_file", str(args.train_file),
               "--output_dir", str(output_dir), *args.flags, "--max_steps", str(args.steps), "--seed", str(seed),
               "--logging_steps", str(args.logging_steps), "--cpu_bf16", precision, "--lr_cooldown_share", "0"]
    print(" ".join(command[1:]), flush=True)
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    trained_in = json.loads((output_dir / "train_results.json").read_text())["train_mixed_precision"]
    if trained_in != {"on": "bf16", "off": "no"}[precision]:  # the comparison would be of nothing
        raise RuntimeError(f"--cpu_bf16 {precision} trained with mixed precision {trained_in!r}")
    return losses(output_dir)


def compare(curves: dict[str, dict[int, dict[int, float]]], seeds: list[int]) -> list[dict]:
    """Per logged step: |bf16 - fp32| per seed, and |seed a - seed b| per precision."""
    rows = []
    for step in sorted(curves["off"][seeds[0]]):
        row = {"step": step}
        for precision in ("off", "on"):
            row[precision] = [curves[precision][seed][step] for seed in seeds]
        row["precision_gap"] = max(abs(a - b) for a, b in zip(row["on"], row["off"]))
        row["seed_gap"] = max(abs(row[p][0] - row[p][1]) for p in ("off", "on"))
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--logging_steps", type=int, default=25)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--train_file", default=str(DATA / "story_train.jsonl.gz"))
    parser.add_argument("--flags", nargs=argparse.REMAINDER, default=None,
                        help="train.py flags instead of the xwlb-story recipe's (tests: a tiny config)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if not Path(args.train_file).is_file():
        parser.exit(2, f"error: {args.train_file} is not there; this benchmark reads the shared xwlb data in place.\n")
    args.flags = args.flags if args.flags is not None else recipe_flags()
    seeds = [int(s) for s in args.seeds.split(",")]
    if len(seeds) != 2:
        parser.error("--seeds takes two seeds: the seed noise is their difference")
    with tempfile.TemporaryDirectory() as work:
        curves = {precision: {seed: run(precision, seed, args, Path(work)) for seed in seeds}
                  for precision in ("off", "on")}
    rows = compare(curves, seeds)
    print(f"{'step':>6} {'fp32 (seeds)':>20} {'bf16 (seeds)':>20} {'bf16-fp32':>10} {'seed gap':>9}")
    for row in rows:
        print(f"{row['step']:>6} {row['off'][0]:>9.3f} {row['off'][1]:>9.3f}  {row['on'][0]:>9.3f} {row['on'][1]:>9.3f}"
              f"  {row['precision_gap']:>9.3f} {row['seed_gap']:>9.3f}")
    late = rows[len(rows) // 2:]
    result = {"machine": machine_record(), "steps": args.steps, "seeds": seeds, "flags": args.flags, "curve": rows,
              "second_half_mean_precision_gap": sum(r["precision_gap"] for r in late) / len(late),
              "second_half_mean_seed_gap": sum(r["seed_gap"] for r in late) / len(late),
              "command": command_line("bf16_loss_curve.py", argv)}
    print(f"second half: bf16-fp32 gap {result['second_half_mean_precision_gap']:.3f}, "
          f"seed gap {result['second_half_mean_seed_gap']:.3f}")
    write_results(args.out, result)
    return result


if __name__ == "__main__":
    main()
