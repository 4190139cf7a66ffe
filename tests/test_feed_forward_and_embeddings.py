import pytest
import torch

from modeling_reformer_zh.embeddings import ReformerZhAxialPositionEmbeddings, ReformerZhEmbeddings
from modeling_reformer_zh.feed_forward import ReformerZhFeedForward
from utils import ReformerZhModelTester, assert_close


def test_chunked_feed_forward_equals_unchunked():
    tester = ReformerZhModelTester()
    torch.manual_seed(0)
    whole = ReformerZhFeedForward(tester.get_config(chunk_size_feed_forward=0)).double()
    chunked = ReformerZhFeedForward(tester.get_config(chunk_size_feed_forward=3)).double()
    chunked.load_state_dict(whole.state_dict())
    hidden = torch.randn(2, 11, 32, dtype=torch.float64, requires_grad=True)
    expected = whole(hidden)
    actual = chunked(hidden)
    assert_close(actual, expected, atol=1e-12)
    (grad_whole,) = torch.autograd.grad(expected.sum(), hidden)
    (grad_chunked,) = torch.autograd.grad(actual.sum(), hidden)
    assert_close(grad_chunked, grad_whole, atol=1e-12)


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
