"""Training speed of the general mixture with batches grouped by document length alone
(transformers' `group_by_length`, `--target_length_bucket 0`) and by summary bucket then
document length (`--target_length_bucket 32`, reformer_zh/training/length_grouping.py).

One round of the mixture (reformer_zh/training/mixture.py, 24,140 rows) is tokenized as the
general recipe reads it (1,024 document and 400 summary tokens). First, for every batch of the
epoch, the lengths each way pads documents and summaries to (no training). Then
scripts/train.py with the recipe's flags fine-tunes the shipped weights for `--steps` steps
each way, the ways taking turns `--rounds` times. With 50 steps both ways train on the same rows:
the sampler sorts mega-batches of 50 batches, so the first 50 steps are the first mega-batch,
batched differently.

    python benchmarks/mixture_batching.py --steps 50 --rounds 1 --out benchmarks/results/mixture_batching.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import datasets
import numpy as np
import torch
from transformers.trainer_pt_utils import get_length_grouped_indices

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reformer_zh.hardware import machine_record  # noqa: E402
from reformer_zh.release.reference_model import reference_model_dir  # noqa: E402
from reformer_zh.training import train  # noqa: E402
from reformer_zh.training.length_grouping import batch_shape_keys, padded_lengths  # noqa: E402
from reformer_zh.training.mixture import write_mixture  # noqa: E402

BATCH = 32
SOURCE_TOKENS, TARGET_TOKENS = 1024, 400
BUCKETS = (0, 32)


def epoch_padding(sources: np.ndarray, targets: np.ndarray, bucket: int, seed: int = 0) -> dict:
    """Mean tokens a batch pads its documents and summaries to over one epoch, grouped one way."""
    keys = sources.tolist() if bucket == 0 else batch_shape_keys(sources, targets, bucket)
    order = get_length_grouped_indices(keys, BATCH, generator=torch.Generator().manual_seed(seed))
    return {"document_tokens_per_batch": round(float(padded_lengths(order, sources, BATCH).mean()), 1),
            "summary_tokens_per_batch": round(float(padded_lengths(order, targets, BATCH).mean()), 1),
            "document_tokens_per_row": round(float(sources.mean()), 1),
            "summary_tokens_per_row": round(float(targets.mean()), 1)}


def row_lengths(train_file: Path) -> tuple[np.ndarray, np.ndarray]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(reference_model_dir(), trust_remote_code=True)
    rows = datasets.load_dataset("json", data_files=str(train_file), split="train")
    sources = [len(ids) for ids in tokenizer(list(rows["document"]), max_length=SOURCE_TOKENS, truncation=True)["input_ids"]]
    targets = [len(ids) for ids in tokenizer(text_target=list(rows["summary"]), max_length=TARGET_TOKENS,
                                              truncation=True)["input_ids"]]
    return np.array(sources), np.array(targets)


def train_seconds_per_step(train_file: Path, bucket: int, steps: int, output_dir: Path) -> float:
    """scripts/train.py as the general recipe runs it, `steps` steps; -> seconds a step (the
    Trainer's train_runtime, which excludes tokenizing and loading)."""
    metrics = train.main([
        "--train_file", str(train_file), "--output_dir", str(output_dir),
        "--model_name_or_path", str(reference_model_dir()), "--do_train", "--max_steps", str(steps),
        "--per_device_train_batch_size", str(BATCH), "--learning_rate", "5e-4", "--warmup_steps", "10",
        "--weight_decay", "0.01", "--adam_beta2", "0.98", "--label_smoothing_factor", "0.1",
        "--max_source_length", str(SOURCE_TOKENS), "--max_target_length", str(TARGET_TOKENS),
        "--config_overrides", "hidden_dropout_prob=0.0,attention_probs_dropout_prob=0.0",
        "--save_strategy", "no", "--report_to", "none", "--disable_tqdm", "true", "--logging_steps", str(steps),
        "--seed", "0", "--target_length_bucket", str(bucket)])
    return metrics["train_runtime"] / steps


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        train_file = Path(scratch) / "mixture.jsonl"
        write_mixture(train_file, rounds=1)
        sources, targets = row_lengths(train_file)
        padding = {str(bucket): epoch_padding(sources, targets, bucket) for bucket in BUCKETS}
        print(json.dumps(padding, indent=1), flush=True)
        seconds: dict[str, list[float]] = {str(bucket): [] for bucket in BUCKETS}
        for _ in range(args.rounds):
            for bucket in BUCKETS:
                seconds[str(bucket)].append(train_seconds_per_step(train_file, bucket, args.steps,
                                                                   Path(scratch) / f"out{bucket}"))
                print(f"target_length_bucket {bucket}: {seconds[str(bucket)][-1]:.2f} s a step", flush=True)
    median = {bucket: statistics.median(values) for bucket, values in seconds.items()}
    result = {
        "machine": machine_record(), "rows": len(sources), "batch_size": BATCH, "steps": args.steps,
        "padding_per_epoch": padding, "seconds_per_step": seconds, "median_seconds_per_step": median,
        "speedup_of_bucket_32": round(median["0"] / median["32"], 3),
        "command": "python benchmarks/mixture_batching.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    print(json.dumps({key: result[key] for key in ("median_seconds_per_step", "speedup_of_bucket_32")}))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
