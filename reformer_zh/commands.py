"""The console scripts `pip install reformer-zh` puts on the PATH ([project.scripts] in
pyproject.toml), and what `python scripts/<tool>.py` runs from a checkout.

Each command ends a user's mistake with one `error:` line and status 2 (reformer_zh/cli.py).
The training commands pick the memory allocator first (reformer_zh/allocator.py): it may
re-execute the process under jemalloc, so it runs before the training module imports torch.
"""

from __future__ import annotations

import importlib
import os


def run(module_name: str, *, pick_allocator: bool = False) -> None:
    """Run `reformer_zh.<module_name>`'s main (module_name: "<subpackage>.<module>")."""
    if pick_allocator:
        from reformer_zh.allocator import configure_allocator

        configure_allocator()
    module = importlib.import_module(f"reformer_zh.{module_name}")
    if pick_allocator:
        import torch

        # torch sizes its pool from the cores; OMP_NUM_THREADS (the Makefile sets 2) wins when given
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    from reformer_zh.cli import run_command

    run_command(module.main)


def train() -> None:
    """reformer-zh-train: fine-tune or train with Seq2SeqTrainer (run_summarization's flags)."""
    run("training.train", pick_allocator=True)


def pretrain() -> None:
    """reformer-zh-pretrain: denoising pre-training on raw Chinese text."""
    run("training.pretrain", pick_allocator=True)


def summarize() -> None:
    """reformer-zh-summarize: summarize documents with a checkpoint."""
    run("serving.summarize")


def publish() -> None:
    """reformer-zh-publish: validate a checkpoint and push it, with its code and card, to the Hub."""
    run("release.publish")


def build_tokenizer() -> None:
    """reformer-zh-build-tokenizer: build a character or word tokenizer from a corpus."""
    run("training.build_tokenizer")


def baselines() -> None:
    """reformer-zh-baselines: score the extractive baselines on data files."""
    run("evaluation.baselines")


def serve() -> None:
    """reformer-zh-serve: a local page that summarizes and shows where each summary character came from."""
    run("serving.serve")
