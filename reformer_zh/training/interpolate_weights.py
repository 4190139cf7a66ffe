"""A checkpoint whose weights lie between a model and a fine-tune of it (weight-space ensembling,
WiSE-FT: Wortsman et al. 2022, "Robust fine-tuning of zero-shot models"):

    weights = base_share * base + (1 - base_share) * tuned

A fine-tune that learns new kinds of document (issue 43's general model, from the shipped story
model) also forgets some of what the base did best; the two sit in one basin of the loss, so a
point between them can keep most of both. `base_share` is chosen on validation
(benchmarks/yardstick.py). The checkpoint written is the tuned one (its config, generation
config, tokenizer and story-boundary model: what it reads and how long it writes; the records
of the run that trained it) with the mixed weights, and `interpolation.json` says what was mixed
(the shipped model's card names it):

    python -m reformer_zh.training.interpolate_weights --base reformer_zh/reference_model \\
        --tuned outputs/general --base_share 0.5 --output_dir outputs/general-soup
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch


# what the run that trained the fine-tune wrote of itself, which shipping reads (release/reference_model.py)
TRAINING_RECORDS = ("recipe_results.json", "training_summary.json", "all_results.json")


def interpolated_state(base: dict[str, torch.Tensor], tuned: dict[str, torch.Tensor],
                       base_share: float) -> dict[str, torch.Tensor]:
    """Every floating-point tensor mixed in fp32 and returned in the tuned tensor's dtype; any
    other (an integer buffer) is the tuned one. The two must hold the same names and shapes:
    models of different architectures have no meaningful midpoint."""
    if not 0.0 <= base_share <= 1.0:
        raise ValueError(f"base_share must be between 0 and 1, got {base_share}.")
    if base.keys() != tuned.keys():
        only = sorted(base.keys() ^ tuned.keys())
        raise ValueError(f"the two checkpoints hold different weights ({len(only)} not in both, e.g. {only[0]!r}): "
                         "interpolate a model with a fine-tune of it.")
    mixed = {}
    for name, tuned_tensor in tuned.items():
        if base[name].shape != tuned_tensor.shape:
            raise ValueError(f"{name} is {tuple(base[name].shape)} in the base and {tuple(tuned_tensor.shape)} in "
                             "the fine-tune: interpolate a model with a fine-tune of it.")
        if tuned_tensor.is_floating_point():
            value = base_share * base[name].float() + (1.0 - base_share) * tuned_tensor.float()
            mixed[name] = value.to(tuned_tensor.dtype)
        else:
            mixed[name] = tuned_tensor
    return mixed


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the model fine-tuned (a checkpoint folder)")
    parser.add_argument("--tuned", required=True, help="the fine-tune of it (a checkpoint folder)")
    parser.add_argument("--base_share", type=float, required=True, help="0: the fine-tune, 1: the base")
    parser.add_argument("--output_dir", required=True)
    args = parser.parse_args(argv)
    if Path(args.output_dir).resolve() in {Path(args.base).resolve(), Path(args.tuned).resolve()}:
        parser.exit(2, "error: --output_dir is one of the checkpoints mixed; write the mixture elsewhere.\n")
    from transformers import AutoTokenizer

    # importing the package registers its tokenizer with AutoTokenizer
    from modeling_reformer_zh import ReformerZhForConditionalGeneration
    from reformer_zh.release.publish import check_checkpoint

    for folder in (args.base, args.tuned):
        check_checkpoint(Path(folder))  # weights, config and tokenizer, each named when missing

    tuned = ReformerZhForConditionalGeneration.from_pretrained(args.tuned)
    base = ReformerZhForConditionalGeneration.from_pretrained(args.base)
    tuned.load_state_dict(interpolated_state(base.state_dict(), tuned.state_dict(), args.base_share))
    tuned.save_pretrained(args.output_dir)
    AutoTokenizer.from_pretrained(args.tuned).save_pretrained(args.output_dir)
    for name in TRAINING_RECORDS:
        if (Path(args.tuned) / name).is_file():
            shutil.copyfile(Path(args.tuned) / name, Path(args.output_dir) / name)
    record = {"base": args.base, "tuned": args.tuned, "base_share": args.base_share,
              "command": "python -m reformer_zh.training.interpolate_weights "
                         + " ".join(sys.argv[1:] if argv is None else argv)}
    (Path(args.output_dir) / "interpolation.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record))
    return record


if __name__ == "__main__":
    from reformer_zh.cli import run_command

    run_command(main)
