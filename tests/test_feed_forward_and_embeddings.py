import pytest
import torch

from modeling_reformer_zh.embeddings import ReformerZhAxialPositionEmbeddings, ReformerZhEmbeddings
from modeling_reformer_zh.chunked_feed_forward import ReformerZhFeedForward
from utils import ReformerZhModelTester, assert_close


def chunked_and_whole_steps(reversible: bool, chunk_size: int = 3):
    """Loss and gradients of one training step with and without `chunk_size_feed_forward`."""
    results = []
    for size in (0, chunk_size):
        tester = ReformerZhModelTester()
        config, inputs = tester.prepare_config_and_inputs(chunk_size_feed_forward=size, reversible=reversible)
        assert config.chunk_size_feed_forward == size
        model = tester.build_model(config, dtype=torch.float64).train()
        loss = model(**inputs).loss
        loss.backward()
        results.append((loss, {name: p.grad for name, p in model.named_parameters()}))
    return results


@pytest.mark.parametrize("reversible", [True, False])
def test_chunked_feed_forward_equals_unchunked(reversible):
    """Chunks of 3 over 16 source and 7 target positions: uneven last chunk in both stacks."""
    (whole_loss, whole_grads), (chunked_loss, chunked_grads) = chunked_and_whole_steps(reversible)
    assert_close(chunked_loss, whole_loss, atol=1e-12)
    for name, grad in whole_grads.items():
        assert_close(chunked_grads[name], grad, atol=1e-10, msg=name)


def test_reversible_backward_recomputes_the_feed_forward_one_chunk_at_a_time():
    """The step itself (not only the feed-forward inside it) is called per chunk in the
    backward, so each chunk's graph is built and freed before the next."""
    from modeling_reformer_zh.modeling_reformer_zh import ReformerZhFeedForwardStep
    from modeling_reformer_zh.reversible import is_recomputing

    tester = ReformerZhModelTester()
    config, inputs = tester.prepare_config_and_inputs(chunk_size_feed_forward=3)
    model = tester.build_model(config).train()
    lengths = {"forward": [], "recompute": []}
    for module in model.modules():
        if isinstance(module, ReformerZhFeedForwardStep):
            module.register_forward_hook(
                lambda m, args, out: lengths["recompute" if is_recomputing() else "forward"].append(args[0].shape[1])
            )
    model(**inputs).loss.backward()
    assert lengths["recompute"] and max(lengths["recompute"]) == 3, lengths
    assert max(lengths["forward"]) == 16  # the forward runs the step on the whole sequence


def test_axial_positions_factor_the_table():
    config = ReformerZhModelTester().get_config()
    embeddings = ReformerZhAxialPositionEmbeddings(config)
    torch.nn.init.normal_(embeddings.rows)
    torch.nn.init.normal_(embeddings.columns)
    positions = torch.tensor([0, 1, 9, 63])
    table = embeddings(positions)
    for row, position in zip(table, positions.tolist()):
        assert_close(row[:8], embeddings.rows[position // 8])
        assert_close(row[8:], embeddings.columns[position % 8])
    # every length up to max_position_embeddings, not only multiples of the axial shape
    assert embeddings(torch.arange(37)).shape == (37, 32)


def test_positions_past_the_table_fail_with_the_fix():
    config = ReformerZhModelTester().get_config()
    embeddings = ReformerZhEmbeddings(config, torch.nn.Embedding(99, 32))
    with pytest.raises(ValueError, match="max_position_embeddings.*truncat"):
        embeddings(torch.zeros(1, 65, dtype=torch.long))


@pytest.mark.parametrize("axial", [True, False])
def test_scale_embedding_brings_tokens_and_positions_to_unit_scale_and_logits_too(axial):
    """scale_embedding: table at std hidden^-0.5, looked-up tokens times sqrt(hidden), positions
    at std 1, so the stack input is unit-scale and the tied head's first logits are too."""
    tester = ReformerZhModelTester(hidden_size=64, axial_pos_embds=axial, axial_pos_embds_dim=[16, 48],
                                   vocab_size=2000, max_position_embeddings=64)
    scaled = tester.build_model(tester.get_config(scale_embedding=True))
    plain = tester.build_model(tester.get_config(scale_embedding=False))
    ids = torch.randint(5, 2000, (4, 64), generator=torch.Generator().manual_seed(0))
    for model, token_std, position_std in ((scaled, 1.0, 1.0), (plain, 0.02, 0.02)):
        embeddings = model.model.encoder.embeddings
        positions = embeddings.position_embeddings(torch.arange(64))
        tokens = embeddings(input_ids=ids) - positions
        assert_close(tokens, model.model.shared(ids) * (8.0 if model is scaled else 1.0), atol=1e-5)
        assert abs(tokens.std().item() - token_std) < 0.1 * token_std
        assert abs(positions.std().item() - position_std) < 0.15 * position_std
    hidden = torch.nn.functional.layer_norm(torch.randn(4, 64, 64), (64,))
    assert 0.8 < scaled.lm_head(hidden).std().item() < 1.2  # the tied head: unit-scale logits at init


@pytest.mark.parametrize("axial", [True, False])
def test_resize_position_embeddings_keeps_trained_positions_and_reaches_new_ones(axial, tmp_path):
    """A headline checkpoint fine-tuned on whole documents: inputs that fit the old table give
    the same logits after growing it, longer inputs then run, and the grown table survives
    save/load; shrinking is refused."""
    from modeling_reformer_zh import ReformerZhForConditionalGeneration

    tester = ReformerZhModelTester()
    config, inputs = tester.prepare_config_and_inputs(axial_pos_embds=axial)
    model = tester.build_model(config).eval()
    before = model(**inputs).logits
    long_inputs = {"input_ids": torch.randint(5, 99, (1, 96)), "labels": inputs["labels"][:1]}
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model(**long_inputs)

    model.resize_position_embeddings(128)
    assert_close(model(**inputs).logits, before, atol=0)
    assert model(**long_inputs).logits.shape[1] == inputs["labels"].shape[1]
    encoder_positions, decoder_positions = model.get_position_embeddings()
    assert encoder_positions is not decoder_positions
    if axial:
        assert model.config.axial_pos_shape == [16, 8] and encoder_positions.rows.shape[0] == 16
    assert model.config.max_position_embeddings == 128

    model.save_pretrained(tmp_path)
    loaded = ReformerZhForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert_close(loaded(**long_inputs).logits, model(**long_inputs).logits, atol=0)
    with pytest.raises(ValueError, match="shrink"):
        model.resize_position_embeddings(64)


def test_encoder_position_offset_in_training_draws_offsets_across_the_table_and_leaves_evaluation_alone():
    """Training windows of 16 tokens on a 64-position table: with the option each training batch
    adds the position rows of one window [o, o + 16) with o anywhere in [0, 48]; evaluation and the
    decoder start at 0."""
    tester = ReformerZhModelTester()
    config = tester.get_config(encoder_position_offset_in_training=True, hidden_dropout_prob=0.0)
    model = tester.build_model(config)
    encoder, decoder = model.model.encoder.embeddings, model.model.decoder.embeddings
    ids = torch.randint(5, 99, (2, 16))

    def offset_of(stack_embeddings) -> int:
        table = stack_embeddings.position_embeddings(torch.arange(64))
        added = stack_embeddings(input_ids=ids) - stack_embeddings.token_embeddings(ids)
        matches = [o for o in range(64 - 16 + 1) if torch.allclose(added, table[o : o + 16].expand_as(added))]
        assert len(matches) == 1, matches
        return matches[0]

    model.train()
    torch.manual_seed(0)
    offsets = {offset_of(encoder) for _ in range(40)}
    assert len(offsets) > 10 and max(offsets) > 32  # uniform over the 49 offsets, not stuck near 0
    assert offset_of(decoder) == 0
    model.eval()
    assert offset_of(encoder) == 0
    plain = tester.build_model(tester.get_config(hidden_dropout_prob=0.0)).train()
    assert offset_of(plain.model.encoder.embeddings) == 0
