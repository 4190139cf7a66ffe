"""Training-step cost side by side: reformer-zh against the models users would pick instead.

Systems, all randomly initialised and sized alike (hidden 256, 4 heads of 64, FF 1024, vocab
8000, batch 1, target 64 tokens, dropout 0):

    ours                      6+6 layers, encoder local/LSH (chunk 64, 2 hash rounds), reversible
    ours-plain                the same with reversible=False: what reversibility buys
    bart                      BartForConditionalGeneration 6+6, attn_implementation="sdpa"
    led                       LEDForConditionalGeneration 6+6, attention window 256
    hf-reformer               transformers' ReformerModel, 6 layers local/LSH, same chunking and
                              hashing, loss through a linear head on a 64-token slice of its
                              output (an encoder built from transformers' Reformer)
    reformer-pytorch          lucidrains' ReformerEncDec 6+6 (all-LSH, its defaults otherwise),
                              called as its README does: one loss, one backward
    reformer-pytorch-detached the same with the encoder output detached and back-propagated
                              once, since its own step runs the encoder's backward once per
                              decoder layer (optional: `pip install -e .[bench]`)

Each point is a fresh process (peak RSS is its own) running 1 warm-up and 3 measured training
steps (forward + loss + backward); the parent kills a point past `--memory_cap_gib` ("OOM") or
`--time_cap_s` ("timeout") and skips that system's longer inputs. Every process gets the same
thread count and allocator (jemalloc when installed, see benchmarks/train_step.py).

The run also measures the machine's fp32 matmul rate (2048x2048x2048, same threads, same
allocator) and each point's useful work from the analytic FLOP count in `step_flops`, so the
report says how close to the hardware each system runs.

    python benchmarks/scaling.py --out benchmarks/results/scaling.json
    python benchmarks/plot.py            # benchmarks/results/scaling.png from the JSON
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from modeling_reformer_zh.attention_lsh import derive_num_buckets  # noqa: E402
from train_step import find_jemalloc, reference_config, rss_bytes, run_child, update_results  # noqa: E402

SYSTEMS = ("ours", "ours-plain", "bart", "led", "hf-reformer", "reformer-pytorch", "reformer-pytorch-detached")
VOCAB, HIDDEN, HEADS, HEAD_SIZE, FEED_FORWARD, TARGET = 8000, 256, 4, 64, 1024, 64
CHUNK, NUM_HASHES, LED_WINDOW, DECODER_LAYERS = 64, 2, 256, 6
# Input lengths measured for one system only, on top of --lengths (--no_extra_lengths drops them).
EXTRA_LENGTHS = {"ours": (131072,)}


# --- analytic FLOPs ---------------------------------------------------------------------------
# A linear map of n vectors from a to b costs 2*n*a*b FLOPs forward; attention of n_q queries over
# n_k keys costs 2*2*n_q*n_k*d per head (scores, then the weighted sum of values). A training
# step counts 3x its forward (forward, gradient of the inputs, gradient of the weights).
# Recomputation in a reversible backward, padding, masking, hashing's sort and the softmax are
# not useful work and are not counted. Windows count the keys each query really reads.

def linear(n: int, a: int, b: int) -> float:
    return 2.0 * n * a * b


def attention(n_queries: int, n_keys_per_query: float) -> float:
    return 2.0 * 2.0 * n_queries * n_keys_per_query * HEAD_SIZE * HEADS


def feed_forward(n: int) -> float:
    return 2 * linear(n, HIDDEN, FEED_FORWARD)


def decoder_forward(length: int) -> float:
    """6 decoder layers over TARGET tokens with cross-attention over `length`, plus the LM head."""
    inner = HEADS * HEAD_SIZE
    self_attention = 4 * linear(TARGET, HIDDEN, inner) + attention(TARGET, (TARGET + 1) / 2)
    cross = 2 * linear(TARGET, HIDDEN, inner) + 2 * linear(length, HIDDEN, inner) + attention(TARGET, length)
    return DECODER_LAYERS * (self_attention + cross + feed_forward(TARGET)) + linear(TARGET, HIDDEN, VOCAB)


def reformer_encoder_forward(length: int, depth: int, look_back: int = 1) -> float:
    """Alternating local / LSH layers: local reads its chunk and `look_back` before; LSH the same
    in each of NUM_HASHES rounds, with shared QK (three projections) and a random rotation."""
    inner, window = HEADS * HEAD_SIZE, CHUNK * (1 + look_back)
    local = 4 * linear(length, HIDDEN, inner) + attention(length, window)
    # the rotations our layers really draw: the model's own bucket count, factorised above 128
    rotation_columns = sum(factor // 2 for factor in derive_num_buckets(length, CHUNK))
    rotations = NUM_HASHES * HEADS * linear(length, HEAD_SIZE, rotation_columns)
    lsh = 3 * linear(length, HIDDEN, inner) + NUM_HASHES * attention(length, window) + rotations
    return (depth // 2) * (local + lsh) + depth * feed_forward(length)


def step_flops(system: str, length: int, depth: int) -> float:
    inner = HEADS * HEAD_SIZE
    if system in ("ours", "ours-plain"):
        forward = reformer_encoder_forward(length, depth) + decoder_forward(length)
    elif system == "hf-reformer":
        forward = reformer_encoder_forward(length, depth) + linear(TARGET, 2 * HIDDEN, VOCAB)
    elif system.startswith("reformer-pytorch"):
        # all layers LSH over 2 rounds, chunk 64 with one chunk of look-back; its decoder is
        # LSH too (chunk 32) and reads the encoder output as extra keys in every layer.
        window = 2 * CHUNK
        encoder = depth * (3 * linear(length, HIDDEN, inner) + NUM_HASHES * attention(length, window)
                           + feed_forward(length))
        decoder = DECODER_LAYERS * (3 * linear(TARGET, HIDDEN, inner) + 2 * linear(length, HIDDEN, inner)
                                    + NUM_HASHES * attention(TARGET, TARGET + length) + feed_forward(TARGET))
        forward = encoder + decoder + linear(TARGET, HIDDEN, VOCAB)
    elif system == "bart":
        forward = depth * (4 * linear(length, HIDDEN, inner) + attention(length, length) + feed_forward(length))
        forward += decoder_forward(length)
    elif system == "led":
        # attention_window 256 reads 128 keys on each side, but its overlapping chunks of 2 x 128 compute
        # about 2 x 256 keys a query: the count is of the keys computed, as for the other systems
        window = min(length, 2 * LED_WINDOW + 1)
        forward = depth * (4 * linear(length, HIDDEN, inner) + attention(length, window) + feed_forward(length))
        forward += decoder_forward(length)
    else:
        raise ValueError(system)
    return 3.0 * forward


# --- the systems ------------------------------------------------------------------------------

def axial_factors(length: int) -> list[int]:
    """transformers' Reformer needs the axial shape to multiply to the training length exactly."""
    first = 2 ** (max(length.bit_length() - 1, 0) // 2)
    return [first, length // first]


def build(system: str, length: int, depth: int, overrides: dict | None = None):
    """-> (model, step) where step() runs forward + loss + backward once. `overrides` change
    ours' config (e.g. the memory options of issue 7)."""
    import torch

    input_ids = torch.randint(5, VOCAB, (1, length))
    labels = torch.randint(5, VOCAB, (1, TARGET))
    if system in ("ours", "ours-plain"):
        from modeling_reformer_zh import ReformerZhForConditionalGeneration

        config = reference_config(length, depth, reversible=system == "ours")
        for key, value in (overrides or {}).items():
            setattr(config, key, value)
        config.validate_reformer_zh()
        model = ReformerZhForConditionalGeneration(config)
        return model, lambda: model(input_ids=input_ids, labels=labels).loss.backward()
    if system == "bart":
        from transformers import BartConfig, BartForConditionalGeneration

        config = BartConfig(vocab_size=VOCAB, d_model=HIDDEN, encoder_layers=depth, decoder_layers=DECODER_LAYERS,
                            encoder_attention_heads=HEADS, decoder_attention_heads=HEADS,
                            encoder_ffn_dim=FEED_FORWARD, decoder_ffn_dim=FEED_FORWARD,
                            max_position_embeddings=max(length, 1024), dropout=0.0, attention_dropout=0.0,
                            activation_dropout=0.0)
        model = BartForConditionalGeneration._from_config(config, attn_implementation="sdpa")
        return model, lambda: model(input_ids=input_ids, labels=labels).loss.backward()
    if system == "led":
        from transformers import LEDConfig, LEDForConditionalGeneration

        config = LEDConfig(vocab_size=VOCAB, d_model=HIDDEN, encoder_layers=depth, decoder_layers=DECODER_LAYERS,
                           encoder_attention_heads=HEADS, decoder_attention_heads=HEADS,
                           encoder_ffn_dim=FEED_FORWARD, decoder_ffn_dim=FEED_FORWARD,
                           max_encoder_position_embeddings=max(length, 1024), max_decoder_position_embeddings=1024,
                           attention_window=LED_WINDOW, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0)
        model = LEDForConditionalGeneration(config)
        return model, lambda: model(input_ids=input_ids, labels=labels).loss.backward()
    if system == "hf-reformer":
        from transformers import ReformerConfig, ReformerModel

        config = ReformerConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_attention_heads=HEADS,
                                attention_head_size=HEAD_SIZE, feed_forward_size=FEED_FORWARD,
                                attn_layers=["local", "lsh"] * (depth // 2), lsh_attn_chunk_length=CHUNK,
                                local_attn_chunk_length=CHUNK, num_hashes=NUM_HASHES,
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
    if system.startswith("reformer-pytorch"):
        try:
            from reformer_pytorch import ReformerEncDec
        except ImportError:
            raise SystemExit("reformer-pytorch is not installed: pip install -e '.[bench]'") from None
        # Its decoder needs a length divisible by twice its bucket size: 64 tokens -> buckets of 32.
        model = ReformerEncDec(dim=HIDDEN, enc_num_tokens=VOCAB, enc_depth=depth, enc_max_seq_len=length,
                               enc_heads=HEADS, enc_dim_head=HEAD_SIZE, enc_bucket_size=CHUNK,
                               enc_n_hashes=NUM_HASHES, enc_ff_mult=FEED_FORWARD // HIDDEN,
                               dec_num_tokens=VOCAB, dec_depth=DECODER_LAYERS, dec_max_seq_len=TARGET,
                               dec_heads=HEADS, dec_dim_head=HEAD_SIZE, dec_bucket_size=TARGET // 2,
                               dec_n_hashes=NUM_HASHES, dec_ff_mult=FEED_FORWARD // HIDDEN)
        if system == "reformer-pytorch":
            return model, lambda: model(input_ids, labels, return_loss=True).backward()

        def detached_step():
            encoded = model.enc(input_ids, return_embeddings=True)
            keys = encoded.detach().requires_grad_()
            model.dec(labels, return_loss=True, keys=keys).backward()
            encoded.backward(keys.grad)

        return model, detached_step
    raise ValueError(f"unknown system {system!r}; choose from {SYSTEMS}")


def measure(system: str, length: int, depth: int, steps: int, threads: int, overrides: dict | None = None) -> dict:
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model, step = build(system, length, depth, overrides)
    model.train()
    model_rss = rss_bytes()
    times = []
    for index in range(steps + 1):  # the first is a warm-up
        started = time.perf_counter()
        step()
        model.zero_grad(set_to_none=True)
        if index:
            times.append(time.perf_counter() - started)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"seconds_per_step": sorted(times)[len(times) // 2], "peak_rss_gib": peak / 2**30,
            "peak_above_model_gib": (peak - model_rss) / 2**30,
            "parameters_millions": sum(p.numel() for p in model.parameters()) / 1e6}


def measure_matmul_rate(threads: int, size: int = 2048, repeats: int = 10) -> dict:
    import torch

    torch.set_num_threads(threads)
    left, right = torch.randn(size, size), torch.randn(size, size)
    for _ in range(3):
        left @ right
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        left @ right
        times.append(time.perf_counter() - started)
    return {"gflops": 2 * size**3 / sorted(times)[len(times) // 2] / 1e9, "size": size}


def run(args, system: str, length: int, depth: int) -> dict:
    command = [sys.executable, __file__, "--child", f"{system},{length},{depth}", "--steps", str(args.steps),
               "--threads", str(args.threads)]
    overrides = args.ours_overrides if system.startswith("ours") else None
    if overrides:
        command += ["--ours_overrides", json.dumps(overrides)]
    result = run_child(command, allocator=args.allocator, memory_cap_gib=args.memory_cap_gib, time_cap_s=args.time_cap_s)
    point = {"system": system, "length": length, "depth": depth, **result,
             "useful_gflop_per_step": step_flops(system, length, depth) / 1e9}
    if overrides:
        point["overrides"] = overrides
    if result["status"] == "ok":
        point["achieved_gflops"] = point["useful_gflop_per_step"] / result["seconds_per_step"]
    return point


def sweep(args, system: str, lengths: list[int], depth: int, results: list) -> None:
    """One system over increasing lengths; the rest are skipped after the first failure."""
    failed = False
    for length in lengths:
        point = {"system": system, "length": length, "depth": depth, "status": "skipped"} if failed \
            else run(args, system, length, depth)
        failed = failed or point["status"] != "ok"
        results.append(point)
        if point["status"] == "ok":
            share = point["achieved_gflops"] / args.matmul_gflops
            print(f"{system:<26} {length:>7} {depth:>5} {point['seconds_per_step']:>8.2f} {point['peak_rss_gib']:>9.2f}"
                  f" {point['achieved_gflops']:>7.1f} {share:>6.0%}  ok", flush=True)
        else:
            print(f"{system:<26} {length:>7} {depth:>5} {'':>8} {'':>9} {'':>7} {'':>6}  {point['status']} "
                  f"{point.get('error', '')}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--lengths", default="1024,4096,16384,65536")
    parser.add_argument("--no_extra_lengths", action="store_true", help="skip 128K for ours")
    parser.add_argument("--depth", type=int, default=6, help="encoder depth of the length sweep")
    parser.add_argument("--depths", default="2,6,12", help="encoder depths measured at --depth_length")
    parser.add_argument("--depth_length", type=int, default=8192)
    parser.add_argument("--depth_systems", default="ours,ours-plain")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory_cap_gib", type=float, default=18.0)
    parser.add_argument("--time_cap_s", type=float, default=480.0)
    parser.add_argument("--allocator", choices=["jemalloc", "system"], default="jemalloc" if find_jemalloc() else "system")
    parser.add_argument("--ours_overrides", type=json.loads, default=None,
                        help='JSON config overrides for ours / ours-plain, e.g. \'{"num_mem_kv": 4}\'')
    parser.add_argument("--out", default=None)
    parser.add_argument("--update", action="store_true",
                        help="rerun only the given points and replace them in an existing --out file")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--matmul_child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.matmul_child:
        print(json.dumps(measure_matmul_rate(args.threads)))
        return
    if args.child:
        system, length, depth = args.child.split(",")
        print(json.dumps(measure(system, int(length), int(depth), args.steps, args.threads, args.ours_overrides)))
        return
    systems = args.systems.split(",")
    unknown = sorted(set(systems) - set(SYSTEMS))
    if unknown:
        parser.error(f"unknown --systems {unknown}; choose from {', '.join(SYSTEMS)}")

    matmul = run_child([sys.executable, __file__, "--matmul_child", "--threads", str(args.threads)],
                       allocator=args.allocator, memory_cap_gib=args.memory_cap_gib, time_cap_s=120)
    args.matmul_gflops = matmul["gflops"]
    print(f"fp32 matmul 2048^3 on {args.threads} threads: {args.matmul_gflops:.1f} GFLOP/s ({args.allocator})")
    print(f"{'system':<26} {'length':>7} {'depth':>5} {'s/step':>8} {'peak GiB':>9} {'GFLOP/s':>7} {'of mm':>6}  status")
    results: list[dict] = []
    base_lengths = [int(length) for length in args.lengths.split(",")]
    for system in systems:
        extra = () if args.no_extra_lengths else EXTRA_LENGTHS.get(system, ())
        sweep(args, system, sorted(set(base_lengths) | set(extra)), args.depth, results)
    for system in filter(None, args.depth_systems.split(",")):
        for depth in map(int, filter(None, args.depths.split(","))):
            sweep(args, system, [args.depth_length], depth, results)
    if args.out and args.update:
        update_results(args.out, results, ("system", "length", "depth"), matmul_gflops=args.matmul_gflops)
    elif args.out:
        import torch

        report = {
            "machine": {"platform": platform.platform(), "processor": cpu_model(), "cpus": os.cpu_count(),
                        "threads": args.threads, "allocator": args.allocator, "torch": torch.__version__,
                        "python": platform.python_version(), "matmul_gflops": args.matmul_gflops},
            "settings": {key: value for key, value in vars(args).items() if key not in ("child", "matmul_child")},
            "flop_formula": "3 x forward; linear n*a->b: 2nab; attention: 4 * queries * keys read * head_dim * heads; "
                            "recomputation, masking, sorting, softmax not counted (see step_flops)",
            "results": results,
        }
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
