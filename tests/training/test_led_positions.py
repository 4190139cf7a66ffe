"""The LED baseline of the long-input side-by-side (issue 13): growing its learned encoder
positions by copying (reformer_zh/training/led_positions.py), training and fine-tuning it through
scripts/train.py, and summarizing with it through the pipeline, truncated to its positions."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from transformers import AutoModelForSeq2SeqLM, LEDConfig, LEDForConditionalGeneration

from reformer_zh.training import train
from reformer_zh.training.led_positions import grow_led_encoder_positions
from utils import TINY

# an LED baseline trained through the script: `make test-slow` (tests/conftest.py)
pytestmark = pytest.mark.slow


TINY_LED = "d_model=32,encoder_layers=1,decoder_layers=1,encoder_ffn_dim=64,decoder_ffn_dim=64,attention_window=16"


def tiny_led(positions: int = 32) -> LEDForConditionalGeneration:
    torch.manual_seed(0)
    config = LEDConfig(vocab_size=50, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                       decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, attention_window=8,
                       max_encoder_position_embeddings=positions, max_decoder_position_embeddings=16,
                       pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1)
    return LEDForConditionalGeneration(config).eval()


def test_grown_positions_copy_the_trained_rows_and_leave_short_inputs_unchanged(tmp_path):
    model = tiny_led(32)
    trained = model.get_encoder().embed_positions.weight.detach().clone()
    inputs = {"input_ids": torch.randint(3, 50, (2, 24)), "decoder_input_ids": torch.randint(3, 50, (2, 5))}
    with torch.no_grad():
        before = model(**inputs).logits
    grow_led_encoder_positions(model, 80)

    grown = model.get_encoder().embed_positions.weight
    assert grown.shape == (80, 16) and model.config.max_encoder_position_embeddings == 80
    for position in (0, 31, 32, 45, 64, 79):  # row p is the trained row p mod 32
        assert torch.equal(grown[position], trained[position % 32]), position
    with torch.no_grad():
        assert torch.equal(model(**inputs).logits, before)  # positions 0..23 are the trained ones
        long_input = {"input_ids": torch.randint(3, 50, (1, 72)), "decoder_input_ids": inputs["decoder_input_ids"][:1]}
        assert torch.isfinite(model(**long_input).logits).all()  # past the old table: no index error
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == sum(p.numel() for p in model.parameters())

    model.save_pretrained(tmp_path)
    reloaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path)
    assert reloaded.config.max_encoder_position_embeddings == 80
    assert torch.equal(reloaded.get_encoder().embed_positions.weight, grown)


def test_growing_refuses_a_smaller_table_and_other_models():
    with pytest.raises(ValueError, match="does not grow the table of 32 positions"):
        grow_led_encoder_positions(tiny_led(32), 32)
    from transformers import BartConfig, BartForConditionalGeneration

    bart = BartForConditionalGeneration(BartConfig(vocab_size=50, d_model=16, encoder_layers=1, decoder_layers=1,
                                                   encoder_attention_heads=2, decoder_attention_heads=2,
                                                   encoder_ffn_dim=32, decoder_ffn_dim=32))
    with pytest.raises(ValueError, match="bart model"):
        grow_led_encoder_positions(bart, 2048)


def test_an_led_baseline_trains_through_the_same_script_and_fine_tunes_on_longer_inputs(tmp_path):
    """`--config_name led-headline`, then the `xwlb-program-led` step: the checkpoint's positions
    grown by --config_overrides max_encoder_position_embeddings, other keys refused."""
    led = ["led-headline" if a == "tiny" else a for a in TINY]
    metrics = train.main(led + ["--output_dir", str(tmp_path / "led"), "--config_overrides",
                                TINY_LED + ",max_encoder_position_embeddings=256", "--do_train", "--do_eval",
                                "--predict_with_generate", "--max_steps", "2", "--save_strategy", "no",
                                "--max_eval_samples", "4", "--max_target_length", "8"])
    assert "eval_rougeL" in metrics and "train_loss" in metrics
    model = AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "led")
    assert isinstance(model, LEDForConditionalGeneration) and model.config.attention_window == [16]
    assert model.config.vocab_size == 600 and model.config.max_encoder_position_embeddings == 256

    base = [a for a in TINY if a not in ("tiny", "--config_name")] + ["--model_name_or_path", str(tmp_path / "led"),
                                                                     "--do_train", "--max_steps", "1",
                                                                     "--save_strategy", "no"]
    with pytest.raises(ValueError, match="exceeds the model's max_encoder_position_embeddings"):
        train.main([a if a != "256" else "512" for a in base] + ["--output_dir", str(tmp_path / "short")])
    train.main([a if a != "256" else "512" for a in base]
               + ["--output_dir", str(tmp_path / "longer"), "--config_overrides", "max_encoder_position_embeddings=512"])
    config = json.loads((tmp_path / "longer" / "config.json").read_text())
    assert config["max_encoder_position_embeddings"] == 512
    with pytest.raises(ValueError, match="only max_encoder_position_embeddings applies"):
        train.main(base + ["--output_dir", str(tmp_path / "x"), "--config_overrides", "attention_window=32"])


def led_for(tokenizer, positions: int = 40, init_std: float = 0.02) -> LEDForConditionalGeneration:
    """A tiny LED over `tokenizer`'s vocabulary and special tokens, seeded."""
    config = LEDConfig(init_std=init_std, vocab_size=len(tokenizer), d_model=16, encoder_layers=1, decoder_layers=1,
                       encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                       attention_window=8, max_encoder_position_embeddings=positions, max_decoder_position_embeddings=64,
                       pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                       eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.bos_token_id)
    torch.manual_seed(0)
    return LEDForConditionalGeneration(config).eval()


def test_the_pipeline_truncates_an_led_input_to_its_encoder_positions(sample_tokenizer, caplog):
    from modeling_reformer_zh.pipeline_reformer_zh import SummarizationPipeline

    summarizer = SummarizationPipeline(model=led_for(sample_tokenizer, positions=40), tokenizer=sample_tokenizer)
    document = "北京今天发布暴雨预警。" * 10  # 110 characters, more than the 40 positions
    with caplog.at_level(logging.WARNING):
        summary = summarizer(document, max_new_tokens=4)[0]["summary_text"]
    assert isinstance(summary, str) and "truncated to the model's 40 positions" in caplog.text
    with pytest.raises(ValueError, match="more than the model's 40 positions"):
        summarizer(document, truncation=False, max_new_tokens=4)


def test_led_batches_put_global_attention_on_the_first_token_and_ours_carry_none(sample_tokenizer):
    from reformer_zh.training.collator import ReformerZhSeq2SeqCollator
    from utils import ReformerZhModelTester

    from modeling_reformer_zh import ReformerZhForConditionalGeneration

    features = [{"input_ids": sample_tokenizer(text)["input_ids"], "labels": sample_tokenizer("预警")["input_ids"]}
                for text in ("北京今天发布暴雨预警。", "预警。")]
    batch = ReformerZhSeq2SeqCollator(sample_tokenizer, led_for(sample_tokenizer), pad_to_multiple_of=8)(features)
    expected = torch.zeros_like(batch["input_ids"])
    expected[:, 0] = 1
    assert torch.equal(batch["global_attention_mask"], expected)
    ours = ReformerZhForConditionalGeneration(ReformerZhModelTester().prepare_config_and_inputs()[0])
    assert "global_attention_mask" not in ReformerZhSeq2SeqCollator(sample_tokenizer, ours, pad_to_multiple_of=8)(features)


def test_the_pipeline_summarizes_with_an_leds_first_token_global_as_it_trained(sample_tokenizer):
    from modeling_reformer_zh.pipeline_reformer_zh import SummarizationPipeline

    model = led_for(sample_tokenizer, positions=64, init_std=1.0)  # large weights: outputs that depend on the input
    document = "北京今天发布暴雨预警，市民注意出行安全。" * 2
    summary = SummarizationPipeline(model=model, tokenizer=sample_tokenizer)(
        document, max_new_tokens=6, num_beams=1, min_new_tokens=6)[0]["summary_text"]
    encoded = sample_tokenizer(document, return_tensors="pt")
    global_first = torch.zeros_like(encoded["input_ids"])
    global_first[:, 0] = 1

    def generated(**extra) -> str:
        ids = model.generate(**encoded, **extra, max_new_tokens=6, num_beams=1, min_new_tokens=6)
        return sample_tokenizer.decode(ids[0], skip_special_tokens=True)

    assert summary == generated(global_attention_mask=global_first)
    assert summary != generated()  # the global token changes this model's output: the check can fail
