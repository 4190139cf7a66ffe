"""`reformer-zh-serve`: a local page that summarizes a document and shows where each summary
character came from.

    reformer-zh-serve                       # the shipped model, http://127.0.0.1:7860
    reformer-zh-serve --model outputs/mine --port 8000

Paste a document (or open a .txt file) and press Summarize: the summary appears with every
character the model copied linked to the source span it pointed at, both in the same colour;
a document made of sections (blank-line blocks) gets one segment per section, each tied to its
section, news briefs skipped as the pipeline skips them (a checkpoint trained to see sections
reads the document in one pass, as the pipeline does, and each copied character is tied to the
section it came from). The answer is built by reformer_zh/serving/explanation.py from the
model's own copy account (reformer_zh/serving/attribution.py); this module is the HTTP server.
Bad input gets the pipeline's message, shown on the page.

A standard-library HTTP server and one HTML page (reformer_zh/serving/serve_page.html): nothing to
install beyond the package, and it starts as fast as the model loads. It listens on loopback
only unless --host says otherwise, and answers only requests addressed to the names it serves
(`Host`, and `Origin` when a browser sends one): a page elsewhere cannot reach it through DNS
rebinding. Every request gets an answer, a JSON `{"error": ...}` with a 4xx status for a bad one:
a body without a length, with a negative or oversized one, shorter than it announced (dropped
after --read_seconds), not UTF-8, not JSON, not an object, without a "document" string; a document
over 200,000 characters or of more than 300 sections (413); a summary that takes longer than
--request_seconds, counting the wait for the one model (503).
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from reformer_zh.serving.explanation import Overtime, TooManySections, summarize_with_sources

PAGE = Path(__file__).resolve().parent / "serve_page.html"
MAX_DOCUMENT_CHARACTERS = 200_000  # the one cap on what is sent: characters of the document
# JSON may spell each character as a six-byte escape ("\\u4e2d"); the object around it is small
MAX_BODY_BYTES = 6 * MAX_DOCUMENT_CHARACTERS + 4096
MAX_SECTIONS = 300  # a whole evening has at most ~40; 300 sections take minutes on 2 cores
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
logger = logging.getLogger("serve")


class RequestError(Exception):
    """A request the server answers with `status` and `{"error": message}`."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def host_name(value: str) -> str:
    """The name in a `Host` header or an `Origin` (scheme and port dropped; IPv6 unbracketed)."""
    name = value.split("://", 1)[-1].strip().lower()
    if name.startswith("["):
        return name[1:name.find("]")] if "]" in name else name
    return name.rsplit(":", 1)[0] if name.count(":") == 1 else name


def served_names(host: str) -> frozenset[str]:
    """The names a request may address: loopback's when serving on loopback (or on every address,
    where a person opens 127.0.0.1), else the --host given too."""
    return LOOPBACK_NAMES | ({host_name(host)} if host not in ("", "0.0.0.0", "::") else set())


def read_document(headers, body_stream) -> str:
    """The "document" of a summarize request, or a RequestError naming what is wrong with it."""
    announced = headers.get("Content-Length")
    if announced is None:
        raise RequestError(411, "send the body's length (Content-Length) with the document")
    try:
        length = int(announced)
    except ValueError:
        raise RequestError(400, f"Content-Length is not a number: {announced[:40]!r}") from None
    if length < 0:
        raise RequestError(400, f"Content-Length is negative: {length}")
    if length > MAX_BODY_BYTES:
        raise RequestError(413, f"the document is over {MAX_DOCUMENT_CHARACTERS:,} characters: send it in parts")
    body = body_stream.read(length)  # the socket's timeout ends a body that never comes
    if len(body) < length:
        raise RequestError(400, f"the body ended after {len(body):,} of the {length:,} bytes it announced")
    try:
        payload = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise RequestError(400, "the body is not UTF-8 text: send the document as UTF-8 JSON") from None
    except json.JSONDecodeError as error:
        raise RequestError(400, f"the body is not JSON ({error.msg}): send {{\"document\": \"...\"}}") from None
    document = payload.get("document") if isinstance(payload, dict) else None
    if not isinstance(document, str):
        raise RequestError(400, "send the document as text: {\"document\": \"...\"}")
    if len(document) > MAX_DOCUMENT_CHARACTERS:
        raise RequestError(413, f"the document has {len(document):,} characters; the page summarizes at most "
                                f"{MAX_DOCUMENT_CHARACTERS:,}: send it in parts")
    return document


def answer_summarize_request(headers, body_stream, summarizer, generate: dict, lock: threading.Lock,
                             request_seconds: float, read_seconds: float) -> tuple[int, dict]:
    """(status, JSON answer) for one POST /api/summarize: the page's answer (200, logged), or an
    error with its status: the request's own (RequestError), 408 for a body that stopped coming,
    503 past `request_seconds` (the wait for the one model `lock` guards included), 413/400 for a
    document the pipeline refuses, 500 for a failure of the model."""
    started = time.perf_counter()
    document = ""
    try:
        document = read_document(headers, body_stream)
        if not lock.acquire(timeout=request_seconds):
            raise Overtime
        try:
            answer = summarize_with_sources(summarizer, document, deadline=started + request_seconds,
                                            max_sections=MAX_SECTIONS, **generate)
        finally:
            lock.release()
    except RequestError as error:
        return error.status, {"error": str(error)}
    except TimeoutError:  # the socket's: the body stopped coming
        return 408, {"error": f"the body did not arrive within {read_seconds:g} s"}
    except Overtime:
        return 503, {"error": f"the summary took longer than this server's {request_seconds:g} s "
                              "(or the model was busy that long): send a shorter document"}
    except (ValueError, TypeError) as error:  # the pipeline's messages for bad input
        return 413 if isinstance(error, TooManySections) else 400, {"error": str(error)}
    except Exception:
        logger.exception("summarizing a %d-character document failed", len(document))
        return 500, {"error": "the model failed on this document (see the server's log)"}
    logger.info("summarized %d characters in %.1f s", len(document), answer["seconds"])
    return 200, answer


def make_handler(summarizer, generate: dict, model_name: str, names: frozenset[str] = LOOPBACK_NAMES,
                 request_seconds: float = 300.0, read_seconds: float = 20.0):
    """The server's request handler. `names`: the host names requests may address;
    `request_seconds`: a summarize request's limit, the wait for the model included;
    `read_seconds`: how long a connection may stay silent before it is dropped."""
    lock = threading.Lock()  # one generation at a time: the model is shared and 2 cores are all there is

    class Handler(BaseHTTPRequestHandler):
        timeout = read_seconds  # the socket's: a client that stops sending is dropped, not waited on
        # a malformed request line leaves the version at this default: HTTP/0.9 answers carry no
        # status line, so the error would reach the client as a bare body; no client speaks 0.9
        default_request_version = "HTTP/1.0"

        def log_message(self, format, *args):  # quiet: one line per summary is logged below
            pass

        def send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def send_json(self, status: int, payload: dict, **headers: str) -> None:
            self.send(status, json.dumps(payload, ensure_ascii=False).encode("utf-8"),
                      "application/json; charset=utf-8", **headers)

        def send_error(self, code, message=None, explain=None):
            """The standard library's own errors (a malformed request line, headers too long, an
            unknown method) as JSON like every other answer."""
            self.close_connection = True
            self.send_json(code, {"error": message or self.responses.get(code, ("error",))[0]}, Connection="close")

        def addressed_here(self) -> bool:
            """False (answered 403) for a request addressed to another name: DNS rebinding."""
            for header in ("Host", "Origin"):
                value = self.headers.get(header)
                if value and value != "null" and host_name(value) not in names:
                    self.send_json(403, {"error": f"this server answers requests to {sorted(names)}, "
                                                  f"not {header} {value[:80]!r}"})
                    return False
            return True

        def do_GET(self):
            if not self.addressed_here():
                return
            if self.path in ("/", "/index.html"):
                page = PAGE.read_text(encoding="utf-8").replace("{{MODEL}}", model_name)
                self.send(200, page.encode("utf-8"), "text/html; charset=utf-8")
            else:
                self.send_json(404, {"error": f"no page {self.path[:200]}"})

        def refuse_method(self):
            self.send_json(405, {"error": f"{self.command} is not served: GET / or POST /api/summarize"},
                           Allow="GET, POST")

        do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = do_TRACE = do_CONNECT = refuse_method

        def do_POST(self):
            if not self.addressed_here():
                return
            if self.path != "/api/summarize":
                self.send_json(404, {"error": f"no endpoint {self.path[:200]}"})
                return
            status, answer = answer_summarize_request(self.headers, self.rfile, summarizer, generate, lock,
                                                      request_seconds, read_seconds)
            self.close_connection = self.close_connection or status == 408
            self.send_json(status, answer)

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="checkpoint folder or Hub id (default: the shipped model)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860, help="0: any free port")
    parser.add_argument("--num_beams", type=int, default=None, help="default: the checkpoint's generation config")
    parser.add_argument("--max_new_tokens", type=int, default=None, help="default: the checkpoint's generation config")
    parser.add_argument("--request_seconds", type=float, default=300.0,
                        help="a summary's time limit, the wait for the model included (503 past it)")
    parser.add_argument("--read_seconds", type=float, default=20.0,
                        help="how long a connection may stay silent before it is dropped")
    args = parser.parse_args(argv)
    for name in ("request_seconds", "read_seconds"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name} must be positive, got {getattr(args, name)}")
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    import modeling_reformer_zh  # noqa: F401  (registers the Auto classes when the project is installed)
    from transformers import pipeline

    if args.model is None:
        from reformer_zh.release.reference_model import reference_model_dir

        args.model = str(reference_model_dir())
    summarizer = pipeline("summarization", model=args.model, trust_remote_code=True)
    given = dict(num_beams=args.num_beams, max_new_tokens=args.max_new_tokens)
    generate = {name: value for name, value in given.items() if value is not None}
    handler = make_handler(summarizer, generate, Path(args.model).name, served_names(args.host),
                           args.request_seconds, args.read_seconds)
    server = ThreadingHTTPServer((args.host, args.port), handler)
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
