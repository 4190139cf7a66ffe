"""Label smoothing on a model whose logits are already log-probabilities.

transformers' `LabelSmoother` runs log_softmax over the logits. A copy-attention model returns
log P of its mixture (modeling_reformer_zh/copy_attention.py), normalised already: log_softmax
of it is itself, to rounding, and costs a pass over batch x target x vocabulary floats each way.
This smoother takes the logits as they are and is otherwise `LabelSmoother`'s loss, term by term.
"""

from __future__ import annotations

import torch
from transformers.trainer_pt_utils import LabelSmoother


class LogProbabilityLabelSmoother(LabelSmoother):
    """(1 - eps) * NLL + eps * mean over the vocabulary of -log P, over non-ignored tokens."""

    def __call__(self, model_output, labels, shift_labels=False, num_items_in_batch=None):
        log_probs = model_output["logits"] if isinstance(model_output, dict) else model_output[0]
        if shift_labels:
            log_probs, labels = log_probs[..., :-1, :], labels[..., 1:]
        labels = labels.unsqueeze(-1) if labels.dim() == log_probs.dim() - 1 else labels
        padding = labels.eq(self.ignore_index)
        # negated after the gather and the sum, on [b, t, 1]: negating the [b, t, V] log-probabilities
        # first costs a pass over them each way
        nll = -log_probs.gather(dim=-1, index=labels.clamp_min(0)).masked_fill(padding, 0.0)
        smoothed = -log_probs.sum(dim=-1, keepdim=True, dtype=torch.float32).masked_fill(padding, 0.0)
        if num_items_in_batch is None:
            denominator = padding.numel() - padding.long().sum()
        else:
            denominator = num_items_in_batch.to(nll.device) if torch.is_tensor(num_items_in_batch) else num_items_in_batch
        return (1 - self.epsilon) * nll.sum() / denominator + self.epsilon * smoothed.sum() / (
            denominator * log_probs.shape[-1])
