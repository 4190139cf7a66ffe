"""One training step (forward + loss + backward) of the long-input reference model.

Batch 1, target 64 tokens, a 6+6-layer model (hidden 256, 4 heads of 64, FF 1024, vocab 8000;
encoder alternating local/LSH with chunk 64 and 2 hash rounds, full-attention decoder,
reversible). Every point runs in a fresh process so peak RSS is its own; the parent kills a
point whose RSS passes `--memory_cap_gib` ("OOM") or that outlives `--time_cap_s` ("timeout").

    python benchmarks/train_step.py --out benchmarks/results/train_step.json

Prints a table and writes JSON. Not a test: timings depend on the machine.

Allocator: each step allocates and frees tensors of tens to hundreds of MB. glibc serves those
with fresh mmap'd pages, and the kernel zeroes every page on first touch: at 16K tokens that is
~8 million page faults and a fifth of the step. `--allocator jemalloc` (the default when
libjemalloc is installed: `apt-get install libjemalloc2`) preloads jemalloc with page decay off,
so freed memory is reused; `tuned` is glibc with the `mallopt` settings scripts/train.py applies
where jemalloc is missing (reformer_zh/allocator.py); `system` is glibc as it comes. The JSON records
which allocator ran.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reformer_zh.allocator import find_jemalloc, jemalloc_environment, tune_glibc  # noqa: E402


def reference_config(length: int, depth: int = 6, reversible: bool = True):
    from modeling_reformer_zh import ReformerZhConfig
    from modeling_reformer_zh.configuration_reformer_zh import suggest_axial_shape

    max_positions = max(length, 1024)
    return ReformerZhConfig(
        vocab_size=8000,
        hidden_size=256,
        num_attention_heads=4,
        attention_head_size=64,
        feed_forward_size=1024,
        encoder_attn_layers=["local", "lsh"] * (depth // 2),
        decoder_attn_layers=["full"] * 6,
        lsh_attn_chunk_length=64,
        local_attn_chunk_length=64,
        num_hashes=2,
        axial_pos_shape=suggest_axial_shape(max_positions),
        axial_pos_embds_dim=[64, 192],
        max_position_embeddings=max_positions,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        reversible=reversible,
    )


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure_point(length: int, depth: int, reversible: bool, steps: int, threads: int) -> dict:
    """Runs inside the child process."""
    import torch

    sys.path.insert(0, str(ROOT))
    from modeling_reformer_zh import ReformerZhForConditionalGeneration

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = ReformerZhForConditionalGeneration(reference_config(length, depth, reversible)).train()
    input_ids = torch.randint(5, 8000, (1, length))
    labels = torch.randint(5, 8000, (1, 64))
    model_rss = rss_bytes()
    times = []
    for step in range(steps + 1):  # the first is a warm-up
        started = time.perf_counter()
        loss = model(input_ids=input_ids, labels=labels).loss
        loss.backward()
        model.zero_grad(set_to_none=True)
        if step:
            times.append(time.perf_counter() - started)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    times.sort()
    return {
        "seconds_per_step": times[len(times) // 2],
        "peak_rss_gib": peak / 2**30,
        "peak_above_model_gib": (peak - model_rss) / 2**30,
        "parameters_millions": sum(p.numel() for p in model.parameters()) / 1e6,
    }


def child_environment(allocator: str) -> dict:
    """jemalloc is preloaded here; `tuned` is applied by the child itself (`--allocator tuned`)."""
    if allocator == "jemalloc":
        library = find_jemalloc()
        if library is None:
            raise SystemExit("--allocator jemalloc: libjemalloc not found (apt-get install libjemalloc2)")
        return jemalloc_environment(os.environ, library)
    return dict(os.environ)


def run_child(command: list[str], *, allocator: str, memory_cap_gib: float, time_cap_s: float) -> dict:
    """Run one measuring process; kill it past the memory or time cap. -> {"status", ...result}."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=child_environment(allocator))
    started, status = time.time(), None
    while process.poll() is None:
        try:
            with open(f"/proc/{process.pid}/statm") as statm:
                rss = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            rss = 0
        if rss > memory_cap_gib * 2**30:
            status = "OOM"
        elif time.time() - started > time_cap_s:
            status = "timeout"
        if status:
            process.kill()
            process.wait()
            return {"status": status}
        time.sleep(0.2)
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        return {"status": "error", "error": (stderr.strip().splitlines() or [""])[-1]}
    return {"status": "ok", **json.loads(stdout.strip().splitlines()[-1])}


def update_results(path: str, measured: list[dict], key_fields: tuple[str, ...], **record) -> None:
    """Replace the points of `measured` in the report at `path` (same values of `key_fields`),
    append new ones, and record which points were rerun and when (`--update`)."""
    report = json.loads(Path(path).read_text())
    rerun = {tuple(point[f] for f in key_fields): point for point in measured}
    report["results"] = [rerun.pop(tuple(p[f] for f in key_fields), p) for p in report["results"]]
    report["results"] += list(rerun.values())
    report.setdefault("updates", []).append({"points": [[p[f] for f in key_fields] for p in measured],
                                             "date": time.strftime("%Y-%m-%d %H:%M"), **record})
    Path(path).write_text(json.dumps(report, indent=2) + "\n")


def run_point(args, length: int, depth: int, reversible: bool) -> dict:
    command = [
        sys.executable, __file__, "--child", f"{length},{depth},{int(reversible)}",
        "--steps", str(args.steps), "--threads", str(args.threads), "--allocator", args.allocator,
    ]
    result = run_child(command, allocator=args.allocator, memory_cap_gib=args.memory_cap_gib, time_cap_s=args.time_cap_s)
    return {"length": length, "depth": depth, "reversible": reversible, **result}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", default="1024,4096,16384,65536")
    parser.add_argument("--depths", default="2,6,12", help="encoder depths measured at --depth_length")
    parser.add_argument("--depth_length", type=int, default=16384)
    parser.add_argument("--plain", action="store_true", help="also measure reversible=False at every point")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory_cap_gib", type=float, default=18.0)
    parser.add_argument("--time_cap_s", type=float, default=900.0)
    parser.add_argument("--allocator", choices=["jemalloc", "tuned", "system"],
                        default="jemalloc" if find_jemalloc() else "system")
    parser.add_argument("--out", default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        if args.allocator == "tuned":
            tune_glibc()  # before torch is imported, as scripts/train.py does
        length, depth, reversible = (int(x) for x in args.child.split(","))
        print(json.dumps(measure_point(length, depth, bool(reversible), args.steps, args.threads)))
        return

    variants = [True, False] if args.plain else [True]
    points = [(length, 6, r) for r in variants for length in map(int, args.lengths.split(","))]
    points += [(args.depth_length, depth, r) for r in variants for depth in map(int, args.depths.split(",")) if depth != 6 or args.depth_length not in map(int, args.lengths.split(","))]
    results, failed = [], set()
    print(f"{'length':>7} {'depth':>5} {'reversible':>10} {'s/step':>8} {'peak GiB':>9} {'above model':>11}  status")
    for length, depth, reversible in points:
        if (depth, reversible) in failed:
            results.append({"length": length, "depth": depth, "reversible": reversible, "status": "skipped"})
            continue
        point = run_point(args, length, depth, reversible)
        results.append(point)
        if point["status"] != "ok":
            failed.add((depth, reversible))
            print(f"{length:>7} {depth:>5} {str(reversible):>10} {'':>8} {'':>9} {'':>11}  {point['status']}")
        else:
            print(
                f"{length:>7} {depth:>5} {str(reversible):>10} {point['seconds_per_step']:>8.2f} "
                f"{point['peak_rss_gib']:>9.2f} {point['peak_above_model_gib']:>11.2f}  ok",
                flush=True,
            )
    if args.out:
        import torch

        report = {
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "threads": args.threads,
                        "allocator": args.allocator,
                        "torch": torch.__version__, "python": platform.python_version()},
            "settings": vars(args),
            "results": results,
        }
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
