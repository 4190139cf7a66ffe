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
from reformer_zh.release.publish import BLOCK_PROJECT_IMPORTS  # scripts/ is on the path (conftest)
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
        (dict(hash_seed=-1), r"hash_seed.*non-negative integer or None"),
        (dict(hash_seed="0"), r"hash_seed.*non-negative integer or None"),
        (dict(layer_norm_eps=0), r"layer_norm_eps.*\(0, 1\)"),
        (dict(initializer_range="0.02"), r"initializer_range.*number"),
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


# A valid value other than the default for every `ReformerZhConfig.__init__` argument (checked
# together: they form one valid config). A new argument must be added here.
NON_DEFAULT_ARGUMENTS = dict(
    vocab_size=101, hidden_size=48, num_attention_heads=3, attention_head_size=16, feed_forward_size=40,
    hidden_act="relu", hidden_dropout_prob=0.2, attention_probs_dropout_prob=0.3,
    encoder_attn_layers=["lsh", "full", "local"], decoder_attn_layers=["local", "lsh"], num_hashes=3,
    num_buckets=[4, 8], hash_seed=7, lsh_attn_chunk_length=8, lsh_num_chunks_before=2, lsh_num_chunks_after=1,
    local_attn_chunk_length=16, local_num_chunks_before=2, local_num_chunks_after=1, full_attn_threshold=32,
    axial_pos_embds=False, axial_pos_shape=[16, 16], axial_pos_embds_dim=[16, 32], max_position_embeddings=256,
    chunk_size_feed_forward=4, cross_attn_chunk_length=32, reversible=False, num_mem_kv=2, head_combine="mean",
    pkm_layers=[1], decoder_pkm_layers=[0], pkm_mode="add", pkm_num_keys=16, pkm_topk=4, pkm_heads=2,
    pkm_dim_key=32, pkm_query_norm="batch", pkm_sparse_gradients=True, copy_attention=True,
    copy_attention_head_size=12, scale_embedding=True, encoder_position_offset_in_training=True,
    section_embeddings=6, section_break_token_id=7, summary_segment_embeddings=5, summary_separator_token_id=8,
    copy_alignment_loss_weight=0.25,
    layer_norm_eps=1e-6,
    initializer_range=0.05, pad_token_id=1, bos_token_id=4, eos_token_id=5, decoder_start_token_id=6,
    use_cache=False,
)


def test_every_argument_survives_construction_and_save_load(tmp_path):
    import inspect

    parameters = inspect.signature(ReformerZhConfig.__init__).parameters
    # tie_word_embeddings=False is rejected by design; everything else must be covered
    arguments = [name for name in parameters if name not in ("self", "kwargs", "tie_word_embeddings")]
    assert sorted(NON_DEFAULT_ARGUMENTS) == sorted(arguments), "NON_DEFAULT_ARGUMENTS must cover every argument"
    for name, value in NON_DEFAULT_ARGUMENTS.items():
        default = parameters[name].default
        assert value != (list(default) if isinstance(default, tuple) else default), f"{name}: give a non-default value"
    config = ReformerZhConfig(**NON_DEFAULT_ARGUMENTS)
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    for name, value in NON_DEFAULT_ARGUMENTS.items():
        assert getattr(config, name) == value, f"{name}: constructed {getattr(config, name)!r}, given {value!r}"
        assert getattr(loaded, name) == value, f"{name}: loaded {getattr(loaded, name)!r}, given {value!r}"


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
    # the second hop: saved again from the module cache, the checkpoint keeps its pipeline
    from pathlib import Path
    from transformers.dynamic_module_utils import get_class_from_dynamic_module
    model.save_pretrained(folder + "/second")
    assert (Path(folder) / "second" / "pipeline_reformer_zh.py").is_file()
    pipeline_class = get_class_from_dynamic_module("pipeline_reformer_zh.SummarizationPipeline", folder + "/second")
    assert pipeline_class.__name__ == "SummarizationPipeline"
    print("REMOTE_OK", type(model).__module__)
    """
)


MEMORY_FAMILY = dict(num_mem_kv=2, head_combine="mean", pkm_layers=[1], decoder_pkm_layers=[0], pkm_num_keys=8,
                     pkm_topk=3, pkm_heads=2, pkm_dim_key=8)


@pytest.mark.parametrize("overrides", [{}, MEMORY_FAMILY, {"copy_attention": True}],
                         ids=["defaults", "memory_family", "copy_attention"])
@pytest.mark.slow
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
