"""Building a `ReformerZhTokenizer` vocabulary from a corpus.

Counts, over jsonl/json/csv/txt files read with `datasets` (in parallel, with a progress bar):
- every character (and, inside alphanumeric runs, every `##` continuation character), so that
  characters always back words up and a word outside the vocabulary falls back to them;
- every multi-character word: jieba words in word mode, and alphanumeric runs (numbers, Latin
  words) in both modes.

The vocabulary is the five special tokens, the line-break token `[NL]`, then the characters by
frequency, then the words by frequency (at least `min_frequency` occurrences) up to `vocab_size`.
"""

from __future__ import annotations

import bz2
import gzip
import json
import logging
import lzma
import os
import shutil
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from .tokenization_reformer_zh import (
    CONTINUATION,
    LINE_BREAK,
    SEGMENTATIONS,
    SPECIAL_TOKENS,
    ReformerZhTokenizer,
    normalize_text,
    split_runs,
)

DATA_FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".txt": "text", ".tsv": "csv"}
# Compressed files are read as `datasets` reads them: by the format under the compression suffix.
COMPRESSIONS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def data_format_of(path: Path) -> str | None:
    """`datasets` builder name for a data file (`x.jsonl`, `x.jsonl.gz`, ...), or None if unknown."""
    suffixes = [suffix.lower() for suffix in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSIONS:
        suffixes = suffixes[:-1]
    return DATA_FORMATS.get(suffixes[-1]) if suffixes else None


def is_tab_separated(path: Path) -> bool:
    return ".tsv" in [suffix.lower() for suffix in path.suffixes[-2:]]


def open_decompressed(path: Path):
    """The file's bytes, decompressed when its last suffix names a compression."""
    return COMPRESSIONS.get(path.suffix.lower(), open)(path, "rb")


def read_jsonl(path: Path, limit: int | None = None) -> list[dict]:
    """Rows of a .jsonl file, compressed or not (the benchmarks and recipes read data in place)."""
    with open_decompressed(Path(path)) as handle:
        rows = [json.loads(line) for line in handle.read().decode("utf-8").splitlines() if line.strip()]
    return rows[:limit] if limit else rows


def count_units(
    texts: Iterable[str], *, segmentation: str = "word", lowercase: bool = True, segmenter=None,
    keep_cjk_punctuation: bool = True,
) -> tuple[Counter, Counter]:
    """-> (character counts, word counts) over `texts`; `segmenter` is a jieba.Tokenizer (word mode)."""
    characters: Counter = Counter()
    words: Counter = Counter()
    for text in texts:
        normalized = normalize_text(text or "", lowercase=lowercase, keep_cjk_punctuation=keep_cjk_punctuation)
        for run, is_alnum in split_runs(normalized):
            if is_alnum:
                characters[run[0]] += 1
                characters.update(CONTINUATION + character for character in run[1:])
                if len(run) > 1:
                    words[run] += 1
                continue
            characters.update(run)
            if segmentation == "word":
                words.update(word for word in segmenter.cut(run, HMM=True) if len(word) > 1)
    return characters, words


def select_vocab(characters: Counter, words: Counter, *, vocab_size: int, min_frequency: int) -> list[str]:
    """Special tokens, the line break, then characters, then words, each by descending frequency
    (ties by text)."""
    by_frequency = lambda counter: sorted(counter.items(), key=lambda item: (-item[1], item[0]))  # noqa: E731
    reserved = (*SPECIAL_TOKENS, LINE_BREAK)
    room = vocab_size - len(reserved)
    if room <= 0:
        raise ValueError(f"--vocab_size {vocab_size} leaves no room after the {len(reserved)} reserved tokens {list(reserved)}.")
    chosen = [c for c, _ in by_frequency(characters) if c not in reserved][:room]
    taken = set(chosen)
    for word, count in by_frequency(words):
        if len(chosen) >= room or count < min_frequency:
            break
        if word not in taken and word not in reserved:
            chosen.append(word)
            taken.add(word)
    return list(reserved) + chosen


def check_utf8(path: Path, flag: str, block_size: int = 1 << 20) -> None:
    """Stream the (decompressed) file through a UTF-8 decoder; name the offset of the first bad
    byte, or say that the compressed file itself is damaged."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    try:
        with open_decompressed(path) as handle:
            while block := handle.read(block_size):
                try:
                    decoder.decode(block)
                except UnicodeDecodeError as error:
                    raise ValueError(
                        f"{flag} {path} is not UTF-8 text (bad byte at offset {offset + error.start} of the "
                        "decompressed text); convert it, e.g. iconv -f GB18030 -t UTF-8."
                    ) from error
                offset += len(block)
            decoder.decode(b"", final=True)
    except (OSError, EOFError) as error:  # gzip.BadGzipFile, lzma.LZMAError, a truncated stream
        raise ValueError(f"{flag} {path} cannot be decompressed ({error}); check the file, e.g. gzip -t {path}.") from error


def load_texts(train_file: str, text_columns: list[str] | None):
    """A `datasets.Dataset` of the text columns of one file, with clear errors for bad input."""
    import datasets

    path = Path(train_file)
    if not path.is_file():
        raise FileNotFoundError(f"--train_file {train_file} does not exist.")
    if path.stat().st_size == 0:
        raise ValueError(f"--train_file {train_file} is empty.")
    data_format = data_format_of(path)
    if data_format is None:
        raise ValueError(
            f"--train_file {train_file}: unknown extension; use one of {sorted(DATA_FORMATS)}, optionally "
            f"compressed ({', '.join(COMPRESSIONS)}), e.g. train.jsonl.gz."
        )
    check_utf8(path, flag="--train_file")
    kwargs = {"delimiter": "\t"} if is_tab_separated(path) else {}
    dataset = datasets.load_dataset(data_format, data_files=str(path), split="train", **kwargs)
    columns = text_columns or (["text"] if data_format == "text" else [c for c in ("document", "summary") if c in dataset.column_names])
    missing = [c for c in columns if c not in dataset.column_names]
    if missing or not columns:
        raise ValueError(
            f"--train_file {train_file} has columns {dataset.column_names}; --text_column {missing or columns} "
            "not found. Name the text columns, e.g. --text_column document,summary."
        )
    return dataset.select_columns(columns), columns


def _count_batch(batch: dict, *, columns: list[str], segmentation: str, lowercase: bool, user_dict_file: str | None):
    segmenter = None
    if segmentation == "word":
        segmenter = _worker_segmenter(user_dict_file)
    texts = (text for column in columns for text in batch[column])
    characters, words = count_units(texts, segmentation=segmentation, lowercase=lowercase, segmenter=segmenter)
    return {"counts": [json.dumps([characters, words], ensure_ascii=False)]}


_SEGMENTERS: dict = {}


def _worker_segmenter(user_dict_file: str | None):
    """One jieba instance per worker process (building one costs about a second)."""
    if user_dict_file not in _SEGMENTERS:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        segmenter = jieba.Tokenizer()
        if user_dict_file:
            segmenter.load_userdict(user_dict_file)
        _SEGMENTERS[user_dict_file] = segmenter
    return _SEGMENTERS[user_dict_file]


def build_tokenizer(
    *,
    train_file: str,
    output_dir: str,
    vocab_size: int = 32000,
    min_frequency: int = 2,
    segmentation: str = "word",
    text_columns: list[str] | None = None,
    user_dict_file: str | None = None,
    lowercase: bool = True,
    num_proc: int | None = None,
    batch_size: int = 1000,
) -> ReformerZhTokenizer:
    """Count, select, write `output_dir` (loadable with `AutoTokenizer.from_pretrained`), return it."""
    if segmentation not in SEGMENTATIONS:
        raise ValueError(f"--segmentation must be one of {list(SEGMENTATIONS)}, got {segmentation!r}.")
    if user_dict_file and not os.path.isfile(user_dict_file):
        raise FileNotFoundError(f"--user_dict {user_dict_file} does not exist.")
    dataset, columns = load_texts(train_file, text_columns)
    counted = dataset.map(
        _count_batch,
        batched=True,
        batch_size=batch_size,
        num_proc=num_proc if num_proc and num_proc > 1 and len(dataset) > batch_size else None,
        remove_columns=dataset.column_names,
        fn_kwargs=dict(columns=columns, segmentation=segmentation, lowercase=lowercase, user_dict_file=user_dict_file),
        desc=f"counting {segmentation}s",
        load_from_cache_file=False,
    )
    characters, words = Counter(), Counter()
    for row in counted["counts"]:
        batch_characters, batch_words = json.loads(row)
        characters.update(batch_characters)
        words.update(batch_words)
    tokens = select_vocab(characters, words, vocab_size=vocab_size, min_frequency=min_frequency)
    if len(tokens) < vocab_size:
        logging.getLogger(__name__).warning(
            "%s holds only %d distinct characters and words (words seen at least %d times); the vocabulary has %d tokens, "
            "not the %d asked for (lower --min_frequency or add text).",
            train_file, len(tokens) - len(SPECIAL_TOKENS) - 1, min_frequency, len(tokens), vocab_size,
        )

    os.makedirs(output_dir, exist_ok=True)
    vocab_file = os.path.join(output_dir, "vocab.txt")
    with open(vocab_file, "w", encoding="utf-8") as handle:
        handle.write("\n".join(tokens) + "\n")
    saved_user_dict = None
    if user_dict_file:
        saved_user_dict = os.path.join(output_dir, "jieba_user_dict.txt")
        if os.path.abspath(user_dict_file) != os.path.abspath(saved_user_dict):
            shutil.copyfile(user_dict_file, saved_user_dict)
    tokenizer = ReformerZhTokenizer(
        vocab_file=vocab_file, user_dict_file=saved_user_dict, segmentation=segmentation, lowercase=lowercase,
        keep_cjk_punctuation=True,  # as count_units counted
        keep_line_breaks=True,  # count_units counted none: a break is [NL], reserved above
    )
    tokenizer.save_pretrained(output_dir)
    return tokenizer
