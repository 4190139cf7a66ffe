"""Growing a trained LED's encoder positions, the way the LED paper does (Beltagy et al. 2020, §5).

LED reads a long input through learned absolute positions, one row per position
(`led.encoder.embed_positions`, positions counted from 0). A checkpoint trained on short inputs
has rows only as far as its `max_encoder_position_embeddings`; "to support longer input, we
extend the position embedding [...] by copying [the] position embeddings multiple times". The
long-input side-by-side (issue 13, `xwlb-program-led`) starts from an LED trained on 256-character
stories and fine-tunes it on whole evenings of up to 16K characters, so its table is grown this way
before the fine-tune: row p of the grown table is row p mod n of the trained one, so every new
position starts as a trained one and the first n are unchanged.
"""

from __future__ import annotations

import torch

LED_GROWABLE_KEY = "max_encoder_position_embeddings"


def grow_led_encoder_positions(model, positions: int) -> None:
    """Grow `model`'s encoder position table to `positions` rows by tiling the trained rows.

    Args:
        model: an `LEDForConditionalGeneration` (or `LEDModel`); changed in place, its config too.
        positions: the new `max_encoder_position_embeddings`.

    Raises:
        ValueError: `positions` is not larger than the table, or the model is not an LED.
    """
    if getattr(model.config, "model_type", None) != "led":
        raise ValueError(f"grow_led_encoder_positions grows an LED's positions; this is a "
                         f"{getattr(model.config, 'model_type', type(model).__name__)} model.")
    encoder = model.get_encoder()
    table = encoder.embed_positions
    trained = table.weight.shape[0]
    if positions <= trained:
        raise ValueError(f"{LED_GROWABLE_KEY}={positions} does not grow the table of {trained} positions; "
                         "positions only grow (the trained rows are kept), so give a larger number.")
    repeats = -(-positions // trained)  # ceil: the last copy is cut to size
    grown = type(table)(positions, table.embedding_dim).to(device=table.weight.device, dtype=table.weight.dtype)
    with torch.no_grad():
        grown.weight.copy_(table.weight.repeat(repeats, 1)[:positions])
    encoder.embed_positions = grown
    encoder.max_source_positions = positions
    model.config.max_encoder_position_embeddings = positions
