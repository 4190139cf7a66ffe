"""Shared test helpers: a tiny-config tester and a closeness check that prints the gap; the
command-line flags of a tiny training run, and data-file writers."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from modeling_reformer_zh import ReformerZhConfig, ReformerZhForConditionalGeneration

ROOT = Path(__file__).resolve().parents[1]

# documents for the pipeline tests: a news brief (items under title lines) and a one-sentence story
BRIEF = ("新版国家医保药品目录落地实施\n今天，新版国家医保药品目录落地实施，91种药品新增纳入目录。\n"
         "《能源法》今起施行\n《中华人民共和国能源法》今天起正式施行，国家支持优先开发利用可再生能源。")
STORY = "博物馆推出古代丝绸文物特展，展出一百二十件珍贵展品。"

# scripts/train.py on the tiny config and the embedded sample, for the training and pipeline tests
TINY = [
    "--config_name", "tiny", "--tokenizer_vocab_size", "600", "--max_source_length", "256",
    "--max_target_length", "32", "--report_to", "none", "--learning_rate", "2e-3", "--seed", "0",
    "--per_device_train_batch_size", "4", "--use_cpu", "--disable_tqdm", "true",
    "--cpu_bf16", "off",  # the same precision on every CPU; bf16 has its own test
]


def assert_close(actual: torch.Tensor, expected: torch.Tensor, atol: float = 1e-5, rtol: float = 1e-5, msg: str = ""):
    difference = (actual.detach().double() - expected.detach().double()).abs().max().item() if actual.numel() else 0.0
    assert actual.shape == expected.shape, f"{msg} shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    assert torch.allclose(actual.detach().double(), expected.detach().double(), atol=atol, rtol=rtol), (
        f"{msg} max abs difference {difference:.3e} (atol {atol})"
    )


class ReformerZhModelTester:
    """Tiny defaults: hidden 32, 2+2 layers, chunk 4, seq 16, vocab 99, hash_seed 0."""

    def __init__(self, **overrides) -> None:
        self.batch_size = 2
        self.seq_length = 16
        self.target_length = 7
        self.config_kwargs = dict(
            vocab_size=99,
            hidden_size=32,
            num_attention_heads=2,
            attention_head_size=8,
            feed_forward_size=37,
            encoder_attn_layers=["local", "lsh"],
            decoder_attn_layers=["full", "local"],
            num_hashes=2,
            num_buckets=None,
            hash_seed=0,
            lsh_attn_chunk_length=4,
            local_attn_chunk_length=4,
            axial_pos_shape=[8, 8],
            axial_pos_embds_dim=[8, 24],
            max_position_embeddings=64,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
            full_attn_threshold=0,
            pad_token_id=0,
            bos_token_id=2,
            eos_token_id=3,
            decoder_start_token_id=2,
        )
        self.config_kwargs.update(overrides)

    def get_config(self, **overrides) -> ReformerZhConfig:
        return ReformerZhConfig(**{**self.config_kwargs, **overrides})

    def prepare_config_and_inputs(self, seed: int = 0, **overrides):
        config = self.get_config(**overrides)
        generator = torch.Generator().manual_seed(seed)
        input_ids = torch.randint(5, config.vocab_size, (self.batch_size, self.seq_length), generator=generator)
        labels = torch.randint(5, config.vocab_size, (self.batch_size, self.target_length), generator=generator)
        attention_mask = torch.ones_like(input_ids)
        return config, {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}

    def build_model(self, config: ReformerZhConfig, seed: int = 0, dtype=torch.float32):
        torch.manual_seed(seed)
        model = ReformerZhForConditionalGeneration(config).to(dtype)
        return model


def cached_and_full_decoder_logits(model, inputs: dict, target_length: int):
    """Decoder logits for random targets: one full forward, and the same targets fed to the cache
    as a 3-token prefix then one token at a time. -> (cached, full, cache)."""
    from modeling_reformer_zh.cache_reformer_zh import OUTPUT_CACHE_FIELD

    decoder_input_ids = torch.randint(5, 99, (2, target_length), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        encoder_outputs = model.get_encoder()(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        full = model(encoder_outputs=encoder_outputs, attention_mask=inputs["attention_mask"],
                     decoder_input_ids=decoder_input_ids, use_cache=False).logits
        cache, step_logits = None, []
        for start, end in [(0, 3)] + [(i, i + 1) for i in range(3, target_length)]:
            output = model(encoder_outputs=encoder_outputs, attention_mask=inputs["attention_mask"],
                           decoder_input_ids=decoder_input_ids[:, start:end], cache=cache, use_cache=True)
            cache = output[OUTPUT_CACHE_FIELD]
            step_logits.append(output.logits)
    return torch.cat(step_logits, dim=1), full, cache


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return str(path)


def random_pairs(source_lengths: list[int], label_lengths: list[int], seed: int = 0) -> list[dict]:
    generator = torch.Generator().manual_seed(seed)
    return [{"input_ids": torch.randint(5, 99, (s,), generator=generator).tolist(), "attention_mask": [1] * s,
             "labels": torch.randint(5, 99, (t,), generator=generator).tolist()}
            for s, t in zip(source_lengths, label_lengths)]

