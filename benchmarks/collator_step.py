"""LCSTS training step with transformers' `DataCollatorForSeq2Seq` (labels padded to the encoder's
chunk multiple, no decoder mask: what scripts/train.py used) and with `ReformerZhSeq2SeqCollator`
(labels to a multiple of 8, `decoder_attention_mask`), on the model scripts/train.py builds by
default (`small`, a character tokenizer built from the training file as in docs/training.md's LCSTS run).

The two collators take turns on the same batches of `--batch_size` pairs in one process, so a
busier stretch of the machine hits both alike; forward + loss + backward, median of the timed steps.

    python benchmarks/collator_step.py --out benchmarks/results/collator_step.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import DataCollatorForSeq2Seq  # noqa: E402

from reformer_zh.training import train  # noqa: E402
from reformer_zh.training.collator import ReformerZhSeq2SeqCollator  # noqa: E402
from tokenization.build_vocab import build_tokenizer  # noqa: E402


def read_pairs(path: str) -> list[dict]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_file", default=str(ROOT.parent / "shared" / "data" / "lcsts" / "train.jsonl"))
    parser.add_argument("--config_name", default="small")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--max_source_length", type=int, default=256)
    parser.add_argument("--max_target_length", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    pairs = read_pairs(args.train_file)
    with tempfile.TemporaryDirectory() as folder:
        tokenizer = build_tokenizer(train_file=args.train_file, output_dir=folder, segmentation="char",
                                    text_columns=["document", "summary"])
    transformers.set_seed(0)
    model = train.load_model(train.ModelArguments(config_name=args.config_name), tokenizer).train()
    collators = {
        "DataCollatorForSeq2Seq": DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100,
                                                         pad_to_multiple_of=train.chunk_multiple(model.config)),
        "ReformerZhSeq2SeqCollator": ReformerZhSeq2SeqCollator(tokenizer, model=model,
                                                               pad_to_multiple_of=train.chunk_multiple(model.config)),
    }
    sample = random.Random(0).sample(pairs, args.batch_size * (args.warmup + args.steps))
    features = []
    for pair in sample:
        encoded = tokenizer(pair["document"], max_length=args.max_source_length, truncation=True)
        encoded["labels"] = tokenizer(text_target=pair["summary"], max_length=args.max_target_length,
                                      truncation=True)["input_ids"]
        features.append(dict(encoded))

    times: dict[str, list[float]] = {name: [] for name in collators}
    label_lengths: dict[str, list[int]] = {name: [] for name in collators}
    input_lengths: dict[str, list[int]] = {name: [] for name in collators}
    for step in range(args.warmup + args.steps):
        batch_features = features[step * args.batch_size: (step + 1) * args.batch_size]
        for name, collator in collators.items():
            batch = collator(batch_features)
            input_lengths[name].append(batch["input_ids"].shape[1])
            label_lengths[name].append(batch["labels"].shape[1])
            started = time.perf_counter()
            model(**batch).loss.backward()
            model.zero_grad(set_to_none=True)
            if step >= args.warmup:
                times[name].append(time.perf_counter() - started)
    old, new = (statistics.median(times[name]) for name in collators)
    results = [{"collator": name, "seconds_per_step": statistics.median(times[name]), "runs": times[name],
                "input_lengths": input_lengths[name], "label_lengths": label_lengths[name]} for name in collators]
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "threads": args.threads,
                    "ld_preload": os.environ.get("LD_PRELOAD", ""), "torch": torch.__version__,
                    "python": platform.python_version()},
        "settings": vars(args),
        "vocab_size": len(tokenizer),
        "results": results,
        "new_over_old": new / old,
    }
    for result in results:
        input_length, label_length = (statistics.mean(result[key]) for key in ("input_lengths", "label_lengths"))
        print(f"{result['collator']:>26}  {result['seconds_per_step']:.3f} s/step  input length {input_length:.0f}, "
              f"label length {label_length:.1f}")
    print(f"new / old: {new / old:.3f}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
