import pytest
import torch

from modeling_reformer_zh.embeddings import ReformerZhAxialPositionEmbeddings, ReformerZhEmbeddings
from modeling_reformer_zh.feed_forward import ReformerZhFeedForward
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
