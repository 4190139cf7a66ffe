"""The collator (reformer_zh/training/collator.py): encoder input to its chunk multiple, labels on
their own with a decoder mask, and generation from the start token."""

from __future__ import annotations

import sys

import torch

from utils import ROOT, random_pairs

sys.path.insert(0, str(ROOT / "scripts"))

from reformer_zh.training import train  # noqa: E402


def lsh_decoder_model():
    """Decoder LSH above no threshold with chunk 4: padding taken for tokens would move buckets."""
    from utils import ReformerZhModelTester

    tester = ReformerZhModelTester(decoder_attn_layers=["lsh", "lsh"])
    return tester.build_model(tester.get_config()).eval()


def test_collator_pads_labels_to_a_multiple_of_8_not_the_encoder_chunk(sample_tokenizer):
    from reformer_zh.training.collator import ReformerZhSeq2SeqCollator
    from modeling_reformer_zh.modeling_reformer_zh import shift_tokens_right

    multiple = train.chunk_multiple(train.ReformerZhConfig(**train.CONFIG_PRESETS["small"]))
    assert multiple == 64
    model = lsh_decoder_model()
    collator = ReformerZhSeq2SeqCollator(sample_tokenizer, model=model, pad_to_multiple_of=multiple)
    batch = collator(random_pairs([108, 30], [20, 3]))  # an LCSTS-sized pair: 108-token text, 19 + [EOS]
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (2, 128)
    assert batch["attention_mask"].sum(1).tolist() == [108, 30]
    assert batch["labels"].shape == (2, 24)  # the longest label rounded up to 8, not to 64
    assert (batch["labels"][0, 20:] == -100).all() and (batch["labels"][1, 3:] == -100).all()
    assert batch["decoder_attention_mask"].dtype == torch.long
    assert torch.equal(batch["decoder_attention_mask"], (batch["labels"] != -100).long())
    assert torch.equal(batch["decoder_input_ids"], shift_tokens_right(batch["labels"], 0, 2))


def test_collator_loss_equals_pairs_run_one_at_a_time_with_a_decoder_lsh(sample_tokenizer):
    from reformer_zh.training.collator import ReformerZhSeq2SeqCollator

    model = lsh_decoder_model()
    pairs = random_pairs([9, 16, 23, 5], [3, 11, 6, 17])
    batch = ReformerZhSeq2SeqCollator(sample_tokenizer, model=model, pad_to_multiple_of=4)(pairs)
    assert batch["labels"].shape == (4, 24)
    with torch.no_grad():
        collated = model(**batch)
        singles = [model(input_ids=torch.tensor([p["input_ids"]]), labels=torch.tensor([p["labels"]])) for p in pairs]
    for row, (pair, single) in enumerate(zip(pairs, singles)):
        length = len(pair["labels"])
        assert torch.allclose(collated.logits[row, :length], single.logits[0], atol=1e-5), row
    lengths = torch.tensor([len(p["labels"]) for p in pairs], dtype=torch.float)
    expected = (torch.stack([s.loss for s in singles]) * lengths).sum() / lengths.sum()  # the mean over tokens
    assert torch.allclose(collated.loss, expected, atol=1e-6), (collated.loss.item(), expected.item())


def test_collator_batches_generate_from_the_start_token_under_predict_with_generate(sample_tokenizer, tmp_path):
    """`Seq2SeqTrainer.prediction_step` drops `decoder_input_ids` and `decoder_attention_mask` when
    they have the labels' shape; a mask left in would reach `generate()`, which rejects it."""
    from reformer_zh.training.collator import ReformerZhSeq2SeqCollator
    from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments

    model = lsh_decoder_model()
    collator = ReformerZhSeq2SeqCollator(sample_tokenizer, model=model, pad_to_multiple_of=4)
    arguments = Seq2SeqTrainingArguments(output_dir=str(tmp_path), predict_with_generate=True, use_cpu=True,
                                         report_to="none")
    trainer = Seq2SeqTrainer(model=model, args=arguments, data_collator=collator, processing_class=sample_tokenizer)
    batch = collator(random_pairs([9, 16], [3, 11]))
    loss, generated, labels = trainer.prediction_step(model, batch, prediction_loss_only=False, max_new_tokens=5,
                                                      num_beams=1, do_sample=False)
    expected = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], max_new_tokens=5,
                              num_beams=1, do_sample=False)
    assert torch.equal(generated[:, : expected.shape[1]], expected)
    assert torch.equal(labels[:, :16], batch["labels"])  # then padded to the generation length
    with torch.no_grad():
        assert torch.allclose(loss, model(**batch).loss)
