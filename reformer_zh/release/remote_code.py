"""The model code a checkpoint folder carries so that it loads with `trust_remote_code=True`
where this project is not installed: which of the project's files, and writing them there.

Git holds one copy of every line (issue 45): the shipped model's folder,
reformer_zh/reference_model/, is committed without code. Its code is written from
modeling_reformer_zh/ and tokenization/ when the wheel is built (setup.py) and, in a checkout,
when `reference_model_dir()` hands the folder out (the copies are git-ignored there), as
`save_pretrained` writes it into every checkpoint it saves. Standard library only: setup.py
loads this file while building, before anything is installed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the checkout, or site-packages in an installation


def remote_code_files(root: Path = PROJECT_ROOT) -> list[Path]:
    """The model's modules (each loaded from the folder by file name, so not the package's
    __init__), the pipeline and its section finder among them, and the tokenizer's module."""
    model = sorted(path for path in (root / "modeling_reformer_zh").glob("*.py") if path.name != "__init__.py")
    return [*model, root / "tokenization" / "tokenization_reformer_zh.py"]


def write_remote_code(folder: Path, root: Path = PROJECT_ROOT) -> list[str]:
    """Make `folder`'s Python files the project's remote code: copy each where it is missing or
    differs, and remove a `.py` file the project no longer has (a module renamed or merged since
    the copies were written, which a wheel built from this folder would otherwise carry);
    -> the names written."""
    sources = remote_code_files(root)
    for left_over in sorted(set(Path(folder).glob("*.py")) - {Path(folder) / source.name for source in sources}):
        left_over.unlink()
    written = []
    for source in sources:
        target = Path(folder) / source.name
        if not target.is_file() or target.read_bytes() != source.read_bytes():
            shutil.copyfile(source, target)
            written.append(source.name)
    return written
