"""`reformer-zh-baselines` from a checkout, without installing: the command is reformer_zh/evaluation/baselines.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reformer_zh.commands import baselines  # noqa: E402

baselines()
