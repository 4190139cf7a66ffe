"""reformer-zh-serve under bad and heavy requests: every request gets a JSON answer with the
status its fault calls for, and a few hundred of them, some at once, leave the server alive with
its memory flat."""

from __future__ import annotations

import json
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from reformer_zh.serving.serve import MAX_DOCUMENT_CHARACTERS, MAX_SECTIONS, host_name, make_handler, served_names

ROOT = Path(__file__).resolve().parents[2]
STORY = json.loads((ROOT / "reformer_zh" / "sample" / "validation.jsonl").read_text(encoding="utf-8")
                   .splitlines()[0])["document"]


def start_server(summarizer, **limits) -> tuple[ThreadingHTTPServer, int]:
    handler = make_handler(summarizer, {"num_beams": 1, "max_new_tokens": 8}, "tiny", **limits)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


@pytest.fixture(scope="module")
def summarizer(trained):
    from transformers import pipeline

    return pipeline("summarization", model=str(trained), trust_remote_code=True)


@pytest.fixture(scope="module")
def port(summarizer):
    server, port = start_server(summarizer, read_seconds=1.0)
    yield port
    server.shutdown()


def exchange(port: int, request: bytes, timeout: float = 60) -> tuple[int, dict]:
    """Send raw bytes, read the answer to the end; -> its status and JSON body."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"application/json" in head, head
    return status, json.loads(body)


def post(port: int, body: bytes, length: int | str | None = "auto", host: str = "127.0.0.1",
         extra: str = "") -> bytes:
    header = f"POST /api/summarize HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{extra}"
    if length is not None:
        header += f"Content-Length: {len(body) if length == 'auto' else length}\r\n"
    return header.encode("ascii") + b"\r\n" + body


def good(port: int) -> bytes:
    return post(port, json.dumps({"document": STORY}, ensure_ascii=False).encode("utf-8"))


BAD = {  # name: (request, status, words in the error)
    "no length": (lambda p: post(p, b'{"document": "x"}', length=None), 411, "Content-Length"),
    "negative length": (lambda p: post(p, b'{"document": "x"}', length=-1), 400, "negative"),
    "length not a number": (lambda p: post(p, b"{}", length="ten"), 400, "not a number"),
    "oversized length": (lambda p: post(p, b"{}", length=10**9), 413, "200,000 characters"),
    "not UTF-8": (lambda p: post(p, b'{"document": "\xff\xfe"}'), 400, "not UTF-8"),
    "not JSON": (lambda p: post(p, "新闻".encode("utf-8")), 400, "not JSON"),
    "a JSON list": (lambda p: post(p, b'["document"]'), 400, "send the document as text"),
    "a JSON string": (lambda p: post(p, b'"document"'), 400, "send the document as text"),
    "no document": (lambda p: post(p, b'{"text": "x"}'), 400, "send the document as text"),
    "a number": (lambda p: post(p, b'{"document": 3}'), 400, "send the document as text"),
    "empty": (lambda p: post(p, b'{"document": " \\n"}'), 400, "is empty"),
    "invisible": (lambda p: post(p, b'{"document": "\\u200b"}'), 400, "no visible"),
    "wrong path": (lambda p: post(p, b"{}").replace(b"/api/summarize", b"/api/other"), 404, "no endpoint"),
    "wrong method": (lambda p: post(p, b"{}").replace(b"POST", b"PUT", 1), 405, "PUT is not served"),
    "unknown method": (lambda p: post(p, b"{}").replace(b"POST", b"BREW", 1), 501, "Unsupported method"),
    "garbage line": (lambda p: b"\x16\x03\x01 hello world\r\n\r\n", 400, "Bad request version"),
    "another host": (lambda p: post(p, b"{}", host="attacker.example"), 403, "not Host"),
    "another origin": (lambda p: post(p, b"{}", extra="Origin: http://attacker.example\r\n"), 403, "not Origin"),
}


@pytest.mark.parametrize("name", BAD)
def test_each_bad_request_is_answered_with_its_status_and_a_message(port, name):
    request, status, words = BAD[name]
    answer = exchange(port, request(port))
    assert answer[0] == status and words in answer[1]["error"], answer


def test_a_body_shorter_than_announced_is_dropped_after_the_read_limit(port):
    status, answer = exchange(port, post(port, b'{"document": "', length=100), timeout=10)
    assert status == 408 and "did not arrive within 1 s" in answer["error"]


def test_the_character_cap_is_the_documented_one(port):
    exact = json.dumps({"document": "新" * (MAX_DOCUMENT_CHARACTERS + 1)}).encode("ascii")  # six bytes each
    status, answer = exchange(port, post(port, exact))
    assert status == 413 and f"{MAX_DOCUMENT_CHARACTERS + 1:,} characters" in answer["error"]


def test_too_many_sections_is_a_413_before_any_is_summarized(port):
    document = "\n\n".join(["今天天气很好，我们去公园散步。"] * (MAX_SECTIONS + 1))
    status, answer = exchange(port, post(port, json.dumps({"document": document}).encode("ascii")))
    assert status == 413 and f"{MAX_SECTIONS + 1:,} sections" in answer["error"]


def test_a_summary_past_the_time_limit_is_a_503_not_a_cut_summary(summarizer):
    server, port = start_server(summarizer, request_seconds=1e-4)
    try:
        status, answer = exchange(port, good(port))
    finally:
        server.shutdown()
    assert status == 503 and "longer than" in answer["error"]


def test_the_names_served():
    assert host_name("127.0.0.1:7860") == "127.0.0.1" and host_name("[::1]:80") == "::1"
    assert host_name("http://LOCALHOST:7860") == "localhost" and host_name("::1") == "::1"
    assert served_names("127.0.0.1") == {"127.0.0.1", "localhost", "::1"}
    assert "box.lan" in served_names("box.lan") and "0.0.0.0" not in served_names("0.0.0.0")


def resident_bytes() -> int:
    import resource

    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def test_hundreds_of_requests_some_at_once_all_answered_server_alive_memory_flat(port):
    """300 requests, a third good, from 8 clients at once: each gets the status it calls for; the
    server then still serves its page; its memory (this process's) grows under 10% after warm-up."""
    kinds = [("good", good, 200, "summary")] + [(name, *BAD[name]) for name in BAD]
    plan = [kinds[0] if index % 3 == 0 else kinds[1 + index % (len(kinds) - 1)] for index in range(300)]

    def one(kind):
        name, request, status, words = kind
        answer = exchange(port, request(port))
        return name, answer[0] == status and (words in answer[1] if status == 200 else words in answer[1]["error"])

    with ThreadPoolExecutor(8) as clients:
        warm = list(clients.map(one, plan[:60]))
        before = resident_bytes()
        rest = list(clients.map(one, plan[60:]))
        after = resident_bytes()
    wrong = [name for name, right in warm + rest if not right]
    assert not wrong, wrong
    assert exchange(port, post(port, b"{}").replace(b"POST /api/summarize", b"GET /nothing"))[0] == 404
    assert after < 1.1 * before, (before, after)
