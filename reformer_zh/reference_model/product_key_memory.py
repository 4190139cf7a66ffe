"""Product-key memory layers (Lample et al. 2019, "Large Memory Layers with Product Keys").

A memory of N = n**2 value vectors, addressed by content at the cost of ~2n key comparisons:

    query  q = norm(W x), one per memory head, split in halves q1, q2 (pkm_dim_key / 2 each)
    keys   two sub-key tables K1, K2 of n rows; slot (i, j) has key (K1[i], K2[j]) and score
           q1.K1[i] + q2.K2[j]
    top-k  the best k slots of the n**2 products lie among the k x k pairs of the k best
           sub-keys of each half (a pair outside it is beaten by k pairs inside), so searching
           those k**2 candidates is exact
    read   softmax over the k scores, a weighted sum of the k value rows (EmbeddingBag); the
           heads' reads are summed

Only the k selected rows of the value table get a gradient per token: with
`pkm_sparse_gradients` the gradient is a sparse tensor, otherwise a dense one that is zero
elsewhere. `memory_parameter_groups` gives the values their own learning rate (and no weight
decay, which would otherwise shrink every slot at every step whether it was read or not).

The layer is position-wise, so a causal decoder can use it as it is: no token reads another.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .configuration_reformer_zh import ReformerZhConfig
from .reversible import is_recomputing


class ProductKeyMemory(nn.Module):
    def __init__(self, config: ReformerZhConfig) -> None:
        super().__init__()
        self.num_keys = config.pkm_num_keys
        self.topk = config.pkm_topk
        self.heads = config.pkm_heads
        self.half_key = config.pkm_dim_key // 2
        self.query = nn.Linear(config.hidden_size, self.heads * config.pkm_dim_key)
        if config.pkm_query_norm == "batch":
            self.query_norm = nn.BatchNorm1d(self.heads * config.pkm_dim_key)
        else:
            self.query_norm = nn.LayerNorm(self.heads * config.pkm_dim_key)
        # [heads, 2 halves, n sub-keys, dim_key / 2]
        self.sub_keys = nn.Parameter(torch.empty(self.heads, 2, self.num_keys, self.half_key))
        self.values = nn.EmbeddingBag(self.num_keys**2, config.hidden_size, mode="sum",
                                      sparse=config.pkm_sparse_gradients)
        self._slots_read: Tensor | None = None  # training-time usage, see `usage()`

    def normalized_queries(self, hidden_states: Tensor) -> Tensor:
        """[N, hidden] -> [N, heads, 2, dim_key / 2]."""
        queries = self.query(hidden_states)
        if isinstance(self.query_norm, nn.BatchNorm1d) and self.training and is_recomputing():
            # The reversible backward re-runs this forward: normalise with the batch statistics
            # again, but do not count the batch twice in the running statistics.
            queries = nn.functional.batch_norm(queries, None, None, self.query_norm.weight, self.query_norm.bias,
                                               training=True, eps=self.query_norm.eps)
        else:
            queries = self.query_norm(queries)
        return queries.view(-1, self.heads, 2, self.half_key)

    def search(self, queries: Tensor) -> tuple[Tensor, Tensor]:
        """queries [N, heads, 2, dim_key / 2] -> (scores, slots), both [N, heads, topk]."""
        half_scores = torch.einsum("nhtd,htkd->nhtk", queries, self.sub_keys)  # [N, heads, 2, n]
        best_scores, best_keys = half_scores.topk(self.topk, dim=-1)  # [N, heads, 2, k]
        candidate_scores = best_scores[:, :, 0, :, None] + best_scores[:, :, 1, None, :]  # [N, heads, k, k]
        candidate_slots = best_keys[:, :, 0, :, None] * self.num_keys + best_keys[:, :, 1, None, :]
        scores, order = candidate_scores.flatten(2).topk(self.topk, dim=-1)
        return scores, candidate_slots.flatten(2).gather(-1, order)

    def forward(self, hidden_states: Tensor) -> Tensor:
        """[b, s, hidden] -> [b, s, hidden]."""
        batch_size, seq_length, hidden_size = hidden_states.shape
        queries = self.normalized_queries(hidden_states.reshape(-1, hidden_size))
        scores, slots = self.search(queries)
        weights = torch.softmax(scores.float(), dim=-1).to(hidden_states.dtype)
        if self.training:
            self._record_reads(slots)
        read = self.values(slots.flatten(1), per_sample_weights=weights.flatten(1))
        return read.view(batch_size, seq_length, hidden_size)

    @torch.no_grad()
    def _record_reads(self, slots: Tensor) -> None:
        if self._slots_read is None or self._slots_read.device != slots.device:
            self._slots_read = torch.zeros(self.num_keys**2, dtype=torch.bool, device=slots.device)
        self._slots_read[slots.flatten()] = True

    def usage(self, reset: bool = True) -> float | None:
        """Share of the memory slots read in training since the last reset (None: nothing read).

        A memory whose usage stays low has collapsed onto a few slots: the paper's reason for
        batch-normalised queries."""
        if self._slots_read is None:
            return None
        share = self._slots_read.float().mean().item()
        if reset:
            self._slots_read = None
        return share


def product_key_memories(model: nn.Module) -> dict[str, ProductKeyMemory]:
    return {name: module for name, module in model.named_modules() if isinstance(module, ProductKeyMemory)}


def memory_usage(model: nn.Module, reset: bool = True) -> dict[str, float]:
    """{"pkm_usage/<module name>": share of slots read since the last call} for every memory layer."""
    usage = {}
    for name, memory in product_key_memories(model).items():
        share = memory.usage(reset=reset)
        if share is not None:
            usage[f"pkm_usage/{name}"] = share
    return usage


NO_DECAY_SUFFIXES = ("bias", "layer_norm.weight", "query_norm.weight", "final_layer_norm.weight")


def memory_parameter_groups(
    model: nn.Module, learning_rate: float, memory_learning_rate: float, weight_decay: float = 0.0
) -> list[dict]:
    """Optimizer parameter groups: the memory values at `memory_learning_rate` without weight
    decay, everything else at `learning_rate`, with weight decay except biases and norms."""
    memory_values = {id(memory.values.weight) for memory in product_key_memories(model).values()}
    groups = {"decay": [], "no_decay": [], "memory": []}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        if id(parameter) in memory_values:
            groups["memory"].append(parameter)
        elif name.endswith(NO_DECAY_SUFFIXES) or parameter.dim() == 1:
            groups["no_decay"].append(parameter)
        else:
            groups["decay"].append(parameter)
    return [
        {"params": groups["decay"], "lr": learning_rate, "weight_decay": weight_decay},
        {"params": groups["no_decay"], "lr": learning_rate, "weight_decay": 0.0},
        {"params": groups["memory"], "lr": memory_learning_rate, "weight_decay": 0.0},
    ]


__all__ = ["ProductKeyMemory", "memory_parameter_groups", "memory_usage"]
