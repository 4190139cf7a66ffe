"""Batches for seq2seq training: sources padded for the encoder's chunks, targets on their own.

transformers' `DataCollatorForSeq2Seq` pads labels to the same `pad_to_multiple_of` as the
inputs. The encoder wants its chunk multiple (64 in the `small` preset), but a 19-character
LCSTS headline padded to 64 decoder positions pays for 3x the decoder work, and that collator
builds no `decoder_attention_mask`, so decoder `lsh` layers hash and sort padding as if it
were text. This collator pads the targets to a multiple of 8 only (decoder LSH/local layers
pad inside) and marks the real target positions.
"""

from __future__ import annotations

import torch

TARGET_MULTIPLE = 8


class ReformerZhSeq2SeqCollator:
    """features: dicts with `input_ids` (and `attention_mask`, optional `labels`) -> a batch of
    `input_ids`, `attention_mask` [b, s] (s a multiple of `pad_to_multiple_of`) and, with labels,
    `labels` [b, t] (-100 past each target, t a multiple of `label_pad_to_multiple_of`),
    `decoder_input_ids` (labels shifted right) and `decoder_attention_mask` (1 at the t_i real
    positions of each shifted target: position j holds label j - 1, or the start token at 0)."""

    def __init__(self, tokenizer, model, pad_to_multiple_of: int, label_pad_to_multiple_of: int = TARGET_MULTIPLE) -> None:
        self.tokenizer = tokenizer
        self.model = model
        self.source_multiple = pad_to_multiple_of
        self.target_multiple = label_pad_to_multiple_of

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        sources = [{key: value for key, value in feature.items() if key != "labels"} for feature in features]
        batch = self.tokenizer.pad(sources, padding=True, pad_to_multiple_of=self.source_multiple, return_tensors="pt")
        batch = dict(batch)
        if features and "labels" in features[0] and features[0]["labels"] is not None:
            targets = [list(feature["labels"]) for feature in features]
            longest = max(len(target) for target in targets)
            length = -(-longest // self.target_multiple) * self.target_multiple
            labels = torch.full((len(targets), length), -100, dtype=torch.long)
            decoder_attention_mask = torch.zeros((len(targets), length), dtype=torch.long)
            for row, target in enumerate(targets):
                labels[row, : len(target)] = torch.tensor(target, dtype=torch.long)
                decoder_attention_mask[row, : len(target)] = 1
            batch["labels"] = labels
            batch["decoder_input_ids"] = self.model.prepare_decoder_input_ids_from_labels(labels=labels)
            batch["decoder_attention_mask"] = decoder_attention_mask
        return batch
