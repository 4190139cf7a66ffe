"""One table of several recipe runs at equal minutes: steps, validation ROUGE and distinct share.

Each run is a `scripts/recipe.py ...` output folder (its recipe_results.json),
changed in one variable from the first; the runs ran one after another on the same machine.

    python scripts/recipe.py xwlb-story --max_train_minutes 10 --output_dir outputs/abl-default
    python scripts/recipe.py xwlb-story --max_train_minutes 10 --output_dir outputs/abl-dropout01 \\
        -- --config_overrides hidden_dropout_prob=0.1,attention_probs_dropout_prob=0.1
    python benchmarks/recipe_ablation.py "defaults=outputs/abl-default" "dropout 0.1=outputs/abl-dropout01" \\
        --out benchmarks/results/ablation_xwlb_story.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="LABEL=FOLDER, the first is the reference")
    parser.add_argument("--rescored", action="append", default=[], metavar="LABEL=FOLDER",
                        help="take LABEL's validation scores from FOLDER/eval_results.json: its checkpoint scored "
                             "again by `scripts/train.py --model_name_or_path RUN --do_eval` (ROUGE before "
                             "2026-12-06 compared with references cut at the target length)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    rescored = dict(item.partition("=")[::2] for item in args.rescored)
    rows = {}
    for item in args.runs:
        label, _, folder = item.partition("=")
        results = json.loads((Path(folder) / "recipe_results.json").read_text(encoding="utf-8"))
        validation = results["validation"]
        if label in rescored:
            again = json.loads((Path(rescored[label]) / "eval_results.json").read_text(encoding="utf-8"))
            validation = {key[len("eval_"):]: value for key, value in again.items() if key.startswith("eval_")}
        command = results["train_command"]
        rows[label] = {"train_steps": results["train_steps"], "minutes_training": results["minutes_training"],
                       "steps_per_minute": round(results["train_steps"] / results["minutes_training"], 1),
                       "validation_rougeL": round(validation["rougeL"], 2),
                       "validation_rouge1": round(validation["rouge1"], 2),
                       "validation_rouge2": round(validation["rouge2"], 2),
                       "validation_distinct_share": round(validation["distinct_share"], 4),
                       "validation_samples": validation.get("samples"),
                       "machine": results.get("machine"), "train_command": command,
                       "validation_rescored_from": rescored.get(label)}
    first = next(iter(rows.values()))
    print(f"{'run':<36} {'steps':>6} {'steps/min':>9} {'speed':>6} {'val R-1':>8} {'R-2':>6} {'R-L':>6} {'distinct':>8}")
    for label, row in rows.items():
        print(f"{label:<36} {row['train_steps']:>6} {row['steps_per_minute']:>9.1f} "
              f"{row['steps_per_minute'] / first['steps_per_minute']:>6.2f} {row['validation_rouge1']:>8.1f} "
              f"{row['validation_rouge2']:>6.1f} {row['validation_rougeL']:>6.1f} {row['validation_distinct_share']:>8.1%}")
    result = {"runs": rows}
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return result


if __name__ == "__main__":
    main()
