"""xwlb-program predictions scored by how long the evening is: does the model read past the
4,096 characters its training windows reach? Reads generated_predictions.jsonl (written by
scripts/train.py --do_predict) beside the dev_test evenings, in the same order.

    python benchmarks/program_by_length.py outputs/xwlb-program --out benchmarks/results/program_by_length.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEV_TEST = ROOT.parent / "shared" / "data" / "xwlb" / "program_dev_test.jsonl.gz"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="a folder with generated_predictions.jsonl")
    parser.add_argument("--evenings", default=str(DEV_TEST))
    parser.add_argument("--split_at", type=int, default=8192, help="characters (every dev_test evening is longer than the 4,096 of the training windows)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    from reformer_zh.evaluation.baselines import story_leads
    from reformer_zh.evaluation.rouge_zh import rouge_scores
    from tokenization.build_vocab import read_jsonl

    predictions = read_jsonl(Path(args.checkpoint) / "generated_predictions.jsonl")
    evenings = read_jsonl(args.evenings)[: len(predictions)]
    if [p["reference"] for p in predictions] != [e["summary"] for e in evenings]:
        raise ValueError(f"{args.checkpoint}/generated_predictions.jsonl is not in the order of {args.evenings}")
    results = {}
    for name, keep in ((f"up to {args.split_at} characters", lambda n: n <= args.split_at),
                       (f"longer than {args.split_at} characters", lambda n: n > args.split_at)):
        chosen = [i for i, e in enumerate(evenings) if keep(len(e["document"]))]
        references = [evenings[i]["summary"] for i in chosen]
        results[name] = {
            "evenings": len(chosen),
            "model": rouge_scores([predictions[i]["prediction"] for i in chosen], references),
            "story leads of the whole evening": rouge_scores([story_leads(evenings[i]["document"]) for i in chosen],
                                                             references),
            "prediction_to_reference_length": sum(len(predictions[i]["prediction"]) for i in chosen)
            / max(sum(len(r) for r in references), 1),
        }
    print(json.dumps(results, indent=2, ensure_ascii=False))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    return results


if __name__ == "__main__":
    from reformer_zh.cli import run_command

    run_command(main)
