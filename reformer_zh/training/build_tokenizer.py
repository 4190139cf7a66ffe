"""Build a ReformerZhTokenizer vocabulary from a corpus and save a loadable tokenizer folder.

    python scripts/build_tokenizer.py --train_file ../shared/data/lcsts/train.jsonl \
        --vocab_size 32000 --min_frequency 2 --segmentation word --output_dir tokenizer-lcsts

The folder loads with `AutoTokenizer.from_pretrained(dir)` after `import modeling_reformer_zh`,
and with `trust_remote_code=True` where the project is not installed.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from tokenization.build_vocab import build_tokenizer  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_file", required=True, help="jsonl, json, csv, tsv or txt")
    parser.add_argument("--text_column", default=None, help="comma-separated; default: document,summary (text for .txt)")
    parser.add_argument("--vocab_size", type=int, default=32000)
    parser.add_argument("--min_frequency", type=int, default=2, help="minimum count of a multi-character word")
    parser.add_argument("--segmentation", choices=["word", "char"], default="word")
    parser.add_argument("--user_dict", default=None, help="a jieba user dictionary, saved with the tokenizer")
    parser.add_argument("--no_lowercase", action="store_true", help="keep the case of ASCII letters")
    parser.add_argument("--num_proc", type=int, default=os.cpu_count())
    parser.add_argument("--output_dir", required=True)
    args = parser.parse_args(argv)

    tokenizer = build_tokenizer(
        train_file=args.train_file,
        output_dir=args.output_dir,
        vocab_size=args.vocab_size,
        min_frequency=args.min_frequency,
        segmentation=args.segmentation,
        text_columns=args.text_column.split(",") if args.text_column else None,
        user_dict_file=args.user_dict,
        lowercase=not args.no_lowercase,
        num_proc=args.num_proc,
    )
    print(f"wrote {args.output_dir}: {tokenizer.vocab_size} tokens ({args.segmentation} mode)")


if __name__ == "__main__":
    from reformer_zh.commands import build_tokenizer

    build_tokenizer()
