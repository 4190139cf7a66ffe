"""Persistent memory (Sukhbaatar et al. 2019, "Augmenting Self-attention with Persistent
Memory"; config `num_mem_kv`, 0 = off): learned key/value slots every self-attention query reads
beside the real keys. Built by the self-attention layers (`from_config`); joined into each
query's softmax by `attention_utils.masked_attention`."""

from __future__ import annotations

import torch
from torch import Tensor


class PersistentMemory(torch.nn.Module):
    """Learned key/value vectors every query of a self-attention layer may read (Sukhbaatar et
    al. 2019, "Augmenting Self-attention with Persistent Memory"): [h, num_mem_kv, d] each.

    They join each query's softmax next to its real keys (see `masked_attention`), are never
    masked, and carry no position, so a causal decoder reads them at every step.
    """

    def __init__(self, num_heads: int, num_slots: int, head_size: int) -> None:
        super().__init__()
        self.keys = torch.nn.Parameter(torch.empty(num_heads, num_slots, head_size))
        self.values = torch.nn.Parameter(torch.empty(num_heads, num_slots, head_size))

    @classmethod
    def from_config(cls, config) -> "PersistentMemory | None":
        """The memory of one self-attention layer, or None when `num_mem_kv` is 0."""
        if not config.num_mem_kv:
            return None
        return cls(config.num_attention_heads, config.num_mem_kv, config.attention_head_size)

    def for_query(self, query: Tensor) -> tuple[Tensor, Tensor]:
        """Keys and values shaped to broadcast against query [b, h, ..., q, d]."""
        shape = (1, self.keys.shape[0]) + (1,) * (query.dim() - 4) + tuple(self.keys.shape[1:])
        return self.keys.to(query.dtype).view(shape), self.values.to(query.dtype).view(shape)
