"""`reformer-zh-train` from a checkout, without installing: the command is reformer_zh/training/train.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reformer_zh.commands import train  # noqa: E402

train()
