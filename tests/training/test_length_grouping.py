"""reformer_zh/training/length_grouping.py and ReformerZhTrainer's training sampler: rows grouped by
summary length too, so a headline is not padded to a judgment's summary."""

import datasets
import numpy as np
import pytest
import torch
from transformers import Seq2SeqTrainingArguments

from reformer_zh.training.length_grouping import batch_shape_keys, list_lengths, padded_lengths
from reformer_zh.training.seq2seq_trainer import ReformerZhTrainer
from tests.utils import ReformerZhModelTester

BATCH = 8


def test_keys_sort_by_summary_bucket_first_and_document_length_second():
    sources = [900, 10, 500, 20, 30]
    targets = [1, 32, 33, 64, 400]  # buckets of 32: 1, 1, 2, 2, 13
    keys = batch_shape_keys(np.array(sources), np.array(targets), target_bucket=32)
    assert sorted(range(5), key=keys.__getitem__) == [1, 0, 3, 2, 4]
    with pytest.raises(ValueError, match="target_bucket"):
        batch_shape_keys(np.array(sources), np.array(targets), target_bucket=0)


def test_list_lengths_follow_the_dataset_row_order():
    dataset = datasets.Dataset.from_dict({"labels": [[1] * 5, [1] * 3, [1] * 2]}).select([2, 0])
    assert list_lengths(dataset, "labels").tolist() == [2, 5]


def mixture_like(rows: int = 1600, seed: int = 0) -> datasets.Dataset:
    """Half short summaries of documents of any length, half long summaries of any length: the
    general mixture's shape (headlines of short and long stories beside judgments' summaries)."""
    rng = np.random.default_rng(seed)
    sources = rng.integers(64, 1024, rows)
    targets = np.where(rng.random(rows) < 0.5, rng.integers(8, 40, rows), rng.integers(100, 400, rows))
    return datasets.Dataset.from_dict({"input_ids": [[5] * s for s in sources], "labels": [[6] * t for t in targets]})


def trainer_for(dataset, target_length_bucket: int, tmp_path) -> ReformerZhTrainer:
    tester = ReformerZhModelTester()
    args = Seq2SeqTrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=BATCH,
                                    train_sampling_strategy="group_by_length", use_cpu=True, report_to=[])
    return ReformerZhTrainer(model=tester.build_model(tester.get_config()), args=args, train_dataset=dataset,
                             target_length_bucket=target_length_bucket)


def mean_padded_lengths(order: list[int], dataset) -> tuple[float, float]:
    """(document, summary) tokens a batch is padded to, averaged over the batches of `order`."""
    return tuple(float(padded_lengths(order, list_lengths(dataset, column), BATCH).mean())
                 for column in ("input_ids", "labels"))


def test_grouping_by_summary_too_pads_summaries_far_less(tmp_path):
    dataset = mixture_like()
    torch.manual_seed(0)
    both = list(trainer_for(dataset, 32, tmp_path)._get_train_sampler())
    torch.manual_seed(0)
    documents_only = list(trainer_for(dataset, 0, tmp_path)._get_train_sampler())  # transformers' own
    assert sorted(both) == sorted(documents_only) == list(range(len(dataset)))  # every row once
    source_both, target_both = mean_padded_lengths(both, dataset)
    source_documents, target_documents = mean_padded_lengths(documents_only, dataset)
    assert target_both < 0.5 * target_documents
    assert source_both < 1.3 * source_documents  # the documents' padding grows by far less
    within = [both[i:i + BATCH] for i in range(0, len(both), BATCH)]
    targets = list_lengths(dataset, "labels")
    mixed = sum(1 for batch in within if targets[batch].min() < 40 < targets[batch].max())
    assert mixed <= 0.05 * len(within)  # a headline rarely shares a batch with a long summary


def test_a_length_column_the_user_made_still_wins(tmp_path):
    dataset = mixture_like(rows=64).add_column("length", list(range(64)))
    trainer = trainer_for(dataset, 32, tmp_path)
    assert trainer._get_train_sampler().lengths == list(range(64))
