"""A document's sections, found from its text (issues 35 and 43).

A whole evening of news, a report or a judgment reaches the pipeline in whatever shape the user
pasted it. Its sections are found, in this order:

1. blank lines: blocks separated by an empty line (how the xwlb evenings are written);
2. headings: lines that open with the same kind of heading as the document's first one (`一、`,
   `（一）`, `1.`, `第一部分`, `第一章`, ...), at least two of them; text before the first heading
   is a section of its own when it is at least `PREAMBLE_MIN_CHARACTERS` long;
3. story boundaries: where nothing marks the sections (stories pasted with single newlines, or
   as one block), a small learned model (`story_boundaries` in the checkpoint's
   `task_specific_params["summarization"]`, trained by reformer_zh/training/story_boundaries.py) scores
   every sentence as the start of a new story, from its opening characters, the end of the
   sentence before it, whether a line break precedes it and how many of its character pairs the
   sentences before it share (a new story changes the subject; a model trained with
   `reads_meaning` also reads how alike the sentences either side are in the checkpoint's
   embeddings, sentence_meaning.py), and the document is cut where
   those scores and a prior on a story's length are likeliest together (best_story_starts);
4. otherwise the document is one section.

News briefs (a block of short items, each under its own title line) are skipped in a
blank-line or story-boundary document, where a rundown gives them no headline; a headed report's
sections are never skipped. Every skip is returned, so the pipeline can name it.

Imports only the standard library (the meaning of sentences comes from the caller, as
`meaning_of`): it travels with every checkpoint as remote code.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable

# {width: [how alike the `width` sentences before sentence i are to those from it on, for every i]}
# (sentence_meaning.SentenceMeaning, which the pipeline builds from its checkpoint)
MeaningOf = Callable[[list[str]], dict[int, list[float]]]

SECTION_BREAK = "\n\n"
SENTENCE_ENDS = "。！？”…）)"
TITLE_MAX_CHARACTERS = 30
BRIEF_TITLE_SHARE = 0.3  # chosen on xwlb validation: 163 of 168 briefs found, none of 1,005 stories

CHINESE_NUMERAL = "[一二三四五六七八九十]+"
# heading kinds: a pattern for the start of a line whose group is the heading's number
HEADING_KINDS = (
    ("chapter", re.compile(rf"第({CHINESE_NUMERAL}|\d+)[部分章节篇条]")),
    ("numeral", re.compile(rf"({CHINESE_NUMERAL})[、．.]")),
    ("bracketed numeral", re.compile(rf"[（(]({CHINESE_NUMERAL})[）)]")),
    ("number", re.compile(r"(\d{1,2})(?:[、．]|\.(?!\d))")),
    ("bracketed number", re.compile(r"[（(](\d{1,2})[）)]")),
)
DIGITS = {character: value for value, character in enumerate("一二三四五六七八九", start=1)}
HEADING_LINE_MAX_CHARACTERS = 200  # a heading opens a line that is not a whole paragraph of text
PREAMBLE_MIN_CHARACTERS = 20

# sentences for the story-boundary model: text up to a sentence end (and its closing quotes or
# brackets), or up to a line break
SENTENCE = re.compile(r"[^。！？!?\n]*(?:[。！？!?]+[”’」』）)]*|\n|$)")
CHINESE_PAIR = re.compile(r"(?=([\u3400-\u9fff]{2}))")
DATE = re.compile(r"\d+月\d+日|\d+日|今天|昨天|近日|日前")
CONTEXT_SENTENCES = (1, 3, 8)  # the sentences before and after a candidate start that are compared
# A sentence whose logit is this far under the threshold (p < 0.25%) never starts a story: the
# search leaves it out, which keeps a 1M-character document's search short.
MIN_START_LOGIT = -6.0
# Sections longer than this are weighed only where no shorter one is possible, which bounds the
# search: 99.9% of xwlb train stories are shorter than 3,810 characters, 1 of 67,035 longer.
MAX_SECTION_SEARCH_CHARACTERS = 20000


@dataclass
class DocumentSections:
    """`sections`: every section in order; `skipped`: the indices of those that get no segment
    (news briefs); `found_by`: "blank lines", "headings", "story boundaries" or "whole"."""

    sections: list[str]
    found_by: str
    skipped: list[int] = field(default_factory=list)

    @property
    def kept(self) -> list[str]:
        return [section for index, section in enumerate(self.sections) if index not in self.skipped]


def sections_of(document: str) -> list[str]:
    """Blocks separated by a blank line."""
    return [block.strip() for block in document.split(SECTION_BREAK) if block.strip()]


def is_title_line(lines: list[str], index: int) -> bool:
    """A short line without closing punctuation that a longer line follows: an item's title."""
    line = lines[index]
    return (index < len(lines) - 1 and len(line) <= TITLE_MAX_CHARACTERS and line[-1] not in SENTENCE_ENDS
            and len(lines[index + 1]) > len(line))


def is_news_brief(section: str) -> bool:
    """A block of short items, each under its own title line: it opens with a title and at least
    two of its lines, and 30% of them, are titles. A story with subheadings opens with text."""
    lines = [line.strip() for line in section.split("\n") if line.strip()]
    if not lines or not is_title_line(lines, 0):
        return False
    titles = sum(is_title_line(lines, index) for index in range(len(lines)))
    return titles >= 2 and titles >= BRIEF_TITLE_SHARE * len(lines)


def numeral_value(text: str) -> int | None:
    """1-99 written in digits or in Chinese numerals (一, 十, 十二, 二十, 二十三)."""
    if text.isdigit():
        return int(text)
    tens, _, units = text.partition("十")
    if "十" not in text:
        return DIGITS.get(text) if len(text) == 1 else None
    if len(tens) > 1 or len(units) > 1:
        return None
    return DIGITS.get(tens, 1 if not tens else 0) * 10 + DIGITS.get(units, 0)


def heading_of(line: str) -> tuple[str, int] | None:
    """(kind, number) of a line that opens with a heading, None for any other line."""
    line = line.strip()
    if len(line) > HEADING_LINE_MAX_CHARACTERS:
        return None
    for kind, pattern in HEADING_KINDS:
        match = pattern.match(line)
        if match and (number := numeral_value(match.group(1))):
            return kind, number
    return None


def headed_sections(document: str) -> list[str] | None:
    """The document cut before its top-level headings: the lines that open with the kind of
    heading of its first heading line and number 1, 2, 3, ... in order (a line that happens to
    open like a heading, "第一条新闻", breaks no section unless the numbering goes on). None
    unless there are at least two."""
    lines = [line.strip() for line in document.split("\n") if line.strip()]
    headings = [heading_of(line) for line in lines]
    top = next((heading[0] for heading in headings if heading), None)
    starts, expected = [], 1
    for index, heading in enumerate(headings):
        if heading == (top, expected):
            starts.append(index)
            expected += 1
    if len(starts) < 2:
        return None
    cuts = [*starts, len(lines)]
    sections = ["\n".join(lines[begin:end]) for begin, end in zip(cuts, cuts[1:])]
    preamble = "\n".join(lines[: starts[0]])
    if len(preamble) >= PREAMBLE_MIN_CHARACTERS:
        sections.insert(0, preamble)
    elif preamble:
        sections[0] = f"{preamble}\n{sections[0]}"
    return sections


def sentences_of(document: str) -> tuple[list[str], list[bool]]:
    """The document's sentences (each with its closing punctuation, line breaks dropped) and, for
    each, whether a line break comes right before it."""
    sentences, after_break, pending_break = [], [], False
    for match in SENTENCE.finditer(document):
        text = match.group()
        if text == "\n" or not text.strip():
            pending_break = pending_break or text == "\n"
            continue
        sentences.append(text.rstrip("\n").strip())
        after_break.append(pending_break)
        pending_break = text.endswith("\n")
    return sentences, after_break


def cohesion(pairs: list[set[str]], width: int) -> list[float]:
    """For each sentence index i: how much the `width` sentences from i on share with the
    `width` before it, as the share of their character pairs' weight (TextTiling's lexical
    cohesion; Hearst 1997). A pair's weight is log(sentences / sentences holding it), counted in
    this document: a pair every story uses ("发展") says little, a name two sentences share says much."""
    counts: dict[str, int] = {}
    for sentence_pairs in pairs:
        for pair in sentence_pairs:
            counts[pair] = counts.get(pair, 0) + 1
    weight = {pair: math.log((len(pairs) + 1) / count) for pair, count in counts.items()}
    result = [0.0]
    for index in range(1, len(pairs)):
        later = set().union(*pairs[index:index + width])
        earlier = set().union(*pairs[max(0, index - width):index])
        total = sum(weight[pair] for pair in later)
        result.append(sum(weight[pair] for pair in later & earlier) / total if total else 0.0)
    return result


def bucket(value: float, step: float = 0.1, top: int = 9) -> int:
    return max(-top, min(int(value / step), top))


def dip(values: list[float], index: int) -> float:
    """How much lower values[index] is than the highest of the two values either side of it
    (TextTiling's depth score; index 0 has no value and is not a neighbour)."""
    around = values[max(1, index - 2):index] + values[index + 1:index + 3]
    return (max(around) if around else values[index]) - values[index]


def sentence_features(sentences: list[str], after_break: list[bool],
                      meaning: dict[int, list[float]] | None = None) -> list[list[str]]:
    """What the story-boundary model reads of every sentence but the first as the start of a new
    story: its opening characters, the end of the sentence before it, its length, a date near its
    start, a line break before it, and the lexical cohesion across it, with how much lower that is
    than just before and after it (a dip: TextTiling's depth score); with `meaning` (a
    `MeaningOf`'s answer for these sentences), the same two for how alike the sentences either
    side are in meaning."""
    pairs = [set(CHINESE_PAIR.findall(sentence)) for sentence in sentences]
    cohesions = {width: cohesion(pairs, width) for width in CONTEXT_SENTENCES}
    result = []
    for index in range(1, len(sentences)):
        sentence, before, broken = sentences[index], sentences[index - 1], after_break[index]
        head = sentence[:12]
        features = ["bias", f"p1:{sentence[:1]}", f"p2:{sentence[:2]}", f"p3:{sentence[:3]}", f"e:{before[-2:]}",
                    f"len:{min(len(sentence).bit_length(), 9)}", *(f"b:{head[k:k + 2]}" for k in range(len(head) - 1))]
        if DATE.search(sentence[:24]):
            features.append("date")
        if broken:
            features += ["break", f"break_p2:{sentence[:2]}"]
        for width, values in cohesions.items():
            features += [f"cohesion{width}:{bucket(values[index])}:{broken}",
                         f"dip{width}:{bucket(dip(values, index))}:{broken}"]
        for width, values in (meaning or {}).items():
            features += [f"meaning{width}:{bucket(values[index])}:{broken}",
                         f"meaning_dip{width}:{bucket(dip(values, index))}:{broken}"]
        result.append(features)
    return result


def story_start_scores(sentences: list[str], after_break: list[bool], weights: dict[str, float],
                       meaning: dict[int, list[float]] | None = None) -> list[float]:
    """The model's logit for each sentence but the first starting a new story."""
    return [sum(weights.get(feature, 0.0) for feature in features)
            for features in sentence_features(sentences, after_break, meaning)]


def meaning_for(model: dict, sentences: list[str], meaning_of: MeaningOf | None) -> dict[int, list[float]] | None:
    """The sentences' meaning cohesion where the story-boundary `model` was trained to read it
    (`reads_meaning`), else None; a ValueError naming the fix where it is needed and not given."""
    if not model.get("reads_meaning"):
        return None
    if meaning_of is None:
        raise ValueError("this story-boundary model reads the sentences' meaning (reads_meaning) and no meaning_of "
                         "was given: pass sentence_meaning.SentenceMeaning of the checkpoint's embeddings (the "
                         "summarization pipeline's `plan_reading` does).")
    return meaning_of(sentences)


def log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x)) if x > -30 else x


def length_log_prior(characters: int, prior: dict | None) -> float:
    """How likely a story of this many characters is, against the likeliest length: the log of a
    log-normal density (story lengths are skewed: median 392 characters, some over 3,000), scaled
    by the prior's weight, 0 at the likeliest length; 0 everywhere without a prior."""
    if not prior:
        return 0.0
    z = (math.log(max(characters, 1)) - prior["log_mean"]) / prior["log_sd"]
    return -prior["weight"] * z * z / 2


def best_story_starts(lengths: list[int], logits: list[float], min_characters: int, prior: dict | None) -> list[int]:
    """The sentences (indices past 0) that start a story: the cuts with the highest sum of the
    model's log-probability of every start and non-start plus the length prior of every section
    (a semi-Markov segmentation, solved exactly by dynamic programming). `logits[i]` is the
    model's logit for sentence i starting a story, the threshold already subtracted. Deciding
    every sentence alone (a threshold) cuts an evening into too many or too few stories; the
    prior makes two stories of 15 characters or one of 5,000 unlikely. No section is shorter than
    `min_characters` unless the document is."""
    candidates = [index for index in range(1, len(lengths)) if logits[index] > MIN_START_LOGIT]
    bounds = [0, *candidates, len(lengths)]
    offset = [0]
    for length in lengths:
        offset.append(offset[-1] + length)
    # the candidates a section spans without starting there: bounds[a + 1 : b] for the section
    # from bounds[a] to bounds[b]; a sentence under MIN_START_LOGIT adds the same to every choice
    unstarted = [0.0]
    for index in candidates:
        unstarted.append(unstarted[-1] + log_sigmoid(-logits[index]))
    best, back = [0.0] + [-math.inf] * (len(bounds) - 1), [0] * len(bounds)
    for b in range(1, len(bounds)):
        for a in range(b - 1, -1, -1):
            characters = offset[bounds[b]] - offset[bounds[a]]
            if characters > MAX_SECTION_SEARCH_CHARACTERS and best[b] > -math.inf:
                break
            whole = a == 0 and b == len(bounds) - 1
            if best[a] == -math.inf or (characters < min_characters and not whole):
                continue
            score = (best[a] + (log_sigmoid(logits[bounds[a]]) if a else 0.0) + unstarted[b - 1] - unstarted[a]
                     + length_log_prior(characters, prior))
            if score > best[b]:
                best[b], back[b] = score, a
    starts, b = [], len(bounds) - 1
    while b:
        b = back[b]
        starts.append(bounds[b])
    return sorted(start for start in starts if start)


def story_sections(document: str, model: dict, meaning_of: MeaningOf | None = None) -> list[str] | None:
    """The document cut where the story-boundary `model` ({"weights", "threshold",
    "min_section_characters", "min_document_characters", optionally "length_prior" and
    "reads_meaning"}) places the starts of stories (best_story_starts); None for a document too
    short to hold stories, or where no cut is made. A line break inside a section is kept.
    `meaning_of`: what a model that reads meaning needs (meaning_for)."""
    if len(document) < model["min_document_characters"]:
        return None
    sentences, after_break = sentences_of(document)
    if len(sentences) < 2:
        return None
    scores = story_start_scores(sentences, after_break, model["weights"], meaning_for(model, sentences, meaning_of))
    logits = [0.0, *(score - model["threshold"] for score in scores)]
    starts = set(best_story_starts([len(sentence) for sentence in sentences], logits,
                                   model["min_section_characters"], model.get("length_prior")))
    if not starts:
        return None
    sections = [sentences[0]]
    for index in range(1, len(sentences)):
        if index in starts:
            sections.append(sentences[index])
        else:
            sections[-1] += ("\n" if after_break[index] else "") + sentences[index]
    return sections


def opens_with_title(section: str) -> bool:
    lines = [line.strip() for line in section.split("\n") if line.strip()]
    return bool(lines) and is_title_line(lines, 0)


def with_briefs_together(sections: list[str]) -> list[str]:
    """Runs of consecutive sections that each open with a title line (the items of a news brief,
    which the story-boundary model cuts one by one) joined into one section, which
    `is_news_brief` then recognises; a titled section alone stays as it is."""
    merged: list[str] = []
    for index, section in enumerate(sections):
        if index and opens_with_title(section) and opens_with_title(sections[index - 1]):
            merged[-1] += "\n" + section
        else:
            merged.append(section)
    return merged


def document_sections(document: str, story_boundaries: dict | None = None,
                      meaning_of: MeaningOf | None = None) -> DocumentSections:
    """The sections of `document` as the pipeline reads them (this module's docstring);
    `meaning_of` for a story-boundary model that reads meaning (story_sections)."""
    blocks = sections_of(document)
    if len(blocks) >= 2:
        found = DocumentSections(blocks, "blank lines")
    elif headed := headed_sections(document):
        return DocumentSections(headed, "headings")
    elif story_boundaries and (stories := story_sections(document.strip(), story_boundaries, meaning_of)):
        found = DocumentSections(with_briefs_together(stories), "story boundaries")
    else:
        return DocumentSections([document], "whole")
    found.skipped = [index for index, section in enumerate(found.sections) if is_news_brief(section)]
    if len(found.skipped) == len(found.sections):  # briefs only: summarized whole
        return DocumentSections([document], "whole")
    return found
