"""The recommended recipes, one command each: `make lcsts`, `make xwlb-story`, `make xwlb-program`.

Each trains from nothing on ../shared/data (a character tokenizer built from the training
file, then scripts/train.py with the flags below), inside a wall-clock budget that fits a
2-core CPU, and leaves the checkpoint in outputs/<recipe>/, loadable by
`pipeline("summarization", model="outputs/<recipe>", trust_remote_code=True)`. At the end it
prints the dev_test scores beside the first-sentence baseline and writes them to
outputs/<recipe>/recipe_results.json.

    python scripts/recipe.py lcsts
    python scripts/recipe.py xwlb-story --max_train_minutes 30     # a shorter run of the same recipe
    python scripts/recipe.py lcsts --dry_run                       # print the train.py command only
    python scripts/recipe.py lcsts -- --bf16 --per_device_train_batch_size 128   # extra train.py flags (GPU)

`xwlb-program` fine-tunes the `xwlb-story` checkpoint (outputs/xwlb-story, or --start_from) on
whole evenings: it trains on windows of whole stories (scripts/evenings.py) and evaluates on
the full evenings.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
DATA = ROOT.parent / "shared" / "data"

# What every recipe shares: chosen on LCSTS validation (benchmarks/results/quality_*.json).
COMMON_FLAGS = [
    "--tokenizer_segmentation", "char", "--tokenizer_vocab_size", "8000",
    "--do_train", "--do_eval", "--do_predict", "--predict_with_generate",
    "--lr_scheduler_type", "constant_with_warmup", "--warmup_steps", "300", "--learning_rate", "1e-3",
    "--weight_decay", "0.01", "--adam_beta2", "0.98", "--max_grad_norm", "1.0", "--label_smoothing_factor", "0.1",
    "--per_device_train_batch_size", "32", "--per_device_eval_batch_size", "64", "--max_steps", "1000000",
    "--save_strategy", "no", "--eval_strategy", "no", "--logging_steps", "100", "--report_to", "none",
    "--disable_tqdm", "true", "--seed", "0", "--num_beams", "4", "--no_repeat_ngram_size", "3",
]


@dataclass
class Recipe:
    folder: str
    train_file: str
    validation_file: str
    test_file: str
    max_train_minutes: float
    flags: list[str] = field(default_factory=list)
    # fine-tune another recipe's checkpoint (outputs/<start_from>) instead of training from nothing
    start_from: str | None = None
    # train on windows of whole stories of at most this many characters (scripts/evenings.py),
    # their headlines taken from story_file
    window_chars: int | None = None
    story_file: str | None = None
    # the extractive baselines printed beside the model (names in baselines.BASELINES)
    baselines: tuple[str, ...] = ("first sentence",)


RECIPES = {
    # Weibo posts (~110 characters) -> the author's headline (~19)
    "lcsts": Recipe(
        folder="lcsts", train_file="train.jsonl", validation_file="validation.jsonl", test_file="dev_test.jsonl",
        max_train_minutes=120,
        flags=["--config_name", "headline", "--max_source_length", "192", "--max_target_length", "40"],
    ),
    # CCTV news stories (median 366 characters) -> their headline (~18). The first 256 characters
    # hold 86.7% of the headline's characters (all 512: 89.0%, the whole story: 89.6%; validation)
    # at 3 s a step against 7 s for 512 (batch 32, this CPU): twice the steps in the same minutes.
    "xwlb-story": Recipe(
        folder="xwlb", train_file="story_train.jsonl.gz", validation_file="story_validation.jsonl.gz",
        test_file="story_dev_test.jsonl.gz", max_train_minutes=120,
        flags=["--config_name", "headline", "--max_source_length", "256", "--max_target_length", "40"],
    ),
    # a whole evening of CCTV news (median 6,914 characters, at most 31K) -> its rundown (~287):
    # the story checkpoint, its position tables grown to 16K, fine-tuned on windows of whole
    # stories; validation and dev_test read the full evenings. No repeated-n-gram ban: 27% of
    # validation rundowns repeat a 10-character span ("习近平总书记..." headlines).
    "xwlb-program": Recipe(
        folder="xwlb", train_file="program_train.jsonl.gz", validation_file="program_validation.jsonl.gz",
        test_file="program_dev_test.jsonl.gz", max_train_minutes=100, start_from="xwlb-story",
        window_chars=4096, story_file="story_train.jsonl.gz",
        flags=["--max_source_length", "16384", "--max_target_length", "512", "--config_overrides",
               "max_position_embeddings=16384", "--per_device_train_batch_size", "4", "--per_device_eval_batch_size",
               "1", "--learning_rate", "5e-4", "--warmup_steps", "50", "--no_repeat_ngram_size", "0",
               "--max_eval_samples", "30"],
        baselines=("first 287 characters", "story leads in the first 1024 characters", "story leads of the whole evening"),
    ),
}


def train_command(name: str, recipe: Recipe, args) -> list[str]:
    folder = DATA / recipe.folder
    output_dir = Path(args.output_dir or ROOT / "outputs" / name)
    train_file = folder / recipe.train_file
    start = []
    if recipe.start_from:
        start = ["--model_name_or_path", str(Path(args.start_from or ROOT / "outputs" / recipe.start_from))]
    if recipe.window_chars:
        train_file = output_dir / f"train_windows_{recipe.window_chars}.jsonl"  # written by main() before training
    return [
        "--train_file", str(train_file), "--validation_file", str(folder / recipe.validation_file),
        "--test_file", str(folder / recipe.test_file), "--output_dir", str(output_dir),
        "--max_train_minutes", str(args.max_train_minutes or recipe.max_train_minutes),
        *start, *COMMON_FLAGS, *recipe.flags, *args.train_flags,
    ]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", choices=sorted(RECIPES))
    parser.add_argument("--max_train_minutes", type=float, default=None, help="override the recipe's training budget")
    parser.add_argument("--output_dir", default=None, help="default: outputs/<recipe>")
    parser.add_argument("--start_from", default=None,
                        help="xwlb-program: the checkpoint to fine-tune (default: outputs/xwlb-story)")
    parser.add_argument("--dry_run", action="store_true", help="print the train.py arguments and stop")
    parser.epilog = "Flags after `--` go to scripts/train.py and win over the recipe's."
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    args.train_flags = argv[split + 1 :]
    recipe = RECIPES[args.recipe]
    command = train_command(args.recipe, recipe, args)
    if args.dry_run:
        print("python scripts/train.py " + " ".join(command))
        return {}
    files = (recipe.train_file, recipe.validation_file, recipe.test_file, *filter(None, [recipe.story_file]))
    missing = [p for p in (DATA / recipe.folder / f for f in files) if not p.is_file()]
    if missing:
        parser.exit(2, f"error: the {args.recipe} recipe reads {missing[0]}, which is not there; it trains on the shared "
                       f"data in place (../shared/data next to this checkout).\n")
    if recipe.start_from:
        start = Path(command[command.index("--model_name_or_path") + 1])
        if not (start / "config.json").is_file():
            parser.exit(2, f"error: the {args.recipe} recipe fine-tunes {start}, which holds no checkpoint; run "
                           f"`make {recipe.start_from}` first, or give --start_from <checkpoint folder>.\n")
    if recipe.window_chars:
        from evenings import write_windows

        train_file = Path(command[command.index("--train_file") + 1])
        cut = write_windows(DATA / recipe.folder / recipe.train_file, DATA / recipe.folder / recipe.story_file,
                            train_file, recipe.window_chars)
        print(f"training windows: {json.dumps(cut)} -> {train_file}", flush=True)

    import train
    from baselines import BASELINES
    from rouge_zh import rouge_scores
    from tokenization.build_vocab import read_jsonl

    started = time.perf_counter()
    metrics = train.main(command)
    minutes = (time.perf_counter() - started) / 60
    output_dir = Path(command[command.index("--output_dir") + 1])
    test_rows = read_jsonl(DATA / recipe.folder / recipe.test_file)
    test_rows = test_rows[: metrics.get("predict_samples", len(test_rows))]  # --max_predict_samples: the same rows
    references = [r["summary"] for r in test_rows]
    baselines = {name: rouge_scores([BASELINES[name](r["document"]) for r in test_rows], references)
                 for name in recipe.baselines}
    model = {key.removeprefix("predict_"): value for key, value in metrics.items() if key.startswith("predict_")}
    results = {"recipe": args.recipe, "minutes_total": round(minutes, 1), "train_steps": json.loads((output_dir / "trainer_state.json").read_text())["global_step"],
               "dev_test": model, "dev_test_baselines": baselines,
               "validation": {k.removeprefix("eval_"): v for k, v in metrics.items() if k.startswith("eval_")},
               "train_command": "python scripts/train.py " + " ".join(command)}
    (output_dir / "recipe_results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"\n{args.recipe}: {minutes:.0f} minutes in all; dev_test ({len(test_rows)} pairs), character ROUGE F1")
    print(f"{'system':<36} {'R-1':>6} {'R-2':>6} {'R-L':>6} {'distinct':>8}")
    for system, scores in (("reformer-zh", model), *baselines.items()):
        print(f"{system:<36} {scores.get('rouge1', float('nan')):>6.1f} {scores.get('rouge2', float('nan')):>6.1f} "
              f"{scores.get('rougeL', float('nan')):>6.1f} {scores.get('distinct_share', float('nan')):>8.1%}")
    print(f"checkpoint: {output_dir}")
    return results


if __name__ == "__main__":
    from allocator import configure_allocator

    configure_allocator()
    main()
