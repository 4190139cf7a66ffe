"""Denoising pre-training on raw Chinese text (BART, Lewis et al. 2020): text infilling plus
sentence permutation, then `Seq2SeqTrainer` through scripts/train.py.

The raw text (a text column of .jsonl/.json/.csv, or .txt lines; gzip/bz2/xz-compressed too)
is cut at sentence ends into segments of at most --segment_length characters. Each segment
becomes --noised_copies training pairs whose target is the segment and whose source is the
segment with its sentences shuffled (--permute_sentences) and spans of Poisson(--poisson_lambda)
characters, --mask_ratio of the text in all, each replaced by one [MASK] (a zero-length span
inserts one). The pairs are written to <output_dir>/pretrain_pairs.jsonl and trained with
every scripts/train.py flag, so the checkpoint is what `train.py --model_name_or_path`
fine-tunes:

    python scripts/pretrain.py --pretrain_file ../shared/data/xwlb/story_train.jsonl.gz \\
        --text_column document --output_dir outputs/pretrained --config_name headline \\
        --tokenizer_segmentation char --max_steps 2000 --per_device_train_batch_size 32
    python scripts/train.py --model_name_or_path outputs/pretrained --train_file ... --do_train

Pre-training on the downstream documents alone already helps small data (Krishna et al.
2022). The noise works on characters: a span never splits a character, and the [MASK] the
tokenizer knows stands for the whole span.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
from pathlib import Path

MASK = "[MASK]"
# The noise the flags below default to (benchmarks/quality.py pre-trains with the same).
NOISE_DEFAULTS = dict(segment_length=128, min_segment_length=16, mask_ratio=0.3, poisson_lambda=3.0,
                      permute_sentences=True, noised_copies=1)
SENTENCE_END = re.compile(r"(?<=[。！？!?；;\n])")


def segments(text: str, segment_length: int) -> list[str]:
    """Whole sentences packed into pieces of at most `segment_length` characters (a longer
    sentence is cut into `segment_length` pieces)."""
    pieces, current = [], ""
    for sentence in filter(None, (s.strip() for s in SENTENCE_END.split(text))):
        while len(sentence) > segment_length:
            if current:
                pieces.append(current)
                current = ""
            pieces.append(sentence[:segment_length])
            sentence = sentence[segment_length:]
        if len(current) + len(sentence) > segment_length and current:
            pieces.append(current)
            current = ""
        current += sentence
    if current:
        pieces.append(current)
    return pieces


def permute_sentences(text: str, rng: random.Random) -> str:
    sentences = [s for s in SENTENCE_END.split(text) if s]
    rng.shuffle(sentences)
    return "".join(sentences)


def infill(text: str, rng: random.Random, mask_ratio: float, poisson_lambda: float) -> str:
    """Replace spans of Poisson(poisson_lambda) characters, about mask_ratio of the text, by one
    [MASK] each; a span of length 0 inserts a [MASK] (the model must learn how much is missing)."""
    budget = round(len(text) * mask_ratio)
    characters = list(text)
    masked: dict[int, int] = {}  # start -> span length
    covered: set[int] = set()  # positions inside a span (a zero-length span covers its start)
    attempts = 0
    while budget > 0 and attempts < 10 * len(text):
        attempts += 1
        length = min(poisson(rng, poisson_lambda), budget)
        start = rng.randrange(len(characters) + 1 - length)
        span = range(start, start + max(length, 1))
        if covered.intersection(span):
            continue
        covered.update(span)
        masked[start] = length
        budget -= max(length, 1)
    pieces, position = [], 0
    for start in sorted(masked):
        pieces.append("".join(characters[position:start]))
        pieces.append(MASK)
        position = start + masked[start]
    pieces.append("".join(characters[position:]))
    return "".join(pieces)


def poisson(rng: random.Random, rate: float) -> int:
    """Knuth's sampler: fine for the small rates span lengths use."""
    threshold, count, product = math.exp(-rate), 0, rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count


def noised_pairs(texts, args, rng: random.Random) -> list[dict]:
    pairs = []
    for text in texts:
        for segment in segments(text or "", args.segment_length):
            if len(segment) < args.min_segment_length:
                continue
            for _ in range(args.noised_copies):
                source = permute_sentences(segment, rng) if args.permute_sentences else segment
                pairs.append({"document": infill(source, rng, args.mask_ratio, args.poisson_lambda),
                              "summary": segment})
    return pairs


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     allow_abbrev=False)
    parser.add_argument("--pretrain_file", required=True, help="raw text: .txt lines, or a text column of jsonl/json/csv")
    parser.add_argument("--text_column", default="document", help="comma-separated columns to read (not for .txt)")
    parser.add_argument("--segment_length", type=int, help="characters per training segment")
    parser.add_argument("--min_segment_length", type=int)
    parser.add_argument("--mask_ratio", type=float)
    parser.add_argument("--poisson_lambda", type=float)
    parser.add_argument("--permute_sentences", type=lambda v: v.lower() in ("1", "true", "yes"))
    parser.add_argument("--noised_copies", type=int, help="differently noised copies of every segment")
    parser.add_argument("--max_pretrain_texts", type=int, default=None)
    parser.add_argument("--noise_seed", type=int, default=0)
    parser.set_defaults(**NOISE_DEFAULTS)
    args, train_flags = parser.parse_known_args(argv)
    if not 0.0 < args.mask_ratio < 1.0:
        parser.error(f"--mask_ratio must be in (0, 1), got {args.mask_ratio}")
    if args.segment_length < args.min_segment_length or args.noised_copies < 1:
        parser.error("--segment_length must be >= --min_segment_length and --noised_copies >= 1")
    if "--output_dir" not in train_flags:
        parser.error("--output_dir is required (the checkpoint and pretrain_pairs.jsonl go there)")
    for flag in ("--train_file", "--text_column", "--summary_column"):
        if flag in train_flags:
            parser.error(f"{flag} is set by pre-training itself (the noised pairs); give the text with --pretrain_file")

    from tokenization.build_vocab import load_texts

    try:
        dataset, columns = load_texts(args.pretrain_file, None if args.pretrain_file.endswith((".txt", ".txt.gz"))
                                      else args.text_column.split(","))
    except (FileNotFoundError, ValueError) as error:
        parser.exit(2, f"error: {error}\n".replace("--train_file", "--pretrain_file"))
    texts = [text for column in columns for text in dataset[column]]
    if args.max_pretrain_texts:
        texts = texts[: args.max_pretrain_texts]
    pairs = noised_pairs(texts, args, random.Random(args.noise_seed))
    if not pairs:
        parser.exit(2, f"error: --pretrain_file {args.pretrain_file} gave no segment of at least "
                       f"{args.min_segment_length} characters.\n")
    output_dir = Path(train_flags[train_flags.index("--output_dir") + 1])
    output_dir.mkdir(parents=True, exist_ok=True)
    pairs_file = output_dir / "pretrain_pairs.jsonl"
    with open(pairs_file, "w", encoding="utf-8") as handle:
        for pair in pairs:
            handle.write(json.dumps(pair, ensure_ascii=False) + "\n")
    print(f"{len(pairs)} noised pairs from {len(texts)} texts -> {pairs_file}", flush=True)

    from reformer_zh.training import train

    flags = ["--train_file", str(pairs_file), "--max_target_length", str(args.segment_length + 2),
             "--max_source_length", str(args.segment_length + 2)]
    if "--do_train" not in train_flags:
        flags.append("--do_train")
    # argparse keeps the last value of a repeated flag: the user's flags come last and win
    return train.main(flags + train_flags)


if __name__ == "__main__":
    from reformer_zh.commands import pretrain

    pretrain()
