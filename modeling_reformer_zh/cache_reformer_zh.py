"""The generation cache: transformers' `EncoderDecoderCache` of two `DynamicCache`s.

Self-attention layers append their new keys and values (for LSH layers: the shared-QK vectors)
to the self-attention cache; cross-attention layers store the projected encoder keys and values
once, at the first step, in the cross-attention cache. `generate()` creates no default cache for
classes whose name contains "reformer" (`_supports_default_dynamic_cache`), so the forward
builds one on the first step and returns it; `generate` passes it back at every later step
and calls `reorder_cache` for beam search.
"""

from __future__ import annotations

from transformers.cache_utils import DynamicCache, EncoderDecoderCache
from transformers.modeling_outputs import Seq2SeqLMOutput

# transformers renamed the output field `past_key_values` to `cache` during v5.
OUTPUT_CACHE_FIELD = "cache" if "cache" in Seq2SeqLMOutput.__dataclass_fields__ else "past_key_values"


def new_generation_cache() -> EncoderDecoderCache:
    return EncoderDecoderCache(DynamicCache(), DynamicCache())
