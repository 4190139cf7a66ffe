"""Sections the encoder can see (config `section_embeddings`, issue 35 item 3): a row per
section index added to the encoder's input, off by default, zero at the start so that turning it
on for a fine-tune starts from the same model."""

from __future__ import annotations

import pytest
import torch

from modeling_reformer_zh import ReformerZhConfig, ReformerZhForConditionalGeneration
from modeling_reformer_zh.embeddings import section_index
from reformer_zh.train_arguments import CONFIG_PRESETS

NL = 5


def tiny(**overrides) -> ReformerZhForConditionalGeneration:
    torch.manual_seed(0)
    config = ReformerZhConfig(**{**CONFIG_PRESETS["tiny"], "vocab_size": 60, "hidden_dropout_prob": 0.0,
                                 "attention_probs_dropout_prob": 0.0, **overrides})
    return ReformerZhForConditionalGeneration(config).eval()


def sectioned_ids() -> torch.Tensor:
    # three sections: [a NL b NL NL] [c d NL NL] [e f]; one line break alone is a paragraph
    return torch.tensor([[10, NL, 11, NL, NL, 12, 13, NL, NL, 14, 15, 3]])


def test_the_section_of_each_position_counts_the_blank_lines_before_it():
    assert section_index(sectioned_ids(), NL, rows=8).tolist() == [[0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2]]
    assert section_index(sectioned_ids(), NL, rows=2).tolist() == [[0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1]]


def test_off_by_default_with_no_weights():
    model = tiny()
    assert model.config.section_embeddings == 0
    assert not [name for name in model.state_dict() if "section" in name]


def test_turned_on_it_starts_from_the_same_outputs_and_adds_each_positions_section_row():
    plain, sectioned = tiny(), tiny(section_embeddings=4, section_break_token_id=NL)
    missing, unexpected = sectioned.load_state_dict(plain.state_dict(), strict=False)
    assert missing == ["model.encoder.embeddings.section_embeddings.table"] and not unexpected
    ids = sectioned_ids()
    decoder_ids = torch.tensor([[2, 20, 21]])
    with torch.no_grad():
        before = plain(input_ids=ids, decoder_input_ids=decoder_ids).logits
        assert torch.equal(sectioned(input_ids=ids, decoder_input_ids=decoder_ids).logits, before)
        sectioned.model.encoder.embeddings.section_embeddings.table.normal_()
        table = sectioned.model.encoder.embeddings.section_embeddings.table
        added = sectioned.model.encoder.embeddings(input_ids=ids) - plain.model.encoder.embeddings(input_ids=ids)
        assert torch.allclose(added[0], table[torch.tensor([0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2])], atol=1e-6)
        assert not torch.allclose(sectioned(input_ids=ids, decoder_input_ids=decoder_ids).logits, before)


def test_the_option_needs_the_line_break_token_and_the_token_ids():
    with pytest.raises(ValueError, match="needs `section_break_token_id`"):
        tiny(section_embeddings=4)
    model = tiny(section_embeddings=4, section_break_token_id=NL)
    with pytest.raises(ValueError, match="pass `input_ids`"):
        model.model.encoder.embeddings(inputs_embeds=torch.zeros(1, 4, 64))


def test_a_checkpoint_fine_tuned_with_sections_keeps_its_outputs_at_the_start(trained, tmp_path):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from reformer_zh import train

    tokenizer = AutoTokenizer.from_pretrained(trained)
    grown = train.load_model(train.ModelArguments(model_name_or_path=str(trained),
                                                  config_overrides="section_embeddings=8"), tokenizer).eval()
    assert grown.config.section_break_token_id == tokenizer.convert_tokens_to_ids("[NL]")
    assert torch.count_nonzero(grown.model.encoder.embeddings.section_embeddings.table) == 0
    original = AutoModelForSeq2SeqLM.from_pretrained(trained).eval()
    inputs = tokenizer("医院开设夜间儿科门诊。\n\n市图书馆延长开放时间。", return_tensors="pt")
    decoder_ids = torch.tensor([[tokenizer.bos_token_id, 10, 11]])
    with torch.no_grad():
        assert torch.equal(grown(**inputs, decoder_input_ids=decoder_ids).logits,
                           original(**inputs, decoder_input_ids=decoder_ids).logits)
