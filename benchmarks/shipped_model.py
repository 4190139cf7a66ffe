"""The shipped reference model as a user gets it: its folder through `pipeline("summarization")`.

Scores the folder (bf16 weights computed in float32, its saved generation config: 4 beams, no
repeated trigram) on a split of xwlb stories beside the first sentence: character ROUGE-1/2/L,
the share of distinct outputs, the most any one output is repeated (a collapsed model writes one
summary for many stories) beside the most any one reference is repeated (a series whose every
story has the same headline is not collapse) and how many of the stories given the most repeated
output have a reference it matches (ROUGE-L >= 80), and seconds per story on this machine,
batched as the command does. `--predictions FILE` writes every output beside its reference (JSONL).

    python benchmarks/shipped_model.py --split dev_test --out benchmarks/results/shipped_model_dev_test.json
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reformer_zh.evaluation.baselines import BASELINES  # noqa: E402
from reformer_zh.evaluation.dev_test_ledger import record_dev_test_scoring  # noqa: E402
from reformer_zh.hardware import machine_record  # noqa: E402
from reformer_zh.release.reference_model import reference_model_dir  # noqa: E402
from reformer_zh.evaluation.rouge_zh import rouge_scores  # noqa: E402
from shared_data import shared_rows, write_results  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "xwlb"


def how_it_was_trained(folder: Path) -> dict | None:
    """Steps, minutes and machine of the recipe run that made the folder (its recipe_results.json,
    which `make reference-model` ships with it), so one JSON holds a results row whole."""
    path = folder / "recipe_results.json"
    if not path.is_file():
        return None
    run = json.loads(path.read_text(encoding="utf-8"))
    return {"train_steps": run.get("train_steps"), "minutes_training": run.get("minutes_training"),
            "machine": run.get("machine"), "recipe": run.get("recipe")}


def repeats(outputs: list[str], references: list[str], matching_rouge_l: float = 80.0) -> dict:
    """The most repeated output beside the most repeated reference, and for how many of the
    stories given that output the reference says the same (ROUGE-L F1 >= `matching_rouge_l`)."""
    output, times = collections.Counter(outputs).most_common(1)[0]
    reference, reference_times = collections.Counter(references).most_common(1)[0]
    theirs = [mine_reference for mine, mine_reference in zip(outputs, references) if mine == output]
    matching = sum(rouge_scores([output], [one])["rougeL"] >= matching_rouge_l for one in theirs)
    return {"most_repeated_output": output, "most_repeated_times": times,
            "most_repeated_output_matching_references": matching,
            "most_repeated_reference": reference, "most_repeated_reference_times": reference_times}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="default: the shipped reference model")
    parser.add_argument("--split", choices=["validation", "dev_test"], default="validation")
    parser.add_argument("--limit", type=int, default=None, help="the first N stories only")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max_input_tokens", type=int, default=None,
                        help="read at most this many tokens of each story (default: the pipeline's)")
    parser.add_argument("--predictions", default=None, help="write id, output and reference of every story (JSONL)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = shared_rows(parser, DATA / f"story_{args.split}.jsonl.gz", args.limit)
    from transformers import pipeline

    model = args.model or str(reference_model_dir())
    summarizer = pipeline("summarization", model=model, trust_remote_code=True)
    started = time.perf_counter()
    reading = {} if args.max_input_tokens is None else {"max_input_tokens": args.max_input_tokens}
    outputs = [item["summary_text"] for item in summarizer([row["document"] for row in rows],
                                                           batch_size=args.batch_size, **reading)]
    seconds = time.perf_counter() - started
    references = [row["summary"] for row in rows]
    ours = rouge_scores(outputs, references)
    first = rouge_scores([BASELINES["first sentence"](row["document"]) for row in rows], references)
    repeated = repeats(outputs, references)
    most_repeated, times = repeated["most_repeated_output"], repeated["most_repeated_times"]
    result = {"model": model, "split": args.split, "stories": len(rows), "machine": machine_record(args.threads),
              "reformer_zh": ours, "first_sentence": first, **repeated,
              "seconds_per_story": round(seconds / len(rows), 4),
              "batch_size": args.batch_size, "max_input_tokens": args.max_input_tokens, "generation": "the folder's generation_config.json",
              "command": "python benchmarks/shipped_model.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "training": how_it_was_trained(Path(model))}
    if args.split == "dev_test":  # scored once per reported system; the ledger shows any second look
        options = {"batch_size": args.batch_size, "max_input_tokens": args.max_input_tokens, "limit": args.limit}
        result["dev_test_scorings"] = record_dev_test_scoring("shipped_model.py", model, options)
    print(f"{args.split} ({len(rows)} stories), character ROUGE F1; {result['machine']['cpu']}")
    for name, scores in (("shipped reformer-zh", ours), ("first sentence", first)):
        print(f"  {name:<20} R-1 {scores['rouge1']:5.1f}  R-2 {scores['rouge2']:5.1f}  R-L {scores['rougeL']:5.1f}  "
              f"distinct {scores['distinct_share']:.1%}")
    print(f"  most repeated output x{times}: {most_repeated} (its reference matches for "
          f"{repeated['most_repeated_output_matching_references']}); most repeated reference "
          f"x{repeated['most_repeated_reference_times']}: {repeated['most_repeated_reference']}\n"
          f"  {seconds / len(rows):.3f} s per story (batch {args.batch_size})")
    if args.predictions:
        with open(args.predictions, "w", encoding="utf-8") as handle:
            for row, output in zip(rows, outputs):
                handle.write(json.dumps({"id": row.get("id"), "output": output, "reference": row["summary"]},
                                        ensure_ascii=False) + "\n")
    write_results(args.out, result)
    return result


if __name__ == "__main__":
    main()
