"""Summarizing a long input: encoder seconds, then seconds per generated token with the cache.

For each system and input length, a fresh process builds the randomly initialised model (the
sizes of benchmarks/scaling.py), encodes the input once and times it (no warm-up: this is what a
one-off summary costs), then, from that encoder output, generates exactly
`--new_tokens` tokens (EOS suppressed until then) greedily and with 4 beams, recording a
timestamp after every decoding step. It reports the median seconds per generated token and
the ratio of the last 8 steps to steps 2-9: with a working cache that ratio stays near 1 (a
model that re-reads its whole prefix at every step would grow linearly with the prefix).

    python benchmarks/generate.py --out benchmarks/results/generate.json

Systems: ours (the reference config of benchmarks/train_step.py), bart (SDPA), led (window 256).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from train_step import find_jemalloc, run_child, update_results  # noqa: E402

SYSTEMS = ("ours", "bart", "led")


def build(system: str, length: int):
    from scaling import build as build_for_training

    model, _ = build_for_training(system, length, depth=6)
    return model.eval()


class StepClock:
    """A stopping criterion that never stops: it only records when each decoding step ended."""

    def __init__(self) -> None:
        self.stamps: list[float] = []

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        self.stamps.append(time.perf_counter())
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


def measure(system: str, length: int, new_tokens: int, threads: int) -> dict:
    import torch
    from transformers import StoppingCriteriaList

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build(system, length)
    input_ids = torch.randint(5, 8000, (1, length))
    attention_mask = torch.ones_like(input_ids)
    result = {}
    with torch.no_grad():
        started = time.perf_counter()
        encoder_outputs = model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask)
        result["encoder_seconds"] = time.perf_counter() - started
    for name, num_beams in (("greedy", 1), ("beam4", 4)):
        clock = StepClock()
        started = time.perf_counter()
        # the encoder output computed once above: generate() only decodes (and expands it for beams)
        output = model.generate(encoder_outputs=encoder_outputs, attention_mask=attention_mask, num_beams=num_beams,
                                do_sample=False, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                use_cache=True, stopping_criteria=StoppingCriteriaList([clock]),
                                decoder_start_token_id=2, bos_token_id=2, eos_token_id=3, pad_token_id=0)
        total = time.perf_counter() - started
        steps = [later - earlier for earlier, later in zip(clock.stamps, clock.stamps[1:])]
        result[name] = {
            "decode_seconds": total,
            "generated_tokens": int(output.shape[1] - 1),
            "seconds_per_token": statistics.median(steps),
            "last8_over_first8": statistics.mean(steps[-8:]) / statistics.mean(steps[:8]),
        }
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--lengths", default="1024,4096,16384,65536")
    parser.add_argument("--new_tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory_cap_gib", type=float, default=18.0)
    parser.add_argument("--time_cap_s", type=float, default=480.0)
    parser.add_argument("--allocator", choices=["jemalloc", "system"], default="jemalloc" if find_jemalloc() else "system")
    parser.add_argument("--out", default=None)
    parser.add_argument("--update", action="store_true",
                        help="replace only the measured (system, length) points in an existing --out file")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        system, length = args.child.split(",")
        print(json.dumps(measure(system, int(length), args.new_tokens, args.threads)))
        return
    results = []
    print(f"{'system':<6} {'length':>7} {'encoder s':>9} {'greedy s/tok':>12} {'growth':>6} "
          f"{'beam4 s/tok':>11} {'growth':>6}  status")
    for system in args.systems.split(","):
        failed = False
        for length in map(int, args.lengths.split(",")):
            if failed:
                results.append({"system": system, "length": length, "status": "skipped"})
                continue
            command = [sys.executable, __file__, "--child", f"{system},{length}", "--new_tokens",
                       str(args.new_tokens), "--threads", str(args.threads)]
            point = {"system": system, "length": length,
                     **run_child(command, allocator=args.allocator, memory_cap_gib=args.memory_cap_gib,
                                 time_cap_s=args.time_cap_s)}
            results.append(point)
            if point["status"] != "ok":
                failed = True
                print(f"{system:<6} {length:>7} {'':>9} {'':>12} {'':>6} {'':>11} {'':>6}  {point['status']} "
                      f"{point.get('error', '')}", flush=True)
                continue
            greedy, beam = point["greedy"], point["beam4"]
            print(f"{system:<6} {length:>7} {point['encoder_seconds']:>9.2f} {greedy['seconds_per_token']:>12.4f} "
                  f"{greedy['last8_over_first8']:>6.2f} {beam['seconds_per_token']:>11.4f} "
                  f"{beam['last8_over_first8']:>6.2f}  ok", flush=True)
    if args.out and args.update:
        update_results(args.out, results, ("system", "length"))
    elif args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        settings = {key: value for key, value in vars(args).items() if key != "child"}
        Path(args.out).write_text(json.dumps({"settings": settings, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
