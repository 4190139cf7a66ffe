"""The memory family: persistent memory key/values, product-key memory layers, head combination."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from modeling_reformer_zh import ReformerZhConfig, ReformerZhForConditionalGeneration, memory_usage
from modeling_reformer_zh.attention_lsh import exact_shared_qk_attention, lsh_attention
from modeling_reformer_zh.attention_utils import masked_attention
from modeling_reformer_zh.persistent_memory import PersistentMemory
from modeling_reformer_zh.product_key_memory import ProductKeyMemory, memory_parameter_groups
from utils import ReformerZhModelTester, assert_close, cached_and_full_decoder_logits

ALL_KINDS = dict(encoder_attn_layers=["local", "lsh", "full"], decoder_attn_layers=["full", "local", "lsh"])
SMALL_PKM = dict(pkm_num_keys=8, pkm_topk=3, pkm_heads=2, pkm_dim_key=8)
OPTIONS = {
    "mem_kv": dict(num_mem_kv=3),
    "mean_heads": dict(head_combine="mean"),
    "pkm": dict(pkm_layers=[1], decoder_pkm_layers=[0, 2], **SMALL_PKM),
    "pkm_add_batchnorm": dict(pkm_layers=[0], pkm_mode="add", pkm_query_norm="batch", **SMALL_PKM),
    "everything": dict(num_mem_kv=2, head_combine="mean", pkm_layers=[2], decoder_pkm_layers=[1], **SMALL_PKM),
}


def test_defaults_build_no_memory_family_module():
    """With every option off the model holds none of the family's modules or parameters, and
    its attention output projections take the concatenated heads: the pre-family model."""
    tester = ReformerZhModelTester(**ALL_KINDS)
    config = tester.get_config()
    assert (config.num_mem_kv, config.pkm_layers, config.decoder_pkm_layers, config.head_combine) == (0, [], [], "concat")
    model = tester.build_model(config)
    assert not any(isinstance(m, (PersistentMemory, ProductKeyMemory)) for m in model.modules())
    assert not any("memory" in name for name, _ in model.named_parameters())
    heads = config.num_attention_heads * config.attention_head_size
    projections = [m.output for m in model.modules() if hasattr(m, "output") and hasattr(m, "head_combine")]
    assert projections and all(p.in_features == heads for p in projections)


# --- persistent memory key/values ----------------------------------------------------------------

def test_a_query_with_every_key_masked_still_reads_the_memory():
    torch.manual_seed(0)
    query, key, value = torch.randn(3, 1, 2, 5, 4).unbind(0)  # [b, h, s, d]
    memory = PersistentMemory(num_heads=2, num_slots=3, head_size=4)
    nn.init.normal_(memory.keys)
    nn.init.normal_(memory.values)
    allowed = torch.ones(5, 5, dtype=torch.bool)
    allowed[2] = False  # query 2 may read no real key
    output, _ = masked_attention(query, key, value, allowed, scale=0.5, dropout_p=0.0, training=False, memory=memory)
    # query 2 reads exactly the memory
    memory_logits = 0.5 * torch.einsum("bhd,hmd->bhm", query[:, :, 2], memory.keys)
    expected = torch.einsum("bhm,hmd->bhd", memory_logits.softmax(-1), memory.values)
    assert_close(output[:, :, 2], expected, atol=1e-6)
    # every other query reads keys and memory under one softmax
    logits = torch.cat([0.5 * query @ key.transpose(-1, -2), 0.5 * torch.einsum("bhqd,hmd->bhqm", query, memory.keys)], -1)
    probs = logits.softmax(-1)
    expected_all = probs[..., :5] @ value + torch.einsum("bhqm,hmd->bhqd", probs[..., 5:], memory.values)
    assert_close(output[:, :, [0, 1, 3, 4]], expected_all[:, :, [0, 1, 3, 4]], atol=1e-6)


@pytest.mark.parametrize("causal", [False, True])
def test_lsh_with_memory_equals_exact_attention_with_memory_when_one_chunk_sees_everything(causal):
    torch.manual_seed(1)
    query_key, value = torch.randn(2, 1, 2, 8, 4).unbind(0)
    memory = PersistentMemory(2, 3, 4)
    nn.init.normal_(memory.keys)
    nn.init.normal_(memory.values)
    buckets = torch.randint(0, 2, (1, 2, 3, 8))  # 3 rounds; one chunk of 8 covers every key
    lsh = lsh_attention(query_key, value, buckets=buckets, num_buckets=2, key_mask=None, causal=causal, chunk_length=8,
                        num_chunks_before=0, num_chunks_after=0, dropout_p=0.0, training=False, memory=memory)
    exact = exact_shared_qk_attention(query_key, query_key, value, query_positions=torch.arange(8), key_mask=None,
                                      causal=causal, dropout_p=0.0, training=False, memory=memory)
    assert_close(lsh, exact, atol=1e-5)
    without = exact_shared_qk_attention(query_key, query_key, value, query_positions=torch.arange(8), key_mask=None,
                                        causal=causal, dropout_p=0.0, training=False)
    assert (exact - without).abs().max() > 1e-3  # guard: the memory changed the result


def cached_equals_full(**overrides):
    tester = ReformerZhModelTester(**ALL_KINDS, full_attn_threshold=64, **overrides)
    config, inputs = tester.prepare_config_and_inputs()
    model = tester.build_model(config).eval()
    cached, full, _ = cached_and_full_decoder_logits(model, inputs, target_length=9)
    assert_close(cached, full, atol=1e-5)
    return full


@pytest.mark.parametrize("option", OPTIONS)
def test_cached_decoding_equals_the_full_forward(option):
    full = cached_equals_full(**OPTIONS[option])
    baseline = cached_equals_full()
    assert (full - baseline).abs().max() > 1e-4  # guard: the option is really on


def training_step(reversible: bool, **overrides):
    tester = ReformerZhModelTester(**ALL_KINDS, hash_seed=None, hidden_dropout_prob=0.1,
                                   attention_probs_dropout_prob=0.1, **overrides)
    config, inputs = tester.prepare_config_and_inputs(reversible=reversible)
    inputs["attention_mask"][1, 11:] = 0
    model = tester.build_model(config, seed=0, dtype=torch.float64).train()
    torch.manual_seed(5)
    output = model(**inputs)
    output.loss.backward()
    buffers = {name: buffer.clone() for name, buffer in model.named_buffers()}
    return output, {name: p.grad for name, p in model.named_parameters()}, buffers


@pytest.mark.parametrize("option", OPTIONS)
def test_reversible_and_plain_twins_agree(option):
    plain, plain_grads, plain_buffers = training_step(False, **OPTIONS[option])
    reversible, reversible_grads, reversible_buffers = training_step(True, **OPTIONS[option])
    assert_close(reversible.logits, plain.logits, atol=1e-10)
    for name, grad in plain_grads.items():
        assert grad is not None and reversible_grads[name] is not None, name
        assert_close(reversible_grads[name].to_dense(), grad.to_dense(), atol=1e-8, msg=name)
    # the recomputation does not count a batch twice in batch-norm running statistics
    for name, buffer in plain_buffers.items():
        assert torch.equal(reversible_buffers[name], buffer), name


def test_memory_parameters_get_gradients_and_train_in_the_decoder():
    _, grads, _ = training_step(True, num_mem_kv=2)
    memory_grads = {name: grad for name, grad in grads.items() if ".memory." in name}
    assert any("decoder" in name for name in memory_grads) and any("encoder" in name for name in memory_grads)
    assert all(grad.abs().sum() > 0 for grad in memory_grads.values())


# --- head combination ----------------------------------------------------------------------------

def test_mean_head_combination_gradcheck_and_shapes():
    tester = ReformerZhModelTester(**ALL_KINDS, head_combine="mean")
    config, inputs = tester.prepare_config_and_inputs()
    model = tester.build_model(config, dtype=torch.float64).train()
    attention = model.model.encoder.layers[0].attention.attention
    assert attention.output.in_features == config.attention_head_size
    hidden = torch.randn(1, 8, config.hidden_size, dtype=torch.float64, requires_grad=True)
    for layer in model.model.encoder.layers:
        assert torch.autograd.gradcheck(lambda h: layer.attention.attention(h), (hidden,))
    encoder_states = torch.randn(1, 12, config.hidden_size, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda h: model.model.decoder.layers[0].cross_attention.attention(h, encoder_states),
                                    (hidden,))


def test_mean_heads_average_what_concat_would_join():
    tester = ReformerZhModelTester(**ALL_KINDS)
    concat = tester.build_model(tester.get_config()).eval()
    mean = tester.build_model(tester.get_config(head_combine="mean")).eval()
    attention, averaged = concat.model.encoder.layers[2].attention.attention, mean.model.encoder.layers[2].attention.attention
    averaged.load_state_dict({k: v for k, v in attention.state_dict().items() if not k.startswith("output")}, strict=False)
    # concat with the projection [W, W] / h equals mean with projection W
    weight = averaged.output.weight
    with torch.no_grad():
        attention.output.weight.copy_(torch.cat([weight] * config_heads(concat), dim=1) / config_heads(concat))
    hidden = torch.randn(2, 8, 32)
    assert_close(averaged(hidden), attention(hidden), atol=1e-6)


def config_heads(model) -> int:
    return model.config.num_attention_heads


# --- product-key memory --------------------------------------------------------------------------

def pkm_config(**overrides) -> ReformerZhConfig:
    values = dict(vocab_size=50, hidden_size=32, num_attention_heads=2, attention_head_size=16, feed_forward_size=18,
                  axial_pos_embds_dim=[8, 24], pkm_num_keys=32, pkm_topk=4, pkm_heads=1, pkm_dim_key=16)
    return ReformerZhConfig(**{**values, **overrides})


def initialized_memory(config: ReformerZhConfig) -> ProductKeyMemory:
    memory = ProductKeyMemory(config)
    with torch.no_grad():
        memory.sub_keys.normal_(0, memory.half_key**-0.5)
        memory.values.weight.normal_(0, config.hidden_size**-0.5)
    return memory


@pytest.mark.parametrize("heads,topk", [(1, 4), (3, 7)])
def test_product_key_top_k_equals_brute_force_over_all_products(heads, topk):
    torch.manual_seed(heads)
    memory = initialized_memory(pkm_config(pkm_num_keys=12, pkm_topk=topk, pkm_heads=heads, pkm_dim_key=10))
    queries = memory.normalized_queries(torch.randn(50, 32))
    scores, slots = memory.search(queries)
    # every slot's full key is (K1[i], K2[j]) and its score q1.K1[i] + q2.K2[j]
    first = torch.einsum("nhd,hkd->nhk", queries[:, :, 0], memory.sub_keys[:, 0])
    second = torch.einsum("nhd,hkd->nhk", queries[:, :, 1], memory.sub_keys[:, 1])
    all_scores = (first[..., :, None] + second[..., None, :]).flatten(2)  # [N, heads, n*n], slot i*n + j
    brute_scores, brute_slots = all_scores.topk(topk, dim=-1)
    assert_close(scores, brute_scores, atol=1e-5)
    assert torch.equal(slots.sort(-1).values, brute_slots.sort(-1).values)


@pytest.mark.parametrize("sparse", [False, True])
def test_gradients_reach_only_the_selected_values(sparse):
    torch.manual_seed(0)
    memory = initialized_memory(pkm_config(pkm_sparse_gradients=sparse, pkm_heads=2)).train()
    hidden = torch.randn(1, 5, 32)
    memory(hidden).square().sum().backward()
    grad = memory.values.weight.grad
    assert grad.is_sparse == sparse
    with torch.no_grad():
        _, slots = memory.search(memory.normalized_queries(hidden[0]))
    selected = torch.zeros(memory.num_keys**2, dtype=torch.bool)
    selected[slots.flatten()] = True
    rows_with_gradient = grad.to_dense().abs().sum(-1) > 0
    assert torch.equal(rows_with_gradient, selected)
    assert memory.usage() == pytest.approx(selected.float().mean().item())
    assert memory.usage() is None  # reset after reading


def test_product_key_memory_learns_a_lookup_a_same_compute_feed_forward_cannot():
    """1,024 random keys -> 16 random classes, full batch. Per-token multiply-adds: the memory
    spends 32*16 (query) + 2*32*8 (sub-key scores) + 4*32 (read) = 1,152; the feed-forward of
    width 18 spends 2*32*18 = 1,152. The memory has 32K value parameters to store the table
    in; the feed-forward cannot hold 1,024 arbitrary labels."""
    torch.manual_seed(0)
    keys, labels = torch.randn(1024, 32), torch.randint(0, 16, (1024,))
    memory = initialized_memory(pkm_config())
    feed_forward = nn.Sequential(nn.Linear(32, 18), nn.GELU(), nn.Linear(18, 32))
    accuracy = {}
    for name, layer in (("memory", memory), ("feed_forward", feed_forward)):
        head = nn.Linear(32, 16)
        model = nn.ModuleDict({"layer": layer, "head": head}).train()

        def forward(inputs):
            return head(layer(inputs[None])[0] if layer is memory else layer(inputs))

        groups = memory_parameter_groups(model, learning_rate=1e-2, memory_learning_rate=0.1)
        optimizer = torch.optim.Adam([group for group in groups if group["params"]])
        for _ in range(250):
            loss = nn.functional.cross_entropy(forward(keys), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            accuracy[name] = (forward(keys).argmax(-1) == labels).float().mean().item()
    assert accuracy["memory"] > 0.95, accuracy
    assert accuracy["feed_forward"] < 0.7, accuracy


def test_memory_parameter_groups_give_values_their_own_rate_and_no_decay():
    config = ReformerZhModelTester(**ALL_KINDS).get_config(pkm_layers=[1], **SMALL_PKM)
    model = ReformerZhForConditionalGeneration(config)
    groups = memory_parameter_groups(model, learning_rate=1e-3, memory_learning_rate=1e-2, weight_decay=0.01)
    memory_group = groups[-1]
    assert memory_group["lr"] == 1e-2 and memory_group["weight_decay"] == 0.0
    assert [p is model.model.encoder.layers[1].feed_forward.memory.values.weight for p in memory_group["params"]] == [True]
    grouped = [id(p) for group in groups for p in group["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())  # each parameter exactly once


def test_model_reports_memory_usage_in_training():
    tester = ReformerZhModelTester(**ALL_KINDS, pkm_layers=[1], decoder_pkm_layers=[0], **SMALL_PKM)
    config, inputs = tester.prepare_config_and_inputs()
    model = tester.build_model(config).train()
    model(**inputs).loss.backward()
    usage = memory_usage(model)
    assert set(usage) == {"pkm_usage/model.encoder.layers.1.feed_forward.memory",
                          "pkm_usage/model.decoder.layers.0.feed_forward.memory"}
    assert all(0 < share <= 1 for share in usage.values())
    model.eval()
    with torch.no_grad():
        model(**inputs)
    assert memory_usage(model) == {}  # evaluation reads are not training usage


@pytest.mark.parametrize("overrides,pattern", [
    (dict(head_combine="sum"), "head_combine"),
    (dict(pkm_layers=[9]), r"pkm_layers.*\[0, 3\)"),
    (dict(decoder_pkm_layers=[1, 1]), "distinct"),
    (dict(pkm_topk=40, pkm_num_keys=32), "pkm_topk"),
    (dict(pkm_dim_key=7), "even"),
    (dict(pkm_mode="augment"), "pkm_mode"),
    (dict(num_mem_kv=-2), "num_mem_kv"),
])
def test_invalid_memory_options_name_the_field_and_the_fix(overrides, pattern):
    with pytest.raises(ValueError, match=pattern):
        ReformerZhModelTester(**ALL_KINDS).get_config(**overrides)


def test_every_option_round_trips_through_save_and_load(tmp_path):
    tester = ReformerZhModelTester(**ALL_KINDS, **OPTIONS["everything"], pkm_query_norm="batch")
    config, inputs = tester.prepare_config_and_inputs()
    model = tester.build_model(config)
    model.train()
    model(**inputs)  # move the batch-norm running statistics away from their initial values
    model.eval()
    model.save_pretrained(tmp_path)
    loaded = ReformerZhForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert loaded.config.pkm_layers == [2] and loaded.config.head_combine == "mean" and loaded.config.num_mem_kv == 2
    assert (tmp_path / "product_key_memory.py").exists()  # travels with the remote code
    with torch.no_grad():
        assert torch.equal(loaded(**inputs).logits, model(**inputs).logits)
        expected = model.generate(input_ids=inputs["input_ids"], max_new_tokens=4, num_beams=2, eos_token_id=None)
        assert torch.equal(loaded.generate(input_ids=inputs["input_ids"], max_new_tokens=4, num_beams=2,
                                           eos_token_id=None), expected)
