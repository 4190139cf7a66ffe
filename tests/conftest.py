import os
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))
torch.set_num_threads(min(2, os.cpu_count() or 1))

import pytest


def pytest_collection_modifyitems(config, items):
    """`slow` tests (minutes of compilation, large inputs) run only with RUN_SLOW=1."""
    if os.environ.get("RUN_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow; set RUN_SLOW=1 to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Path:
    """A tiny checkpoint trained 12 steps on the sample data by scripts/train.py, shared read-only
    by the script and recipe tests (training it once per module would double their time)."""
    from reformer_zh import train
    from test_scripts import TINY

    output = tmp_path_factory.mktemp("run")
    # copy attention: after 12 steps it already writes varied summaries, which the order check needs
    train.main(TINY + ["--output_dir", str(output), "--do_train", "--do_eval", "--do_predict",
                       "--predict_with_generate", "--max_steps", "12", "--save_strategy", "no", "--num_beams", "2",
                       "--config_overrides", "copy_attention=true"])
    return output
