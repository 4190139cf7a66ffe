"""The generation cache: transformers' `EncoderDecoderCache` of two `DynamicCache`s.

Self-attention layers append their new keys and values (for LSH layers: the shared-QK vectors)
to the self-attention cache; cross-attention layers store the projected encoder keys and values
once, at the first step, in the cross-attention cache. `generate()` creates no default cache for
classes whose name contains "reformer" (`_supports_default_dynamic_cache`), so the forward
builds one on the first step and returns it; `generate` passes it back at every later step
and calls `reorder_cache` for beam search.
"""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicCache, EncoderDecoderCache
from transformers.modeling_outputs import Seq2SeqLMOutput

# transformers renamed the output field `past_key_values` to `cache` during v5.
OUTPUT_CACHE_FIELD = "cache" if "cache" in Seq2SeqLMOutput.__dataclass_fields__ else "past_key_values"


class ReformerZhGenerationCache(EncoderDecoderCache):
    """`EncoderDecoderCache` whose beam-search reorder skips the cross-attention cache when it
    would not change it.

    Beam search moves hypotheses only among the beams of one input, and every beam of one input
    holds the same encoder keys and values (generate() repeats them per beam). transformers'
    reorder still copies them every step: layers x 2 x [beams, heads, source, head dim], about
    800 MB per generated token for 4 beams over 64K tokens, more than the decoding itself.
    Which rows are identical is established once, exactly (byte equality of every layer's
    keys and values between neighbouring rows); a reorder that only maps rows onto identical
    rows then leaves the cross-attention cache alone, and any other reorder is applied in full.
    """

    def __init__(self, *caches) -> None:
        super().__init__(*caches)
        self._source_rows: torch.Tensor | None = None

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        self.self_attention_cache.reorder_cache(beam_idx)
        rows = self._identical_rows()
        if rows is not None and torch.equal(rows[beam_idx.to(rows.device)], rows):
            return
        self.cross_attention_cache.reorder_cache(beam_idx)
        self._source_rows = None

    def _identical_rows(self) -> torch.Tensor | None:
        """[batch] id of each row's group of byte-identical cross-attention rows (neighbours)."""
        layers = [layer for layer in self.cross_attention_cache.layers if getattr(layer, "keys", None) is not None
                  and layer.keys.numel()]
        if not layers:
            return None
        if self._source_rows is None:
            batch_size = layers[0].keys.shape[0]
            rows = torch.arange(batch_size, device=layers[0].keys.device)
            for row in range(1, batch_size):
                if all(torch.equal(tensor[row], tensor[row - 1]) for layer in layers
                       for tensor in (layer.keys, layer.values)):
                    rows[row] = rows[row - 1]
            self._source_rows = rows
        return self._source_rows

    def batch_repeat_interleave(self, repeats: int) -> None:
        super().batch_repeat_interleave(repeats)
        self._source_rows = None

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        super().batch_select_indices(indices)
        self._source_rows = None


def new_generation_cache() -> EncoderDecoderCache:
    return ReformerZhGenerationCache(DynamicCache(), DynamicCache())
