"""Reversible vs plain-autograd gradients under bf16 autocast (issue 11, bug 3).

The reversible backward recomputes each step from reconstructed inputs. In bf16 those differ
from the forward's in the last bits; an LSH layer that hashed them again would differentiate
other buckets than the forward used, i.e. another function. This measures how far the
reversible gradient is from the plain twin's (same weights, same batch, same generator):

- worst tensor: max over parameter tensors of |g_rev - g_plain| / |g_plain| (L2 norms), over
  the tensors whose gradient norm is at least 1e-3 of the largest one's;
- whole vector: the same over all parameters concatenated;
- buckets moved: bottom LSH layer, forward vs recompute (0 when the forward's are reused);
- plain vs fp32: the plain twin's bf16 gradient against its fp32 one (whole vector), the size
  of bf16's own error for scale.

at initializer_range 0.02 and 0.3, and after some optimizer steps from 0.02; fp32 for scale.

    python benchmarks/bf16_gradients.py --out benchmarks/results/bf16_gradients.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from modeling_reformer_zh import ReformerZhConfig, ReformerZhForConditionalGeneration  # noqa: E402
from modeling_reformer_zh import attention_lsh  # noqa: E402
from modeling_reformer_zh.reversible import is_recomputing  # noqa: E402


def make_config(initializer_range: float, reversible: bool) -> ReformerZhConfig:
    return ReformerZhConfig(
        vocab_size=99, hidden_size=64, num_attention_heads=2, attention_head_size=16, feed_forward_size=128,
        encoder_attn_layers=["lsh"] * 8, decoder_attn_layers=["full", "full"], num_hashes=2, hash_seed=None,
        lsh_attn_chunk_length=16, axial_pos_shape=[16, 16], axial_pos_embds_dim=[16, 48], max_position_embeddings=256,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, initializer_range=initializer_range,
        reversible=reversible,
    )


def batch(seed: int) -> dict:
    generator = torch.Generator().manual_seed(seed)
    return {"input_ids": torch.randint(5, 99, (2, 256), generator=generator),
            "labels": torch.randint(5, 99, (2, 16), generator=generator)}


class BucketRecorder:
    """Counts bottom-layer buckets that differ between the forward and the recomputation."""

    def __init__(self) -> None:
        self.forward, self.recompute = [], []
        original = attention_lsh.lsh_attention

        def recording(*args, buckets, **kwargs):
            (self.recompute if is_recomputing() else self.forward).append(buckets.clone())
            return original(*args, buckets=buckets, **kwargs)

        attention_lsh.lsh_attention = recording

    def moved(self) -> int | None:
        if not self.forward or not self.recompute:
            return None
        return int((self.forward[0] != self.recompute[-1]).sum())


def gradients(model, inputs, dtype, seed: int) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
        loss = model(**inputs).loss
    loss.backward()
    return {name: p.grad.detach().double().clone() for name, p in model.named_parameters() if p.grad is not None}


def compare(state: dict, initializer_range: float, dtype, recorder: BucketRecorder, seed: int) -> dict:
    models = {}
    for reversible in (True, False):
        torch.manual_seed(0)
        model = ReformerZhForConditionalGeneration(make_config(initializer_range, reversible)).train()
        if state is not None:
            model.load_state_dict(state)
        models[reversible] = model
    recorder.forward.clear()
    recorder.recompute.clear()
    inputs = batch(seed)
    reversible_grads = gradients(models[True], inputs, dtype, seed)
    moved = recorder.moved()
    plain_grads = gradients(models[False], inputs, dtype, seed)
    # the scale of bf16's own error: the plain twin in bf16 against the plain twin in fp32
    fp32_grads = gradients(models[False], inputs, torch.float32, seed)
    precision_whole = (torch.cat([(plain_grads[n] - g).flatten() for n, g in fp32_grads.items()]).norm()
                       / torch.cat([g.flatten() for g in fp32_grads.values()]).norm()).item()
    relative = {name: ((reversible_grads[name] - g).norm() / g.norm().clamp_min(1e-30)).item() for name, g in plain_grads.items()}
    whole = (torch.cat([(reversible_grads[n] - g).flatten() for n, g in plain_grads.items()]).norm()
             / torch.cat([g.flatten() for g in plain_grads.values()]).norm()).item()
    # Tensors whose gradient is tiny (saturated attention after training) have meaningless
    # relative errors; they are left out of the worst tensor and counted.
    norms = {name: g.norm().item() for name, g in plain_grads.items()}
    considered = [name for name in relative if norms[name] >= 1e-3 * max(norms.values())]
    worst = max(considered, key=relative.get)
    return {"worst_tensor_relative": relative[worst], "worst_tensor": worst, "whole_vector_relative": whole,
            "tiny_gradient_tensors_left_out": len(relative) - len(considered),
            "plain_vs_fp32_whole_vector_relative": precision_whole, "bottom_layer_buckets_moved": moved, "buckets_per_layer": 2 * 2 * 256}


def trained_state(steps: int) -> dict:
    """Weights after `steps` Adam steps (bf16 autocast, plain twin) from initializer_range 0.02."""
    torch.manual_seed(0)
    model = ReformerZhForConditionalGeneration(make_config(0.02, reversible=False)).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(steps):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(**batch(100 + step)).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.state_dict()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_steps", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=3, help="batches compared per setting (the worst is kept)")
    parser.add_argument("--out", default=None)
    parser.add_argument("--label", default="", help="recorded with the results (e.g. the commit measured)")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    recorder = BucketRecorder()
    settings = [("init 0.02", 0.02, None), ("init 0.3", 0.3, None),
                (f"after {args.train_steps} AdamW steps", 0.02, trained_state(args.train_steps))]
    results = []
    print(f"{'setting':<24} {'dtype':<9} {'worst tensor':>12} {'whole':>9} {'buckets moved':>14} {'plain vs fp32':>14}")
    for name, initializer_range, state in settings:
        for dtype in (torch.float32, torch.bfloat16):
            runs = [compare(state, initializer_range, dtype, recorder, seed) for seed in range(args.seeds)]
            worst = max(runs, key=lambda r: r["worst_tensor_relative"])
            row = {"setting": name, "dtype": str(dtype).replace("torch.", ""), **worst,
                   "whole_vector_relative_max": max(r["whole_vector_relative"] for r in runs)}
            results.append(row)
            print(f"{name:<24} {row['dtype']:<9} {row['worst_tensor_relative']:>12.2e} "
                  f"{row['whole_vector_relative_max']:>9.2e} {str(row['bottom_layer_buckets_moved']):>14} "
                  f"{row['plain_vs_fp32_whole_vector_relative']:>14.2e}", flush=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"label": args.label, "date": time.strftime("%Y-%m-%d %H:%M"),
                                              "torch": torch.__version__, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
