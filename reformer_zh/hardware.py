"""What CPU this is, and whether bf16 pays on it: detected at run time, never assumed.

This project's machines change between days: some are Intel Xeons with AMX and avx512_bf16
(bf16 matmuls in hardware, about twice fp32), some AMD EPYCs with AVX2 only, where bf16 autocast
runs emulated and is slower than fp32. Every results JSON records `machine_record()`, so a number
can be traced to the CPU that produced it.
"""

from __future__ import annotations

import os
import platform
import time

import torch

# CPU flags (as /proc/cpuinfo spells them) that give bf16 matmuls in hardware
BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def bf16_hardware(flags: set[str] | None = None) -> list[str]:
    """The bf16 flags this CPU has (empty: bf16 would be emulated). torch's own check is asked too,
    for CPUs whose /proc/cpuinfo is not readable."""
    flags = cpu_flags() if flags is None else flags
    found = [flag for flag in BF16_FLAGS if flag in flags]
    if not found and flags == set():
        if getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)():
            found.append("amx_bf16")
        if getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)():
            found.append("avx512_bf16")
    return found


def loaded_allocator() -> str:
    try:
        with open("/proc/self/maps") as handle:
            maps = handle.read()
    except OSError:
        return "unknown"
    return next((name for name in ("jemalloc", "tcmalloc") if f"lib{name}" in maps), "system (glibc)")


def machine_record(threads: int | None = None) -> dict:
    """The machine a measurement ran on, for every results JSON."""
    return {"date": time.strftime("%Y-%m-%d %H:%M"), "cpu": cpu_model(), "cores": os.cpu_count(),
            "threads": threads or torch.get_num_threads(), "bf16_hardware": bf16_hardware(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
            "allocator": loaded_allocator()}


def matmul_seconds(dtype: torch.dtype, repeats: int = 3) -> float:
    """The best of `repeats` timings of one [4096 x 256] @ [256 x 1024] matmul (a feed-forward
    layer of the `headline` preset on a story batch's tokens) in `dtype`."""
    left, right = torch.randn(4096, 256, dtype=dtype), torch.randn(256, 1024, dtype=dtype)
    left @ right  # the first call pays for kernel selection
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        left @ right
        best = min(best, time.perf_counter() - started)
    return best


def cpu_bf16_decision(request: str = "auto", flags: set[str] | None = None, probe=matmul_seconds) -> tuple[bool, str]:
    """Whether training on this CPU should run under bf16 autocast, and the line that says why.

    `request` is "on", "off" or "auto". Auto turns it on only where the CPU has bf16 in hardware
    AND a bf16 matmul of the model's shapes measures faster than fp32 here (a fraction of a
    second): without AMX or avx512_bf16 torch emulates bf16, and on 2 AVX2 cores of an AMD EPYC
    a bf16 matmul measured about 90x slower than fp32."""
    if request not in ("auto", "on", "off"):
        raise ValueError(f"--cpu_bf16 must be auto, on or off, got {request!r}.")
    if request != "auto":
        return request == "on", f"bf16 autocast {request} (--cpu_bf16 {request})"
    hardware = bf16_hardware(flags)
    if not hardware:
        return False, (f"bf16 autocast off: {cpu_model()} has no amx_bf16 or avx512_bf16, so bf16 would run "
                       "emulated, far slower than fp32 (--cpu_bf16 on forces it)")
    bf16, fp32 = probe(torch.bfloat16), probe(torch.float32)
    if bf16 >= fp32:
        return False, (f"bf16 autocast off: {cpu_model()} has {', '.join(hardware)} but a bf16 matmul measured "
                       f"{bf16 * 1e3:.1f} ms against {fp32 * 1e3:.1f} ms in fp32 (--cpu_bf16 on forces it)")
    return True, (f"bf16 autocast on: {cpu_model()} has {', '.join(hardware)} and a bf16 matmul measured "
                  f"{fp32 / bf16:.1f}x fp32 (--cpu_bf16 off disables it)")
