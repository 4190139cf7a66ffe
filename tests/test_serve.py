"""reformer-zh-serve's API without a browser: the answer the page renders, and bad input."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from reformer_zh.serve import make_handler

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def url(trained):
    from transformers import pipeline

    summarizer = pipeline("summarization", model=str(trained), trust_remote_code=True)
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(summarizer, {"num_beams": 1, "max_new_tokens": 8},
                                                                 "tiny"))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def post(url: str, payload) -> tuple[int, dict]:
    request = urllib.request.Request(url + "/api/summarize", data=json.dumps(payload).encode("utf-8"),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_page_is_served_with_the_models_name(url):
    with urllib.request.urlopen(url + "/", timeout=30) as response:
        page = response.read().decode("utf-8")
    assert "<textarea id=\"document\"" in page and "<code id=\"model\">tiny</code>" in page


def test_a_sectioned_document_gets_one_segment_per_section_with_spans_into_its_section(url):
    rows = (ROOT / "reformer_zh" / "sample" / "validation.jsonl").read_text(encoding="utf-8").splitlines()[:2]
    documents = [json.loads(row)["document"] for row in rows]
    status, answer = post(url, {"document": "\n\n".join(documents)})
    assert status == 200, answer
    assert [segment["section"] for segment in answer["segments"]] == [0, 1]
    assert answer["summary"].endswith("。") and "；" in answer["summary"]
    for segment in answer["segments"]:
        text = answer["sections"][segment["section"]]["text"]
        assert "".join(token["text"] for token in segment["tokens"]).replace(" ", "") == \
            segment["summary"].replace(" ", "")
        for token in segment["tokens"]:
            assert 0 <= token["copy_share"] <= 1
            if token["span"]:
                start, end = token["span"]
                assert text[start:end] == token["text"]


@pytest.mark.parametrize("payload, message", [({"document": "  \n"}, "document 0 is empty"),
                                              ({"document": 3}, "send the document as text"),
                                              ({"text": "新闻"}, "send the document as text")])
def test_bad_input_is_a_400_with_the_pipelines_message(url, payload, message):
    status, answer = post(url, payload)
    assert status == 400 and message in answer["error"]
