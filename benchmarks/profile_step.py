"""Where a training step's time goes: the story step and the whole-evening step of the recipes.

One step as `Seq2SeqTrainer` runs it (forward, label-smoothed loss, backward, gradient clipping,
fused AdamW), on the shapes the recipes train: `story` is batch 32 x 256 source tokens -> 40
target tokens of the `headline` preset (`make xwlb-story`); `evening` is batch 4 x 4,096 -> 160
of the same model grown to 16K positions, attention dropout off (`make xwlb-program`). Random
token ids: the time of a step does not depend on which ids they are.

Two views, both measured in this one process:

- kinds: torch.profiler's self time of every operator, summed by the kind of work it does
  (matmul, attention softmax, LSH sort and gather, dropout, normalisation, elementwise, copies,
  optimizer, ...; `KIND_OF`), as a share of the profiled total;
- ablations: the median step time of variants of the same step (dropout off, no copy head, a
  plain cross-entropy instead of the label smoother), taking turns step by step so that a
  slower stretch of the machine hits every variant alike.

The allocator's share is not an operator: compare a run under `--allocator system` (glibc as it
comes) with one under jemalloc (benchmarks/train_step.py runs each point in a fresh process).

    python benchmarks/profile_step.py --setting story --out benchmarks/results/profile_story.json
    python benchmarks/profile_step.py --setting evening --steps 3 --out benchmarks/results/profile_evening.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reformer_zh.hardware import machine_record  # noqa: E402

SETTINGS = {
    # (batch, source tokens, target tokens, config overrides on the `headline` preset)
    "story": (32, 256, 40, {}),
    "evening": (4, 4096, 160, {"max_position_embeddings": 16384, "attention_probs_dropout_prob": 0.0,
                               "axial_pos_shape": [128, 128]}),
}

# Operator name -> kind of work. Names not listed fall under "other elementwise".
KIND_PATTERNS = (
    ("matmul", ("aten::mm", "aten::bmm", "aten::addmm", "aten::baddbmm", "aten::matmul", "aten::linear",
                "aten::_scaled_mm", "aten::addbmm")),
    ("attention softmax (fused SDPA included)", ("aten::_softmax", "aten::_softmax_backward_data",
                                                 "aten::_scaled_dot_product", "aten::_flash_attention",
                                                 "aten::_efficient_attention", "aten::logsumexp",
                                                 "aten::_log_softmax", "aten::_log_softmax_backward_data")),
    ("LSH sort, gather and scatter (copy scatter included)", ("aten::sort", "aten::argsort", "aten::gather",
                                                              "aten::scatter", "aten::index", "aten::take_along_dim",
                                                              "aten::index_select", "aten::index_add",
                                                              "aten::_index_put", "aten::index_put",
                                                              "aten::embedding", "aten::scatter_add",
                                                              "aten::embedding_dense_backward", "aten::topk")),
    ("dropout", ("aten::native_dropout", "aten::bernoulli", "aten::native_dropout_backward", "aten::dropout")),
    ("layer norm", ("aten::native_layer_norm", "aten::native_layer_norm_backward", "aten::layer_norm")),
    ("copies and layout (cat, contiguous, clone, fill)", ("aten::copy_", "aten::cat", "aten::clone", "aten::fill_",
                                                         "aten::zero_", "aten::contiguous", "aten::stack",
                                                         "aten::constant_pad_nd", "aten::repeat", "aten::zeros",
                                                         "aten::empty", "aten::ones", "aten::full",
                                                         "aten::_to_copy", "aten::new_zeros", "aten::roll")),
    ("optimizer (fused AdamW, grad clipping)", ("aten::_fused_adamw", "aten::_foreach", "aten::linalg_vector_norm",
                                                "aten::_amp_foreach", "aten::norm", "Optimizer.step")),
    ("reductions (sum, mean, max)", ("aten::sum", "aten::mean", "aten::max", "aten::amax", "aten::min",
                                     "aten::nll_loss", "aten::nll_loss_backward")),
)


def kind_of(name: str) -> str:
    for kind, prefixes in KIND_PATTERNS:
        if any(name == p or name.startswith(p + "_") or name.startswith(p + ".") or name == p.rstrip("_")
               for p in prefixes) or any(name.startswith(p) for p in prefixes if p.endswith("_")):
            return kind
    return "other elementwise (add, mul, where, masks, activations)"


def build_model(setting: str, *, dropout: bool = True, copy: bool = True):
    from modeling_reformer_zh import ReformerZhConfig, ReformerZhForConditionalGeneration
    from reformer_zh.training.train import CONFIG_PRESETS

    values = dict(CONFIG_PRESETS["headline"], vocab_size=8000, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                  decoder_start_token_id=1)
    values.update(SETTINGS[setting][3])
    if not dropout:
        values.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    values["copy_attention"] = copy
    torch.manual_seed(0)
    return ReformerZhForConditionalGeneration(ReformerZhConfig(**values)).train()


def make_batch(setting: str) -> dict:
    batch, source, target, _ = SETTINGS[setting]
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(5, 8000, (batch, target), generator=generator)
    lengths = torch.randint(target // 2, target + 1, (batch,), generator=generator)
    labels[torch.arange(target)[None, :] >= lengths[:, None]] = -100  # targets of different lengths
    return {"input_ids": torch.randint(5, 8000, (batch, source), generator=generator),
            "attention_mask": torch.ones(batch, source, dtype=torch.long), "labels": labels}


class Step:
    """One Trainer-like step: forward, loss, backward, clip, AdamW (fused, the Trainer's default)."""

    def __init__(self, model, *, label_smoothing: bool = True) -> None:
        from transformers.trainer_pt_utils import LabelSmoother

        self.model = model
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, fused=True)
        self.smoother = LabelSmoother(epsilon=0.1) if label_smoothing else None

    def __call__(self, batch: dict) -> dict[str, float]:
        started = time.perf_counter()
        if self.smoother is not None:
            inputs = {k: v for k, v in batch.items() if k != "labels"}
            decoder_input_ids = self.model.prepare_decoder_input_ids_from_labels(batch["labels"])
            outputs = self.model(**inputs, decoder_input_ids=decoder_input_ids)
            loss = self.smoother(outputs, batch["labels"], shift_labels=False)
        else:
            loss = self.model(**batch).loss
        forward = time.perf_counter()
        loss.backward()
        backward = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        done = time.perf_counter()
        return {"forward_and_loss": forward - started, "backward": backward - forward,
                "clip_and_optimizer": done - backward, "step": done - started}


def profile_kinds(step: Step, batch: dict, steps: int) -> dict:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(steps):
            step(batch)
    totals: dict[str, float] = {}
    top: list[tuple[str, float]] = []
    for event in profiler.key_averages():
        if event.key.startswith("autograd::engine") or event.key.startswith("Optimizer.zero_grad"):
            continue
        seconds = event.self_cpu_time_total / 1e6 / steps
        totals[kind_of(event.key)] = totals.get(kind_of(event.key), 0.0) + seconds
        top.append((event.key, seconds))
    whole = sum(totals.values())
    top.sort(key=lambda item: -item[1])
    return {"seconds_per_step": whole,
            "kinds": {k: {"seconds": round(v, 4), "share": round(v / whole, 4)}
                      for k, v in sorted(totals.items(), key=lambda item: -item[1])},
            "top_operators": [{"name": n, "seconds": round(s, 4), "kind": kind_of(n)} for n, s in top[:25]]}


ABLATIONS = {
    "as the recipe trains": {},
    "dropout off": {"dropout": False},
    "no copy head": {"copy": False},
    "plain cross-entropy (no label smoother)": {"label_smoothing": False},
}


def time_ablations(setting: str, batch: dict, steps: int, warmup: int) -> dict:
    runners = {}
    for name, change in ABLATIONS.items():
        model = build_model(setting, dropout=change.get("dropout", True), copy=change.get("copy", True))
        runners[name] = Step(model, label_smoothing=change.get("label_smoothing", True))
        for _ in range(warmup):
            runners[name](batch)
    times: dict[str, list[dict]] = {name: [] for name in runners}
    for _ in range(steps):  # variants take turns: a busy stretch of the machine hits all alike
        for name, runner in runners.items():
            times[name].append(runner(batch))
    baseline = statistics.median(t["step"] for t in times["as the recipe trains"])
    result = {}
    for name, rows in times.items():
        median = statistics.median(t["step"] for t in rows)
        result[name] = {"seconds_per_step": round(median, 3), "ratio_to_recipe": round(median / baseline, 3),
                        "phases": {p: round(statistics.median(t[p] for t in rows), 3) for p in rows[0]}}
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setting", choices=sorted(SETTINGS), default="story")
    parser.add_argument("--steps", type=int, default=5, help="profiled steps, and timed steps per ablation")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no_ablations", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    batch = make_batch(args.setting)
    step = Step(build_model(args.setting))
    for _ in range(args.warmup):
        step(batch)
    kinds = profile_kinds(step, batch, args.steps)
    print(f"{args.setting}: batch {tuple(batch['input_ids'].shape)} -> {tuple(batch['labels'].shape)}, "
          f"profiled {kinds['seconds_per_step']:.2f} s of operator time per step")
    print(f"{'kind of work':<58} {'s/step':>7} {'share':>6}")
    for kind, row in kinds["kinds"].items():
        print(f"{kind:<58} {row['seconds']:>7.3f} {row['share']:>6.1%}")
    result = {"setting": args.setting, "shapes": {"input": list(batch["input_ids"].shape),
                                                   "labels": list(batch["labels"].shape)},
              "machine": machine_record(args.threads), "profile": kinds}
    if not args.no_ablations:
        del step
        result["ablations"] = time_ablations(args.setting, batch, args.steps, args.warmup)
        print(f"\n{'variant (median of ' + str(args.steps) + ' steps)':<44} {'s/step':>7} {'ratio':>6}")
        for name, row in result["ablations"].items():
            print(f"{name:<44} {row['seconds_per_step']:>7.3f} {row['ratio_to_recipe']:>6.2f}")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
