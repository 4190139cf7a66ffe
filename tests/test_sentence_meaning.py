"""modeling_reformer_zh/sentence_meaning.py: how alike the sentences either side of a candidate
story start are in a checkpoint's embeddings, computed for every start at once from prefix sums;
checked against the definition written out one window at a time."""

from __future__ import annotations

import math

import pytest
import torch

from modeling_reformer_zh.sentence_meaning import SentenceMeaning


class CharacterIds:
    """A tokenizer stand-in: a token per character, its id the code point modulo the vocabulary."""

    def __init__(self, vocabulary: int) -> None:
        self.vocabulary = vocabulary

    def __call__(self, texts: list[str], add_special_tokens: bool = True) -> dict:
        assert not add_special_tokens  # a sentence's meaning is its own tokens only
        return {"input_ids": [[ord(character) % self.vocabulary for character in text] for text in texts]}


def cosine_by_definition(sentences: list[str], embedding: torch.Tensor, tokenizer, width: int) -> list[float]:
    """One window at a time: mean token vector per sentence, centred on the mean sentence, the
    `width` sentences before start i summed against the `width` from i on."""
    vectors = []
    for ids in tokenizer(sentences, add_special_tokens=False)["input_ids"]:
        rows = [embedding[token].double().tolist() for token in ids]
        vectors.append([sum(column) / len(rows) for column in zip(*rows)] if rows else [0.0] * embedding.shape[1])
    centre = [sum(column) / len(vectors) for column in zip(*vectors)]
    vectors = [[value - mean for value, mean in zip(vector, centre)] for vector in vectors]
    result = [0.0]
    for start in range(1, len(sentences)):
        before = [sum(column) for column in zip(*vectors[max(0, start - width):start])]
        after = [sum(column) for column in zip(*vectors[start:start + width])]
        dot = sum(a * b for a, b in zip(before, after))
        norms = math.sqrt(sum(a * a for a in before)) * math.sqrt(sum(b * b for b in after))
        result.append(dot / max(norms, 1e-8))
    return result


def test_every_window_equals_the_definition():
    torch.manual_seed(0)
    embedding = torch.randn(50, 16)
    tokenizer = CharacterIds(50)
    sentences = ["今天召开会议。", "会议讨论了预算。", "", "天气晴朗，气温回升。", "明天有雨。", "市民出行注意安全。", "完"]
    meaning = SentenceMeaning(embedding, tokenizer, (1, 3, 8))(sentences)
    assert sorted(meaning) == [1, 3, 8]
    for width, values in meaning.items():
        assert values == pytest.approx(cosine_by_definition(sentences, embedding, tokenizer, width), abs=1e-5)


def test_a_change_of_subject_is_where_neighbouring_sentences_are_least_alike():
    # token ids 0-19 mean one subject, 20-39 another; three sentences of each
    embedding = torch.zeros(40, 8)
    embedding[:20, 0], embedding[20:, 1] = 1.0, 1.0
    sentences = ["".join(chr(40_000 + token) for token in range(first, first + 5)) for first in (0, 4, 8, 20, 25, 30)]
    cosines = SentenceMeaning(embedding, CharacterIds(40), (1,))(sentences)[1]
    assert cosines[3] == pytest.approx(-1.0) and cosines[1:3] + cosines[4:] == pytest.approx([1.0] * 4)


def test_too_few_sentences_have_nothing_to_compare():
    meaning = SentenceMeaning(torch.randn(10, 4), CharacterIds(10), (1, 3))
    assert meaning(["一句话。"]) == {1: [0.0], 3: [0.0]} and meaning([]) == {1: [], 3: []}
