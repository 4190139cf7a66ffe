"""The project's Chinese tokenizer: jieba words with character fallback (see tokenization_reformer_zh)."""

from .tokenization_reformer_zh import ReformerZhTokenizer, normalize_text

# A saved tokenizer carries `auto_map` and this module, so it loads with trust_remote_code=True
# where the project is not installed.
ReformerZhTokenizer.register_for_auto_class("AutoTokenizer")

__all__ = ["ReformerZhTokenizer", "normalize_text"]
