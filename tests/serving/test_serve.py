"""reformer-zh-serve's API without a browser: the answer the page renders, and bad input."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from reformer_zh.serving.serve import make_handler

ROOT = Path(__file__).resolve().parents[2]


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


BRIEF = ("新版国家医保药品目录落地实施\n今天，新版国家医保药品目录落地实施，91种药品新增纳入目录。\n"
         "《能源法》今起施行\n《中华人民共和国能源法》今天起正式施行，国家支持优先开发利用可再生能源。")


def test_a_one_pass_checkpoint_is_read_whole_as_the_pipeline_reads_it(trained):
    """A checkpoint trained to see sections: the page shows the pipeline's one-pass summary, the
    news brief skipped, and every token's span inside the section it names."""
    from transformers import pipeline

    from reformer_zh.serving.explanation import summarize_with_sources

    summarizer = pipeline("summarization", model=str(trained), trust_remote_code=True)
    summarizer.model.config.section_embeddings = 4  # the pipeline's switch to one pass (the tiny model's weights as they are)
    rows = (ROOT / "reformer_zh" / "sample" / "validation.jsonl").read_text(encoding="utf-8").splitlines()[:2]
    first, second = (json.loads(row)["document"] for row in rows)
    document = f"{first}\n\n{BRIEF}\n\n{second}"
    # the tiny model writes [UNK] for a document this long unless told not to
    generate = {"num_beams": 1, "max_new_tokens": 12, "suppress_tokens": [summarizer.tokenizer.unk_token_id]}
    answer = summarize_with_sources(summarizer, document, **generate)
    assert answer["summary"] == summarizer(document, **generate)[0]["summary_text"]
    assert [section["skipped"] for section in answer["sections"]] == [False, True, False]
    tokens = [token for segment in answer["segments"] for token in segment["tokens"]]
    assert any(token["span"] for token in tokens)
    for token in tokens:
        if token["span"]:
            section = answer["sections"][token["section"]]
            start, end = token["span"]
            assert not section["skipped"] and section["text"][start:end] == token["text"]


def test_one_pass_segments_split_at_the_separator_and_spans_move_into_their_sections(monkeypatch):
    """The mapping itself, on a made-up account: offsets in the text read become offsets in each
    section, the brief keeps its place, and a segment sits beside the section it copied from."""
    from types import SimpleNamespace

    import reformer_zh.serving.attribution as attribution
    from modeling_reformer_zh.pipeline_reformer_zh import plan_reading
    from reformer_zh.serving.explanation import in_one_pass

    read = "甲乙丙。\n\n丁戊己。"  # the two stories as the model read them, the brief left out
    tokens = [attribution.SummaryToken("丁", 0.9, (6, 7)), attribution.SummaryToken("戊", 0.9, (7, 8)),
              attribution.SummaryToken("；", 0.1, None), attribution.SummaryToken("乙", 0.9, (1, 2)),
              attribution.SummaryToken("新", 0.1, (4, 6))]  # a span across the break: no span
    monkeypatch.setattr(attribution, "explain", lambda summarizer, document, **generate: attribution.Explanation(
        read, "丁戊；乙新", tokens))
    summarizer = SimpleNamespace(model=SimpleNamespace(config=SimpleNamespace(task_specific_params=None)))
    reading = plan_reading(f"甲乙丙。\n\n{BRIEF}\n\n丁戊己。", summarizer.model.config, split_sections=False)
    sections, segments, summary = in_one_pass(summarizer, reading, {})
    assert [section["skipped"] for section in sections] == [False, True, False]
    assert sections[2]["text"] == "丁戊己。" and summary == "丁戊；乙新"
    assert [(segment["section"], segment["summary"]) for segment in segments] == [(2, "丁戊"), (0, "乙新")]
    assert [(token["span"], token.get("section")) for token in segments[0]["tokens"]] == [([0, 1], 2), ([1, 2], 2)]
    assert [(token["span"], token.get("section")) for token in segments[1]["tokens"]] == [([1, 2], 0), (None, None)]


def test_marked_summary_joins_segments_as_the_summary_does():
    """--explain's brackets on a made-up answer: by section, a segment's own closing "。" gives way
    to the join, as join_segments trims it; in one pass the segments are joined back as written."""
    from reformer_zh.serving.explanation import marked_summary

    def token(text, copied):
        return {"text": text, "copy_share": 0.9 if copied else 0.1, "span": [0, 1]}

    segments = [{"tokens": [token("甲", True), token("乙", False), token("。", False)]},
                {"tokens": [token("丙", True), token("丁", True)]}]
    assert marked_summary({"read": "by section", "segments": segments}) == "[甲]乙；[丙丁]。"
    assert marked_summary({"read": "one pass", "segments": segments}) == "[甲]乙。；[丙丁]"
    assert marked_summary({"read": "whole", "segments": segments[:1]}) == "[甲]乙。"
