"""The data of reformer-zh-train: the files or Hub dataset it reads, checked before anything
trains; the splits tokenized; and the scores of generated summaries against the references as
written."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import datasets

from reformer_zh.evaluation.rouge_zh import rouge_scores
from tokenization.build_vocab import check_utf8, data_format_of

logger = logging.getLogger("train")
SAMPLE_DIR = Path(__file__).resolve().parents[1] / "sample"


def data_files(data_args, training_args) -> dict[str, str]:
    files = {}
    for split, path in (("train", data_args.train_file), ("validation", data_args.validation_file),
                        ("test", data_args.test_file)):
        if path:
            files[split] = path
    if not files and not data_args.dataset_name:
        logger.info("no data given: using the embedded sample in %s", SAMPLE_DIR)
        files = {"train": str(SAMPLE_DIR / "train.jsonl"), "validation": str(SAMPLE_DIR / "validation.jsonl")}
        if training_args.do_predict:
            files["test"] = str(SAMPLE_DIR / "validation.jsonl")
    return files


def first_row(dataset) -> dict | None:
    return next(iter(dataset), None)


def load_raw_datasets(data_args, files: dict[str, str], model_args) -> dict:
    """Load and check every split before anything is trained. With --streaming the training
    split is an IterableDataset, checked on its first row (its length is unknown)."""
    hub = dict(cache_dir=model_args.cache_dir, token=model_args.token)
    if data_args.dataset_name and data_args.streaming:
        # the training split as a stream, never downloaded whole; the others as usual
        splits = datasets.get_dataset_split_names(data_args.dataset_name, data_args.dataset_config_name, **hub)
        raw = {split: datasets.load_dataset(data_args.dataset_name, data_args.dataset_config_name, split=split,
                                            streaming=split == "train", **hub) for split in splits}
    elif data_args.dataset_name:
        raw = dict(datasets.load_dataset(data_args.dataset_name, data_args.dataset_config_name, **hub))
    else:
        raw = {}
        for split, path in files.items():
            file = Path(path)
            flag = {"train": "--train_file", "validation": "--validation_file", "test": "--test_file"}[split]
            if not file.is_file():
                raise FileNotFoundError(f"{flag} {path} does not exist.")
            if file.stat().st_size == 0:
                raise ValueError(f"{flag} {path} is empty.")
            data_format = data_format_of(file)
            if data_format not in ("json", "csv"):
                raise ValueError(f"{flag} {path}: use a .jsonl, .json or .csv file (or one of them gzipped: .jsonl.gz).")
            check_utf8(file, flag)
            raw[split] = datasets.load_dataset(data_format, data_files=str(file), split="train",
                                               streaming=data_args.streaming and split == "train", **hub)
    for split, dataset in raw.items():
        if isinstance(dataset, datasets.IterableDataset):
            row = first_row(dataset)
            if row is None:
                raise ValueError(f"the {split} data has no rows.")
            missing = [c for c in (data_args.text_column, data_args.summary_column) if c not in row]
            if missing:
                raise ValueError(f"the {split} data has columns {list(row)}, not {missing}; "
                                 "name yours with --text_column and --summary_column.")
            continue
        missing = [c for c in (data_args.text_column, data_args.summary_column) if c not in dataset.column_names]
        if missing:
            raise ValueError(
                f"the {split} data has columns {dataset.column_names}, not {missing}; "
                "name yours with --text_column and --summary_column."
            )
        if len(dataset) == 0:
            raise ValueError(f"the {split} data has no rows.")
        if split == "train" and not any((s or "").strip() for s in dataset[data_args.summary_column]):
            raise ValueError(f"every value of the summary column '{data_args.summary_column}' in the train data is empty.")
    return raw


@dataclass
class Splits:
    """The rows each phase reads: `*_raw` as loaded (for the written references and the rows
    beside the predictions), the rest tokenized; None where the phase does not run."""
    train: object = None
    eval_raw: object = None
    eval: object = None
    test_raw: object = None
    test: object = None


def tokenized_splits(raw: dict, tokenizer, data_args, training_args, val_max_target_length: int) -> Splits:
    """Documents cut to --max_source_length, summaries to --max_target_length (validation and test:
    the generation length) as labels; a streamed split is tokenized as it is read."""

    def tokenize(batch, target_length: int):
        sources = [data_args.source_prefix + (text or "") for text in batch[data_args.text_column]]
        encoded = tokenizer(sources, max_length=data_args.max_source_length, truncation=True)
        summaries = [summary or "" for summary in batch[data_args.summary_column]]
        encoded["labels"] = tokenizer(text_target=summaries, max_length=target_length, truncation=True)["input_ids"]
        return encoded

    def prepare(split: str, limit: int | None):
        dataset = raw[split]
        target_length = data_args.max_target_length if split == "train" else val_max_target_length
        if isinstance(dataset, datasets.IterableDataset):  # --streaming: tokenized as it is read
            if limit is not None:
                dataset = dataset.take(limit)
            row = first_row(dataset)
            if row is None:
                raise ValueError(f"the streamed {split} data yields no rows (--max_{split}_samples {limit}?).")
            return dataset, dataset.map(tokenize, batched=True, remove_columns=list(row),
                                        fn_kwargs={"target_length": target_length})
        if limit is not None:
            dataset = dataset.select(range(min(limit, len(dataset))))
        with training_args.main_process_first(desc=f"tokenizing {split}"):
            encoded = dataset.map(tokenize, batched=True, num_proc=data_args.preprocessing_num_workers,
                                  remove_columns=dataset.column_names, fn_kwargs={"target_length": target_length},
                                  load_from_cache_file=not data_args.overwrite_cache, desc=f"tokenizing {split}")
        return dataset, encoded

    splits = Splits()
    if training_args.do_train:
        splits.train = prepare("train", data_args.max_train_samples)[1]
    if training_args.do_eval:
        splits.eval_raw, splits.eval = prepare("validation", data_args.max_eval_samples)
    if training_args.do_predict:
        splits.test_raw, splits.test = prepare("test", data_args.max_predict_samples)
    return splits


def written_summaries(dataset, summary_column: str) -> list[str] | None:
    """The reference summaries of an evaluation split as written, in order (None for a streamed
    split, whose rows are read once: its scores then use the labels, cut at the target length)."""
    if dataset is None or isinstance(dataset, datasets.IterableDataset):
        return None
    return [summary or "" for summary in dataset[summary_column]]


def generated_length(tokens: list[int], pad_token_id: int, eos_token_id: int) -> int:
    """gen_len's count for one sequence: its tokens up to and including the first [EOS], the start
    token included. Beam search fills a finished sequence with [EOS] up to the batch's longest
    (not with padding), so counting every token that is not padding, as run_summarization does,
    reports the batch's longest summary for every row."""
    count = 0
    for token in tokens:
        if token == pad_token_id:
            continue
        count += 1
        if token == eos_token_id:
            break
    return count


class SummaryScorer:
    """compute_metrics for the Trainer: character ROUGE (and jieba's word ROUGE when asked), the
    distinct share and gen_len of generated summaries. ROUGE compares with the summaries as
    written, not as the labels hold them: labels stop at the target length (9% of xwlb headlines
    are longer than 40 tokens) and hold [UNK] for characters outside the vocabulary. `score(rows)`
    tells it which split's references come next (the Trainer scores a split in order)."""

    def __init__(self, tokenizer, summary_column: str, jieba_words: bool = False) -> None:
        self.tokenizer = tokenizer
        self.summary_column = summary_column
        self.jieba_words = jieba_words
        self.references: list[str] | None = None

    def score(self, rows) -> None:
        self.references = written_summaries(rows, self.summary_column)

    def decode_pairs(self, eval_prediction) -> tuple[list[str], list[str], float]:
        predictions, labels = eval_prediction.predictions, eval_prediction.label_ids
        if isinstance(predictions, tuple):
            predictions = predictions[0]
        predictions = [[t for t in row if t >= 0] for row in predictions.tolist()]
        decoded = self.tokenizer.batch_decode(predictions, skip_special_tokens=True)
        references = self.references
        if references is None:  # a streamed split: only its labels are kept
            labels = [[t for t in row if t >= 0] for row in labels.tolist()]
            references = self.tokenizer.batch_decode(labels, skip_special_tokens=True)
        elif len(references) != len(decoded):
            raise RuntimeError(f"{len(decoded)} predictions for {len(references)} references: "
                               "the evaluation did not score the split in order.")
        lengths = [generated_length(row, self.tokenizer.pad_token_id, self.tokenizer.eos_token_id)
                   for row in predictions]
        return decoded, references, sum(lengths) / max(len(lengths), 1)

    def __call__(self, eval_prediction) -> dict:
        decoded, references, gen_len = self.decode_pairs(eval_prediction)
        return {**rouge_scores(decoded, references, jieba_words=self.jieba_words), "gen_len": gen_len}
