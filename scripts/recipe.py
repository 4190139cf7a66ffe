"""The recommended recipes, one command each: `make lcsts`, `make xwlb-story`, `make xwlb-program`
(and the baselines' `make xwlb-story-bart`, `make xwlb-program-bart`, `make xwlb-story-led`,
`make xwlb-program-led`), and `make general`, issue 43's model for every kind of document.

Each trains from nothing on ../shared/data (a character tokenizer built from the training
file, then scripts/train.py with the flags below), inside a wall-clock budget that fits a
2-core CPU, and leaves the checkpoint in outputs/<recipe>/, loadable by
`pipeline("summarization", model="outputs/<recipe>", trust_remote_code=True)`. At the end it
prints the validation scores beside the first-sentence baseline (with --dev_test, the dev_test
scores, recorded in benchmarks/results/dev_test_ledger.jsonl) and writes them to
outputs/<recipe>/recipe_results.json.

    python scripts/recipe.py lcsts
    python scripts/recipe.py xwlb-story --max_train_minutes 30     # a shorter run of the same recipe
    python scripts/recipe.py lcsts --dry_run                       # print the train.py command only
    python scripts/recipe.py lcsts -- --bf16 --per_device_train_batch_size 128   # extra train.py flags (GPU)

`xwlb-program` fine-tunes the `xwlb-story` checkpoint (outputs/xwlb-story, or --start_from) on
whole evenings: it trains on windows of whole stories (scripts/evenings.py) and evaluates on
the full evenings. `xwlb-story-bart` and `xwlb-program-bart` are the same two steps for the
long-input side-by-side's BART (1,024 positions: it reads the first 1,023 characters), and
`xwlb-story-led` and `xwlb-program-led` for its LED (sliding-window attention, 16,384 positions).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
DATA = ROOT.parent / "shared" / "data"

# What every recipe shares: chosen on LCSTS validation (benchmarks/results/quality_*.json); the
# learning rate cools to 0 over the last 20% of the budget (issue 33; reformer_zh/training/training_budget.py).
COMMON_FLAGS = [
    "--tokenizer_segmentation", "char", "--tokenizer_vocab_size", "8000",
    "--do_train", "--do_eval", "--do_predict", "--predict_with_generate",
    "--lr_scheduler_type", "constant_with_warmup", "--warmup_steps", "300", "--learning_rate", "1e-3",
    "--lr_cooldown_share", "0.2",
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
    # leave the windows' news briefs out, so that block k goes with headline k (scripts/evenings.py)
    skip_briefs: bool = False
    # the extractive baselines printed beside the model (names in baselines.BASELINES)
    baselines: tuple[str, ...] = ("first sentence",)
    # the trained system's name in the printed table
    label: str = "reformer-zh"
    # the checkpoint becomes the model shipped in the package (reformer_zh/release/reference_model.py)
    ships: bool = False
    # train on this many rounds of every shared set's train split (reformer_zh/training/mixture.py)
    # instead of train_file; validation_file and test_file stay the folder's
    mixture_rounds: int | None = None


# What the three whole-evening fine-tunes share: one evening at a time in evaluation, a lower
# learning rate after a short warm-up from a story checkpoint, and the decoding chosen for ours.
PROGRAM_FLAGS = ["--per_device_eval_batch_size", "1", "--learning_rate", "5e-4", "--warmup_steps", "50",
                 "--no_repeat_ngram_size", "6", "--min_new_tokens", "150", "--max_eval_samples", "30"]


# No dropout in reformer-zh's xwlb recipes: they see each story about twice in their budgets
# (59,336 stories, 1,854 steps of 32 an epoch), where dropout regularises little, and on a CPU
# dropout's random numbers cost 28% of an fp32 story step and 41% of a bf16 one (issue 33's
# profile; benchmarks/story_step.py measures the step with and without). Issue 33 measured the
# 45-minute story recipe at dev_test R-L 49.9 (3,012 steps) without dropout and in bf16, against
# 44.2-45.8 (815-1,129 steps) with dropout 0.1 in fp32.
NO_DROPOUT = "hidden_dropout_prob=0.0,attention_probs_dropout_prob=0.0"


def story_recipe(preset: str, label: str = "reformer-zh") -> Recipe:
    """CCTV news stories -> their headlines, read up to 256 characters, for one preset."""
    dropout = ["--config_overrides", NO_DROPOUT] if label == "reformer-zh" else []  # the baselines: their own
    return Recipe(folder="xwlb", train_file="story_train.jsonl.gz", validation_file="story_validation.jsonl.gz",
                  test_file="story_dev_test.jsonl.gz", max_train_minutes=120, label=label,
                  flags=["--config_name", preset, "--max_source_length", "256", "--max_target_length", "40", *dropout])


PROGRAM_BASELINES = ("first 287 characters", "story leads in the first 1024 characters", "story leads of the whole evening")


def program_recipe(**fields) -> Recipe:
    """A whole CCTV evening (median 6,914 characters) -> its rundown: a fine-tune on windows of
    whole stories, their headlines from the story file; validation and dev_test read whole evenings
    beside the rules for rundowns. `fields`: what the program recipes set apart (start, windows,
    minutes, flags, label)."""
    return Recipe(folder="xwlb", train_file="program_train.jsonl.gz", validation_file="program_validation.jsonl.gz",
                  test_file="program_dev_test.jsonl.gz", story_file="story_train.jsonl.gz",
                  baselines=PROGRAM_BASELINES, **fields)

# The model that ships with the package (issue 34): the story recipe for 120 training minutes,
# a checkpoint every 20 (`--resume` continues an interrupted run with its minutes counted).
REFERENCE_MODEL = story_recipe("headline")
REFERENCE_MODEL = replace(REFERENCE_MODEL, ships=True, flags=[
    *REFERENCE_MODEL.flags, "--save_every_minutes", "20", "--save_total_limit", "1"])

# `start_from` naming the model shipped in the package (reformer_zh/reference_model/)
SHIPPED = "the shipped reference model"

# Issue 35's one-pass model: the shipped story model reads whole evenings with the sections it can
# see (a section row in the encoder, a summary-segment row in the decoder) and a copy pointer tied
# to the section of the headline it writes (copy_alignment_loss_weight); the training windows
# leave the news briefs out, as the pipeline does before a one-pass model reads an evening.
# Otherwise `xwlb-program`'s recipe. Weight 0.5 and 32 rows are first guesses, to be chosen on
# validation.
ONE_PASS_OVERRIDES = "section_embeddings=32,summary_segment_embeddings=32,copy_alignment_loss_weight=0.5"
# Its decoding, chosen on 30 validation evenings (docs/experiments.md): the pipeline writes one
# segment per section for it (its checkpoint says so), which makes the 150-token floor of
# PROGRAM_FLAGS a hindrance: once every section has its headline the last one would run on.
ONE_PASS_DECODING = ["--min_new_tokens", "1"]

# Issue 43's general model: the shipped story model fine-tuned on every shared set's train split
# together (reformer_zh/training/mixture.py: three fifths xwlb stories, a fifth LCSTS, CSL, CAIL and VCSum
# segments repeated so they count), reading up to its 1,024 positions (CAIL judgments have a
# median 711 characters, VCSum segments 2,128) and writing up to 400 tokens (CAIL summaries,
# about 286 characters). Scored on xwlb story validation at the end, the set a plain mixture
# starved; benchmarks/yardstick.py scores every set and shape. The rate is half the from-nothing
# one after a short warm-up, as for the other fine-tunes.
GENERAL = Recipe(
    folder="xwlb", train_file="story_train.jsonl.gz", validation_file="story_validation.jsonl.gz",
    test_file="story_dev_test.jsonl.gz", max_train_minutes=110, start_from=SHIPPED, mixture_rounds=10,
    flags=["--max_source_length", "1024", "--max_target_length", "400", "--config_overrides", NO_DROPOUT,
           "--learning_rate", "5e-4", "--warmup_steps", "100", "--max_eval_samples", "300",
           # a checkpoint every 20 minutes (`--resume` continues from it): a 105-minute run whose
           # process was lost during its final evaluation left nothing (docs/experiments.md)
           "--save_every_minutes", "20", "--save_total_limit", "1"],
)

RECIPES = {
    "reference-model": REFERENCE_MODEL,
    "general": GENERAL,
    # Weibo posts (~110 characters) -> the author's headline (~19)
    "lcsts": Recipe(
        folder="lcsts", train_file="train.jsonl", validation_file="validation.jsonl", test_file="dev_test.jsonl",
        max_train_minutes=120,
        flags=["--config_name", "headline", "--max_source_length", "192", "--max_target_length", "40"],
    ),
    # CCTV news stories (median 366 characters) -> their headline (~18). The first 256 characters
    # hold 86.7% of the headline's characters (all 512: 89.0%, the whole story: 89.6%; validation)
    # at 3 s a step against 7 s for 512 (batch 32, this CPU): twice the steps in the same minutes.
    "xwlb-story": story_recipe("headline"),
    # a whole evening of CCTV news (median 6,914 characters, at most 31K) -> its rundown (~287):
    # the story checkpoint, its position tables grown to 16K, fine-tuned on windows of whole
    # stories; validation and dev_test read the full evenings. The windows' positions start at
    # a random offset, so positions past 4,096 (which whole evenings reach) are trained too; no
    # attention dropout: it was 18% of a step (torch.profiler, batch 4 x 4,096) and one pass over
    # a fifth of the windows does not overfit. Decoding chosen on 30 validation evenings
    # (benchmarks/decoding.py, benchmarks/results/decoding_xwlb_program*.json): without a
    # repeated-n-gram ban beam search loops (R-L 11.8); a 6-gram ban stops it (17.1; 12-gram 15.9)
    # but stops short (0.29 of the reference length); at least 150 new tokens: 21.3 (250: 21.1,
    # length_penalty 2: 17.2).
    "xwlb-program": program_recipe(
        max_train_minutes=100, start_from="xwlb-story", window_chars=4096,
        flags=["--max_source_length", "16384", "--max_target_length", "512", "--config_overrides",
               f"max_position_embeddings=16384,encoder_position_offset_in_training=true,{NO_DROPOUT}",
               "--per_device_train_batch_size", "4", *PROGRAM_FLAGS],
    ),
    "xwlb-program-onepass": program_recipe(
        max_train_minutes=100, start_from=SHIPPED, window_chars=4096, skip_briefs=True,
        flags=["--max_source_length", "16384", "--max_target_length", "512", "--config_overrides",
               f"max_position_embeddings=16384,encoder_position_offset_in_training=true,{NO_DROPOUT},"
               f"{ONE_PASS_OVERRIDES}", "--per_device_train_batch_size", "4", *PROGRAM_FLAGS, *ONE_PASS_DECODING],
    ),
    # the one-pass model's second stage: whole evenings. 4,096-character windows hold a median 6
    # headlines (139 characters) where a validation evening's rundown has 12 (about 287), so the
    # first stage rarely trains the segment rows past 6 nor a rundown's full length; windows of
    # 16,384 characters hold whole evenings without their briefs (4,475 windows from 4,543
    # evenings, median 13 headlines and 5,771 characters; the same 26.7M characters as the 4,096
    # windows), two a step (`group_by_length` pairs similar lengths, so the padding stays small).
    "xwlb-program-onepass-whole": program_recipe(
        max_train_minutes=80, start_from="xwlb-program-onepass", window_chars=16384, skip_briefs=True,
        flags=["--max_source_length", "16384", "--max_target_length", "512", "--config_overrides",
               f"max_position_embeddings=16384,encoder_position_offset_in_training=true,{NO_DROPOUT},"
               f"{ONE_PASS_OVERRIDES}", "--per_device_train_batch_size", "2", *PROGRAM_FLAGS, *ONE_PASS_DECODING],
    ),
    # the side-by-side's full-attention baseline (issue 13): the same two recipes for a BART of
    # `headline`'s size, whose 1,024 positions read the first 1,023 characters of an evening
    # (and [EOS]); it fine-tunes on windows of whole stories of at most 1,023 characters (pairs it
    # can read entirely) with four times the batch (about the same characters a step)
    "xwlb-story-bart": story_recipe("bart-headline", "bart"),
    "xwlb-program-bart": program_recipe(
        max_train_minutes=100, start_from="xwlb-story-bart", window_chars=1023, label="bart",
        flags=["--max_source_length", "1024", "--max_target_length", "512", "--per_device_train_batch_size", "16",
               *PROGRAM_FLAGS],  # ours' decoding, until chosen for it
    ),
    # the side-by-side's sparse-attention baseline (issue 13): the same two recipes for an LED of
    # `headline`'s size (sliding windows of 256 tokens). Its positions are learned, one row each,
    # so it reads an evening as far as it trained: the fine-tune grows the story checkpoint's 1,024
    # rows to 16,384 by copying them (the LED paper's initialisation) and trains on windows of
    # whole stories up to 16,384 characters (most evenings whole; median 6,914), two a step
    # (about the characters of `xwlb-program`'s four 4,096-character windows); 16,384 is also
    # what reformer-zh reads.
    "xwlb-story-led": story_recipe("led-headline", "led"),
    "xwlb-program-led": program_recipe(
        max_train_minutes=100, start_from="xwlb-story-led", window_chars=16384, label="led",
        flags=["--max_source_length", "16384", "--max_target_length", "512", "--config_overrides",
               "max_encoder_position_embeddings=16384", "--per_device_train_batch_size", "2",
               *PROGRAM_FLAGS],  # ours' decoding, until chosen for it
    ),
}


@dataclass
class RecipePaths:
    output_dir: Path
    train_file: Path  # the windows file, for a recipe with `window_chars`: main() writes it before training
    start_from: Path | None


def recipe_paths(name: str, recipe: Recipe, args) -> RecipePaths:
    output_dir = Path(args.output_dir or ROOT / "outputs" / name)
    train_file = DATA / recipe.folder / recipe.train_file
    if recipe.window_chars:
        train_file = output_dir / f"train_windows_{recipe.window_chars}{'_headlined' if recipe.skip_briefs else ''}.jsonl"
    if recipe.mixture_rounds:  # a reweighted mixture is another file, never a stale one reused
        reweighting = "".join(f"_{setting.replace(' ', '-')}" for setting in args.mixture_rows)
        train_file = output_dir / f"train_mixture_{recipe.mixture_rounds}_rounds{reweighting}.jsonl"
    start_from = Path(args.start_from or ROOT / "outputs" / recipe.start_from) if recipe.start_from else None
    if recipe.start_from == SHIPPED and not args.start_from:  # the model every installation carries
        from reformer_zh.release.reference_model import reference_model_dir

        start_from = reference_model_dir()
    return RecipePaths(output_dir, train_file, start_from)


def train_command(recipe: Recipe, paths: RecipePaths, args) -> list[str]:
    folder = DATA / recipe.folder
    start = ["--model_name_or_path", str(paths.start_from)] if paths.start_from else []
    # a timed run, or the steps a timed run recorded (train_steps in its recipe_results.json)
    budget = (["--max_steps", str(args.max_steps)] if args.max_steps
              else ["--max_train_minutes", str(args.max_train_minutes or recipe.max_train_minutes)])
    return [
        "--train_file", str(paths.train_file), "--validation_file", str(folder / recipe.validation_file),
        "--test_file", str(folder / recipe.test_file), "--output_dir", str(paths.output_dir),
        *start, *COMMON_FLAGS, *recipe.flags, *budget, *args.train_flags,
        *([] if args.dev_test else ["--do_predict", "false"]),
        *(["--resume_from_checkpoint", str(latest_checkpoint(paths.output_dir))] if args.resume else []),
    ]


def latest_checkpoint(output_dir: Path) -> Path:
    """The newest checkpoint-<step> folder a run left in `output_dir` (for --resume)."""
    found = sorted(output_dir.glob("checkpoint-*"), key=lambda path: int(path.name.split("-")[-1])) \
        if output_dir.is_dir() else []
    if not found:
        raise FileNotFoundError(f"--resume: {output_dir} holds no checkpoint-<step> folder to continue from; start "
                                "the run without --resume.")
    return found[-1]


def parse_arguments(argv: list[str] | None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", choices=sorted(RECIPES))
    parser.add_argument("--max_train_minutes", type=float, default=None, help="override the recipe's training budget")
    parser.add_argument("--max_steps", type=int, default=None,
                        help="train this many steps instead of a time budget: a timed run's train_steps reproduces it "
                             "on another machine (its learning rate then cools over the last 20%% of the steps)")
    parser.add_argument("--dev_test", action="store_true",
                        help="score dev_test too, recorded in benchmarks/results/dev_test_ledger.jsonl: once per "
                             "reported system (choices are made on validation, which every run scores)")
    parser.add_argument("--output_dir", default=None, help="default: outputs/<recipe>")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run from the newest checkpoint in its output folder (the "
                             "training minutes it spent count against the budget)")
    parser.add_argument("--start_from", default=None,
                        help="the checkpoint a fine-tuning recipe starts from (xwlb-program(-bart, -led): default "
                             "outputs/xwlb-story(-bart, -led); general: the shipped model), e.g. an earlier run's to "
                             "continue it")
    parser.add_argument("--mixture_rows", action="append", default=[], metavar="PART=ROWS",
                        help="general: the rows each round of the mixture takes of one part instead of "
                             "reformer_zh/training/mixture.py's share (e.g. cail2020=2824 gives the judgments "
                             "twice their weight); repeat for several parts")
    parser.add_argument("--dry_run", action="store_true", help="print the train.py arguments and stop")
    parser.epilog = "Flags after `--` go to scripts/train.py and win over the recipe's."
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    args.train_flags = argv[split + 1 :]
    return parser, args


def mixture_parts(parser: argparse.ArgumentParser, args, recipe: Recipe):
    """The parts and shares of the recipe's mixture, `--mixture_rows` applied, or None for a
    recipe without one (one `error:` line for a part that does not exist, a bad count, or
    --mixture_rows given to a recipe without a mixture)."""
    from reformer_zh.training.mixture import GENERAL_MIXTURE, reweighted

    if not recipe.mixture_rounds:
        if args.mixture_rows:
            parser.exit(2, f"error: --mixture_rows reweights a mixture, and the {args.recipe} recipe trains on one "
                           "file; use it with the general recipe.\n")
        return None
    try:
        return reweighted(GENERAL_MIXTURE, args.mixture_rows)
    except ValueError as problem:
        parser.exit(2, f"error: {problem}\n")


def prepare_inputs(parser: argparse.ArgumentParser, args, recipe: Recipe, paths: RecipePaths, mixture) -> None:
    """The shared data the recipe reads, and the checkpoint it starts from, checked (one `error:`
    line when missing); its windows or mixture (`mixture_parts`) written to its training file."""
    files = (recipe.train_file, recipe.validation_file, recipe.test_file, *filter(None, [recipe.story_file]))
    missing = [p for p in (DATA / recipe.folder / f for f in files) if not p.is_file()]
    if missing:
        parser.exit(2, f"error: the {args.recipe} recipe reads {missing[0]}, which is not there; it trains on the shared "
                       f"data in place (../shared/data next to this checkout).\n")
    if paths.start_from and not (paths.start_from / "config.json").is_file():
        parser.exit(2, f"error: the {args.recipe} recipe fine-tunes {paths.start_from}, which holds no checkpoint; "
                       f"run `make {recipe.start_from}` first, or give --start_from <checkpoint folder>.\n")
    if recipe.window_chars:
        from evenings import write_windows

        cut = write_windows(DATA / recipe.folder / recipe.train_file, DATA / recipe.folder / recipe.story_file,
                            paths.train_file, recipe.window_chars, recipe.skip_briefs)
        print(f"training windows: {json.dumps(cut)} -> {paths.train_file}", flush=True)
    if mixture:
        from reformer_zh.training.mixture import write_mixture

        mixed = write_mixture(paths.train_file, recipe.mixture_rounds, DATA, mixture)
        print(f"training mixture: {json.dumps(mixed, ensure_ascii=False)} -> {paths.train_file}", flush=True)


def reproduce_by_steps(args, steps: int) -> str:
    """The command that replays a run by its steps on another machine, with every choice the run
    was given: the checkpoint it continued (--start_from), the mixture's rows and the train.py
    flags after `--` (a run at another rate or seed is not the recipe's defaults)."""
    words = ["python", "scripts/recipe.py", args.recipe, "--max_steps", str(steps)]
    if args.start_from:
        words += ["--start_from", args.start_from]
    for setting in args.mixture_rows:
        words += ["--mixture_rows", setting]
    if args.train_flags:
        words += ["--", *args.train_flags]
    return shlex.join(words)


def run_results(args, recipe: Recipe, paths: RecipePaths, command: list[str], metrics: dict, minutes: float,
                mixture) -> dict:
    """What recipe_results.json records of a finished run: the machine, the minutes, the steps,
    the model's scores beside the rules' on the split it was scored on (validation unless
    --dev_test, which is entered in the ledger) and the command."""
    from reformer_zh.evaluation.baselines import BASELINES
    from reformer_zh.evaluation.rouge_zh import rouge_scores
    from reformer_zh.hardware import machine_record
    from tokenization.build_vocab import read_jsonl

    # the rules' scores on the split the model was scored on: validation in an exploration run
    validation_only = not args.dev_test
    scored_file = recipe.validation_file if validation_only else recipe.test_file
    scored_rows = read_jsonl(DATA / recipe.folder / scored_file)
    scored = metrics.get("eval_samples" if validation_only else "predict_samples", len(scored_rows))
    scored_rows = scored_rows[:scored]  # --max_eval_samples / --max_predict_samples: the same rows
    references = [r["summary"] for r in scored_rows]
    baselines = {name: rouge_scores([BASELINES[name](r["document"]) for r in scored_rows], references)
                 for name in recipe.baselines}
    model = {key.removeprefix("predict_"): value for key, value in metrics.items() if key.startswith("predict_")}
    steps = json.loads((paths.output_dir / "trainer_state.json").read_text())["global_step"]
    results = {"recipe": args.recipe, "machine": machine_record(), "minutes_total": round(minutes, 1),
               # training apart from evaluation: the budget bounds the first, the data sizes the rest
               "minutes_training": round(metrics.get("train_runtime", 0) / 60, 1),
               "minutes_validation": round(metrics.get("eval_runtime", 0) / 60, 1),
               "minutes_dev_test": round(metrics.get("predict_runtime", 0) / 60, 1),
               "train_steps": steps, "cooldown_started_step": metrics.get("train_cooldown_started_step"),
               "scored_pairs": len(scored_rows), "dev_test": model,
               ("validation_baselines" if validation_only else "dev_test_baselines"): baselines,
               "validation": {k.removeprefix("eval_"): v for k, v in metrics.items() if k.startswith("eval_")},
               "started_from": str(paths.start_from) if paths.start_from else None,
               "train_command": "python scripts/train.py " + " ".join(command),
               "reproduce_by_steps": reproduce_by_steps(args, steps)}
    if mixture:  # the training file is written from these shares, so they are the run's data
        results["mixture_rows"] = {part.name: part.rows_per_round for part in mixture}
    if args.dev_test:  # once per reported system; the ledger shows any second look
        from reformer_zh.evaluation.dev_test_ledger import record_dev_test_scoring

        results["dev_test_scorings"] = record_dev_test_scoring(f"recipe: {args.recipe}", str(paths.output_dir),
                                                               {"train_command": results["train_command"]})
    return results


def print_results(args, recipe: Recipe, paths: RecipePaths, results: dict) -> None:
    split_name = "dev_test" if args.dev_test else "validation"
    shown = results["dev_test"] if args.dev_test else results["validation"]
    baselines = results["dev_test_baselines" if args.dev_test else "validation_baselines"]
    print(f"\n{args.recipe}: {results['minutes_total']:.0f} minutes in all; {split_name} "
          f"({results['scored_pairs']} pairs), character ROUGE F1")
    print(f"{'system':<36} {'R-1':>6} {'R-2':>6} {'R-L':>6} {'distinct':>8}")
    for system, scores in ((recipe.label, shown), *baselines.items()):
        print(f"{system:<36} {scores.get('rouge1', float('nan')):>6.1f} {scores.get('rouge2', float('nan')):>6.1f} "
              f"{scores.get('rougeL', float('nan')):>6.1f} {scores.get('distinct_share', float('nan')):>8.1%}")
    print(f"checkpoint: {paths.output_dir}")


def main(argv: list[str] | None = None) -> dict:
    parser, args = parse_arguments(argv)
    recipe = RECIPES[args.recipe]
    paths = recipe_paths(args.recipe, recipe, args)
    command = train_command(recipe, paths, args)
    mixture = mixture_parts(parser, args, recipe)  # a bad --mixture_rows stops here, before any data is read
    if args.dry_run:
        print("python scripts/train.py " + " ".join(command))
        return {}
    prepare_inputs(parser, args, recipe, paths, mixture)
    from reformer_zh.training import train

    started = time.perf_counter()
    metrics = train.main(command)
    results = run_results(args, recipe, paths, command, metrics, (time.perf_counter() - started) / 60, mixture)
    (paths.output_dir / "recipe_results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print_results(args, recipe, paths, results)
    if recipe.ships:
        from reformer_zh.release.reference_model import folder_megabytes, ship

        shipped = ship(paths.output_dir, paths.output_dir / "recipe_results.json")
        print(f"shipped as the reference model: {shipped} ({folder_megabytes(shipped):.1f} MB)")
    return results


if __name__ == "__main__":
    from reformer_zh.allocator import configure_allocator

    configure_allocator()
    from reformer_zh.cli import run_command

    run_command(main)
