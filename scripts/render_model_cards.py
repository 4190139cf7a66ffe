"""Write the filled model cards of the reference configurations (model_cards/reformer-zh-*.md).

    python scripts/render_model_cards.py

Each card is reformer_zh/release/model_card_template.md filled from a preset of scripts/train.py with a 32,000-token
word tokenizer; evaluation sections stay empty until a checkpoint is trained and published
(scripts/publish.py fills them from its all_results.json).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from reformer_zh.release import publish  # noqa: E402
from reformer_zh.training.train import CONFIG_PRESETS  # noqa: E402

import modeling_reformer_zh  # noqa: E402

REFERENCE = {
    "small": ("reformer-zh-small", ["lcsts", "csl"]),
    "long": ("reformer-zh-long", ["vcsum", "cail2020_sfzy"]),
}


def main(argv: list[str] | None = None) -> None:
    for preset, (name, datasets) in REFERENCE.items():
        config = modeling_reformer_zh.ReformerZhConfig(vocab_size=32000, **CONFIG_PRESETS[preset])
        model = modeling_reformer_zh.ReformerZhForConditionalGeneration(config)
        path = ROOT / "model_cards" / f"{name}.md"
        publish.write_card(path, None, f"YOUR_USER/{name}", datasets, config.to_dict(),
                           sum(p.numel() for p in model.parameters()),
                           "`ReformerZhTokenizer`, word mode (jieba words with character fallback), 32,000 tokens")
        print(f"wrote {path}")


if __name__ == "__main__":
    from reformer_zh.cli import run_command

    run_command(main)
