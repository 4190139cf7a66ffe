"""What ROUGE does not say about the summary of a document made of sections (issue 35).

A whole xwlb evening is stories separated by blank lines; its rundown is one headline per main
story, in broadcast order, joined by `；` and closed by `。`. A rundown can score ROUGE by sharing
characters with the reference while listing too few headlines, in the wrong order, or writing
headlines that splice two stories. Per document, beside ROUGE:

- count: generated segments against reference headlines (the share of documents within +-1);
- alignment: the share of generated segments whose best-matching reference headline (character
  LCS F1) sits at the same index: one missing or extra segment early shifts every later one;
- stitching: the share of generated segments that copy runs of `STITCH_RUN` or more consecutive
  characters from two different sections, where no single section holds every run they copy.

All three are computed on characters, with no tokenizer, so any system's output can be scored.
"""

from __future__ import annotations

from collections.abc import Sequence

# the pipeline's own reading of sections and rundowns, so the two can never disagree
from modeling_reformer_zh.pipeline_reformer_zh import SEGMENT_JOIN, SUMMARY_END, sections_of

STITCH_RUN = 8  # characters: shorter runs ("习近平总书记") recur across unrelated stories


def segments_of(summary: str) -> list[str]:
    """A rundown's headlines: split at `；`, the closing `。` removed, empty pieces dropped."""
    text = summary.strip()
    text = text[: -len(SUMMARY_END)] if text.endswith(SUMMARY_END) else text
    return [piece.strip() for piece in text.split(SEGMENT_JOIN) if piece.strip()]


def lcs_length(first: str, second: str) -> int:
    previous = [0] * (len(second) + 1)
    for a in first:
        current = [0]
        for j, b in enumerate(second):
            current.append(previous[j] + 1 if a == b else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def lcs_f1(first: str, second: str) -> float:
    if not first or not second:
        return 0.0
    common = lcs_length(first, second)
    if common == 0:
        return 0.0
    precision, recall = common / len(first), common / len(second)
    return 2 * precision * recall / (precision + recall)


def best_match(segment: str, headlines: Sequence[str]) -> int | None:
    """The index of the reference headline most like `segment` (the first on a tie), None when
    it shares no character with any."""
    scores = [lcs_f1(segment, headline) for headline in headlines]
    if not scores or max(scores) == 0.0:
        return None
    return scores.index(max(scores))


def aligned_segments(generated: Sequence[str], headlines: Sequence[str]) -> int:
    """How many generated segments have their best-matching headline at their own index."""
    return sum(best_match(segment, headlines) == index for index, segment in enumerate(generated))


def copied_runs(segment: str, section: str, run: int = STITCH_RUN) -> set[int]:
    """Start positions in `segment` of its `run`-character substrings found in `section`."""
    return {start for start in range(len(segment) - run + 1) if segment[start:start + run] in section}


def is_stitched(segment: str, sections: Sequence[str], run: int = STITCH_RUN) -> bool:
    """True when the segment copies `run`-character pieces that no single section holds all of
    (so it copies from at least two sections)."""
    found = [copied_runs(segment, section, run) for section in sections]
    copied = set().union(*found) if found else set()
    return bool(copied) and not any(runs == copied for runs in found)


def section_metrics(predictions: Sequence[str], references: Sequence[str], documents: Sequence[str]) -> dict:
    """The three measures over a corpus, with the mean segment counts they rest on."""
    if not len(predictions) == len(references) == len(documents):
        raise ValueError(f"section_metrics needs one prediction, reference and document per row; got "
                         f"{len(predictions)}, {len(references)} and {len(documents)}.")
    within, generated_total, reference_total, aligned, stitched = 0, 0, 0, 0, 0
    for prediction, reference, document in zip(predictions, references, documents):
        generated, headlines = segments_of(prediction), segments_of(reference)
        within += abs(len(generated) - len(headlines)) <= 1
        generated_total += len(generated)
        reference_total += len(headlines)
        aligned += aligned_segments(generated, headlines)
        sections = sections_of(document)
        stitched += sum(is_stitched(segment, sections) for segment in generated)
    rows = max(1, len(predictions))
    return {"count_within_1_share": within / rows, "segments_per_document": generated_total / rows,
            "reference_segments_per_document": reference_total / rows,
            "alignment_share": aligned / max(1, generated_total), "stitching_share": stitched / max(1, generated_total)}
