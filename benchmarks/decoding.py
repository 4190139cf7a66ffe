"""Choose a decoding option on validation, then report only the choice on dev_test (issue 13).

Beam search on the xwlb-program checkpoint can loop: one headline repeated until the token
limit. A repeated-n-gram ban stops that, and also forbids the repeats that references do have
(a 10-character span recurs in 27% of validation rundowns, a 16-character one in 9%), so the
size is measured, not guessed. Each candidate summarizes the first --validation_samples
validation evenings through the summarization pipeline (the path users take: the checkpoint's
generation config, overridden by the candidate's options); the best validation ROUGE-L is
then, with --dev_test, run once on the whole dev_test (recorded in
benchmarks/results/dev_test_ledger.jsonl), timed per evening and split by length. dev_test never
takes part in the choice. Results are written after every candidate, so a stopped run keeps
what it measured.

    python benchmarks/decoding.py outputs/xwlb-program \\
        --candidates no_repeat_ngram_size=0 no_repeat_ngram_size=10 no_repeat_ngram_size=16 \\
        --out benchmarks/results/decoding_xwlb_program.json [--dev_test]

`--read_characters 1024` is the control: the same checkpoint and choice reading only the first
1,024 characters of every evening, as a 1,024-position model would.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
XWLB = ROOT.parent / "shared" / "data" / "xwlb"


def parse_candidate(text: str) -> dict:
    """'no_repeat_ngram_size=10,repetition_penalty=1.2' -> {'no_repeat_ngram_size': 10, 'repetition_penalty': 1.2}"""
    options = {}
    for item in filter(None, text.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"candidate {text!r}: {item!r} is not key=value (for example no_repeat_ngram_size=10)")
        options[key.strip()] = json.loads(value)
    return options


def load_summarizer(model: str):
    """The summarization pipeline of a checkpoint: ours as users load it; for a baseline trained
    by train.py (BART: no custom pipeline in its config, and v5 has no summarization task of its
    own) the same pipeline class around the model, which truncates an input to the model's
    positions (the first 1,023 characters and [EOS] for `bart-headline`)."""
    from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer, pipeline

    import modeling_reformer_zh  # noqa: F401  (registers the Auto classes)
    from modeling_reformer_zh.pipeline_reformer_zh import SummarizationPipeline

    if getattr(AutoConfig.from_pretrained(model, trust_remote_code=True), "custom_pipelines", None):
        return pipeline("summarization", model=model, trust_remote_code=True)
    return SummarizationPipeline(model=AutoModelForSeq2SeqLM.from_pretrained(model),
                                 tokenizer=AutoTokenizer.from_pretrained(model, trust_remote_code=True))


def summarize_all(summarizer, rows: list[dict], options: dict) -> tuple[list[str], list[float]]:
    import torch

    predictions, seconds = [], []
    for row in rows:
        started = time.perf_counter()
        with torch.inference_mode():
            result = summarizer(row["document"], truncation=True, **options)
        seconds.append(time.perf_counter() - started)
        predictions.append(result[0]["summary_text"])
    return predictions, seconds


def scored(predictions: list[str], seconds: list[float], rows: list[dict]) -> dict:
    from reformer_zh.evaluation.rouge_zh import rouge_scores

    references = [row["summary"] for row in rows]
    return {**rouge_scores(predictions, references),
            "prediction_to_reference_length": sum(map(len, predictions)) / max(sum(map(len, references)), 1),
            "seconds_per_evening": {"median": statistics.median(seconds), "mean": statistics.mean(seconds),
                                    "max": max(seconds)}}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="checkpoint folder")
    parser.add_argument("--candidates", nargs="+", required=True,
                        help="generate() options per candidate, comma-separated key=value (JSON values)")
    parser.add_argument("--validation_file", default=str(XWLB / "program_validation.jsonl.gz"))
    parser.add_argument("--test_file", default=str(XWLB / "program_dev_test.jsonl.gz"))
    parser.add_argument("--validation_samples", type=int, default=30)
    parser.add_argument("--split_at", type=int, default=8192, help="dev_test is also scored up to and past this many characters")
    parser.add_argument("--read_characters", type=int, default=None,
                        help="the control of what reading the whole evening is worth: every document (validation "
                             "and dev_test) cut to its first N characters before the model sees it")
    parser.add_argument("--dev_test", action="store_true",
                        help="score the choice on dev_test too: once per reported system (ledgered)")
    parser.add_argument("--out", default=None, help="write the results here as JSON (after every candidate)")
    args = parser.parse_args(argv)
    if args.read_characters is not None and args.read_characters < 1:
        parser.error(f"--read_characters {args.read_characters}: give a positive number of characters")
    candidates = [parse_candidate(c) for c in args.candidates]
    for path in (args.validation_file, *([args.test_file] if args.dev_test else [])):
        if not Path(path).is_file():
            parser.exit(2, f"error: {path} is not there; this benchmark reads the shared xwlb data in place "
                           "(../shared/data/xwlb next to this checkout).\n")

    import torch

    from reformer_zh.evaluation.rouge_zh import rouge_scores
    from tokenization.build_vocab import read_jsonl

    def read(path: str) -> list[dict]:
        rows = read_jsonl(path)
        if args.read_characters:  # the reference stays whole: only what the model reads is cut
            rows = [{**row, "document": row["document"][: args.read_characters]} for row in rows]
        return rows

    summarizer = load_summarizer(args.model)
    validation = read(args.validation_file)[: args.validation_samples]
    results = {"model": args.model, "torch_threads": torch.get_num_threads(), "read_characters": args.read_characters,
               "generation_config": summarizer.model.generation_config.to_diff_dict(),
               "validation_evenings": len(validation), "validation": []}

    def save() -> None:
        if args.out:
            Path(args.out).write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")

    for options in candidates:
        predictions, seconds = summarize_all(summarizer, validation, options)
        results["validation"].append({"options": options, **scored(predictions, seconds, validation)})
        print(f"validation {options}: R-L {results['validation'][-1]['rougeL']:.1f}, "
              f"distinct {results['validation'][-1]['distinct_share']:.1%}", flush=True)
        save()
    chosen = max(results["validation"], key=lambda r: r["rougeL"])["options"]
    results["chosen"] = chosen
    if not args.dev_test:
        save()
        print(f"chosen on validation: {chosen}")
        return results
    from reformer_zh.evaluation.dev_test_ledger import record_dev_test_scoring

    results["dev_test_scorings"] = record_dev_test_scoring(
        "decoding.py", args.model, {**chosen, "read_characters": args.read_characters})
    test = read(args.test_file)
    predictions, seconds = summarize_all(summarizer, test, chosen)
    by_length = {}
    for name, keep in ((f"up to {args.split_at} characters", lambda n: n <= args.split_at),
                       (f"longer than {args.split_at} characters", lambda n: n > args.split_at)):
        chosen_rows = [i for i, row in enumerate(test) if keep(len(row["document"]))]
        by_length[name] = {"evenings": len(chosen_rows),
                           **rouge_scores([predictions[i] for i in chosen_rows], [test[i]["summary"] for i in chosen_rows])}
    results["dev_test"] = {"evenings": len(test), **scored(predictions, seconds, test), "by_length": by_length}
    results["dev_test_examples"] = [{"prediction": p, "reference": r["summary"]} for p, r in zip(predictions[:3], test)]
    suffix = f"_first_{args.read_characters}" if args.read_characters else ""
    predictions_file = Path(args.model) / f"generated_predictions_decoding{suffix}.jsonl"
    predictions_file.write_text("".join(json.dumps({"prediction": p, "reference": r["summary"]}, ensure_ascii=False) + "\n"
                                        for p, r in zip(predictions, test)))
    results["dev_test_predictions"] = str(predictions_file)
    save()
    print(json.dumps({k: v for k, v in results.items() if k != "dev_test_examples"}, indent=2, ensure_ascii=False))
    return results


if __name__ == "__main__":
    from reformer_zh.cli import run_command

    run_command(main)
