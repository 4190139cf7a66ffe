"""Extractive baselines every summarizer here is measured against."""

from __future__ import annotations

import re

SENTENCE_END = re.compile(r"(?<=[。！？!?])")


def first_sentence(document: str) -> str:
    """The document's first sentence (up to and with the first 。！？!?): the lead baseline
    LCSTS papers report, and a strong one for news headlines."""
    return SENTENCE_END.split(document, maxsplit=1)[0]


def first_characters(document: str, count: int) -> str:
    """The document's first `count` characters (the long-input issue's length-matched lead:
    287 characters is the median xwlb rundown)."""
    return document[:count]


def story_leads(document: str, max_chars: int | None = None, first_line: bool = False) -> str:
    """The first sentence of every story (blocks separated by a blank line) that starts within
    the first `max_chars` characters, written as a rundown is (`；` between them, `。` at the
    end): what a reader limited to `max_chars` characters reaches with leads (None: the whole
    document). `first_line` stops a lead at a line break too, so a news brief (short items each
    under a title line) contributes its first title instead of its title and first item."""
    visible = document if max_chars is None else document[:max_chars]
    leads = []
    for block in filter(None, (b.strip() for b in visible.split("\n\n"))):
        lead = first_sentence(block.split("\n")[0] if first_line else block)
        leads.append(lead.rstrip("。！？!?"))
    return "；".join(leads) + "。" if leads else ""


# by name, for scripts/recipe.py and the benchmarks
BASELINES = {
    "first sentence": first_sentence,
    "first 287 characters": lambda document: first_characters(document, 287),
    "story leads, first 1,024 characters": lambda document: story_leads(document, 1024),
    "story leads, whole evening": story_leads,
    "story leads with brief titles, whole evening": lambda document: story_leads(document, first_line=True),
}
