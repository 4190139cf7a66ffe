"""Issue 43's yardstick: one checkpoint through `pipeline("summarization")` as a user calls it, on
every kind and shape of document the shared data holds, each beside its one-line rule.

Every document goes through `summarizer(document, **generate)` alone, with no batch argument, as
a user pastes one; the checkpoint's own defaults decide how much it reads and how it decodes
(`--generate` adds options, chosen on validation). Per set: character ROUGE of ours and of the
rule, the share of distinct outputs, the share of outputs that open with a series title `【`
where the reference does not, seconds per document and two examples; whole evenings add the
section measures of reformer_zh/evaluation/section_metrics.py (count, alignment, stitching, computed against
the evening's true stories, whatever shape it was given in); the headed reports add the share of
sections the summary represents.

The sets and their rules:
- xwlb stories, LCSTS, CSL: headlines and titles; the first sentence.
- CAIL2020, VCSum segments and whole meetings: long summaries; the first N characters, N the
  scored split's median reference length.
- xwlb whole evenings in three shapes, the same evenings each time: as the data has them (a blank
  line between stories), with single newlines (a story's own paragraphs are single newlines
  already, so only the text says where a story ends) and as one block; the first sentence of every
  story, read from the evening's true stories.
- headed reports (benchmarks/data/headed_reports.jsonl, written for this yardstick): sections
  that open with headings (`一、`, `1.`, `第一部分`), pasted with single newlines.

    python benchmarks/yardstick.py --out benchmarks/results/yardstick_shipped_validation.json
    python benchmarks/yardstick.py --model outputs/general --sets lcsts,csl --limit 50
    python benchmarks/yardstick.py --model outputs/general --split dev_test  # once per reported system

`validation` by default; `--split dev_test` scores the dev_test splits (VCSum and its meetings
have none) and records each set's scoring in benchmarks/results/dev_test_ledger.jsonl.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reformer_zh.evaluation.baselines import first_characters, first_sentence, story_leads  # noqa: E402
from reformer_zh.evaluation.dev_test_ledger import record_dev_test_scoring  # noqa: E402
from reformer_zh.hardware import machine_record  # noqa: E402
from reformer_zh.release.reference_model import reference_model_dir  # noqa: E402
from reformer_zh.evaluation.rouge_zh import rouge_scores  # noqa: E402
from reformer_zh.evaluation.section_metrics import section_metrics  # noqa: E402
from reformer_zh.evaluation.yardstick_table import comparison_table  # noqa: E402
from tokenization.build_vocab import read_jsonl  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
REPORTS = ROOT / "benchmarks" / "data" / "headed_reports.jsonl"
SERIES_TITLE = "【"
REPRESENTED_RUN = 4  # characters in a row shared with a section: a heading word alone is 2-4


def single_newlines(document: str) -> str:
    return re.sub(r"\n\s*\n", "\n", document)


def one_block(document: str) -> str:
    return re.sub(r"\s*\n\s*", "", document)


def as_given(document: str) -> str:
    return document


@dataclass(frozen=True)
class YardstickSet:
    name: str
    files: dict[str, Path]  # split -> file; a split it lacks is skipped, saying so
    rule: str  # "first sentence" | "first N characters" | "story leads"
    shape: Callable[[str], str] = as_given  # the document as the user pastes it
    limit: int | None = None  # documents scored by default (all where None)
    evening: bool = False  # section measures against the true stories
    report: bool = False  # sections listed in the row: the share the summary represents


def splits(folder: str, stem: str, names=("validation", "dev_test")) -> dict[str, Path]:
    return {split: DATA / folder / stem.format(split=split) for split in names}


EVENINGS = splits("xwlb", "program_{split}.jsonl.gz")
SETS = (
    YardstickSet("xwlb story", splits("xwlb", "story_{split}.jsonl.gz"), "first sentence", limit=300),
    YardstickSet("xwlb evening (blank lines)", EVENINGS, "story leads", limit=30, evening=True),
    YardstickSet("xwlb evening (single newlines)", EVENINGS, "story leads", single_newlines, limit=30, evening=True),
    YardstickSet("xwlb evening (one block)", EVENINGS, "story leads", one_block, limit=30, evening=True),
    YardstickSet("lcsts", splits("lcsts", "{split}.jsonl"), "first sentence", limit=300),
    YardstickSet("csl", splits("csl", "{split}.jsonl"), "first sentence", limit=300),
    YardstickSet("cail2020", splits("cail2020_sfzy", "{split}.jsonl"), "first N characters"),
    YardstickSet("vcsum segment", splits("vcsum", "{split}.jsonl", ("validation",)), "first N characters"),
    YardstickSet("vcsum meeting", {"validation": DATA / "vcsum" / "meeting_dev.jsonl"}, "first N characters"),
    YardstickSet("headed reports", {"validation": REPORTS, "dev_test": REPORTS}, "first sentence", report=True),
)
SET_NAMES = {item.name: item for item in SETS}


def rule_summaries(rule: str, documents: list[str], references: list[str]) -> tuple[list[str], str]:
    """The rule's summaries of the documents as the data holds them, and its name as reported."""
    if rule == "first sentence":
        return [first_sentence(document) for document in documents], rule
    if rule == "story leads":
        return [story_leads(document) for document in documents], "first sentence of every story"
    count = round(statistics.median(len(reference) for reference in references))
    return [first_characters(document, count) for document in documents], f"first {count} characters"


def series_title_share(outputs: list[str], references: list[str]) -> float | None:
    """Of the outputs whose reference does not open with a series title `【...】`, the share that do."""
    opened = [output.startswith(SERIES_TITLE) for output, reference in zip(outputs, references)
              if not reference.startswith(SERIES_TITLE)]
    return sum(opened) / len(opened) if opened else None


def shares_run(summary: str, section: str, run: int = REPRESENTED_RUN) -> bool:
    return any(section.find(summary[start:start + run]) >= 0 for start in range(len(summary) - run + 1))


def represented_share(outputs: list[str], sections: list[list[str]]) -> float:
    """The share of all sections from whose body (its heading line left out) the summary copies a
    run of `REPRESENTED_RUN` characters."""
    found = [shares_run(output, section.split("\n", 1)[-1]) for output, parts in zip(outputs, sections)
             for section in parts]
    return sum(found) / len(found)


def summarize_each(summarizer, documents: list[str], options: dict) -> tuple[list[str], float]:
    """Each document alone, as a user calls the pipeline; -> summaries and seconds per document."""
    started = time.perf_counter()
    outputs = [summarizer(document, **options)[0]["summary_text"] for document in documents]
    return outputs, (time.perf_counter() - started) / len(documents)


def score_set(item: YardstickSet, rows: list[dict], summarizer, options: dict) -> dict:
    documents, references = [row["document"] for row in rows], [row["summary"] for row in rows]
    given = [item.shape(document) for document in documents]
    ours, seconds = summarize_each(summarizer, given, options)
    rule, rule_name = rule_summaries(item.rule, documents, references)
    result = {"documents": len(rows), "median_document_characters": round(statistics.median(map(len, given))),
              "ours": rouge_scores(ours, references), "rule_name": rule_name, "rule": rouge_scores(rule, references),
              "series_title_share": series_title_share(ours, references), "seconds_per_document": round(seconds, 3),
              "examples": [{"document": document[:80], "reference": reference, "ours": output, "rule": lead}
                           for document, reference, output, lead in list(zip(given, references, ours, rule))[:2]]}
    if item.evening:
        result["ours"].update(section_metrics(ours, references, documents))
        result["rule"].update(section_metrics(rule, references, documents))
    if item.report:
        result["ours"]["sections_represented_share"] = represented_share(ours, [row["sections"] for row in rows])
        result["rule"]["sections_represented_share"] = represented_share(rule, [row["sections"] for row in rows])
    return result


def parse_options(text: str) -> dict:
    """`min_new_tokens=1,num_beams=4` -> {"min_new_tokens": 1, "num_beams": 4} (values as JSON)."""
    options = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"--generate {item!r}: the value must be JSON (a number, true/false, or \"text\")")
    return options


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="checkpoint folder (default: the shipped reference model)")
    parser.add_argument("--split", choices=["validation", "dev_test"], default="validation")
    parser.add_argument("--sets", default=",".join(SET_NAMES), help=f"comma-separated, from: {', '.join(SET_NAMES)}")
    parser.add_argument("--limit", type=int, default=None, help="documents per set (default: each set's own)")
    parser.add_argument("--generate", default="", help="generate() options for every call, e.g. num_beams=2")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="seeds torch's generator (LSH rotations of long inputs)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.sets.split(",") if name.strip()]
    unknown = [name for name in names if name not in SET_NAMES]
    if unknown:
        parser.error(f"unknown set {unknown[0]!r}; choose from: {', '.join(SET_NAMES)}")
    try:
        options = parse_options(args.generate)
    except ValueError as error:
        parser.error(str(error))
    if args.limit is not None and args.limit < 1:
        parser.error(f"--limit must be positive, got {args.limit}")
    torch.set_num_threads(args.threads)
    from transformers import pipeline

    model = args.model or str(reference_model_dir())
    summarizer = pipeline("summarization", model=model, trust_remote_code=True)
    result = {"split": args.split, "model": model, "machine": machine_record(args.threads), "generate": options,
              "sets": {}, "skipped": {},
              "command": "python benchmarks/yardstick.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    for name in names:
        item = SET_NAMES[name]
        path = item.files.get(args.split)
        if path is None or not path.is_file():
            result["skipped"][name] = f"no {args.split} split" if path is None else f"{path} is not there"
            print(f"{name}: skipped ({result['skipped'][name]})", flush=True)
            continue
        torch.manual_seed(args.seed)
        rows = read_jsonl(path)[: args.limit or item.limit]
        result["sets"][name] = score_set(item, rows, summarizer, options)
        row = result["sets"][name]
        print(f"{name}: {row['documents']} documents, ours R-L {row['ours']['rougeL']:.1f}, {row['rule_name']} "
              f"{row['rule']['rougeL']:.1f}, {row['seconds_per_document']:.2f} s each", flush=True)
        if args.split == "dev_test":  # scored once per reported system; the ledger shows any second look
            row["dev_test_scorings"] = record_dev_test_scoring(f"yardstick: {name}", model, options)
    print(comparison_table({"ours": result}))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return result


if __name__ == "__main__":
    main()
