"""The reversible backward against plain autograd through the same function."""

from __future__ import annotations

import pytest
import torch

from modeling_reformer_zh.modeling_reformer_zh import ReformerZhDecoder
from modeling_reformer_zh.reversible import ReversibleFunction, StepContext, _ReversibleRun
from utils import ReformerZhModelTester, assert_close

LSH_EVERYWHERE = dict(
    encoder_attn_layers=["lsh", "local", "full"],
    decoder_attn_layers=["full", "local", "lsh"],
    num_hashes=2,
    hash_seed=None,  # rotations drawn from torch's generator: the backward must replay them
    full_attn_threshold=0,
)


def training_step(reversible: bool, seed: int, **overrides):
    """Loss, logits and parameter gradients of one step, from fixed weights and a fixed generator."""
    tester = ReformerZhModelTester(**LSH_EVERYWHERE)
    config, inputs = tester.prepare_config_and_inputs(reversible=reversible, **overrides)
    inputs["attention_mask"][1, 12:] = 0
    model = tester.build_model(config, seed=0, dtype=torch.float64).train()
    torch.manual_seed(seed)
    output = model(**inputs)
    output.loss.backward()
    grads = {name: parameter.grad for name, parameter in model.named_parameters()}
    return output, grads, torch.get_rng_state()


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_reversible_matches_plain_outputs_and_gradients(dropout):
    """dropout 0: the same function; dropout > 0: the replayed masks equal the forward's."""
    overrides = dict(hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    plain, plain_grads, plain_rng = training_step(False, seed=3, **overrides)
    reversible, reversible_grads, reversible_rng = training_step(True, seed=3, **overrides)
    assert_close(reversible.logits, plain.logits, atol=1e-10)
    assert_close(reversible.loss, plain.loss, atol=1e-10)
    assert plain_grads.keys() == reversible_grads.keys()
    for name, grad in plain_grads.items():
        assert grad is not None and reversible_grads[name] is not None, name
        assert_close(reversible_grads[name], grad, atol=1e-8, msg=name)
    # the backward replays the generator inside fork_rng: the global stream is untouched
    assert torch.equal(reversible_rng, plain_rng)


def test_dropout_actually_changes_the_result():
    """Guard for the test above: with dropout the two seeds give different losses."""
    overrides = dict(hidden_dropout_prob=0.2, attention_probs_dropout_prob=0.2)
    first, _, _ = training_step(True, seed=3, **overrides)
    second, _, _ = training_step(True, seed=4, **overrides)
    assert (first.loss - second.loss).abs() > 1e-6


@pytest.mark.slow
def test_gradcheck_reversible_function():
    tester = ReformerZhModelTester(
        hidden_size=8,
        num_attention_heads=1,
        attention_head_size=4,
        feed_forward_size=8,
        axial_pos_embds_dim=[4, 4],
        decoder_attn_layers=["lsh"],
        hash_seed=None,
        full_attn_threshold=0,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
    )
    config = tester.get_config()
    torch.manual_seed(0)
    decoder = ReformerZhDecoder(config, torch.nn.Embedding(99, 8)).double().train()
    steps = decoder.steps()
    hidden = torch.randn(1, 8, 8, dtype=torch.float64, requires_grad=True)
    other = torch.randn(1, 8, 8, dtype=torch.float64, requires_grad=True)
    encoder_hidden = torch.randn(1, 5, 8, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 1, 0]], dtype=torch.bool)
    context = StepContext(encoder_attention_mask=mask)
    parameters = [p for step in steps for p in step.parameters()]

    def function(a, b, encoder_hidden_states, *params):
        torch.manual_seed(0)  # the same dropout masks and rotations at every evaluation
        run = _ReversibleRun(steps, context)
        return ReversibleFunction.apply(run, a, b, encoder_hidden_states, *params)

    assert torch.autograd.gradcheck(function, (hidden, other, encoder_hidden, *parameters), eps=1e-6, atol=1e-5)


def test_encoder_runs_backward_once_per_step():
    """The decoder sums the encoder-output gradient over its layers before it enters the encoder."""
    tester = ReformerZhModelTester(decoder_attn_layers=["full", "full", "full"])
    config, inputs = tester.prepare_config_and_inputs()
    model = tester.build_model(config).train()
    calls = []
    model.model.encoder.layers[0].feed_forward.register_forward_hook(lambda *args: calls.append(1))
    model(**inputs).loss.backward()
    assert len(calls) == 2  # one forward, one recomputation


def saved_bytes(model, inputs) -> int:
    total = 0

    def pack(tensor):
        nonlocal total
        total += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(**inputs).loss
    return total


def test_reversible_activation_memory_does_not_grow_with_depth():
    def depth_cost(reversible):
        costs = []
        for depth in (2, 8):
            tester = ReformerZhModelTester(encoder_attn_layers=["local", "lsh"] * (depth // 2))
            config, inputs = tester.prepare_config_and_inputs(reversible=reversible)
            costs.append(saved_bytes(tester.build_model(config).train(), inputs))
        return costs[1] - costs[0]

    plain_growth = depth_cost(False)
    reversible_growth = depth_cost(True)
    assert plain_growth > 0
    assert reversible_growth < 0.05 * plain_growth, (reversible_growth, plain_growth)


def test_one_state_dict_loads_into_both_twins():
    tester = ReformerZhModelTester()
    reversible = tester.build_model(tester.get_config(reversible=True))
    plain = tester.build_model(tester.get_config(reversible=False), seed=1)
    plain.load_state_dict(reversible.state_dict())  # strict: same names
    _, inputs = tester.prepare_config_and_inputs()
    with torch.no_grad():
        assert_close(plain.eval()(**inputs).logits, reversible.eval()(**inputs).logits, atol=1e-6)


def test_chunked_feed_forward_replays_dropout_chunk_by_chunk():
    """The chunked recompute draws each chunk's dropout masks in the forward's order."""
    overrides = dict(hidden_dropout_prob=0.2, attention_probs_dropout_prob=0.2, chunk_size_feed_forward=3)
    plain, plain_grads, _ = training_step(False, seed=3, **overrides)
    reversible, reversible_grads, _ = training_step(True, seed=3, **overrides)
    assert_close(reversible.loss, plain.loss, atol=1e-10)
    for name, grad in plain_grads.items():
        assert_close(reversible_grads[name], grad, atol=1e-8, msg=name)


def record_lsh_buckets(monkeypatch):
    """Patch lsh_attention to record the buckets it is given, in the forward and in the recompute."""
    from modeling_reformer_zh import attention_lsh
    from modeling_reformer_zh.reversible import is_recomputing

    recorded = {"forward": [], "recompute": []}
    original = attention_lsh.lsh_attention

    def recording(*args, buckets, **kwargs):
        recorded["recompute" if is_recomputing() else "forward"].append(buckets.clone())
        return original(*args, buckets=buckets, **kwargs)

    monkeypatch.setattr(attention_lsh, "lsh_attention", recording)
    return recorded


def test_recompute_uses_the_forward_buckets_under_bf16_autocast(monkeypatch):
    """bf16 reconstructions differ from the forward's inputs in the last bits; with large
    weights, re-hashing them would move vectors to other buckets."""
    recorded = record_lsh_buckets(monkeypatch)
    # re-hashing would move 1,756 of the bottom layer's 2,048 buckets here (measured)
    tester = ReformerZhModelTester(encoder_attn_layers=["lsh"] * 8, num_hashes=2, hash_seed=None,
                                   initializer_range=0.3, full_attn_threshold=0, hidden_size=64,
                                   axial_pos_embds_dim=[8, 56], axial_pos_shape=[16, 16], max_position_embeddings=256)
    tester.seq_length = 256
    config, inputs = tester.prepare_config_and_inputs()
    model = tester.build_model(config).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(**inputs).loss
    loss.backward()
    assert len(recorded["forward"]) == len(recorded["recompute"]) == 8
    for layer, (forward, recompute) in enumerate(zip(recorded["forward"], reversed(recorded["recompute"]))):
        assert torch.equal(forward, recompute), f"layer {layer}: {(forward != recompute).sum()} buckets differ"


def test_routing_is_decided_once_per_stack(monkeypatch):
    """One LSHRouting per stack and forward (one host sync), none rebuilt by the recompute."""
    from modeling_reformer_zh import attention_lsh

    builds = []
    original = attention_lsh.LSHRouting.build.__func__
    monkeypatch.setattr(attention_lsh.LSHRouting, "build",
                        classmethod(lambda cls, *a, **k: builds.append(1) or original(cls, *a, **k)))
    tester = ReformerZhModelTester(**LSH_EVERYWHERE)
    config, inputs = tester.prepare_config_and_inputs()
    inputs["attention_mask"][1, 12:] = 0
    tester.build_model(config).train()(**inputs).loss.backward()
    assert len(builds) == 2  # encoder and decoder, each with one LSH layer


def test_recomputing_flag_is_per_thread():
    import threading

    from modeling_reformer_zh.reversible import is_recomputing, recomputing

    seen = []
    with recomputing():
        thread = threading.Thread(target=lambda: seen.append(is_recomputing()))
        thread.start()
        thread.join()
        assert is_recomputing()
    assert seen == [False] and not is_recomputing()


def test_replay_on_a_device_type_without_generator_state_fails_clearly(monkeypatch):
    from modeling_reformer_zh.reversible import GeneratorState

    class NoGenerator:  # a device module without get_rng_state / set_rng_state
        pass

    monkeypatch.setattr(torch, "get_device_module", lambda device_type: NoGenerator())
    with pytest.raises(RuntimeError, match="cannot replay.*'meta'.*reversible=False"):
        GeneratorState([torch.device("meta")])
