"""The summarization pipeline (modeling_reformer_zh/pipeline_reformer_zh.py) on a tiny trained
checkpoint: generate options, empty documents, news briefs and sections, batching, the first
tokens read, one segment per section."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from utils import BRIEF, ROOT, STORY

sys.path.insert(0, str(ROOT / "scripts"))


def test_the_pipeline_takes_every_generate_option_names_typos_and_applies_the_training_prefix(trained, tmp_path):
    from transformers import AutoModelForSeq2SeqLM, pipeline

    summarizer = pipeline("summarization", model=str(trained), trust_remote_code=True)
    document = "博物馆推出古代丝绸文物特展。"
    sampled = summarizer(document, do_sample=True, typical_p=0.9, max_new_tokens=3, suppress_tokens=[0, 1, 2, 4])
    assert sampled[0]["summary_text"]
    with pytest.raises(TypeError, match="did you mean 'num_beams'"):
        summarizer(document, num_beam=2)
    # no empty summary unless asked for: min_new_tokens=1 where neither the call nor the model bounds the length
    calls, generate = [], summarizer.model.generate
    summarizer.model.generate = lambda **kwargs: calls.append(kwargs) or generate(**kwargs)
    for options in ({}, {"min_length": 3}, {"min_new_tokens": 0}):
        summarizer(document, max_new_tokens=3, **options)
    assert [call.get("min_new_tokens") for call in calls] == [1, None, 0]
    assert calls[1]["min_length"] == 3
    summarizer.model.generate = generate

    prefixed = tmp_path / "prefixed"
    model = AutoModelForSeq2SeqLM.from_pretrained(trained)
    model.config.prefix = "摘要："
    model.save_pretrained(prefixed)
    summarizer.tokenizer.save_pretrained(prefixed)
    with_prefix = pipeline("summarization", model=str(prefixed), trust_remote_code=True)
    expected = with_prefix.tokenizer("摘要：" + document)["input_ids"]
    assert with_prefix.preprocess(document)["input_ids"][0].tolist() == expected
    assert summarizer.preprocess(document)["input_ids"][0].tolist() == summarizer.tokenizer(document)["input_ids"]

    from modeling_reformer_zh import SummarizationPipeline

    in_memory = SummarizationPipeline(model=model, tokenizer=summarizer.tokenizer)  # the README's model-object path
    assert in_memory(document, max_new_tokens=3, min_new_tokens=2, suppress_tokens=[0, 1, 2, 4])[0]["summary_text"]


def test_the_pipeline_refuses_empty_documents_by_index_and_warns_on_what_it_cannot_read(trained, caplog):
    from transformers import pipeline

    summarizer = pipeline("summarization", model=str(trained), trust_remote_code=True)
    for documents, index in ((["医院开设夜间儿科门诊。", "  \n "], 1), ("", 0), (["", "市图书馆延长开放时间。"], 0)):
        with pytest.raises(ValueError, match=f"document {index} is empty"):
            summarizer(documents, max_new_tokens=2)
    with pytest.raises(TypeError, match="document 1 is a int"):
        summarizer(["医院开设夜间儿科门诊。", 7])
    for invisible in ("\x00", "\u200b\u200b", " \u200b\x07 "):  # the tokenizer would read nothing
        with pytest.raises(ValueError, match="document 1 has no visible characters"):
            summarizer(["医院开设夜间儿科门诊。", invisible], max_new_tokens=2)
    for text in ("🙂🙂🙂", "The museum opens a silk exhibition.", "<p><b>hello</b></p>"):
        caplog.clear()
        with caplog.at_level("WARNING"):
            summarizer(text, max_new_tokens=2)
        assert "document 0 has no Chinese characters" in caplog.text
    caplog.clear()
    only_special = [i for i in range(len(summarizer.tokenizer)) if i not in summarizer.tokenizer.all_special_ids]
    with caplog.at_level("WARNING"):  # every visible token suppressed: the summary decodes to ""
        result = summarizer("医院开设夜间儿科门诊。", max_new_tokens=2, suppress_tokens=only_special)
    assert result[0]["summary_text"] == "" and caplog.text.count("decoded to the empty string") == 1
    caplog.clear()
    with caplog.at_level("WARNING"):  # each document warned about once, by its index
        summarizer(["医院开设夜间儿科门诊。", "hello"], max_new_tokens=2)
    assert caplog.text.count("has no Chinese characters") == 1 and "document 1 has" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):  # a Chinese document that decodes to text: no warning at all
        summarizer("医院开设夜间儿科门诊。", max_new_tokens=3, min_new_tokens=2, suppress_tokens=[0, 1, 2, 4])
    assert "no Chinese characters" not in caplog.text and "empty string" not in caplog.text


OTHER = "市图书馆延长开放时间，周末开放到晚上九点。"


def test_news_briefs_are_told_from_stories_with_subheadings_and_each_reading_is_planned_once():
    from types import SimpleNamespace

    from modeling_reformer_zh.pipeline_reformer_zh import is_news_brief, plan_reading

    assert is_news_brief(BRIEF) and not is_news_brief(STORY)
    # a story that opens with text and has two subheadings is not a brief
    assert not is_news_brief("据报道，会议今天召开。\n会议指出\n要做好工作。\n会议强调\n要抓好落实。\n会上还通报了情况。")
    split, one_pass = SimpleNamespace(task_specific_params=None), SimpleNamespace(section_embeddings=32)

    def read(document, config, split_sections=None):
        reading = plan_reading(document, config, split_sections)
        return reading.how, reading.pieces

    assert read(STORY, split) == ("whole", [STORY]) and read(BRIEF, split) == ("whole", [BRIEF])  # briefs only
    assert read(f"{STORY}\n\n{BRIEF}", split) == ("by section", [STORY])
    assert read(f"{STORY}\n\n{BRIEF}\n\n{OTHER}", split) == ("by section", [STORY, OTHER])
    assert read(f"{STORY}\n\n{BRIEF}\n\n{OTHER}", one_pass) == ("one pass", [f"{STORY}\n\n{OTHER}"])
    assert read(f"{STORY}\n\n{OTHER}", one_pass, split_sections=True)[0] == "by section"


def test_a_sectioned_document_is_summarized_section_by_section_in_one_batched_call(trained):
    from transformers import pipeline

    summarizer = pipeline("summarization", model=str(trained), trust_remote_code=True)
    options = dict(max_new_tokens=4, min_new_tokens=2, suppress_tokens=[0, 1, 2, 4], num_beams=1)
    alone = [summarizer(text, **options)[0]["summary_text"] for text in (STORY, OTHER)]
    evening = f"{STORY}\n\n{BRIEF}\n\n{OTHER}"
    result = summarizer([evening, STORY], **options)
    assert result[0]["summary_text"] == "；".join(s.rstrip("；。") for s in alone) + "。"
    assert result[1]["summary_text"] == alone[0]  # a one-section document in the same call: whole
    batched = summarizer([evening, STORY], batch_size=4, **options)  # sections of both documents in batches
    assert len(batched) == 2 and batched[0]["summary_text"].count("；") == 1
    # under the tiny model's 128-token threshold, so its LSH layer attends exactly (no random hashing)
    short_evening = f"{STORY}\n\n{OTHER}"
    whole = summarizer(short_evening, split_sections=False, **options)[0]["summary_text"]
    expected = summarizer.tokenizer.decode(summarizer.model.generate(
        **summarizer.tokenizer(short_evening, return_tensors="pt"), **options)[0], skip_special_tokens=True)
    assert whole == expected
    # in one pass the news brief is left out before the model reads the evening (no headline of its own)
    assert summarizer(f"{STORY}\n\n{BRIEF}\n\n{OTHER}", split_sections=False, **options)[0]["summary_text"] == expected
    # a checkpoint trained to see sections reads a sectioned document in one pass by default
    summarizer.model.config.section_embeddings = 4
    try:
        assert summarizer(f"{STORY}\n\n{BRIEF}\n\n{OTHER}", **options)[0]["summary_text"] == expected
    finally:
        summarizer.model.config.section_embeddings = 0


def test_a_documents_sections_go_through_generate_together_unless_a_batch_size_is_given(trained, monkeypatch):
    """Issue 43: `summarizer(evening)` with no batch argument batches the evening's sections, and
    writes what one section at a time writes."""
    from transformers import pipeline

    summarizer = pipeline("summarization", model=str(trained), trust_remote_code=True)
    options = dict(max_new_tokens=4, min_new_tokens=2, suppress_tokens=[0, 1, 2, 4], num_beams=2)
    batches = []
    forward = summarizer._forward
    monkeypatch.setattr(summarizer, "_forward", lambda inputs, **kw: batches.append(len(inputs["input_ids"])) or
                        forward(inputs, **kw))
    evening = f"{STORY}\n\n{BRIEF}\n\n{OTHER}\n\n{STORY}"
    together = summarizer(evening, **options)[0]["summary_text"]
    assert batches == [3]
    batches.clear()
    assert summarizer(evening, batch_size=1, **options)[0]["summary_text"] == together
    assert batches == [1, 1, 1]


def test_max_input_tokens_reads_the_first_tokens_as_training_did_without_a_warning(trained, caplog):
    """max_input_tokens=N summarizes exactly what generate() writes for the first N tokens; a
    value that is not a positive integer is refused, and a typo names it."""
    from transformers import AutoModelForSeq2SeqLM, pipeline

    summarizer = pipeline("summarization", model=str(trained), trust_remote_code=True)
    model = AutoModelForSeq2SeqLM.from_pretrained(trained).eval()
    row = json.loads((ROOT / "reformer_zh" / "sample" / "validation.jsonl").read_text(encoding="utf-8").splitlines()[0])
    document = row["document"]
    assert len(summarizer.tokenizer(document)["input_ids"]) > 40  # else nothing is cut
    cut = summarizer.tokenizer(document, max_length=40, truncation=True, return_tensors="pt")
    with torch.no_grad():
        expected = summarizer.tokenizer.decode(model.generate(**cut, max_new_tokens=6, num_beams=1)[0],
                                               skip_special_tokens=True)
    assert summarizer.preprocess(document, max_input_tokens=40)["input_ids"].shape[1] == 40
    with caplog.at_level("WARNING"):
        read_40 = summarizer(document, max_input_tokens=40, max_new_tokens=6, num_beams=1)[0]["summary_text"]
    assert read_40 == expected and "truncated" not in caplog.text
    for bad in (0, -3, 2.5, True, "256"):
        with pytest.raises(ValueError, match="max_input_tokens must be a positive integer"):
            summarizer(document, max_input_tokens=bad)
    with pytest.raises(TypeError, match="did you mean 'max_input_tokens'"):
        summarizer(document, max_input_token=40)


def test_one_segment_per_section_reaches_generate_and_names_what_a_checkpoint_lacks(trained):
    """The pipeline option builds OneSegmentPerSection from the document read: for a document of
    one section the separator is banned, so a token the model writes first when free (taken as
    the separator here) never appears; a checkpoint without the section token ids is told so."""
    from transformers import pipeline

    summarizer = pipeline("summarization", model=str(trained), trust_remote_code=True)
    options = {"num_beams": 1, "max_new_tokens": 6}
    with pytest.raises(ValueError, match="needs the checkpoint's section_break_token_id"):
        summarizer(STORY, one_segment_per_section=True, **options)
    free = summarizer.model.generate(**summarizer.tokenizer(STORY, return_tensors="pt"), **options)[0]
    first = int(free[1])  # after the decoder's start token
    config = summarizer.model.config
    config.section_break_token_id = summarizer.tokenizer.convert_tokens_to_ids("[NL]")
    config.summary_separator_token_id = first
    try:
        def written(**option):  # the pipeline's own steps, its ids before decoding
            return summarizer.forward(summarizer.preprocess(STORY), **option, **options)["output_ids"][0].tolist()

        assert first not in written(one_segment_per_section=True) and first in free.tolist()
        assert written(one_segment_per_section=False) == written() == free.tolist()
    finally:
        config.section_break_token_id = config.summary_separator_token_id = None
