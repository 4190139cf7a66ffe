"""Summarize Chinese documents: with the model that ships with the package, or any checkpoint.

    reformer-zh-summarize "一篇新闻……"                                   # the shipped reference model
    reformer-zh-summarize --file docs.jsonl --output summaries.jsonl     # jsonl with a "document" field (or .txt)
    cat doc.txt | reformer-zh-summarize                                  # stdin: one document per line
    reformer-zh-summarize --model outputs/lcsts "文档一" "文档二"          # any checkpoint folder or Hub id

Prints one summary per input (or writes jsonl with --output; a progress bar on stderr for a
file). The model goes through `pipeline("summarization", trust_remote_code=True)`, the path
users take. The older form, the checkpoint as the first argument (`reformer-zh-summarize
outputs/lcsts "文档"`), still works where that argument is a folder or a USER/NAME Hub id.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm.auto import tqdm

from modeling_reformer_zh.pipeline_reformer_zh import CHINESE_CHARACTER


def read_inputs(args) -> tuple[list[dict], list[str]]:
    """The rows to summarize and, for each, where it came from (for error messages)."""
    if args.texts:
        return [{"document": text} for text in args.texts], [f"argument {i + 1}" for i in range(len(args.texts))]
    if args.file:
        path = Path(args.file)
        if not path.is_file():
            raise FileNotFoundError(f"--file {path} does not exist")
        numbered = [(number, line) for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                    if line.strip()]
        where = [f"line {number} of {path}" for number, _ in numbered]
        if path.suffix == ".jsonl":
            rows = [json.loads(line) for _, line in numbered]
            missing = [i for i, row in enumerate(rows) if args.text_column not in row]
            if missing:
                raise ValueError(f"--file {path}: {where[missing[0]]} has no '{args.text_column}' field "
                                 f"(fields: {sorted(rows[missing[0]])}); name it with --text_column")
            return rows, where
        return [{"document": line} for _, line in numbered], where
    numbered = [(number, line) for number, line in enumerate(sys.stdin.read().splitlines(), 1) if line.strip()]
    return [{"document": line} for _, line in numbered], [f"line {number} of standard input" for number, _ in numbered]


def names_a_model(argument: str) -> bool:
    """The older command line's first argument, a checkpoint: an existing folder, or a path or
    USER/NAME Hub id (a slash, no spaces, no Chinese characters; a document has those)."""
    if Path(argument).is_dir():
        return True
    return "/" in argument and not any(c.isspace() for c in argument) and not CHINESE_CHARACTER.search(argument)


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("texts", nargs="*", help="documents; none: --file or stdin")
    parser.add_argument("--model", default=None,
                        help="checkpoint folder or Hub id (default: the reference model shipped with the package)")
    parser.add_argument("--file", help=".jsonl (with --text_column) or .txt (one document per line)")
    parser.add_argument("--text_column", default="document")
    parser.add_argument("--output", help="write jsonl here instead of printing")
    # unset: the checkpoint's generation_config.json decides, as for pipeline() (a general model
    # writes 300-character judgment summaries where a headline model stops at 40 tokens)
    parser.add_argument("--num_beams", type=int, default=None, help="default: the checkpoint's generation config")
    parser.add_argument("--max_new_tokens", type=int, default=None, help="default: the checkpoint's generation config")
    parser.add_argument("--min_new_tokens", type=int, default=None)
    parser.add_argument("--batch_size", type=int, default=1)
    parser.add_argument("--no_truncation", action="store_true", help="fail on inputs longer than the model's positions")
    parser.add_argument("--explain", action="store_true",
                        help="print each summary with the characters it copied from the document in [brackets] "
                             "(copy attention's own account; a sectioned document is read as without it)")
    parser.add_argument("--no_split_sections", action="store_true",
                        help="summarize a document made of sections (blank-line blocks) whole, in one pass with its "
                             "news briefs left out, instead of one segment per section joined with '；' (the default "
                             "for a model trained with section_embeddings)")
    args = parser.parse_args(argv)
    if args.model is None and args.texts and names_a_model(args.texts[0]):
        args.model, args.texts = args.texts[0], args.texts[1:]

    import modeling_reformer_zh  # noqa: F401  (registers the Auto classes when the project is installed)
    from transformers import pipeline

    rows, where = read_inputs(args)
    if not rows:
        raise ValueError("no input: give texts, --file, or pipe documents on stdin")
    texts = [row[args.text_column] if args.text_column in row else row["document"] for row in rows]
    for text, origin in zip(texts, where):  # before the model loads: a bad row costs no waiting
        if not isinstance(text, str):
            raise ValueError(f"the document of {origin} is a {type(text).__name__}, not text")
        if not text.strip():
            raise ValueError(f"document {origin} is empty: there is nothing to summarize; drop it or give its text")
    if args.model is None:
        from reformer_zh.release.reference_model import reference_model_dir

        args.model = str(reference_model_dir())
    summarizer = pipeline("summarization", model=args.model, trust_remote_code=True)
    given = dict(num_beams=args.num_beams, max_new_tokens=args.max_new_tokens, min_new_tokens=args.min_new_tokens)
    generate = {name: value for name, value in given.items() if value is not None}
    if args.explain:
        return explain_documents(summarizer, texts, generate, truncation=not args.no_truncation,
                                 split_sections=False if args.no_split_sections else None)
    summaries = []
    # a file is summarized a few batches at a time, so that the bar moves
    step = max(1, args.batch_size) * 8
    with tqdm(total=len(texts), unit="doc", disable=not args.file, file=sys.stderr) as bar:
        for start in range(0, len(texts), step):
            part = texts[start:start + step]
            # split_sections only when turned off: a checkpoint saved before it existed carries a
            # pipeline that does not take it
            whole = {"split_sections": False} if args.no_split_sections else {}
            results = summarizer(part, batch_size=args.batch_size, truncation=not args.no_truncation, **whole,
                                 **generate)
            summaries += [result["summary_text"] for result in results]
            bar.update(len(part))
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            for row, summary in zip(rows, summaries):
                handle.write(json.dumps({**row, "summary_generated": summary}, ensure_ascii=False) + "\n")
    else:
        for summary in summaries:
            print(summary)
    return summaries


def explain_documents(summarizer, texts: list[str], generate: dict, truncation: bool,
                      split_sections: bool | None) -> list[str]:
    """--explain: each summary printed with its copied runs in [brackets] (reformer_zh/serving/attribution.py),
    a sectioned document read as the command reads it (by section, or in one pass)."""
    from reformer_zh.serving.explanation import marked_summary, summarize_with_sources

    marked = []
    for text in texts:
        answer = summarize_with_sources(summarizer, text, split_sections=split_sections, truncation=truncation,
                                        **generate)
        marked.append(marked_summary(answer))
        print(marked[-1])
    return marked


if __name__ == "__main__":
    from reformer_zh.commands import summarize

    summarize()
