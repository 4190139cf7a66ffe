"""`reformer-zh-publish` from a checkout, without installing: the command is reformer_zh/release/publish.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reformer_zh.commands import publish  # noqa: E402

publish()
