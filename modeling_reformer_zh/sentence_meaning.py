"""What the story-boundary model reads of a document's meaning (document_sections.py; issue 43).

Two stories of an evening of news often share few characters and still read alike to the
character pairs the lexical cohesion counts ("发展", a date), while one story's sentences share
its subject in other words. A sentence here is the mean of the checkpoint's own input embeddings
of its tokens, centred on the document's mean sentence (what every sentence of the evening shares
cancels out), and for every candidate start i and width w the story-boundary model reads the
cosine between the summed sentences [i - w, i) and [i, i + w): low where the subject changes.
On 500 train evenings this lifted the story-start F1 on the validation evenings from 0.619 to
0.655 (docs/experiments.md, 2026-12-08).

A fine-tuned checkpoint reads with its own embeddings, which drift a little from those the
boundary model was trained with; `python -m reformer_zh.training.story_boundaries --meaning_from`
retrains it on a checkpoint's own.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .document_sections import CONTEXT_SENTENCES


class SentenceMeaning:
    """`meaning(sentences)` -> {width: [cosine across the start of sentence i, for every i]}, index
    0 (no sentence before it) 0.0, as `document_sections.sentence_features` reads it.

    `embedding`: [vocabulary, hidden] (the model's input embeddings); `tokenizer`: its tokenizer;
    `widths`: how many sentences either side are summed (the lexical cohesion's, by default)."""

    def __init__(self, embedding: Tensor, tokenizer, widths: tuple[int, ...] = CONTEXT_SENTENCES) -> None:
        self.embedding, self.tokenizer, self.widths = embedding.detach(), tokenizer, widths

    @classmethod
    def of_checkpoint(cls, model, tokenizer) -> "SentenceMeaning":
        """The meaning a checkpoint's pipeline reads: its own input embeddings and tokenizer (the
        story-boundary trainer's --meaning_from reads the same)."""
        return cls(model.get_input_embeddings().weight, tokenizer)

    @torch.no_grad()
    def sentence_vectors(self, sentences: list[str]) -> Tensor:
        """[sentences, hidden]: each sentence's mean token embedding (zeros for one without
        tokens), minus the mean over the sentences."""
        ids = self.tokenizer(sentences, add_special_tokens=False)["input_ids"]
        flat = torch.tensor([token for sentence in ids for token in sentence], dtype=torch.long)
        starts = torch.tensor([0, *[len(sentence) for sentence in ids[:-1]]], dtype=torch.long).cumsum(0)
        vectors = torch.nn.functional.embedding_bag(flat, self.embedding.float(), starts, mode="mean")
        return vectors - vectors.mean(dim=0, keepdim=True)

    @torch.no_grad()
    def __call__(self, sentences: list[str]) -> dict[int, list[float]]:
        count = len(sentences)
        if count < 2:
            return {width: [0.0] * count for width in self.widths}
        # prefix sums: the sum of sentences [a, b) is totals[b] - totals[a], for every window at once
        vectors = self.sentence_vectors(sentences).double()
        totals = torch.cat([vectors.new_zeros(1, vectors.shape[1]), vectors.cumsum(dim=0)])
        starts = torch.arange(1, count)
        result = {}
        for width in self.widths:
            before = totals[starts] - totals[(starts - width).clamp(min=0)]
            after = totals[(starts + width).clamp(max=count)] - totals[starts]
            cosine = torch.nn.functional.cosine_similarity(before, after, dim=-1)
            result[width] = [0.0, *cosine.float().tolist()]
        return result
