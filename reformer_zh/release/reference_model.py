"""The trained model that ships with the package: where it lives, and how a checkpoint becomes it.

`reformer_zh/reference_model/` is a complete, self-contained checkpoint folder: weights
(safetensors), config naming the custom pipeline, generation config, tokenizer, a model card and
the results JSON of the run that trained it, and the model's own code, which git does not hold:
it is written from the project's modules when the wheel is built and by `reference_model_dir()`
in a checkout (reformer_zh/release/remote_code.py). `reformer-zh-summarize`,
`make demo` and `pipeline("summarization", model=reference_model_dir(), trust_remote_code=True)`
use it without training anything.

The weights are stored in bfloat16, half the bytes of float32, and load as float32
(`config.dtype`): bf16 -> fp32 is exact, and bf16 inference on a CPU without bf16 hardware runs
emulated and slowly. The folder is checked the way `reformer-zh-publish` checks a Hub
repository: it must load with trust_remote_code=True in a process where this project cannot be
imported, and give the logits of the model as shipped (its bf16 weights, computed in float32).

    python -m reformer_zh.release.reference_model outputs/xwlb-story
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

REFERENCE_MODEL_DIR = Path(__file__).resolve().parents[1] / "reference_model"
MAX_MEGABYTES = 25  # what a wheel can carry without weighing on every install
DATA_TERMS = {
    "xwlb": "xwlb (新闻联播, CCTV evening-news transcripts from the CCTV site via china-data/xwlb): for learning "
            "use only, CCTV keeps all rights; research and learning use only, no commercial use",
    "lcsts": "LCSTS (short Weibo news texts and their headlines): research use only",
    "csl": "CSL (Chinese scientific-literature abstracts and their titles; ydli-ai/CSL and the CLGE set): "
           "Apache-2.0 as stated by CSL",
    "cail2020": "CAIL2020 司法摘要 (first-instance civil judgments and their summaries, provided by 司法大数据院 to "
                "the CAIL2020 challenge): no license stated; research-only competition data",
    "vcsum": "VCSum (Chinese meeting transcripts and their summaries, hahahawu/VCSum): MIT",
}
# data whose terms allow research (and learning) use only: weights trained on it carry those terms
RESEARCH_ONLY = {"xwlb", "lcsts", "cail2020"}


def reference_model_dir() -> Path:
    """The shipped model's folder, its model code the project's own (written there in a checkout,
    where git holds none; an installed wheel carries it); FileNotFoundError (an OSError: one
    `error:` line from a command) with what to do when this installation carries no model."""
    from reformer_zh.release.remote_code import write_remote_code

    if not (REFERENCE_MODEL_DIR / "config.json").is_file():
        raise FileNotFoundError(
            f"no reference model at {REFERENCE_MODEL_DIR}: this installation does not carry one. Give a checkpoint "
            "with --model, or build the reference model with `make reference-model`.")
    try:
        write_remote_code(REFERENCE_MODEL_DIR)
    except OSError as error:
        raise OSError(f"the shipped model's folder {REFERENCE_MODEL_DIR} lacks its model code and cannot be written "
                      f"({error.strerror}): reinstall the package from its wheel.") from error
    return REFERENCE_MODEL_DIR


PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def folder_megabytes(folder: Path) -> float:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) / 1e6


def score_row(name: str, scores: dict) -> str:
    return (f"| {name} | {scores.get('rouge1', float('nan')):.1f} | {scores.get('rouge2', float('nan')):.1f} "
            f"| {scores.get('rougeL', float('nan')):.1f} | {scores.get('distinct_share', float('nan')):.1%} |")


STORY_LIMITS = ("Limits: a headline model for single news stories; it trained on their first 256 characters, and the "
                "summarization pipeline reads that much of each input (`task_specific_params` in config.json; "
                "`max_input_tokens=1024` reads up to its positions). Summaries copy heavily from the story.")
GENERAL_LIMITS = ("Limits: it reads the first 1,024 characters of a section (a whole meeting is read no further); "
                  "its summaries copy heavily from the document and can garble numbers and names; see the table "
                  "for where it is below the one-line rule.")


def results_section(results: dict, datasets: list[str], shipped: dict | None = None,
                    yardstick: dict | None = None, interpolation: dict | None = None) -> str:
    """The card's account of how the shipped model was trained and what it scores, from the
    recipe's results JSON (scripts/recipe.py writes it) and, when given, the measurement of the
    folder itself through the pipeline (benchmarks/shipped_model.py), on every set and shape
    (benchmarks/yardstick.py), and the weights' mixture with the model it was fine-tuned from
    (reformer_zh/training/interpolate_weights.py writes `interpolation.json`)."""
    machine = results.get("machine", {})
    test = results.get("dev_test", {})
    scored = [f"dev_test ({test.get('samples', '?')} stories from a later period than training), character ROUGE F1:",
              "", "| system | ROUGE-1 | ROUGE-2 | ROUGE-L | distinct outputs |", "|---|---:|---:|---:|---:|"]
    if yardstick:
        from reformer_zh.evaluation.yardstick_table import comparison_table

        scored = [f"{yardstick['split']} through `pipeline(\"summarization\")`, one document a call as a user "
                  "calls it (`benchmarks/yardstick.py`), character ROUGE-L beside each set's one-line rule:", "",
                  comparison_table({"reformer-zh": yardstick})]
    rows = [score_row("reformer-zh, the trained checkpoint (float32, documents cut to 256 tokens)", test)] if test else []
    if shipped:
        rows.append(score_row(f"reformer-zh as shipped, through the pipeline (bf16 weights, up to 1,024 tokens; "
                              f"{shipped['seconds_per_story']:.2f} s a story, batch {shipped['batch_size']})",
                              shipped["reformer_zh"]))
    for name, scores in results.get("dev_test_baselines", {}).items():
        rows.append(score_row(f"{name} (rule)", scores))
    terms = "\n".join(f"- {DATA_TERMS.get(name, name)}" for name in datasets)
    return "\n".join([
        "## The shipped reference model",
        "",
        "This folder ships inside the `reformer-zh` package (`reformer_zh/reference_model/`); "
        "`reformer-zh-summarize` and `make demo` use it by default; in Python: "
        "`pipeline(\"summarization\", model=reformer_zh.release.reference_model.reference_model_dir(), "
        "trust_remote_code=True)`.",
        "",
        f"- trained by: `python scripts/recipe.py {results.get('recipe')} --max_train_minutes "
        f"{results.get('minutes_training')}` ({results.get('train_steps')} steps, "
        f"{results.get('minutes_training')} training minutes, {results.get('minutes_total')} in all with evaluation)",
        f"- where: {machine.get('cpu', 'unknown CPU')}, {machine.get('threads', '?')} threads, "
        f"bf16 hardware {machine.get('bf16_hardware') or 'none'}, torch {machine.get('torch', '?')}",
        *([f"- started from the checkpoint `{results['started_from']}` (a fine-tune or a continued run: its own "
           "training comes first)"] if results.get("started_from") else []),
        f"- same steps on another machine: `{results.get('reproduce_by_steps')}`",
        *([f"- then its weights mixed with the model it was fine-tuned from: {interpolation['base_share']:g} of "
           f"that one's, {1 - interpolation['base_share']:g} of its own (WiSE-FT; `{portable(interpolation['command'])}`)"]
          if interpolation else []),
        "- weights stored in bfloat16, loaded as float32",
        "",
        *scored,
        *rows,
        "",
        "Data and its terms:",
        "",
        terms,
        "",
        GENERAL_LIMITS if yardstick else STORY_LIMITS,
        "",
    ])


def portable(value, roots: tuple[Path, ...] = (PACKAGE_ROOT.parent / "shared", PACKAGE_ROOT)):
    """`value` (a results JSON) with this machine's folders in its strings made relative to the
    checkout (../shared/data/..., outputs/...): a shipped file names no one's home folder."""
    if isinstance(value, dict):
        return {key: portable(item, roots) for key, item in value.items()}
    if isinstance(value, list):
        return [portable(item, roots) for item in value]
    if isinstance(value, str):
        for root, relative in zip(roots, ("../shared", ".")):
            value = value.replace(f"{root}/", f"{relative}/").replace(str(root), relative)
    return value


def trained_source_length(checkpoint: Path) -> int | None:
    """--max_source_length of the run that trained `checkpoint` (its training_summary.json).
    Chosen on validation for the shipped model (benchmarks/results/shipped_model_input_length_validation.json):
    read through the pipeline up to the 256 tokens it trained on, it scored R-L 47.8 against
    47.6 at its 1,024 positions, 3x faster."""
    summary = checkpoint / "training_summary.json"
    if not summary.is_file():
        return None
    return json.loads(summary.read_text(encoding="utf-8")).get("hyperparameters", {}).get("max_source_length")


def ship(checkpoint: Path, results_file: Path, out: Path = REFERENCE_MODEL_DIR,
         repo_id: str = "reformer-zh/reformer-zh-xwlb-headline", datasets: tuple[str, ...] = ("xwlb",),
         shipped_file: Path | None = None, yardstick_file: Path | None = None) -> Path:
    """Write `checkpoint` as the shipped model folder `out` (replacing it) and validate it;
    `shipped_file`, benchmarks/shipped_model.py's JSON of an earlier shipping of the same
    checkpoint, adds the folder's own measurement to the card, and `yardstick_file`,
    benchmarks/yardstick.py's JSON of the checkpoint, its scores on every set and shape."""
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    import modeling_reformer_zh  # noqa: F401  (registers the Auto classes)
    from reformer_zh.release import publish

    publish.check_checkpoint(checkpoint)
    if not results_file.is_file():
        raise FileNotFoundError(f"{results_file} does not exist: the card reports the recipe's measured results "
                                "(scripts/recipe.py writes recipe_results.json next to the checkpoint).")
    results = portable(json.loads(results_file.read_text(encoding="utf-8")))
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForSeq2SeqLM.from_pretrained(checkpoint, dtype=torch.float32).eval()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    model.to(torch.bfloat16).save_pretrained(out)
    model.to(torch.float32)  # the shipped, bf16-rounded weights computed in float32, as the folder loads
    config = json.loads((out / "config.json").read_text())
    config["dtype"] = "float32"  # stored in bf16, computed in fp32
    read = trained_source_length(checkpoint)
    if read is not None:  # the pipeline reads what the model trained on (validation: as good, 3x faster)
        params = config.get("task_specific_params") or {}
        params.setdefault("summarization", {})["max_input_tokens"] = read
        config["task_specific_params"] = params
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    tokenizer.save_pretrained(out)
    for name in ("all_results.json", "training_summary.json", "interpolation.json"):
        if (checkpoint / name).exists():
            shutil.copyfile(checkpoint / name, out / name)
    (out / "recipe_results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    research_only = sorted(RESEARCH_ONLY & set(datasets))
    publish.write_card(out / "README.md", checkpoint, repo_id, list(datasets), config,
                       sum(p.numel() for p in model.parameters()), publish.describe_tokenizer(out),
                       license_name="research-only" if research_only else None)
    card = (out / "README.md").read_text(encoding="utf-8")
    shipped = json.loads(shipped_file.read_text(encoding="utf-8")) if shipped_file else None
    yardstick = json.loads(yardstick_file.read_text(encoding="utf-8")) if yardstick_file else None
    mixed = checkpoint / "interpolation.json"
    interpolation = json.loads(mixed.read_text(encoding="utf-8")) if mixed.is_file() else None
    (out / "README.md").write_text(
        card.rstrip() + "\n\n" + results_section(results, list(datasets), shipped, yardstick, interpolation),
        encoding="utf-8")
    size = folder_megabytes(out)
    if size > MAX_MEGABYTES:
        raise ValueError(f"the reference model folder is {size:.1f} MB, more than the {MAX_MEGABYTES} MB a package "
                         "should carry: ship a smaller model.")
    publish.validate(out, publish.expected_probe(model, tokenizer))
    return out


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="a trained reformer-zh checkpoint folder")
    parser.add_argument("--results", default=None, help="its recipe_results.json (default: inside the checkpoint)")
    parser.add_argument("--out", default=str(REFERENCE_MODEL_DIR))
    parser.add_argument("--shipped_results", default=None,
                        help="benchmarks/shipped_model.py's JSON for this checkpoint, added to the card")
    parser.add_argument("--yardstick", default=None,
                        help="benchmarks/yardstick.py's JSON for this checkpoint, added to the card")
    parser.add_argument("--datasets", default="xwlb", help=f"comma-separated, from: {', '.join(DATA_TERMS)}")
    parser.add_argument("--repo_id", default="reformer-zh/reformer-zh-xwlb-headline", help="the name on the card")
    args = parser.parse_args(argv)
    checkpoint = Path(args.checkpoint)
    datasets = tuple(name.strip() for name in args.datasets.split(",") if name.strip())
    unknown = [name for name in datasets if name not in DATA_TERMS]
    if unknown:
        parser.error(f"--datasets: unknown {unknown[0]!r}; choose from: {', '.join(DATA_TERMS)}")
    out = ship(checkpoint, Path(args.results) if args.results else checkpoint / "recipe_results.json", Path(args.out),
               repo_id=args.repo_id, datasets=datasets,
               shipped_file=Path(args.shipped_results) if args.shipped_results else None,
               yardstick_file=Path(args.yardstick) if args.yardstick else None)
    print(f"reference model written to {out} ({folder_megabytes(out):.1f} MB), loads without the project")
    return out


if __name__ == "__main__":
    from reformer_zh.cli import run_command

    run_command(main)
