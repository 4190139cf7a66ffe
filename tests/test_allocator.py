"""The allocator scripts/train.py picks on the command line (reformer_zh/allocator.py)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from utils import ROOT

sys.path.insert(0, str(ROOT / "scripts"))


JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


@pytest.mark.parametrize("environ,maps,jemalloc,is_glibc,action", [
    ({}, "", JEMALLOC, True, "reexec"),
    ({}, f"7f00-7f01 r-xp 0 08:01 1 {JEMALLOC}\n", JEMALLOC, True, "keep"),  # preloaded by the user
    ({}, "7f00-7f01 r-xp 0 08:01 1 /usr/lib/libtcmalloc_minimal.so.4\n", JEMALLOC, True, "keep"),
    ({"REFORMER_ZH_ALLOCATOR": "system"}, "", JEMALLOC, True, "keep"),
    ({"REFORMER_ZH_ALLOCATOR": "system"}, "", None, True, "keep"),
    ({"REFORMER_ZH_ALLOCATOR": "tuned"}, "", JEMALLOC, True, "tune"),
    ({}, "", None, True, "advise"),  # no jemalloc installed: glibc kept (tuning costs peak memory)
    ({"REFORMER_ZH_ALLOCATOR": "tuned"}, "", None, True, "tune"),
    ({"REFORMER_ZH_ALLOCATOR_REEXECUTED": "1"}, "", JEMALLOC, True, "advise"),  # the preload failed: no loop
    ({}, "", JEMALLOC, False, "keep"),  # musl, macOS, Windows
])
def test_allocator_decision_follows_the_environment(environ, maps, jemalloc, is_glibc, action):
    from reformer_zh import allocator

    assert allocator.decide(environ, maps=maps, jemalloc=jemalloc, is_glibc=is_glibc)[0] == action
    with pytest.raises(ValueError, match="REFORMER_ZH_ALLOCATOR='jemaloc': use one of auto, tuned, system"):
        allocator.decide({"REFORMER_ZH_ALLOCATOR": "jemaloc"}, maps="", jemalloc=None, is_glibc=True)


def test_allocator_jemalloc_environment_keeps_other_preloads_and_marks_the_reexecution():
    from reformer_zh import allocator

    environment = allocator.jemalloc_environment({"LD_PRELOAD": "/opt/libfoo.so", "PATH": "/bin"}, JEMALLOC)
    assert environment["LD_PRELOAD"] == f"{JEMALLOC}:/opt/libfoo.so"
    assert environment["MALLOC_CONF"] == "dirty_decay_ms:-1,muzzy_decay_ms:-1"
    # a user's own setting wins (page decay on, for runs whose shapes vary: allocator.JEMALLOC_CONF)
    mine = allocator.jemalloc_environment({"MALLOC_CONF": "dirty_decay_ms:10000"}, JEMALLOC)
    assert mine["MALLOC_CONF"] == "dirty_decay_ms:10000"
    assert environment["PATH"] == "/bin" and environment["REFORMER_ZH_ALLOCATOR_REEXECUTED"] == "1"


MALLINFO_PROBE = """
import ctypes, sys
sys.path.insert(0, "scripts")
from reformer_zh import allocator
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype, libc.malloc.restype, libc.free.argtypes = Info, ctypes.c_void_p, [ctypes.c_void_p]
if sys.argv[1] == "tuned":
    print(allocator.tune_glibc())
block = libc.malloc(256 << 20)
ctypes.memset(block, 1, 256 << 20)
mapped = libc.mallinfo2().hblkhd
libc.free(block)
print(mapped >> 20, libc.mallinfo2().arena >> 20)
"""


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt")
def test_allocator_mallopt_keeps_a_freed_large_block_in_the_heap():
    def probe(mode: str) -> list[str]:
        environment = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "GLIBC_TUNABLES")}
        result = subprocess.run([sys.executable, "-c", MALLINFO_PROBE, mode], capture_output=True, text=True, cwd=ROOT,
                                env=environment, check=True)
        return result.stdout.split("\n")

    mapped, heap_after_free = map(int, probe("system")[0].split())
    assert mapped >= 256 and heap_after_free < 256  # glibc as it comes: mmap'd, unmapped on free
    settings, sizes = probe("tuned")[:2]
    mapped, heap_after_free = map(int, sizes.split())
    assert mapped == 0 and heap_after_free >= 256  # tuned: from the heap, and kept there after free
    assert settings == "['M_MMAP_MAX=0', 'M_TRIM_THRESHOLD=-1']"


ALLOCATOR_PROBE = """
import sys
sys.path.insert(0, "scripts")
from reformer_zh.allocator import configure_allocator
configure_allocator()
print("jemalloc" if "libjemalloc" in open("/proc/self/maps").read() else "glibc", sys.argv[1:])
"""


@pytest.mark.skipif(not Path(JEMALLOC).exists(), reason="libjemalloc2 is not installed")
def test_allocator_reexecutes_once_under_jemalloc_with_the_same_arguments():
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("LD_PRELOAD", "REFORMER_ZH_ALLOCATOR", "REFORMER_ZH_ALLOCATOR_REEXECUTED")}
    result = subprocess.run([sys.executable, "-c", ALLOCATOR_PROBE, "a", "b c"], capture_output=True, text=True,
                            cwd=ROOT, env=environment, check=True)
    assert result.stdout.strip() == "jemalloc ['a', 'b c']"
    assert result.stderr.count("allocator: re-running under jemalloc") == 1, result.stderr
    result = subprocess.run([sys.executable, "-c", ALLOCATOR_PROBE], capture_output=True, text=True, cwd=ROOT,
                            env={**environment, "REFORMER_ZH_ALLOCATOR": "system"}, check=True)
    assert result.stdout.strip() == "glibc []" and "allocator:" not in result.stderr


def test_allocator_is_chosen_by_the_train_command_line():
    environment = {k: v for k, v in os.environ.items() if not k.startswith("REFORMER_ZH_ALLOCATOR")}
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), "--help"], capture_output=True,
                            text=True, cwd=ROOT, env={**environment, "LOCAL_RANK": "0"}, timeout=300)
    assert result.returncode == 0 and "--max_source_length" in result.stdout
    preloaded = any(name in os.environ.get("LD_PRELOAD", "") for name in ("jemalloc", "tcmalloc"))
    assert result.stderr.count("allocator: ") == (0 if preloaded or not GLIBC else 1), result.stderr
