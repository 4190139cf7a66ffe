"""Training-step cost side by side: reformer-zh against the models users would pick instead.

Work in progress for issue 6: systems 1-5 of the issue (ours, ours with reversible=False, BART
with SDPA, LED with a 256-token window, an encoder built from transformers' ReformerModel with
the loss on a 64-token slice of its output), all randomly initialised and sized alike (hidden
256, 4 heads, FF 1024, vocab 8000, batch 1, target 64, dropout 0), one process per point,
the same allocator for every system (see benchmarks/train_step.py). Not yet here:
reformer-pytorch, the matmul-rate / achieved-GFLOP/s report, the plot.

    python benchmarks/scaling.py --systems ours,bart,led,hf-reformer --lengths 1024,4096 --out results.json
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from train_step import find_jemalloc, reference_config, rss_bytes, run_child  # noqa: E402

SYSTEMS = ("ours", "ours-plain", "bart", "led", "hf-reformer")
VOCAB, HIDDEN, TARGET = 8000, 256, 64


def axial_factors(length: int) -> list[int]:
    """transformers' Reformer needs the axial shape to multiply to the training length exactly."""
    first = 2 ** (max(length.bit_length() - 1, 0) // 2)
    return [first, length // first]


def build(system: str, length: int, depth: int):
    """-> (model, step) where step() runs forward + loss + backward once."""
    import torch

    input_ids = torch.randint(5, VOCAB, (1, length))
    labels = torch.randint(5, VOCAB, (1, TARGET))
    if system in ("ours", "ours-plain"):
        from modeling_reformer_zh import ReformerZhForConditionalGeneration

        model = ReformerZhForConditionalGeneration(reference_config(length, depth, reversible=system == "ours"))
        return model, lambda: model(input_ids=input_ids, labels=labels).loss.backward()
    if system == "bart":
        from transformers import BartConfig, BartForConditionalGeneration

        config = BartConfig(vocab_size=VOCAB, d_model=HIDDEN, encoder_layers=depth, decoder_layers=6,
                            encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=1024,
                            decoder_ffn_dim=1024, max_position_embeddings=max(length, 1024), dropout=0.0,
                            attention_dropout=0.0, activation_dropout=0.0)
        model = BartForConditionalGeneration._from_config(config, attn_implementation="sdpa")
        return model, lambda: model(input_ids=input_ids, labels=labels).loss.backward()
    if system == "led":
        from transformers import LEDConfig, LEDForConditionalGeneration

        config = LEDConfig(vocab_size=VOCAB, d_model=HIDDEN, encoder_layers=depth, decoder_layers=6,
                           encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=1024,
                           decoder_ffn_dim=1024, max_encoder_position_embeddings=max(length, 1024),
                           max_decoder_position_embeddings=1024, attention_window=256, dropout=0.0,
                           attention_dropout=0.0, activation_dropout=0.0)
        model = LEDForConditionalGeneration(config)
        return model, lambda: model(input_ids=input_ids, labels=labels).loss.backward()
    if system == "hf-reformer":
        from transformers import ReformerConfig, ReformerModel

        config = ReformerConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_attention_heads=4, attention_head_size=64,
                                feed_forward_size=1024, attn_layers=["local", "lsh"] * (depth // 2),
                                lsh_attn_chunk_length=64, local_attn_chunk_length=64, num_hashes=2,
                                axial_pos_shape=axial_factors(length), axial_pos_embds_dim=[64, 192],
                                max_position_embeddings=length, hidden_dropout_prob=0.0,
                                lsh_attention_probs_dropout_prob=0.0, local_attention_probs_dropout_prob=0.0,
                                is_decoder=False)
        model = ReformerModel(config)
        head = torch.nn.Linear(2 * HIDDEN, VOCAB)

        def step():
            hidden = model(input_ids=input_ids).last_hidden_state[:, :TARGET]
            torch.nn.functional.cross_entropy(head(hidden)[0], labels[0]).backward()

        return model, step
    raise ValueError(f"unknown system {system!r}; choose from {SYSTEMS}")


def measure(system: str, length: int, depth: int, steps: int, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model, step = build(system, length, depth)
    model.train()
    model_rss = rss_bytes()
    times = []
    for index in range(steps + 1):
        started = time.perf_counter()
        step()
        model.zero_grad(set_to_none=True)
        if index:
            times.append(time.perf_counter() - started)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"seconds_per_step": sorted(times)[len(times) // 2], "peak_rss_gib": peak / 2**30,
            "peak_above_model_gib": (peak - model_rss) / 2**30}


def run(args, system: str, length: int, depth: int) -> dict:
    command = [sys.executable, __file__, "--child", f"{system},{length},{depth}", "--steps", str(args.steps),
               "--threads", str(args.threads)]
    result = run_child(command, allocator=args.allocator, memory_cap_gib=args.memory_cap_gib, time_cap_s=args.time_cap_s)
    return {"system": system, "length": length, "depth": depth, **result}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--lengths", default="1024,4096,16384,65536")
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory_cap_gib", type=float, default=18.0)
    parser.add_argument("--time_cap_s", type=float, default=600.0)
    parser.add_argument("--allocator", choices=["jemalloc", "system"], default="jemalloc" if find_jemalloc() else "system")
    parser.add_argument("--out", default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        system, length, depth = args.child.split(",")
        print(json.dumps(measure(system, int(length), int(depth), args.steps, args.threads)))
        return
    results = []
    print(f"{'system':<12} {'length':>7} {'s/step':>8} {'peak GiB':>9}  status")
    for system in args.systems.split(","):
        failed = False
        for length in map(int, args.lengths.split(",")):
            point = {"system": system, "length": length, "depth": args.depth, "status": "skipped"} if failed \
                else run(args, system, length, args.depth)
            failed = failed or point["status"] != "ok"
            results.append(point)
            if point["status"] == "ok":
                print(f"{system:<12} {length:>7} {point['seconds_per_step']:>8.2f} {point['peak_rss_gib']:>9.2f}  ok",
                      flush=True)
            else:
                print(f"{system:<12} {length:>7} {'':>8} {'':>9}  {point['status']} {point.get('error', '')}", flush=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"settings": vars(args), "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
