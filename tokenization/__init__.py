"""The jieba-based Chinese tokenizer (issue 3) lives here."""
