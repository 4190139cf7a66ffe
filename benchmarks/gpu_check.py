"""`make gpu-check`: what a GPU lent for a few minutes must confirm, in one run and one JSON
(issue 44 item 7). Prepared and tested on the CPU (`--device cpu --tiny`); on a lent machine:

    python benchmarks/gpu_check.py --out benchmarks/results/gpu_check.json

1. Equivalence on the device, in float32 (TF32 off, so differences are the algorithm's):
   - the reversible backward replays the forward exactly: gradients of `reversible=True` against
     `reversible=False` (the same weights, rotations drawn from the generator, dropout 0.1, the
     same seed), on an input long enough for LSH;
   - LSH on the device against the CPU: the eval-mode encoder output of the same weights and
     input (eval rotations are fixed per layer, so both hash alike);
   - cached generation against uncached: the same greedy summary.
2. A bf16-autocast training step (forward, loss, backward) at 4K, 16K and 64K tokens, ours
   against LED at the same sizes (benchmarks/scaling.py's systems: hidden 256, 4 heads of 64,
   FF 1024, 6+6 layers, target 64 tokens, batch 1): seconds per step (median of 3 after a
   warm-up), tokens per second, peak device memory; a point that runs out of memory is "OOM".

Every check's measured difference and tolerance go into the JSON with the device and torch
versions; the exit status is 1 when an equivalence check fails.
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
sys.path.insert(0, str(ROOT / "benchmarks"))

from reformer_zh.hardware import machine_record  # noqa: E402
from scaling import TARGET, VOCAB, build  # noqa: E402
from train_step import reference_config  # noqa: E402

TOLERANCE = 1e-3  # relative to the largest magnitude compared: fp32 re-association, not a different function


def relative_difference(actual: torch.Tensor, expected: torch.Tensor) -> float:
    actual, expected = actual.detach().double().cpu(), expected.detach().double().cpu()
    return float((actual - expected).abs().max() / expected.abs().max().clamp_min(1e-12))


def check(name: str, difference: float, tolerance: float = TOLERANCE) -> dict:
    return {"check": name, "relative_difference": difference, "tolerance": tolerance, "passed": difference <= tolerance}


def equivalence_config(length: int, tiny: bool):
    """Our model at the check's length: rotations from the generator and dropout on, so the
    reversible replay has something to replay; exact attention only up to a quarter of it."""
    config = reference_config(length, depth=2 if tiny else 6)
    if tiny:
        config.hidden_size, config.num_attention_heads, config.attention_head_size = 64, 2, 32
        config.feed_forward_size, config.axial_pos_embds_dim = 128, [16, 48]
        config.decoder_attn_layers = ["full"] * 2
        config.lsh_attn_chunk_length = config.local_attn_chunk_length = 16
    config.hash_seed, config.full_attn_threshold = None, length // 4
    config.hidden_dropout_prob = config.attention_probs_dropout_prob = 0.1
    config.validate_reformer_zh()
    return config


def reversible_replay(device: torch.device, length: int, tiny: bool) -> dict:
    from modeling_reformer_zh import ReformerZhForConditionalGeneration

    config = equivalence_config(length, tiny)
    torch.manual_seed(0)
    model = ReformerZhForConditionalGeneration(config).to(device).train()
    input_ids = torch.randint(5, config.vocab_size, (2, length), device=device)
    labels = torch.randint(5, config.vocab_size, (2, TARGET), device=device)
    gradients = {}
    for reversible in (True, False):
        model.config.reversible = reversible
        model.zero_grad(set_to_none=True)
        torch.manual_seed(1)  # the same dropout masks and rotations in both runs
        model(input_ids=input_ids, labels=labels).loss.backward()
        gradients[reversible] = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    worst = max(relative_difference(a, b) for a, b in zip(gradients[True], gradients[False]))
    return check("reversible backward replays the forward (gradients against plain autograd)", worst)


def lsh_against_cpu(device: torch.device, length: int, tiny: bool) -> dict:
    from modeling_reformer_zh import ReformerZhForConditionalGeneration

    torch.manual_seed(0)
    model = ReformerZhForConditionalGeneration(equivalence_config(length, tiny)).eval()
    input_ids = torch.randint(5, model.config.vocab_size, (1, length))
    with torch.no_grad():
        on_cpu = model.get_encoder()(input_ids=input_ids).last_hidden_state
        model.to(device)
        on_device = model.get_encoder()(input_ids=input_ids.to(device)).last_hidden_state
    return check(f"LSH encoder on {device.type} against the CPU (eval, {length} tokens)",
                 relative_difference(on_device, on_cpu))


def cached_generation(device: torch.device, length: int, tiny: bool) -> dict:
    from modeling_reformer_zh import ReformerZhForConditionalGeneration

    torch.manual_seed(0)
    model = ReformerZhForConditionalGeneration(equivalence_config(length, tiny)).to(device).eval()
    input_ids = torch.randint(5, model.config.vocab_size, (1, length), device=device)
    options = dict(max_new_tokens=24, min_new_tokens=24, num_beams=1, do_sample=False,
                   decoder_start_token_id=model.config.decoder_start_token_id or 2)
    with torch.no_grad():
        cached = model.generate(input_ids=input_ids, use_cache=True, **options)
        full = model.generate(input_ids=input_ids, use_cache=False, **options)
    different = int((cached != full).sum()) if cached.shape == full.shape else max(cached.numel(), full.numel())
    return {**check("cached generation writes what uncached generation writes (greedy, 24 tokens)",
                    float(different), tolerance=0.0), "tokens_different": different}


def training_step(device: torch.device, system: str, length: int, steps: int, tiny: bool) -> dict:
    """bf16 autocast forward + loss + backward of `system` on `length` tokens."""
    point = {"system": system, "length": length}
    try:
        torch.manual_seed(0)
        model, _ = build(system, length, depth=2 if tiny else 6)
        model.to(device).train()
        input_ids = torch.randint(5, VOCAB, (1, length), device=device)
        labels = torch.randint(5, VOCAB, (1, TARGET), device=device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times = []
        for index in range(steps + 1):  # the first is a warm-up
            started = time.perf_counter()
            with torch.autocast(device.type, dtype=torch.bfloat16):
                loss = model(input_ids=input_ids, labels=labels).loss
            loss.backward()
            model.zero_grad(set_to_none=True)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if index:
                times.append(time.perf_counter() - started)
        seconds = sorted(times)[len(times) // 2]
        point.update(status="ok", seconds_per_step=round(seconds, 4), tokens_per_second=round(length / seconds, 1))
        if device.type == "cuda":
            point["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    except torch.OutOfMemoryError:
        point["status"] = "OOM"
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return point


def device_record(device: torch.device) -> dict:
    if device.type != "cuda":
        return {"type": device.type}
    properties = torch.cuda.get_device_properties(device)
    return {"type": "cuda", "name": properties.name, "memory_gib": round(properties.total_memory / 2**30, 1),
            "capability": f"{properties.major}.{properties.minor}", "cuda": torch.version.cuda}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (the check of this script itself)")
    parser.add_argument("--tiny", action="store_true", help="small models and lengths: a CPU run of the whole script")
    parser.add_argument("--lengths", type=int, nargs="+", default=[4096, 16384, 65536])
    parser.add_argument("--check_length", type=int, default=2048, help="tokens of the equivalence checks' inputs")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.exit(2, "error: no CUDA device here (torch.cuda.is_available() is False): run this on a GPU machine, "
                       "or check the script itself with --device cpu --tiny\n")
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    started = time.perf_counter()
    checks = [reversible_replay(device, args.check_length, args.tiny),
              lsh_against_cpu(device, args.check_length, args.tiny),
              cached_generation(device, args.check_length, args.tiny)]
    for item in checks:
        print(f"{'ok  ' if item['passed'] else 'FAIL'} {item['check']}: {item['relative_difference']:.2e}", flush=True)
    steps = []
    for length in args.lengths:
        for system in ("ours", "led"):
            steps.append(training_step(device, system, length, args.steps, args.tiny))
            print(json.dumps(steps[-1]), flush=True)
    result = {"device": device_record(device), "machine": machine_record(), "tiny": args.tiny, "checks": checks,
              "all_checks_passed": all(item["passed"] for item in checks), "bf16_training_steps": steps,
              "minutes": round((time.perf_counter() - started) / 60, 2),
              "command": "python benchmarks/gpu_check.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    sys.exit(0 if main()["all_checks_passed"] else 1)
