"""`reformer-zh-summarize` from a checkout, without installing: the command is reformer_zh/serving/summarize.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reformer_zh.commands import summarize  # noqa: E402

summarize()
