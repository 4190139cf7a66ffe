"""The training process's memory in every log line: `rss_gib` (resident now) and `peak_rss_gib`
(the most it has held), from /proc/self/status (Linux; elsewhere nothing is added).

Why: the machines this project trains on have 24 GiB and no swap. A process that grows towards
that does not fail cleanly: the machine stops answering and the run dies without a word in its
log. A run whose batches change shape can grow so under jemalloc with page decay off
(reformer_zh/allocator.py, `JEMALLOC_CONF`, where the numbers are); these numbers in the log say
whether a run is heading there before it does.
"""

from __future__ import annotations

from pathlib import Path

from transformers import TrainerCallback

STATUS = Path("/proc/self/status")
FIELDS = {"VmRSS": "rss_gib", "VmHWM": "peak_rss_gib"}


def memory_gib(status: str) -> dict[str, float]:
    """{"rss_gib", "peak_rss_gib"} from the text of /proc/<pid>/status (sizes in kB there)."""
    found = {}
    for line in status.splitlines():
        name, _, value = line.partition(":")
        if name in FIELDS and value.strip().endswith("kB"):
            found[FIELDS[name]] = round(int(value.split()[0]) / 2**20, 2)
    return found


class MemoryLogCallback(TrainerCallback):
    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is not None and "loss" in logs and STATUS.is_file():
            logs.update(memory_gib(STATUS.read_text()))
