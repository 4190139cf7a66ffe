"""A memory allocator that reuses freed blocks, for scripts/train.py on the command line.

A training step allocates and frees tensors of tens to hundreds of MB. glibc serves every block
above its mmap threshold (32 MiB at most) with fresh mmap'd pages, which the kernel zeroes on
first touch, and unmaps it again on free: a 64K step measured 48.6 s under glibc and 20.0 s under
jemalloc with page decay off (`MEASURED`; benchmarks/train_step.py, `--allocator`). `configure_allocator()`:

1. does nothing when jemalloc or tcmalloc is already loaded, off glibc, or with
   REFORMER_ZH_ALLOCATOR=system;
2. when libjemalloc is installed (`apt-get install libjemalloc2`), re-executes the process once
   with it preloaded (each torchrun/accelerate worker re-executes itself; same pid);
3. otherwise keeps glibc as it comes and says what installing jemalloc would change.

Tuning glibc instead (REFORMER_ZH_ALLOCATOR=tuned, through `mallopt`, `GLIBC_SETTINGS`: no mmap
for large blocks and no trimming, so a freed block stays in the heap for the next step) is as
fast as jemalloc but not the default: glibc's heap then fragments, and a 64K step peaked at
8.7 GiB instead of 3.1 (`MEASURED`).

REFORMER_ZH_ALLOCATOR: `auto` (default), `tuned` (glibc tuned even where jemalloc is installed)
or `system` (leave glibc as it is, say nothing).
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
from collections.abc import Mapping

ALLOCATOR_VARIABLE = "REFORMER_ZH_ALLOCATOR"
ALLOCATOR_CHOICES = ("auto", "tuned", "system")
REEXECUTED_VARIABLE = "REFORMER_ZH_ALLOCATOR_REEXECUTED"  # set in the re-executed process: never twice
JEMALLOC_CANDIDATES = ("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
                       "/usr/lib64/libjemalloc.so.2", "/usr/lib/libjemalloc.so.2", "/usr/local/lib/libjemalloc.so.2")
# Keep freed pages: no purge, no re-zeroing. Where the shapes change from batch to batch (the
# general recipe's mixture) the pages kept grow with every new shape: a general run was resident
# at 18.8 GiB after 60 minutes and still growing, on a 24 GiB machine without swap, and resumed
# under MALLOC_CONF=dirty_decay_ms:10000,muzzy_decay_ms:0 it peaked at 6.6 GiB at the same speed
# (16.4 steps a minute against 16.6; docs/experiments.md). A MALLOC_CONF already set is kept.
JEMALLOC_CONF = "dirty_decay_ms:-1,muzzy_decay_ms:-1"
# mallopt parameters (malloc.h) and the values set: M_MMAP_MAX=0 serves every block from the heap
# (glibc still mmaps where the heap cannot grow); M_TRIM_THRESHOLD=-1 never gives the heap's top back.
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
GLIBC_SETTINGS = (("M_MMAP_MAX", M_MMAP_MAX, 0), ("M_TRIM_THRESHOLD", M_TRIM_THRESHOLD, -1))
# One 64K-token training step of the long-input reference model, this project's 2-core machine
# (benchmarks/results/train_step_allocator_{system,tuned,jemalloc}.json).
MEASURED = "glibc 48.6 s / 3.1 GiB, jemalloc 20.0 s / 3.8 GiB, tuned glibc 20.5 s / 8.7 GiB"


def find_jemalloc() -> str | None:
    return next((path for path in JEMALLOC_CANDIDATES if os.path.exists(path)), None)


def loaded_allocator(maps: str) -> str | None:
    """'jemalloc' or 'tcmalloc' when the process maps that library (`maps`: /proc/self/maps)."""
    return next((name for name in ("jemalloc", "tcmalloc") if f"lib{name}" in maps), None)


def decide(environ: Mapping[str, str], *, maps: str, jemalloc: str | None, is_glibc: bool) -> tuple[str, str]:
    """-> (action, why): "keep" (change nothing, quietly), "advise" (change nothing, say what
    jemalloc would do), "reexec" (under `jemalloc`) or "tune" (glibc)."""
    choice = environ.get(ALLOCATOR_VARIABLE, "auto") or "auto"
    if choice not in ALLOCATOR_CHOICES:
        raise ValueError(f"{ALLOCATOR_VARIABLE}={choice!r}: use one of {', '.join(ALLOCATOR_CHOICES)}.")
    loaded = loaded_allocator(maps)
    if choice == "system":
        return "keep", f"{ALLOCATOR_VARIABLE}=system"
    if loaded:
        return "keep", f"{loaded} is loaded"
    if not is_glibc:
        return "keep", "not glibc"
    if choice == "auto" and jemalloc and REEXECUTED_VARIABLE not in environ:
        return "reexec", f"{jemalloc} is installed"
    if choice == "tuned":
        return "tune", f"{ALLOCATOR_VARIABLE}=tuned"
    if jemalloc:
        return "advise", f"{jemalloc} did not load when preloaded"
    return "advise", "no libjemalloc installed"


def jemalloc_environment(environ: Mapping[str, str], library: str) -> dict[str, str]:
    """`environ` with `library` preloaded ahead of any LD_PRELOAD, and jemalloc's page decay off
    unless the user's own MALLOC_CONF says otherwise (see `JEMALLOC_CONF`)."""
    environment = dict(environ)
    environment["LD_PRELOAD"] = ":".join(filter(None, (library, environ.get("LD_PRELOAD"))))
    environment.setdefault("MALLOC_CONF", JEMALLOC_CONF)
    environment[REEXECUTED_VARIABLE] = "1"
    return environment


def tune_glibc() -> list[str]:
    """Apply `GLIBC_SETTINGS` to this process's glibc malloc; -> the settings, as 'NAME=value'."""
    libc = ctypes.CDLL(None)
    applied = []
    for name, parameter, value in GLIBC_SETTINGS:
        if libc.mallopt(parameter, value) != 1:
            raise OSError(f"mallopt({name}, {value}) failed; set {ALLOCATOR_VARIABLE}=system to skip it.")
        applied.append(f"{name}={value}")
    return applied


def configure_allocator() -> None:
    """Called first on the command line (never by `main()` as a library); prints what it did."""
    try:
        with open("/proc/self/maps") as handle:
            maps = handle.read()
    except OSError:
        maps = ""
    is_glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    library = find_jemalloc()
    action, why = decide(os.environ, maps=maps, jemalloc=library, is_glibc=is_glibc)
    off = f"{ALLOCATOR_VARIABLE}=system turns this off"
    if action == "reexec":
        conf = os.environ.get("MALLOC_CONF", JEMALLOC_CONF)
        say(f"re-running under jemalloc ({library}, MALLOC_CONF={conf}), which reuses freed memory "
            f"instead of zeroing fresh pages for every large tensor; {off}.")
        sys.stdout.flush()
        sys.stderr.flush()
        try:  # the same interpreter, options and arguments; the pid stays, so launchers see no change
            os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], jemalloc_environment(os.environ, library))
        except OSError as error:
            action, why = "tune", f"re-executing failed ({error})"
    if action == "advise":
        say(f"glibc malloc as it comes ({why}); long inputs train faster with jemalloc "
            f"(apt-get install libjemalloc2; used automatically): 64K step {MEASURED}; {off}.")
    if action == "tune":
        settings = tune_glibc()
        say(f"glibc malloc tuned ({', '.join(settings)}; {why}): freed blocks stay in the heap for reuse "
            f"instead of fresh zeroed pages, at the cost of peak memory (64K step {MEASURED}); {off}.")


def say(message: str) -> None:
    if os.environ.get("LOCAL_RANK", "0") == "0":  # once per machine under torchrun/accelerate
        print(f"allocator: {message}", file=sys.stderr, flush=True)
