"""Batches for seq2seq training: sources padded for the encoder's chunks, targets on their own.

transformers' `DataCollatorForSeq2Seq` pads labels to the same `pad_to_multiple_of` as the
inputs. The encoder wants its chunk multiple (64 in the `small` preset), but a 19-character
LCSTS headline padded to 64 decoder positions pays for 3x the decoder work, and that collator
builds no `decoder_attention_mask`, so decoder `lsh` layers hash and sort padding as if it
were text. This collator pads the targets to a multiple of 8 only (decoder LSH/local layers
pad inside) and marks the real target positions.

`decoder_token_dropout` p replaces each teacher-forced decoder input token (not the start token)
by the tokenizer's mask token with probability p, in training batches only: a decoder that
cannot always see the previous reference token must lean on the source (word dropout for NMT,
Sennrich & Zhang 2019; Bowman et al. 2016). The labels are unchanged.

A model whose forward takes a `global_attention_mask` (LED, the long-input side-by-side's
baseline) gets global attention on the first token of every source, the LED paper's setting for
summarization (Beltagy et al. 2020, section 5): that token attends to, and is attended by,
every position, a path across the sliding windows. The LED paper's first token is `<s>`; our
tokenizers add no start token, so it is the first character.
"""

from __future__ import annotations

import copy
import inspect

import torch

TARGET_MULTIPLE = 8


class ReformerZhSeq2SeqCollator:
    """features: dicts with `input_ids` (and `attention_mask`, optional `labels`) -> a batch of
    `input_ids`, `attention_mask` [b, s] (s a multiple of `pad_to_multiple_of`) and, with labels,
    `labels` [b, t] (-100 past each target, t a multiple of `label_pad_to_multiple_of`),
    `decoder_input_ids` (labels shifted right) and `decoder_attention_mask` (1 at the t_i real
    positions of each shifted target: position j holds label j - 1, or the start token at 0)."""

    def __init__(self, tokenizer, model, pad_to_multiple_of: int, label_pad_to_multiple_of: int = TARGET_MULTIPLE,
                 decoder_token_dropout: float = 0.0) -> None:
        if not 0.0 <= decoder_token_dropout < 1.0:
            raise ValueError(f"--decoder_token_dropout must be in [0, 1), got {decoder_token_dropout}.")
        replacement = tokenizer.mask_token_id if tokenizer.mask_token_id is not None else tokenizer.unk_token_id
        if decoder_token_dropout and replacement is None:
            raise ValueError("--decoder_token_dropout needs a mask or unknown token in the tokenizer to stand in for "
                             "dropped tokens; this tokenizer has neither.")
        self.tokenizer = tokenizer
        self.model = model
        self.source_multiple = pad_to_multiple_of
        self.target_multiple = label_pad_to_multiple_of
        self.decoder_token_dropout = decoder_token_dropout
        self.replacement_id = replacement
        self.training = True
        self.global_first_token = takes_global_attention(model)

    def for_evaluation(self) -> "ReformerZhSeq2SeqCollator":
        """The same batches without token dropout (evaluation and prediction)."""
        evaluation = copy.copy(self)
        evaluation.training = False
        return evaluation

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        sources = [{key: value for key, value in feature.items() if key != "labels"} for feature in features]
        batch = self.tokenizer.pad(sources, padding=True, pad_to_multiple_of=self.source_multiple, return_tensors="pt")
        batch = dict(batch)
        if self.global_first_token:
            batch["global_attention_mask"] = first_token_global(batch["input_ids"])
        if features and "labels" in features[0] and features[0]["labels"] is not None:
            targets = [list(feature["labels"]) for feature in features]
            longest = max(len(target) for target in targets)
            length = -(-longest // self.target_multiple) * self.target_multiple
            labels = torch.full((len(targets), length), -100, dtype=torch.long)
            decoder_attention_mask = torch.zeros((len(targets), length), dtype=torch.long)
            for row, target in enumerate(targets):
                labels[row, : len(target)] = torch.tensor(target, dtype=torch.long)
                decoder_attention_mask[row, : len(target)] = 1
            decoder_input_ids = self.model.prepare_decoder_input_ids_from_labels(labels=labels)
            if self.decoder_token_dropout and self.training:
                dropped = torch.rand(decoder_input_ids.shape) < self.decoder_token_dropout
                dropped[:, 0] = False  # the start token stays: generation always begins with it
                decoder_input_ids = decoder_input_ids.masked_fill(dropped & decoder_attention_mask.bool(),
                                                                  self.replacement_id)
            batch["labels"] = labels
            batch["decoder_input_ids"] = decoder_input_ids
            batch["decoder_attention_mask"] = decoder_attention_mask
        return batch


def takes_global_attention(model) -> bool:
    """Whether the model's forward has a `global_attention_mask` (LED; not reformer-zh)."""
    return "global_attention_mask" in inspect.signature(model.forward).parameters


def first_token_global(input_ids: torch.Tensor) -> torch.Tensor:
    """[b, s] -> 1 at each row's first position, 0 elsewhere (sources are padded on the right)."""
    mask = torch.zeros_like(input_ids)
    mask[:, 0] = 1
    return mask
