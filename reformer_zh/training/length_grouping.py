"""Which training rows share a batch: grouped by the lengths of the summary and the document.

transformers' `group_by_length` sorts each mega-batch (50 batches of rows drawn at random) by the
document's length alone. That suits a set whose summaries are all alike; the general mixture
(reformer_zh/training/mixture.py) pairs documents of 64-1,024 tokens with summaries of 8-400, and
a batch of similar documents then holds a headline beside a judgment's summary, padded to it. On
the mixture's first 48,000 rows (batch 32) the summaries were padded to 140 tokens a batch against
38 a row. Sorting by the summary's length in buckets of 32 tokens first, then by the document's
length within a bucket, pads them to 53, the documents to 403 tokens a batch against 365
(docs/experiments.md). Every decoder position costs a self-attention row, a cross-attention row
over the document and an 8,000-way output projection, so padded summary positions are the
dearer ones.
"""

from __future__ import annotations

import datasets
import numpy as np
import pyarrow.compute as pc

# A summary's bucket is worth more than any document length: keys sort by bucket, then length.
BUCKET_STRIDE = 1 << 32


def batch_shape_keys(source_lengths: np.ndarray, target_lengths: np.ndarray, target_bucket: int) -> list[int]:
    """One sortable number per row: its summary's bucket (`ceil(target_length / target_bucket)`)
    first, its document's length second. transformers' `LengthGroupedSampler` sorts each mega-batch
    by these numbers as it would by lengths, so rows of one bucket and similar documents share
    a batch."""
    if target_bucket < 1:
        raise ValueError(f"target_bucket must be a positive number of tokens, got {target_bucket}")
    source_lengths = np.asarray(source_lengths, dtype=np.int64)
    buckets = -(-np.asarray(target_lengths, dtype=np.int64) // target_bucket)
    return (buckets * BUCKET_STRIDE + source_lengths).tolist()


def list_lengths(dataset: datasets.Dataset, column: str) -> np.ndarray:
    """The length of every row's list in `column`, read from the Arrow table (no Python list per
    row: the general mixture has 241,000 rows), in the dataset's row order."""
    return pc.list_value_length(dataset.with_format("arrow")[column]).to_numpy(zero_copy_only=False)


def padded_lengths(order: list[int], lengths: np.ndarray, batch_size: int) -> np.ndarray:
    """What each batch of `batch_size` consecutive rows of `order` is padded to: its longest row's
    length (the measure the grouping lowers; benchmarks/mixture_batching.py reports its mean)."""
    order = np.asarray(order)
    return np.array([lengths[order[start:start + batch_size]].max() for start in range(0, len(order), batch_size)])
