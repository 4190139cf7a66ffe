"""A summary with its sources, as the page and `reformer-zh-summarize --explain` show it: the
document read as the pipeline reads it (plan_reading: whole, section by section, or in one pass),
each segment's tokens with their copy share and the source span they copied from
(reformer_zh/serving/attribution.py), news briefs marked skipped; bounded by a deadline and a
number of sections for the server."""

from __future__ import annotations

import time

COPIED = 0.5  # a summary token whose copy share is above this is shown as copied


class TooManySections(ValueError):
    """A document of more sections than the caller allows (the server answers 413)."""


class Overtime(Exception):
    """A summary ran past its request's deadline (the server answers 503, not a cut summary)."""


def summarize_with_sources(summarizer, document: str, split_sections: bool | None = None,
                           deadline: float | None = None, max_sections: int | None = None, **generate) -> dict:
    """The page's answer for one document: its sections (as the model read them, news briefs
    marked skipped), its segments with each token's copy share and source span, the summary, and
    how it was read (`read`), as the pipeline reads it with the same `split_sections`: a document
    of one section whole; a sectioned one section by section (a segment per section), or in one
    pass (the default for a checkpoint trained to see sections; its segments split at "；", each
    token tied to the section it copied from).

    `deadline` (a `time.perf_counter()` value): `Overtime` when it passes, before a section or
    after a generation it cut short (each generation gets the time left as `max_time`);
    `max_sections`: `TooManySections` (a ValueError) for a document of more sections, before any
    is summarized."""
    from modeling_reformer_zh.pipeline_reformer_zh import check_documents, join_segments

    check_documents([document])  # the pipeline's own errors and warnings for bad input
    started = time.perf_counter()
    reading = summarizer.plan_reading(document, split_sections)  # the pipeline's own decision
    found = reading.found
    if max_sections is not None and len(found.sections) > max_sections:
        raise TooManySections(f"the document has {len(found.sections):,} sections ({found.found_by}); the page "
                         f"summarizes at most {max_sections:,}: send it in parts")
    generate = dict(generate, deadline=deadline)
    if reading.how == "whole":
        sections, segments = by_section(summarizer, [document], [False], generate)
        summary = segments[0]["summary"]
    elif reading.how == "one pass":
        sections, segments, summary = in_one_pass(summarizer, reading, generate)
    else:
        skipped = [index in found.skipped for index in range(len(found.sections))]
        sections, segments = by_section(summarizer, found.sections, skipped, generate)
        summary = join_segments([segment["summary"] for segment in segments])
    return {"summary": summary, "read": reading.how, "sections": sections, "segments": segments, "copied_threshold": COPIED,
            "seconds": round(time.perf_counter() - started, 2)}


def marked_summary(answer: dict) -> str:
    """The answer's summary with each run of copied tokens in [brackets] (`reformer-zh-summarize
    --explain`): the segments joined as the summary joins them."""
    from modeling_reformer_zh.pipeline_reformer_zh import SEGMENT_JOIN, SUMMARY_END
    from reformer_zh.serving.attribution import bracket_copied_runs

    def marked(tokens: list[dict]) -> str:
        return bracket_copied_runs((token["text"], bool(token["span"]) and token["copy_share"] > COPIED)
                                   for token in tokens)

    segments = [segment["tokens"] for segment in answer["segments"]]
    if answer["read"] != "by section":  # whole: one segment; one pass: split at the separators it wrote
        return SEGMENT_JOIN.join(marked(tokens) for tokens in segments)
    trimmed = []  # join_segments' trimming: a segment's own closing "；" and "。" give way to the join
    for tokens in segments:
        end = len(tokens)
        while end and tokens[end - 1]["text"].strip() in ("", SEGMENT_JOIN, SUMMARY_END):
            end -= 1
        trimmed.append(tokens[:end])
    return SEGMENT_JOIN.join(marked(tokens) for tokens in trimmed) + SUMMARY_END


def token_record(token, span: tuple[int, int] | None, section: int | None = None) -> dict:
    """A summary token for the page: `span` in its section's text, `section` when the token may
    point into another section than its segment's (one pass)."""
    record = {"text": token.text, "copy_share": round(token.copy_share, 4), "span": list(span) if span else None}
    return record if section is None else {**record, "section": section}


def explain_in_time(summarizer, document: str, deadline: float | None = None, **generate):
    """attribution.explain, its generation given the time left before `deadline`; `Overtime`
    when none is left or the generation used it all (its summary may be cut short)."""
    from reformer_zh.serving.attribution import explain

    if deadline is None:
        return explain(summarizer, document, **generate)
    left = deadline - time.perf_counter()
    if left <= 0:
        raise Overtime
    result = explain(summarizer, document, max_time=left, **generate)
    if time.perf_counter() >= deadline:
        raise Overtime
    return result


def by_section(summarizer, blocks: list[str], skipped: list[bool], generate: dict) -> tuple[list, list]:
    """Every block not skipped summarized on its own: a segment each, its spans into its block."""
    sections, segments = [], []
    for index, (block, skip) in enumerate(zip(blocks, skipped)):
        result = None if skip else explain_in_time(summarizer, block, **generate)
        sections.append({"text": result.source if result else block, "skipped": skip})
        if result is not None:
            segments.append({"section": index, "summary": result.summary,
                             "tokens": [token_record(token, token.source_span) for token in result.tokens]})
    return sections, segments


def in_one_pass(summarizer, reading, generate: dict) -> tuple[list, list, str]:
    """The document as `reading` (a "one pass" `Reading`) has it, news briefs left out, read once
    (what the pipeline writes for it). The
    text the model read splits back into the sections at its blank lines, so every copied token
    points into its own section; segment k (the summary split at "；") is shown beside the section
    most of its copied tokens came from (the section it summarizes when it copied nothing)."""
    from bisect import bisect_right

    from modeling_reformer_zh.pipeline_reformer_zh import SECTION_BREAK, SEGMENT_JOIN

    result = explain_in_time(summarizer, reading.text, **generate)
    found = reading.found
    blocks = found.sections
    read = result.source.split(SECTION_BREAK)
    kept = [index for index in range(len(blocks)) if index not in found.skipped]
    if len(read) == len(kept):
        sections = [{"text": block, "skipped": True} for block in blocks]
        for index, text in zip(kept, read):
            sections[index] = {"text": text, "skipped": False}
    else:  # normalisation merged sections (a line of spaces between them): the text read, as one
        sections, kept, read = [{"text": result.source, "skipped": False}], [0], [result.source]
    starts = [0]
    for text in read[:-1]:
        starts.append(starts[-1] + len(text) + len(SECTION_BREAK))
    segments, tokens = [], []

    def close_segment() -> None:
        copied = [token["section"] for token in tokens if token["span"] and token["copy_share"] > COPIED]
        own = kept[min(len(segments), len(kept) - 1)]
        segments.append({"section": max(set(copied), key=copied.count) if copied else own,
                         "summary": "".join(token["text"] for token in tokens), "tokens": list(tokens)})
        tokens.clear()

    for token in result.tokens:
        if token.text == SEGMENT_JOIN:
            close_segment()
            continue
        span, section = None, None
        if token.source_span:
            k = bisect_right(starts, token.source_span[0]) - 1
            start, end = (offset - starts[k] for offset in token.source_span)
            if end <= len(read[k]):  # not a span across a section break
                span, section = (start, end), kept[k]
        tokens.append(token_record(token, span, section))
    if tokens or not segments:
        close_segment()
    return sections, segments, result.summary
