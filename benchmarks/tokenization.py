"""Tokenizer quality and speed on the shared validation sets.

For each dataset (LCSTS, CSL) and each segmentation mode: build a vocabulary from its train
split, then report tokens per character and the [UNK] rate on its validation split, and the
throughput (characters per second) of `datasets.map(tokenizer, batched=True)` over the train
split, with one process and with `--num_proc` processes (worker start-up included).

    python benchmarks/tokenization.py --out benchmarks/results/tokenization.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data"


def measure(dataset_name: str, segmentation: str, vocab_size: int, num_proc: int) -> dict:
    import datasets

    from tokenization.build_vocab import build_tokenizer

    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        tokenizer = build_tokenizer(
            train_file=str(DATA / dataset_name / "train.jsonl"), output_dir=folder, vocab_size=vocab_size,
            min_frequency=2, segmentation=segmentation, num_proc=num_proc,
        )
        build_seconds = time.perf_counter() - started
    validation = datasets.load_dataset("json", data_files=str(DATA / dataset_name / "validation.jsonl"), split="train")
    texts = list(validation["document"]) + list(validation["summary"])
    characters = sum(map(len, texts))
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    tokens = sum(map(len, ids))
    unknown = sum(row.count(tokenizer.unk_token_id) for row in ids)
    # throughput on the (larger) train split, so that process start-up does not dominate
    train = datasets.load_dataset("json", data_files=str(DATA / dataset_name / "train.jsonl"), split="train")
    documents = datasets.Dataset.from_dict({"text": list(train["document"]) + list(train["summary"])})
    train_characters = sum(map(len, documents["text"]))
    throughput = {}
    for processes in sorted({1, num_proc}):
        tokenizer("预热")  # jieba's dictionary loads once per process, outside the timing
        started = time.perf_counter()
        documents.map(lambda batch: tokenizer(batch["text"]), batched=True, num_proc=processes if processes > 1 else None,
                      load_from_cache_file=False, desc=f"{dataset_name} {segmentation} x{processes}")
        throughput[f"chars_per_second_{processes}_proc"] = train_characters / (time.perf_counter() - started)
    return {
        "dataset": dataset_name,
        "segmentation": segmentation,
        "vocab_size": tokenizer.vocab_size,
        "build_seconds": build_seconds,
        "validation_characters": characters,
        "tokens_per_character": tokens / characters,
        "unk_rate": unknown / tokens,
        **throughput,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="lcsts,csl")
    parser.add_argument("--word_vocab_size", type=int, default=32000)
    parser.add_argument("--char_vocab_size", type=int, default=8000)
    parser.add_argument("--num_proc", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if not DATA.exists():
        sys.exit(f"shared data not found at {DATA}; this benchmark reads ../shared/data in place")
    results = []
    for name in args.datasets.split(","):
        for segmentation, size in (("word", args.word_vocab_size), ("char", args.char_vocab_size)):
            results.append(measure(name, segmentation, size, args.num_proc))
    print(f"\n{'dataset':<7} {'mode':<5} {'vocab':>6} {'tok/char':>8} {'[UNK]':>7} {'chars/s x1':>11} {'chars/s x' + str(args.num_proc):>11}")
    for r in results:
        print(f"{r['dataset']:<7} {r['segmentation']:<5} {r['vocab_size']:>6} {r['tokens_per_character']:>8.3f} "
              f"{r['unk_rate']:>7.3%} {r['chars_per_second_1_proc']:>11,.0f} "
              f"{r.get(f'chars_per_second_{args.num_proc}_proc', float('nan')):>11,.0f}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"settings": vars(args), "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
