"""reformer_zh/serving/attribution.py: a summary traced back to the source through copy attention."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from modeling_reformer_zh import SummarizationPipeline
from reformer_zh.serving.attribution import explain, token_spans
from utils import assert_close

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = "新华社北京电 今年全国夏粮总产量达到历史新高，小麦单产提升明显。"


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from tokenization.build_vocab import build_tokenizer

    return build_tokenizer(train_file=str(ROOT / "reformer_zh" / "sample" / "train.jsonl"), vocab_size=600,
                           output_dir=str(tmp_path_factory.mktemp("tokenizer")), segmentation="char",
                           text_columns=["document", "summary"])


def tiny_copy_model(tokenizer, copy_only: bool, **overrides):
    """A random tiny copy model; `copy_only` shuts the vocabulary side of the mixture (gate
    p = sigmoid(-30)), so every written token must come from a source position."""
    from modeling_reformer_zh import ReformerZhConfig, ReformerZhForConditionalGeneration
    from reformer_zh.training.train_arguments import CONFIG_PRESETS

    torch.manual_seed(0)
    config = ReformerZhConfig(**{**CONFIG_PRESETS["tiny"], **overrides}, copy_attention=True, vocab_size=len(tokenizer),
                              pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                              eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.bos_token_id)
    model = ReformerZhForConditionalGeneration(config).eval()
    if copy_only:
        with torch.no_grad():
            model.copy_attention.gate.weight.zero_()
            model.copy_attention.gate.bias.fill_(-30.0)  # the gate's logit is that of generating
    return model


def test_token_spans_follow_the_normalised_text():
    text = "iphone15发布\n记者：李明"
    spans = token_spans(["iphone", "##15", "发", "布", "[NL]", "记", "者", "：", "李", "明"], text)
    assert [text[a:b] for a, b in spans] == ["iphone", "15", "发", "布", "\n", "记", "者", "：", "李", "明"]
    assert token_spans(["甲", "乙"], "甲丙") == [(0, 1), None]


def in_vocabulary_document(tokenizer, characters: int = 30) -> str:
    """Chinese characters of the tokenizer's vocabulary, each once (a character outside it is
    [UNK], a special token, which a summary never shows)."""
    chinese = [token for token in tokenizer.get_vocab() if len(token) == 1 and "\u4e00" <= token <= "\u9fff"]
    return "".join(sorted(chinese)[:characters]) + "。"


def test_a_copy_only_model_points_every_character_at_where_it_stands_in_the_source(tokenizer):
    model = tiny_copy_model(tokenizer, copy_only=True)
    document = in_vocabulary_document(tokenizer)
    result = explain(SummarizationPipeline(model=model, tokenizer=tokenizer), document, max_new_tokens=12, num_beams=1,
                     min_new_tokens=6)
    assert len(result.tokens) >= 6
    once = {ch for ch in result.source if result.source.count(ch) == 1}
    for token in result.tokens:
        assert token.copy_share == pytest.approx(1.0, abs=1e-6)  # nothing else could have written it
        start, end = token.source_span
        assert result.source[start:end] == token.text
        if token.text in once:  # one place only: the span is that place
            assert start == result.source.index(token.text)
    assert result.marked() == "[" + result.summary + "]"


def test_copy_shares_are_the_mixtures_own_decomposition(tokenizer):
    """share * P(w) + p * softmax(z)(w) = P(w) for every written token, on a model that mixes."""
    model = tiny_copy_model(tokenizer, copy_only=False)
    from reformer_zh.serving.attribution import copy_account

    input_ids = tokenizer(DOCUMENT, return_tensors="pt")["input_ids"]
    summary_ids = model.generate(input_ids=input_ids, max_new_tokens=8, num_beams=1, min_new_tokens=8)
    share, _ = copy_account(model, input_ids, summary_ids)
    captured = {}
    hook = model.copy_attention.register_forward_pre_hook(
        lambda module, args, kwargs: captured.update(args=args), with_kwargs=True)
    with torch.no_grad():
        log_p = model(input_ids=input_ids, decoder_input_ids=summary_ids[:, :-1]).logits[0].float()
    hook.remove()
    hidden, vocab_logits, encoder_states = captured["args"][:3]
    key, value = model.copy_attention.encoder_keys_values(encoder_states)
    allowed = torch.ones(1, 1, input_ids.shape[1], dtype=torch.bool)
    _, gate_logit = model.copy_attention.pointer_and_gate(hidden, key, value, allowed)
    written = summary_ids[0, 1:]
    p = torch.sigmoid(gate_logit[0, :, 0])
    generated = p * vocab_logits[0].float().softmax(-1).gather(-1, written[:, None])[:, 0]
    total = log_p.gather(-1, written[:, None])[:, 0].exp()
    assert torch.allclose(share * total + generated, total, rtol=1e-4, atol=1e-7)
    assert 0 < float(share.min()) and float(share.max()) < 1  # a mixing model, not one side only


def test_the_explanation_reads_what_generation_read_past_the_full_attention_threshold(tokenizer):
    """A document over `full_attn_threshold` takes LSH with rotations left to chance
    (`hash_seed` None): the explanation's teacher-forced pass must hash it as generation did, so
    its scores of every step are the ones generation chose by, and a second call writes the same
    summary."""
    model = tiny_copy_model(tokenizer, copy_only=False, hash_seed=None, full_attn_threshold=8,
                            lsh_attn_chunk_length=4, encoder_attn_layers=["lsh", "lsh"])
    summarizer = SummarizationPipeline(model=model, tokenizer=tokenizer)
    document = in_vocabulary_document(tokenizer, characters=60)
    generate = dict(max_new_tokens=16, min_new_tokens=16, num_beams=1)
    result = explain(summarizer, document, **generate)
    input_ids = summarizer.preprocess(document)["input_ids"]
    assert input_ids.shape[1] > 4 * model.config.full_attn_threshold
    generated = model.generate(input_ids=input_ids, **generate, output_logits=True, return_dict_in_generate=True)
    summary_ids = generated.sequences
    assert tokenizer.decode(summary_ids[0], skip_special_tokens=True) == result.summary
    with torch.no_grad():  # the pass copy_account makes
        logits = model(input_ids=input_ids, decoder_input_ids=summary_ids[:, :-1]).logits
    assert_close(logits[0], torch.cat(generated.logits), atol=1e-4, rtol=1e-4)


def test_a_model_without_copy_attention_is_refused(tokenizer):
    model = tiny_copy_model(tokenizer, copy_only=False)
    model.copy_attention = None
    with pytest.raises(ValueError, match="no copy attention"):
        explain(SummarizationPipeline(model=model, tokenizer=tokenizer), DOCUMENT, max_new_tokens=3)
