"""`reformer-zh-serve`: a local page that summarizes a document and shows where each summary
character came from.

    reformer-zh-serve                       # the shipped model, http://127.0.0.1:7860
    reformer-zh-serve --model outputs/mine --port 8000

Paste a document (or open a .txt file) and press Summarize: the summary appears with every
character the model copied linked to the source span it pointed at, both in the same colour;
a document made of sections (blank-line blocks) gets one segment per section, each tied to its
section, news briefs skipped as the pipeline skips them (a checkpoint trained to see sections
reads the document in one pass, as the pipeline does, and each copied character is tied to the
section it came from). The copy account is the model's own
(reformer_zh/attribution.py). Bad input gets the pipeline's message, shown on the page.

A standard-library HTTP server and one HTML page (reformer_zh/serve_page.html): nothing to
install beyond the package, and it starts as fast as the model loads. It listens on loopback
only unless --host says otherwise; it is a local tool, not a hardened web service.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PAGE = Path(__file__).resolve().parent / "serve_page.html"
COPIED = 0.5  # a summary token whose copy share is above this is shown as copied
MAX_DOCUMENT_CHARACTERS = 200_000
logger = logging.getLogger("serve")


def summarize_with_sources(summarizer, document: str, split_sections: bool | None = None, **generate) -> dict:
    """The page's answer for one document: its sections (as the model read them, news briefs
    marked skipped), its segments with each token's copy share and source span, the summary, and
    how it was read (`read`), as the pipeline reads it with the same `split_sections`: a document
    of one section whole; a sectioned one section by section (a segment per section), or in one
    pass (the default for a checkpoint trained to see sections; its segments split at "；", each
    token tied to the section it copied from)."""
    from modeling_reformer_zh.pipeline_reformer_zh import (check_documents, document_sections,
                                                           reads_sections_in_one_pass, summarization_defaults)

    check_documents([document])  # the pipeline's own errors and warnings for bad input
    if split_sections is None:
        split_sections = not reads_sections_in_one_pass(summarizer.model.config)
    started = time.perf_counter()
    boundaries = summarization_defaults(summarizer.model.config).get("story_boundaries")
    found = document_sections(document, boundaries)  # the pipeline's own decision
    if found.found_by == "whole":
        sections, segments = by_section(summarizer, [document], [False], generate)
        summary, read = segments[0]["summary"], "whole"
    elif not split_sections:
        (sections, segments, summary), read = in_one_pass(summarizer, document, generate), "one pass"
    else:
        from modeling_reformer_zh.pipeline_reformer_zh import join_segments

        skipped = [index in found.skipped for index in range(len(found.sections))]
        sections, segments = by_section(summarizer, found.sections, skipped, generate)
        summary, read = join_segments([segment["summary"] for segment in segments]), "by section"
    return {"summary": summary, "read": read, "sections": sections, "segments": segments, "copied_threshold": COPIED,
            "seconds": round(time.perf_counter() - started, 2)}


def marked_summary(answer: dict) -> str:
    """The answer's summary with each run of copied tokens in [brackets] (`reformer-zh-summarize
    --explain`): the segments joined as the summary joins them."""
    from modeling_reformer_zh.pipeline_reformer_zh import SEGMENT_JOIN, SUMMARY_END
    from reformer_zh.attribution import bracket_copied_runs

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


def by_section(summarizer, blocks: list[str], skipped: list[bool], generate: dict) -> tuple[list, list]:
    """Every block not skipped summarized on its own: a segment each, its spans into its block."""
    from reformer_zh.attribution import explain

    sections, segments = [], []
    for index, (block, skip) in enumerate(zip(blocks, skipped)):
        result = None if skip else explain(summarizer, block, **generate)
        sections.append({"text": result.source if result else block, "skipped": skip})
        if result is not None:
            segments.append({"section": index, "summary": result.summary,
                             "tokens": [token_record(token, token.source_span) for token in result.tokens]})
    return sections, segments


def in_one_pass(summarizer, document: str, generate: dict) -> tuple[list, list, str]:
    """The whole document, news briefs left out, read once (what the pipeline writes for it). The
    text the model read splits back into the sections at its blank lines, so every copied token
    points into its own section; segment k (the summary split at "；") is shown beside the section
    most of its copied tokens came from (the section it summarizes when it copied nothing)."""
    from bisect import bisect_right

    from modeling_reformer_zh.pipeline_reformer_zh import (SECTION_BREAK, SEGMENT_JOIN, document_sections,
                                                           summarization_defaults, without_news_briefs)
    from reformer_zh.attribution import explain

    boundaries = summarization_defaults(summarizer.model.config).get("story_boundaries")
    result = explain(summarizer, without_news_briefs(document, boundaries), **generate)
    found = document_sections(document, boundaries)
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


def make_handler(summarizer, generate: dict, model_name: str):
    lock = threading.Lock()  # one generation at a time: the model is shared and 2 cores are all there is

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format, *args):  # quiet: one line per summary is logged below
            pass

        def send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def send_json(self, status: int, payload: dict) -> None:
            self.send(status, json.dumps(payload, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8")

        def do_GET(self):
            if self.path in ("/", "/index.html"):
                page = PAGE.read_text(encoding="utf-8").replace("{{MODEL}}", model_name)
                self.send(200, page.encode("utf-8"), "text/html; charset=utf-8")
            else:
                self.send_json(404, {"error": f"no page {self.path}"})

        def do_POST(self):
            if self.path != "/api/summarize":
                self.send_json(404, {"error": f"no endpoint {self.path}"})
                return
            try:
                length = int(self.headers.get("Content-Length", 0))
                if length > MAX_DOCUMENT_CHARACTERS * 4:
                    raise ValueError(f"the document is over {MAX_DOCUMENT_CHARACTERS:,} characters")
                document = json.loads(self.rfile.read(length).decode("utf-8")).get("document")
                if not isinstance(document, str):
                    raise ValueError("send the document as text: {\"document\": \"...\"}")
                with lock:
                    answer = summarize_with_sources(summarizer, document, **generate)
            except (ValueError, TypeError) as error:  # the pipeline's messages for bad input
                self.send_json(400, {"error": str(error)})
                return
            logger.info("summarized %d characters in %.1f s", len(document), answer["seconds"])
            self.send_json(200, answer)

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="checkpoint folder or Hub id (default: the shipped model)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860, help="0: any free port")
    parser.add_argument("--num_beams", type=int, default=4)
    parser.add_argument("--max_new_tokens", type=int, default=64)
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    import modeling_reformer_zh  # noqa: F401  (registers the Auto classes when the project is installed)
    from transformers import pipeline

    if args.model is None:
        from reformer_zh.reference_model import reference_model_dir

        args.model = str(reference_model_dir())
    summarizer = pipeline("summarization", model=args.model, trust_remote_code=True)
    generate = dict(num_beams=args.num_beams, max_new_tokens=args.max_new_tokens)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(summarizer, generate, Path(args.model).name))
    # the line a test (or a person) waits for: the page answers from now on
    print(f"reformer-zh-serve: http://{args.host}:{server.server_address[1]}/ (model {args.model})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    from reformer_zh.commands import serve

    serve()
