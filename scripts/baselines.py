"""Extractive baselines every summarizer here is measured against."""

from __future__ import annotations

import re

SENTENCE_END = re.compile(r"(?<=[。！？!?])")


def first_sentence(document: str) -> str:
    """The document's first sentence (up to and with the first 。！？!?): the lead baseline
    LCSTS papers report, and a strong one for news headlines."""
    return SENTENCE_END.split(document, maxsplit=1)[0]
