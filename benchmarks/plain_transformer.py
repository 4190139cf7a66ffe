"""A plain pre-LN `torch.nn.Transformer` seq2seq: the reference that tells recipe from model.

If this model reads its input in `quality.py`'s loop and ours does not, the cause is in our
model; if it collapses too, the cause is in the loop, the data or the decoding. It mirrors
the probe of issue 12: pre-LayerNorm layers, sinusoidal positions, tied embeddings drawn at
std d^-0.5 and scaled by sqrt(d) on input (so tokens enter at unit scale and the tied output
layer starts with logits of unit scale), greedy decoding without a cache.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch
from torch import Tensor, nn


def sinusoids(length: int, width: int) -> Tensor:
    position = torch.arange(length, dtype=torch.float32)[:, None]
    frequency = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(10000.0) / width))
    table = torch.zeros(length, width)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)
    return table


class PlainTransformer(nn.Module):
    def __init__(self, vocab_size: int, hidden: int, encoder_layers: int, decoder_layers: int, dropout: float,
                 pad: int, bos: int, eos: int, max_length: int = 512) -> None:
        super().__init__()
        self.pad, self.bos, self.eos = pad, bos, eos
        self.embedding = nn.Embedding(vocab_size, hidden, padding_idx=pad)
        nn.init.normal_(self.embedding.weight, std=hidden**-0.5)
        self.register_buffer("positions", sinusoids(max_length, hidden), persistent=False)
        self.transformer = nn.Transformer(
            d_model=hidden, nhead=4, num_encoder_layers=encoder_layers, num_decoder_layers=decoder_layers,
            dim_feedforward=4 * hidden, dropout=dropout, batch_first=True, norm_first=True,
        )
        self.dropout = nn.Dropout(dropout)
        self.scale = hidden**0.5

    def embed(self, ids: Tensor) -> Tensor:
        return self.dropout(self.embedding(ids) * self.scale + self.positions[: ids.shape[1]])

    def encode(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return self.transformer.encoder(self.embed(input_ids), src_key_padding_mask=~attention_mask.bool())

    def decode(self, memory: Tensor, attention_mask: Tensor, decoder_input_ids: Tensor) -> Tensor:
        causal = nn.Transformer.generate_square_subsequent_mask(decoder_input_ids.shape[1], dtype=torch.bool)
        hidden = self.transformer.decoder(self.embed(decoder_input_ids), memory, tgt_mask=causal,
                                          memory_key_padding_mask=~attention_mask.bool(), tgt_is_causal=True)
        return hidden @ self.embedding.weight.T

    def forward(self, input_ids: Tensor, attention_mask: Tensor, labels: Tensor) -> SimpleNamespace:
        decoder_input_ids = torch.cat([torch.full_like(labels[:, :1], self.bos), labels[:, :-1]], dim=1)
        decoder_input_ids = decoder_input_ids.masked_fill(decoder_input_ids == -100, self.pad)
        return SimpleNamespace(logits=self.decode(self.encode(input_ids, attention_mask), attention_mask,
                                                  decoder_input_ids))

    @torch.no_grad()
    def generate(self, input_ids: Tensor, attention_mask: Tensor, max_new_tokens: int, **_) -> Tensor:
        memory = self.encode(input_ids, attention_mask)
        generated = torch.full_like(input_ids[:, :1], self.bos)
        finished = torch.zeros(input_ids.shape[0], dtype=torch.bool)
        for _ in range(max_new_tokens):
            next_token = self.decode(memory, attention_mask, generated)[:, -1].argmax(-1)
            next_token = next_token.masked_fill(finished, self.pad)
            generated = torch.cat([generated, next_token[:, None]], dim=1)
            finished |= next_token == self.eos
            if finished.all():
                break
        return generated
