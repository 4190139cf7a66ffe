"""`reformer-zh-serve`: a local page that summarizes a document and shows where each summary
character came from.

    reformer-zh-serve                       # the shipped model, http://127.0.0.1:7860
    reformer-zh-serve --model outputs/mine --port 8000

Paste a document (or open a .txt file) and press Summarize: the summary appears with every
character the model copied linked to the source span it pointed at, both in the same colour;
a document made of sections (blank-line blocks) gets one segment per section, each tied to its
section, news briefs skipped as the pipeline skips them. The copy account is the model's own
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


def summarize_with_sources(summarizer, document: str, **generate) -> dict:
    """The page's answer for one document: its sections (as the model read them, news briefs
    marked skipped), and per summarized section its segment with each token's copy share and
    source span. A document of one section is one section and one segment."""
    from modeling_reformer_zh.pipeline_reformer_zh import (check_documents, is_news_brief, join_segments,
                                                           sections_of, sections_to_summarize)
    from reformer_zh.attribution import explain

    check_documents([document])  # the pipeline's own errors and warnings for bad input
    sectioned = sections_to_summarize(document) is not None  # the pipeline's own decision
    blocks = sections_of(document) if sectioned else [document]
    started = time.perf_counter()
    sections, segments = [], []
    for index, block in enumerate(blocks):
        skipped = sectioned and is_news_brief(block)
        result = None if skipped else explain(summarizer, block, **generate)
        sections.append({"text": result.source if result else block, "skipped": skipped})
        if result is not None:
            segments.append({"section": index, "summary": result.summary,
                             "tokens": [{"text": t.text, "copy_share": round(t.copy_share, 4),
                                         "span": list(t.source_span) if t.source_span else None}
                                        for t in result.tokens]})
    summary = join_segments([s["summary"] for s in segments]) if sectioned else segments[0]["summary"]
    return {"summary": summary, "sections": sections, "segments": segments, "copied_threshold": COPIED,
            "seconds": round(time.perf_counter() - started, 2)}


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
