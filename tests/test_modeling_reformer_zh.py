"""The encoder-decoder as users call it: loss, cache, generate, padding, dtypes, save/load."""

from __future__ import annotations

import pytest
import torch

from modeling_reformer_zh import ReformerZhForConditionalGeneration, ReformerZhModel
from modeling_reformer_zh.cache_reformer_zh import OUTPUT_CACHE_FIELD
from modeling_reformer_zh.modeling_reformer_zh import shift_tokens_right
from utils import ReformerZhModelTester, assert_close, cached_and_full_decoder_logits


def test_output_shapes_and_loss_ignores_minus_100():
    tester = ReformerZhModelTester()
    config, inputs = tester.prepare_config_and_inputs()
    model = tester.build_model(config).eval()
    labels = inputs["labels"].clone()
    labels[0, 5:] = -100
    output = model(**{**inputs, "labels": labels})
    assert output.logits.shape == (2, 7, 99)
    assert output.encoder_last_hidden_state.shape == (2, 16, 32)
    kept = labels != -100
    expected = torch.nn.functional.cross_entropy(output.logits[kept], labels[kept])
    assert_close(output.loss, expected, atol=1e-6)


def test_labels_are_shifted_into_decoder_inputs():
    labels = torch.tensor([[7, 8, 9, -100]])
    assert shift_tokens_right(labels, 0, 2).tolist() == [[2, 7, 8, 9]]
    tester = ReformerZhModelTester()
    config, inputs = tester.prepare_config_and_inputs()
    model = tester.build_model(config).eval()
    from_labels = model(**inputs).logits
    explicit = model(
        input_ids=inputs["input_ids"],
        attention_mask=inputs["attention_mask"],
        decoder_input_ids=shift_tokens_right(inputs["labels"], 0, 2),
    ).logits
    assert_close(from_labels, explicit, atol=1e-6)


def test_missing_decoder_inputs_fail_with_the_fix():
    tester = ReformerZhModelTester()
    config, inputs = tester.prepare_config_and_inputs()
    model = tester.build_model(config)
    with pytest.raises(ValueError, match="generate"):
        model(input_ids=inputs["input_ids"])


DECODER_KINDS = {
    "full": dict(decoder_attn_layers=["full", "full"]),
    "local": dict(decoder_attn_layers=["local", "local"], local_attn_chunk_length=4, local_num_chunks_before=1),
    "lsh_under_threshold": dict(decoder_attn_layers=["lsh", "full"], full_attn_threshold=16),
    "mixed": dict(decoder_attn_layers=["local", "lsh"], full_attn_threshold=16),
}


@pytest.mark.parametrize("kind", DECODER_KINDS)
def test_cached_incremental_decoding_equals_full_forward(kind):
    tester = ReformerZhModelTester(**DECODER_KINDS[kind])
    config, inputs = tester.prepare_config_and_inputs()
    model = tester.build_model(config).eval()
    cached, full, cache = cached_and_full_decoder_logits(model, inputs, target_length=11)
    assert cache.get_seq_length() == 11
    assert_close(cached, full, atol=1e-5)


def test_decoder_lsh_cache_above_threshold_is_exact_attention():
    """Above the threshold a decoder LSH layer trains with LSH; its cache decodes with the exact
    shared-QK attention that LSH approximates, i.e. the full forward under a larger threshold."""
    # local encoder: the threshold below must change only the decoder
    tester = ReformerZhModelTester(encoder_attn_layers=["local", "local"], decoder_attn_layers=["lsh", "lsh"])
    config, inputs = tester.prepare_config_and_inputs()
    model = tester.build_model(config).eval()
    exact_config = tester.get_config(decoder_attn_layers=["lsh", "lsh"], full_attn_threshold=64)
    exact_model = ReformerZhForConditionalGeneration(exact_config).eval()
    exact_model.load_state_dict(model.state_dict())
    decoder_input_ids = torch.randint(5, 99, (2, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        lsh_logits = model(input_ids=inputs["input_ids"], decoder_input_ids=decoder_input_ids, use_cache=False).logits
        exact_logits = exact_model(input_ids=inputs["input_ids"], decoder_input_ids=decoder_input_ids, use_cache=False).logits
        cache, steps = None, []
        for i in range(12):
            output = model(input_ids=inputs["input_ids"], decoder_input_ids=decoder_input_ids[:, i : i + 1], cache=cache)
            cache = output[OUTPUT_CACHE_FIELD]
            steps.append(output.logits)
    assert_close(torch.cat(steps, 1), exact_logits, atol=1e-5)
    assert (lsh_logits - exact_logits).abs().max() > 1e-4  # LSH really ran in the full forward


@pytest.mark.parametrize("num_beams", [1, 3])
def test_generate_with_and_without_cache_gives_the_same_tokens(num_beams):
    tester = ReformerZhModelTester(decoder_attn_layers=["local", "full"])
    config, inputs = tester.prepare_config_and_inputs()
    model = tester.build_model(config).eval()
    inputs["attention_mask"][1, 10:] = 0
    kwargs = dict(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], max_new_tokens=9,
                  num_beams=num_beams, do_sample=False, eos_token_id=None, pad_token_id=0)
    cached = model.generate(**kwargs, use_cache=True)
    uncached = model.generate(**kwargs, use_cache=False)
    assert cached.shape == (2, 10)
    assert torch.equal(cached, uncached)


def test_generate_really_uses_the_cache():
    tester = ReformerZhModelTester()
    config, inputs = tester.prepare_config_and_inputs()
    model = tester.build_model(config).eval()
    decoder_lengths, encoder_calls = [], []
    model.model.decoder.embeddings.register_forward_hook(lambda m, args, kwargs, out: decoder_lengths.append(out.shape[1]),
                                                         with_kwargs=True)
    model.model.encoder.register_forward_hook(lambda *args: encoder_calls.append(1))
    model.generate(input_ids=inputs["input_ids"], max_new_tokens=6, eos_token_id=None, num_beams=2)
    assert encoder_calls == [1]
    assert decoder_lengths == [1] * 6  # one new token per step, never the whole prefix
    decoder_lengths.clear()
    model.generate(input_ids=inputs["input_ids"], max_new_tokens=6, eos_token_id=None, use_cache=False)
    assert decoder_lengths == [1, 2, 3, 4, 5, 6]


def test_sampling_equals_a_hand_written_top_k_sampler():
    """generate(do_sample, top_k) against a loop: full forward on the prefix, keep the top k
    logits, softmax, torch.multinomial from the same generator state."""
    tester = ReformerZhModelTester()
    config, inputs = tester.prepare_config_and_inputs()
    model = tester.build_model(config).eval()
    torch.manual_seed(0)
    sampled = model.generate(input_ids=inputs["input_ids"], max_new_tokens=5, do_sample=True, top_k=10,
                             eos_token_id=None, temperature=1.0, top_p=1.0)
    torch.manual_seed(0)
    prefix = torch.full((2, 1), config.decoder_start_token_id)
    with torch.no_grad():
        for _ in range(5):
            logits = model(input_ids=inputs["input_ids"], decoder_input_ids=prefix, use_cache=False).logits[:, -1]
            kth = logits.topk(10, dim=-1).values[:, -1:]
            probs = torch.softmax(logits.masked_fill(logits < kth, float("-inf")), dim=-1)
            prefix = torch.cat([prefix, torch.multinomial(probs, num_samples=1)], dim=1)
    assert torch.equal(sampled, prefix), (sampled, prefix)
    torch.manual_seed(1)
    other = model.generate(input_ids=inputs["input_ids"], max_new_tokens=5, do_sample=True, top_k=10, eos_token_id=None)
    assert not torch.equal(other, sampled)  # it does sample


def test_padded_and_unpadded_inputs_agree_and_batches_are_independent():
    tester = ReformerZhModelTester(num_buckets=4)  # fixed: the derived count depends on the padded length
    config, inputs = tester.prepare_config_and_inputs()
    model = tester.build_model(config).eval()
    ids = inputs["input_ids"]
    short = ids[:1, :11]
    decoder_input_ids = shift_tokens_right(inputs["labels"], 0, 2)
    with torch.no_grad():
        alone = model(input_ids=short, decoder_input_ids=decoder_input_ids[:1]).logits
        padded_ids = torch.cat([short, torch.zeros(1, 5, dtype=torch.long)], 1)
        batch = model(
            input_ids=torch.cat([padded_ids, ids[1:]]),
            attention_mask=torch.cat([(padded_ids != 0).long(), torch.ones(1, 16, dtype=torch.long)]),
            decoder_input_ids=decoder_input_ids,
        ).logits
    assert_close(batch[:1], alone, atol=1e-5)


@pytest.mark.parametrize(
    "overrides",
    [dict(num_buckets=None), dict(num_buckets=4, full_attn_threshold=8), dict(num_buckets=None, full_attn_threshold=8)],
    ids=["derived-buckets", "threshold", "both"],
)
def test_a_sequence_gives_the_same_output_alone_and_beside_a_longer_one(overrides):
    """The bucket count and the exact/LSH choice follow each row's own length, not the batch's."""
    tester = ReformerZhModelTester(encoder_attn_layers=["lsh", "lsh"], **overrides)
    config, inputs = tester.prepare_config_and_inputs()
    model = tester.build_model(config).eval()
    short = inputs["input_ids"][:1, :7]
    decoder_input_ids = shift_tokens_right(inputs["labels"], 0, 2)
    with torch.no_grad():
        alone = model(input_ids=short, decoder_input_ids=decoder_input_ids[:1]).logits
        batch_ids = torch.cat([torch.cat([short, torch.zeros(1, 9, dtype=torch.long)], 1), inputs["input_ids"][1:]])
        mask = torch.cat([torch.tensor([[1] * 7 + [0] * 9]), torch.ones(1, 16, dtype=torch.long)])
        beside = model(input_ids=batch_ids, attention_mask=mask, decoder_input_ids=decoder_input_ids).logits
        long_alone = model(input_ids=inputs["input_ids"][1:], decoder_input_ids=decoder_input_ids[1:]).logits
    assert_close(beside[:1], alone, atol=1e-5)
    assert_close(beside[1:], long_alone, atol=1e-5)


def test_lengths_that_are_not_chunk_multiples_train():
    tester = ReformerZhModelTester()
    config, inputs = tester.prepare_config_and_inputs()
    model = tester.build_model(config).train()
    output = model(input_ids=inputs["input_ids"][:, :13], labels=inputs["labels"][:, :5])
    output.loss.backward()
    assert torch.isfinite(output.loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_bf16_autocast_trains_and_generates():
    tester = ReformerZhModelTester(encoder_attn_layers=["lsh", "local"], decoder_attn_layers=["local", "full"])
    config, inputs = tester.prepare_config_and_inputs()
    model = tester.build_model(config).train()
    fp32_loss = model(**inputs).loss
    fp32_loss.backward()
    fp32_grad = model.lm_head.weight.grad.clone()
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(**inputs).loss
    loss.backward()
    assert abs(loss.item() - fp32_loss.item()) < 0.02 * fp32_loss.item()  # bf16 has 8 bits of mantissa
    cosine = torch.nn.functional.cosine_similarity(model.lm_head.weight.grad.flatten(), fp32_grad.flatten(), dim=0)
    assert cosine > 0.99, cosine
    model.eval()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model.generate(input_ids=inputs["input_ids"], max_new_tokens=4, num_beams=2, eos_token_id=None)
    assert out.shape == (2, 5)
    bf16_model = tester.build_model(config, dtype=torch.bfloat16).eval()
    with torch.no_grad():
        bf16_logits = bf16_model(**inputs).logits.float()
        fp32_logits = tester.build_model(config).eval()(**inputs).logits
    assert (bf16_logits - fp32_logits).abs().max() < 0.05


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["aot_eager", pytest.param("inductor", marks=pytest.mark.slow)])
def test_torch_compile_forward_and_training_step(backend):
    """aot_eager and inductor (about 80 s of C++ compilation on 2 cores), both in `make test-slow`."""
    tester = ReformerZhModelTester()
    config, inputs = tester.prepare_config_and_inputs()
    model = tester.build_model(config).eval()
    with torch.no_grad():
        expected = model(**inputs).logits
        actual = torch.compile(model, backend=backend)(**inputs).logits
    assert_close(actual, expected, atol=1e-5)
    model.train()
    eager_loss = model(**inputs).loss
    eager_loss.backward()
    eager_grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    loss = torch.compile(model, backend=backend)(**inputs).loss
    loss.backward()
    assert_close(loss, eager_loss, atol=1e-5)
    for name, grad in eager_grads.items():
        assert_close(dict(model.named_parameters())[name].grad, grad, atol=1e-5, msg=name)


def test_base_model_returns_decoder_states():
    tester = ReformerZhModelTester()
    config, inputs = tester.prepare_config_and_inputs()
    torch.manual_seed(0)
    model = ReformerZhModel(config).eval()
    output = model(input_ids=inputs["input_ids"], decoder_input_ids=inputs["labels"], use_cache=False)
    assert output.last_hidden_state.shape == (2, 7, 32)
    assert not model(input_ids=inputs["input_ids"], decoder_input_ids=inputs["labels"], return_dict=False)[0].isnan().any()


def test_lm_head_is_tied_to_the_shared_embedding():
    tester = ReformerZhModelTester()
    model = tester.build_model(tester.get_config())
    assert model.lm_head.weight.data_ptr() == model.model.shared.weight.data_ptr()
    assert model.model.encoder.embeddings.token_embeddings is model.model.shared


def test_unknown_arguments_fail_instead_of_being_ignored():
    tester = ReformerZhModelTester()
    config, inputs = tester.prepare_config_and_inputs()
    model = tester.build_model(config)
    with pytest.raises(TypeError, match="decoder_input_id"):
        model(**inputs, decoder_input_id=inputs["labels"])
    with pytest.raises(ValueError, match="output_attentions"):
        model(**inputs, output_attentions=True)


def test_num_items_in_batch_sums_the_token_loss():
    tester = ReformerZhModelTester()
    config, inputs = tester.prepare_config_and_inputs()
    model = tester.build_model(config).eval()
    mean_loss = model(**inputs).loss
    summed = model(**inputs, num_items_in_batch=7).loss
    assert_close(summed, mean_loss * inputs["labels"].numel() / 7, atol=1e-5)


def test_mask_shapes_are_checked():
    tester = ReformerZhModelTester()
    config, inputs = tester.prepare_config_and_inputs()
    model = tester.build_model(config)
    with pytest.raises(ValueError, match=r"`attention_mask` has shape \(2, 14\), expected \(2, 16\)"):
        model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"][:, :14], labels=inputs["labels"])
    with pytest.raises(ValueError, match="decoder_attention_mask"):
        model(**inputs, decoder_attention_mask=torch.zeros(2, 1, dtype=torch.long))


def test_training_forward_without_labels_stays_reversible_and_fills_no_cache(monkeypatch):
    from modeling_reformer_zh import reversible

    calls = []
    original = reversible.ReversibleFunction.apply
    monkeypatch.setattr(reversible.ReversibleFunction, "apply", lambda *args: calls.append(1) or original(*args))
    tester = ReformerZhModelTester()
    config, inputs = tester.prepare_config_and_inputs()
    model = tester.build_model(config).train()
    output = model(input_ids=inputs["input_ids"], decoder_input_ids=shift_tokens_right(inputs["labels"], 0, 2))
    assert getattr(output, OUTPUT_CACHE_FIELD) is None
    assert len(calls) == 2  # encoder and decoder both reversible
    model.eval()
    with torch.no_grad():
        output = model(input_ids=inputs["input_ids"], decoder_input_ids=inputs["labels"][:, :1])
    assert getattr(output, OUTPUT_CACHE_FIELD) is not None


def test_a_given_cache_is_always_used():
    tester = ReformerZhModelTester()
    config, inputs = tester.prepare_config_and_inputs()
    model = tester.build_model(config).eval()
    ids = torch.tensor([[2, 7, 8], [2, 9, 10]])
    with torch.no_grad():
        full = model(input_ids=inputs["input_ids"], decoder_input_ids=ids, use_cache=False).logits
        cache = model(input_ids=inputs["input_ids"], decoder_input_ids=ids[:, :2], use_cache=True)[OUTPUT_CACHE_FIELD]
        step = model(input_ids=inputs["input_ids"], decoder_input_ids=ids[:, 2:], cache=cache, use_cache=False).logits
    assert_close(step[:, 0], full[:, 2], atol=1e-5)


def test_beam_search_skips_the_identical_cross_attention_reorder_and_gives_the_same_beams(monkeypatch):
    """The cache leaves the cross-attention rows alone when beams only move within one input;
    the beams equal those of transformers' full reorder."""
    from transformers.cache_utils import DynamicCache, EncoderDecoderCache

    from modeling_reformer_zh.cache_reformer_zh import ReformerZhGenerationCache

    tester = ReformerZhModelTester()
    config, inputs = tester.prepare_config_and_inputs()
    model = tester.build_model(config).eval()
    inputs["attention_mask"][1, 10:] = 0
    kwargs = dict(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], num_beams=3,
                  num_return_sequences=3, max_new_tokens=6, eos_token_id=None, output_scores=True,
                  return_dict_in_generate=True)
    cross_reorders = []
    original = DynamicCache.reorder_cache

    def counting_reorder(self, beam_idx):
        cross_reorders.append(self)
        return original(self, beam_idx)

    with torch.no_grad():
        monkeypatch.setattr(DynamicCache, "reorder_cache", counting_reorder)
        fast = model.generate(**kwargs)
        reorders_fast = len(cross_reorders)
        monkeypatch.setattr(ReformerZhGenerationCache, "reorder_cache", EncoderDecoderCache.reorder_cache)
        cross_reorders.clear()
        full = model.generate(**kwargs)
    assert torch.equal(fast.sequences, full.sequences)
    assert_close(fast.sequences_scores, full.sequences_scores, atol=1e-6)
    # the full reorder touches both caches every step; ours only the self-attention one
    assert len(cross_reorders) == 2 * reorders_fast > 0


def test_a_reorder_across_inputs_still_reorders_the_cross_attention_cache():
    from modeling_reformer_zh.cache_reformer_zh import new_generation_cache

    cache = new_generation_cache()
    keys = torch.arange(2 * 1 * 3 * 2, dtype=torch.float32).view(2, 1, 3, 2)
    cache.cross_attention_cache.update(keys, keys + 100, 0)
    cache.self_attention_cache.update(keys[:, :, :1], keys[:, :, :1], 0)
    cache.reorder_cache(torch.tensor([1, 1]))  # row 0 takes row 1's (different) input
    assert torch.equal(cache.cross_attention_cache.layers[0].keys, keys[[1, 1]])
    cache.reorder_cache(torch.tensor([1, 0]))  # both rows now identical: any reorder is a no-op
    assert torch.equal(cache.cross_attention_cache.layers[0].keys, keys[[1, 1]])
