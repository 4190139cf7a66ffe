"""The story training step in four settings, reformer-zh beside a plain `nn.Transformer` twin.

The yardstick of the training-speed issue (33): the `headline` preset's step as `make xwlb-story`
trains it (batch 32 x 256 source tokens -> 40 target tokens, forward, label-smoothed loss,
backward, gradient clipping, fused AdamW) in fp32 or under bf16 autocast, with dropout 0.1 or 0,
and the same step of `benchmarks/plain_transformer.py` at the same size (hidden 256, 4 heads,
4 encoder and 3 decoder layers, feed-forward 1024, vocabulary 8,000). Each of the eight
(model, setting) runners keeps its own model and optimizer; they take turns step by step, so a
slower stretch of the machine hits every one alike, and each reports the median of `--steps`.

    python benchmarks/story_step.py --out benchmarks/results/story_step.json

The CPU, its bf16 flags, torch and the allocator are recorded in the JSON (`machine`): bf16
autocast is fast only where the CPU has AMX or avx512_bf16, and timings from different CPUs do
not compare.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from plain_transformer import PlainTransformer  # noqa: E402
from profile_step import build_model, make_batch  # noqa: E402
from reformer_zh.hardware import machine_record  # noqa: E402
from reformer_zh.training.label_smoothing import LogProbabilityLabelSmoother  # noqa: E402

SETTINGS = {  # name -> (bf16 autocast, dropout)
    "fp32, dropout 0.1": (False, 0.1),
    "bf16 autocast, dropout 0.1": (True, 0.1),
    "fp32, dropout 0": (False, 0.0),
    "bf16 autocast, dropout 0": (True, 0.0),
}


def reformer_zh_step(dropout: float):
    """The Trainer's step for the `headline` preset: copy attention returns log P, so the loss is
    the log-probability label smoother (reformer_zh/training/label_smoothing.py), as train.py wires it."""
    model = build_model("story", dropout=dropout > 0)
    smoother = LogProbabilityLabelSmoother(epsilon=0.1)

    def loss_of(batch: dict) -> torch.Tensor:
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        outputs = model(**inputs, decoder_input_ids=model.prepare_decoder_input_ids_from_labels(batch["labels"]))
        return smoother(outputs, batch["labels"])

    return model, loss_of


def plain_step(dropout: float):
    """The twin's step: cross-entropy with the same label smoothing over its logits."""
    torch.manual_seed(0)
    model = PlainTransformer(vocab_size=8000, hidden=256, encoder_layers=4, decoder_layers=3, dropout=dropout,
                             pad=0, bos=1, eos=2).train()

    def loss_of(batch: dict) -> torch.Tensor:
        logits = model(**batch).logits
        return torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), batch["labels"].flatten(),
                                                 ignore_index=-100, label_smoothing=0.1)

    return model, loss_of


class Runner:
    def __init__(self, build, dropout: float, bf16: bool) -> None:
        self.model, self.loss_of = build(dropout)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-4, weight_decay=0.01, fused=True)
        self.bf16 = bf16
        self.seconds: list[float] = []

    def __call__(self, batch: dict) -> float:
        started = time.perf_counter()
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()
        with autocast:
            loss = self.loss_of(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - started


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per runner (the median is reported)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--settings", default=";".join(SETTINGS), help="a subset of the settings, separated by ';'")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    chosen = [name.strip() for name in args.settings.split(";")]
    unknown = [name for name in chosen if name not in SETTINGS]
    if unknown:
        parser.error(f"unknown setting(s) {unknown}; choose from {list(SETTINGS)}")
    batch = make_batch("story")
    runners = {(model, name): Runner(build, SETTINGS[name][1], SETTINGS[name][0])
               for name in chosen for model, build in (("reformer-zh", reformer_zh_step), ("plain", plain_step))}
    for runner in runners.values():
        for _ in range(args.warmup):
            runner(batch)
    for _ in range(args.steps):  # take turns: a busy stretch of the machine hits all alike
        for runner in runners.values():
            runner.seconds.append(runner(batch))
    rows = {}
    print(f"story step, batch {tuple(batch['input_ids'].shape)} -> {tuple(batch['labels'].shape)}, "
          f"median of {args.steps}; {machine_record(args.threads)['cpu']}")
    print(f"{'setting':<28} {'reformer-zh s':>13} {'plain s':>8} {'ours/plain':>10} {'speed-up vs first':>17}")
    first = None
    for name in chosen:
        ours = statistics.median(runners["reformer-zh", name].seconds)
        plain = statistics.median(runners["plain", name].seconds)
        first = first or ours
        rows[name] = {"reformer_zh_seconds": round(ours, 3), "plain_seconds": round(plain, 3),
                      "ratio_to_plain": round(ours / plain, 3), "speedup_vs_first_setting": round(first / ours, 3),
                      "reformer_zh_all": [round(s, 3) for s in runners["reformer-zh", name].seconds],
                      "plain_all": [round(s, 3) for s in runners["plain", name].seconds]}
        print(f"{name:<28} {ours:>13.2f} {plain:>8.2f} {ours / plain:>10.2f} {first / ours:>17.2f}")
    result = {"benchmark": "story_step", "shapes": {"input": list(batch["input_ids"].shape),
                                                    "labels": list(batch["labels"].shape)},
              "steps": args.steps, "machine": machine_record(args.threads), "settings": rows,
              "command": "python benchmarks/story_step.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return result


if __name__ == "__main__":
    main()
