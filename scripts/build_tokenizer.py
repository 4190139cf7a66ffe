"""`reformer-zh-build-tokenizer` from a checkout, without installing: the command is reformer_zh/training/build_tokenizer.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reformer_zh.commands import build_tokenizer  # noqa: E402

build_tokenizer()
