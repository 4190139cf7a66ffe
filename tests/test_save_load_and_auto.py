"""Configuration validation, Auto classes, safetensors round trip and remote-code loading."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

import torch
from transformers import AutoConfig, AutoModel, AutoModelForSeq2SeqLM

from modeling_reformer_zh import ReformerZhConfig, ReformerZhForConditionalGeneration, ReformerZhModel
from publish import BLOCK_PROJECT_IMPORTS  # scripts/ is on the path (conftest)
from utils import ReformerZhModelTester, assert_close


@pytest.mark.parametrize(
    "overrides,pattern",
    [
        (dict(encoder_attn_layers=["lsh", "dense"]), r"encoder_attn_layers.*'dense'.*one of"),
        (dict(decoder_attn_layers=[]), r"decoder_attn_layers.*empty"),
        (dict(num_buckets=5), r"num_buckets.*even"),
        (dict(num_buckets=[4, 3]), r"num_buckets.*factors"),
        (dict(axial_pos_embds_dim=[8, 8]), r"axial_pos_embds_dim.*sum to `hidden_size` \(32\)"),
        (dict(max_position_embeddings=100), r"axial_pos_shape.*covers 64.*100"),
        (dict(hidden_dropout_prob=1.5), r"hidden_dropout_prob"),
        (dict(lsh_attn_chunk_length=0), r"lsh_attn_chunk_length.*positive"),
        (dict(pad_token_id=500), r"pad_token_id.*vocab_size"),
        (dict(eos_token_id=99), r"eos_token_id.*vocab_size"),
        (dict(hidden_act="gelux"), r"hidden_act.*'gelux'"),
        (dict(reversible="no"), r"reversible.*True or False"),
        (dict(hidden_dropout_prob="0.1"), r"hidden_dropout_prob.*number"),
        (dict(num_hidden_layers=3), r"num_hidden_layers.*decoder_attn_layers"),
    ],
)
def test_invalid_configs_name_the_field_and_the_fix(overrides, pattern):
    with pytest.raises(ValueError, match=pattern):
        ReformerZhModelTester().get_config(**overrides)


def test_config_round_trip(tmp_path):
    config = ReformerZhModelTester().get_config(num_buckets=8, reversible=False)
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, ReformerZhConfig)
    without_path = lambda c: {k: v for k, v in c.to_dict().items() if k != "_name_or_path"}  # noqa: E731
    assert without_path(loaded) == without_path(config)
    assert loaded.is_encoder_decoder


def test_auto_classes_and_from_config():
    config = ReformerZhModelTester().get_config()
    assert isinstance(AutoModel.from_config(config), ReformerZhModel)
    assert isinstance(AutoModelForSeq2SeqLM.from_config(config), ReformerZhForConditionalGeneration)


def test_save_and_load_are_exact(tmp_path):
    tester = ReformerZhModelTester()
    config, inputs = tester.prepare_config_and_inputs()
    model = tester.build_model(config).eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert not (tmp_path / "pytorch_model.bin").exists()
    loaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path).eval()
    for (name, expected), (_, actual) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(actual, expected), name
    with torch.no_grad():
        assert_close(loaded(**inputs).logits, model(**inputs).logits, atol=0)
    assert loaded.lm_head.weight.data_ptr() == loaded.model.shared.weight.data_ptr()


REMOTE_CODE_SCRIPT = BLOCK_PROJECT_IMPORTS + textwrap.dedent(
    """
    import sys
    import torch
    from transformers import AutoModelForSeq2SeqLM
    folder = sys.argv[1]
    model = AutoModelForSeq2SeqLM.from_pretrained(folder, trust_remote_code=True).eval()
    assert "modeling_reformer_zh" not in sys.modules
    inputs = torch.load(folder + "/inputs.pt")
    with torch.no_grad():
        logits = model(**inputs).logits
        tokens = model.generate(input_ids=inputs["input_ids"], max_new_tokens=4, num_beams=2, eos_token_id=None)
    expected = torch.load(folder + "/expected.pt")
    difference = (logits - expected["logits"]).abs().max().item()
    assert difference < 1e-5, difference
    assert torch.equal(tokens, expected["tokens"]), (tokens, expected["tokens"])
    print("REMOTE_OK", type(model).__module__)
    """
)


MEMORY_FAMILY = dict(num_mem_kv=2, head_combine="mean", pkm_layers=[1], decoder_pkm_layers=[0], pkm_num_keys=8,
                     pkm_topk=3, pkm_heads=2, pkm_dim_key=8)


@pytest.mark.parametrize("overrides", [{}, MEMORY_FAMILY], ids=["defaults", "memory_family"])
def test_checkpoint_loads_as_remote_code_without_the_package(tmp_path, overrides):
    tester = ReformerZhModelTester(**overrides)
    config, inputs = tester.prepare_config_and_inputs()
    model = tester.build_model(config).eval()
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["auto_map"]["AutoModelForSeq2SeqLM"].endswith("ReformerZhForConditionalGeneration")
    assert saved["auto_map"]["AutoConfig"].endswith("ReformerZhConfig")
    for name in ("modeling_reformer_zh.py", "configuration_reformer_zh.py", "attention_lsh.py", "reversible.py"):
        assert (tmp_path / name).exists(), name
    del inputs["labels"]
    inputs["decoder_input_ids"] = torch.tensor([[2, 5, 6], [2, 7, 8]])
    torch.save(inputs, tmp_path / "inputs.pt")
    with torch.no_grad():
        expected = {
            "logits": model(**inputs).logits,
            "tokens": model.generate(input_ids=inputs["input_ids"], max_new_tokens=4, num_beams=2, eos_token_id=None),
        }
    torch.save(expected, tmp_path / "expected.pt")
    script = tmp_path / "load_remote.py"
    script.write_text(REMOTE_CODE_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf_home")},
        timeout=300,
    )
    assert "REMOTE_OK transformers_modules" in result.stdout, result.stdout + result.stderr
