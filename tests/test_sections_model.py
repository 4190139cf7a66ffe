"""Sections the model can see (issue 35 item 3): a row per section index added to the encoder's
input (config `section_embeddings`) and a row per summary segment added to the decoder's
(`summary_segment_embeddings`); each off by default, zero at the start so that turning it on for a
fine-tune starts from the same model."""

from __future__ import annotations

import pytest
import torch

from modeling_reformer_zh import ReformerZhConfig, ReformerZhForConditionalGeneration
from modeling_reformer_zh.copy_attention import copy_alignment_loss
from modeling_reformer_zh.embeddings import section_index, summary_segment_index
from reformer_zh.training.train_arguments import CONFIG_PRESETS

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

    from reformer_zh.training import train

    tokenizer = AutoTokenizer.from_pretrained(trained)
    overrides = "section_embeddings=8,summary_segment_embeddings=8"
    grown = train.load_model(train.ModelArguments(model_name_or_path=str(trained), config_overrides=overrides),
                             tokenizer).eval()
    assert grown.config.section_break_token_id == tokenizer.convert_tokens_to_ids("[NL]")
    assert grown.config.summary_separator_token_id == tokenizer.convert_tokens_to_ids("；")
    assert torch.count_nonzero(grown.model.encoder.embeddings.section_embeddings.table) == 0
    assert torch.count_nonzero(grown.model.decoder.embeddings.summary_segment_embeddings.table) == 0
    original = AutoModelForSeq2SeqLM.from_pretrained(trained).eval()
    inputs = tokenizer("医院开设夜间儿科门诊。\n\n市图书馆延长开放时间。", return_tensors="pt")
    decoder_ids = torch.tensor([[tokenizer.bos_token_id, 10, 11]])
    with torch.no_grad():
        assert torch.equal(grown(**inputs, decoder_input_ids=decoder_ids).logits,
                           original(**inputs, decoder_input_ids=decoder_ids).logits)


# The decoder's side (config `summary_segment_embeddings`): which summary segment each position writes.
SEPARATOR = 7


def test_the_summary_segment_of_each_decoder_position_counts_the_separators_it_has_read():
    # decoder inputs are labels shifted right: [start, a, b, ；, c, ；, d]; the position that reads
    # a separator writes the first token of the next segment
    decoder_ids = torch.tensor([[2, 20, 21, SEPARATOR, 22, SEPARATOR, 23]])
    assert summary_segment_index(decoder_ids, SEPARATOR, rows=8).tolist() == [[0, 0, 0, 1, 1, 2, 2]]
    assert summary_segment_index(decoder_ids, SEPARATOR, rows=2).tolist() == [[0, 0, 0, 1, 1, 1, 1]]


def test_summary_segments_start_from_the_same_outputs_and_then_add_each_positions_segment_row():
    plain = tiny(copy_attention=True)
    segmented = tiny(copy_attention=True, summary_segment_embeddings=4, summary_separator_token_id=SEPARATOR)
    assert not [name for name in plain.state_dict() if "summary_segment" in name]
    missing, unexpected = segmented.load_state_dict(plain.state_dict(), strict=False)
    assert missing == ["model.decoder.embeddings.summary_segment_embeddings.table"] and not unexpected
    ids, decoder_ids = sectioned_ids(), torch.tensor([[2, 20, SEPARATOR, 21, SEPARATOR, 22]])
    with torch.no_grad():
        before = plain(input_ids=ids, decoder_input_ids=decoder_ids).logits
        assert torch.equal(segmented(input_ids=ids, decoder_input_ids=decoder_ids).logits, before)
        table = segmented.model.decoder.embeddings.summary_segment_embeddings.table
        table.normal_()
        added = (segmented.model.decoder.embeddings(input_ids=decoder_ids)
                 - plain.model.decoder.embeddings(input_ids=decoder_ids))
        assert torch.allclose(added[0], table[torch.tensor([0, 0, 1, 1, 2, 2])], atol=1e-6)


class ForceSeparators:
    """A logits processor that makes the model write the separator at the given output steps."""

    def __init__(self, steps: set[int]) -> None:
        self.steps = steps

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if input_ids.shape[1] in self.steps:
            forced = torch.full_like(scores, float("-inf"))
            forced[:, SEPARATOR] = 0.0
            return forced
        return scores


@pytest.mark.parametrize("num_beams", [1, 3])
def test_cached_generation_counts_the_separators_written_before_the_newest_token(num_beams):
    """With a cache the decoder sees one token per step; the segment index must still count every
    separator written so far, so the cached scores equal those of the full forward every step."""
    from transformers import LogitsProcessorList

    model = tiny(copy_attention=True, summary_segment_embeddings=4, summary_separator_token_id=SEPARATOR)
    with torch.no_grad():
        model.model.decoder.embeddings.summary_segment_embeddings.table.normal_(std=3.0)
    ids = torch.randint(10, 60, (2, 12), generator=torch.Generator().manual_seed(1))
    kwargs = dict(input_ids=ids, max_new_tokens=9, num_beams=num_beams, do_sample=False, eos_token_id=None,
                  pad_token_id=0, output_scores=True, return_dict_in_generate=True,
                  logits_processor=LogitsProcessorList([ForceSeparators({2, 5})]))
    cached, full = model.generate(**kwargs, use_cache=True), model.generate(**kwargs, use_cache=False)
    assert torch.equal(cached.sequences, full.sequences)
    assert (cached.sequences == SEPARATOR).sum(dim=1).tolist() == [2, 2]
    for step, (with_cache, without) in enumerate(zip(cached.scores, full.scores)):
        finite = torch.isfinite(without)
        assert torch.allclose(with_cache[finite], without[finite], atol=1e-4), f"step {step}"


def test_a_cached_decoder_step_without_the_segment_index_fails_with_the_fix():
    model = tiny(summary_segment_embeddings=4, summary_separator_token_id=SEPARATOR)
    ids = sectioned_ids()
    first = model(input_ids=ids, decoder_input_ids=torch.tensor([[2, SEPARATOR]]), use_cache=True)
    with pytest.raises(ValueError, match="pass `decoder_segment_index`"):
        model(input_ids=ids, decoder_input_ids=torch.tensor([[20]]), past_key_values=first.past_key_values)
    with pytest.raises(ValueError, match="needs `summary_separator_token_id`"):
        tiny(summary_segment_embeddings=4)


# The copy pointer's guided alignment (config `copy_alignment_loss_weight`): segment k copies from section k.
def aligning_model(**overrides) -> ReformerZhForConditionalGeneration:
    return tiny(**{"copy_attention": True, "section_break_token_id": NL, "summary_separator_token_id": SEPARATOR,
                   "copy_alignment_loss_weight": 0.5, **overrides})


def aligned_batch() -> dict:
    # two documents of three and two sections; the second padded; summaries of 3 and 2 segments
    # (the first's third segment has a section, the second's third has none: left out, as is padding)
    input_ids = torch.tensor([[10, 11, NL, NL, 12, 13, NL, NL, 14, 15, 3],
                              [16, NL, NL, 17, 18, 3, 0, 0, 0, 0, 0]])
    labels = torch.tensor([[20, SEPARATOR, 21, 22, SEPARATOR, 23, 3],
                           [24, SEPARATOR, 26, SEPARATOR, 27, 3, -100]])
    return {"input_ids": input_ids, "attention_mask": (input_ids != 0).long(), "labels": labels}


def loop_reference_alignment_loss(model, batch) -> torch.Tensor:
    """-log(pointer mass of segment k's section k), one target position at a time."""
    decoder_input_ids = model.prepare_decoder_input_ids_from_labels(batch["labels"])
    outputs = model.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                          decoder_input_ids=decoder_input_ids, use_cache=False)
    head = model.copy_attention
    key, value = head.key(outputs.encoder_last_hidden_state), head.value(outputs.encoder_last_hidden_state)
    pointer, _ = head.pointer_and_gate(outputs.last_hidden_state, key, value, batch["attention_mask"].bool()[:, None, :])
    terms = []
    for b in range(batch["input_ids"].shape[0]):
        ids = batch["input_ids"][b].tolist()
        section, sections = [], 0
        for i, token in enumerate(ids):  # a blank line (two NL) closes a section after its second NL
            section.append(sections)
            if i > 0 and token == NL and ids[i - 1] == NL:
                sections += 1
        real = [i for i in range(len(ids)) if batch["attention_mask"][b, i]]
        count = max(section[i] for i in real) + 1
        for t in range(decoder_input_ids.shape[1]):
            segment = int((decoder_input_ids[b, : t + 1] == SEPARATOR).sum())
            if decoder_input_ids[b, t] == 0 or segment >= count:
                continue
            mass = sum(pointer[b, t, i] for i in range(len(ids)) if section[i] == segment)
            terms.append(-torch.log(mass + 1e-9))
    return torch.stack(terms).mean()


def test_the_alignment_loss_is_minus_log_the_pointer_mass_of_each_segments_own_section():
    model = aligning_model().train()
    batch = aligned_batch()
    output = model(**batch)
    with torch.no_grad():
        expected = loop_reference_alignment_loss(model, batch)
    assert torch.allclose(output.alignment_loss, expected, atol=1e-5)
    without = aligning_model(copy_alignment_loss_weight=0.0).train()
    without.load_state_dict(model.state_dict())
    plain = without(**batch)
    assert plain.alignment_loss is None
    assert torch.allclose(output.loss, plain.loss + 0.5 * output.alignment_loss, atol=1e-6)
    assert model.eval()(**batch).alignment_loss is None  # a training loss only


def test_training_on_the_alignment_loss_moves_the_pointer_to_the_right_sections():
    model = aligning_model().train()
    batch = aligned_batch()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = model(**batch).alignment_loss
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert losses[-1] < 0.3 * losses[0]


def test_a_segment_without_a_section_of_its_index_is_left_out_and_none_left_gives_zero():
    section_mass = torch.tensor([[[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]]], requires_grad=True)
    sections = torch.tensor([[0, 0, 1, 1]])  # two sections: segment 2 has none
    loss = copy_alignment_loss(section_mass, torch.tensor([[0, 2]]), sections, torch.tensor([[True, True]]))
    assert torch.allclose(loss, -torch.log(torch.tensor(0.5 + 1e-9)))
    nothing = copy_alignment_loss(section_mass, torch.tensor([[2, 2]]), sections, torch.tensor([[True, True]]))
    assert nothing.item() == 0.0 and nothing.requires_grad


def test_the_alignment_needs_copy_attention_and_both_token_ids():
    with pytest.raises(ValueError, match="needs `copy_attention=True`"):
        tiny(copy_alignment_loss_weight=0.5, section_break_token_id=NL, summary_separator_token_id=SEPARATOR)
    with pytest.raises(ValueError, match="needs `copy_attention=True`"):
        tiny(copy_attention=True, copy_alignment_loss_weight=0.5, section_break_token_id=NL)
    with pytest.raises(ValueError, match=">= 0"):
        aligning_model(copy_alignment_loss_weight=-1.0)


def test_the_trainer_adds_the_alignment_loss_to_the_label_smoothed_loss(tmp_path):
    from transformers import Seq2SeqTrainingArguments

    from reformer_zh.training.seq2seq_trainer import ReformerZhTrainer

    model = aligning_model().train()
    args = Seq2SeqTrainingArguments(output_dir=str(tmp_path), label_smoothing_factor=0.1, report_to="none",
                                    use_cpu=True)
    trainer = ReformerZhTrainer(model=model, args=args)
    batch = aligned_batch()
    inputs = {**batch, "decoder_input_ids": model.prepare_decoder_input_ids_from_labels(batch["labels"])}
    loss, outputs = trainer.compute_loss(model, dict(inputs), return_outputs=True)
    smoothed = trainer.label_smoother(outputs, batch["labels"])
    assert outputs.alignment_loss is not None
    assert torch.allclose(loss, smoothed + 0.5 * outputs.alignment_loss, atol=1e-6)


def test_the_section_token_ids_come_from_the_tokenizer_or_a_clear_error():
    from reformer_zh.training.train_model import missing_section_token_ids

    class Vocabulary:
        unk_token_id = 1

        def __init__(self, tokens: dict) -> None:
            self.tokens = tokens

        def convert_tokens_to_ids(self, token: str) -> int:
            return self.tokens.get(token, self.unk_token_id)

    both = Vocabulary({"[NL]": 5, "；": 9})
    assert missing_section_token_ids({"copy_alignment_loss_weight": 0.5}, both) == {
        "section_break_token_id": 5, "summary_separator_token_id": 9}
    assert missing_section_token_ids({"section_embeddings": 8, "section_break_token_id": 7}, both) == {}
    assert missing_section_token_ids({"section_embeddings": 0}, Vocabulary({})) == {}
    with pytest.raises(ValueError, match="summary_segment_embeddings needs a tokenizer with the segment separator"):
        missing_section_token_ids({"summary_segment_embeddings": 8}, Vocabulary({"[NL]": 5}))


def test_the_sections_read_are_the_section_index_count_row_by_row():
    from modeling_reformer_zh.pipeline_reformer_zh import sections_read

    padded = torch.tensor([[10, 11, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0]])  # one section, then padding
    ids = torch.cat([sectioned_ids(), padded])
    assert sections_read(ids, NL).tolist() == [3, 1]
    assert sections_read(ids, NL).tolist() == (section_index(ids, NL).max(dim=1).values + 1).tolist()


def test_one_segment_per_section_moves_the_end_to_the_separator_until_each_section_has_one():
    import math

    from modeling_reformer_zh.pipeline_reformer_zh import OneSegmentPerSection

    separator, eos, period = 7, 3, 9
    counter = OneSegmentPerSection(torch.tensor([3, 1]), separator, [eos, period])
    # two beams a document: rows 0-1 read three sections, rows 2-3 one
    scores = torch.zeros(4, 30).log_softmax(dim=-1)
    scores[0, eos] = -1.0
    out = counter(torch.tensor([[2, 20, 21], [2, separator, separator], [2, 20, 21], [2, 20, 21]]), scores)
    banned = out == -float("inf")
    # none of two separators written yet: no end; the separator holds its own and both ends' mass
    assert banned[0, eos] and banned[0, period] and not banned[0, separator]
    assert math.isclose(out[0, separator].exp(), scores[0, [separator, eos, period]].exp().sum(), rel_tol=1e-5)
    assert not banned[1, eos] and banned[1, separator]  # both written: it may end, not start a fourth
    assert not banned[2, eos] and banned[2, separator] and banned[3, separator]  # one section: one segment
    assert banned.sum() == 5 and torch.equal(out[1:, eos], scores[1:, eos])
