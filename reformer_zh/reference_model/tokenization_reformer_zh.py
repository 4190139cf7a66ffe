"""Chinese tokenizer for reformer-zh: jieba words with character fallback.

Self-contained (imports only the standard library, transformers and jieba) so that it travels as
Hub remote code next to the model.

Pipeline, for both segmentation modes:

1. Normalise: NFKC (full-width letters and digits to ASCII; full-width punctuation and the
   ellipsis are kept as written with `keep_cjk_punctuation`, so "记者：李小明（北京）说，“你好！”"
   decodes as written), control and format characters removed,
   optional lowercasing of ASCII letters, whitespace collapsed. A space survives only between
   two ASCII letters or digits: Chinese needs none, and this is what lets `decode` restore the
   normalised text exactly. With `keep_line_breaks`, whitespace holding a line break becomes
   "\n" (one break: a new paragraph) or "\n\n" (two or more: a blank line, which separates the
   stories of an xwlb evening), and each "\n" is one `[NL]` token that `decode` turns back into
   "\n"; without it, line breaks are spaces like any other whitespace.
2. Split into runs: *alphanumeric runs* (ASCII letters and digits, with decimal points inside
   numbers: "iphone15", "2.4", "21.59") and *other runs* (Chinese, punctuation, symbols, emoji).
3. Other runs: word mode segments them with jieba (precise mode); a word in the vocabulary is one
   token, a word outside it falls back to its characters. Char mode takes every character alone.
   Only a character outside the vocabulary becomes `[UNK]`.
4. Alphanumeric runs: one token when in the vocabulary, else greedy longest-match pieces where
   every piece after the first carries the `##` continuation prefix (WordPiece convention), so
   `decode` knows which pieces belong to one word.

`decode` joins tokens without spaces, except for one space between two tokens that end and start
with a letter or digit (and are not a `##` continuation).
"""

from __future__ import annotations

import os
import re
import shutil
import unicodedata
from typing import Any

from transformers import PreTrainedTokenizer

VOCAB_FILES_NAMES = {"vocab_file": "vocab.txt", "user_dict_file": "jieba_user_dict.txt"}
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[BOS]", "[EOS]", "[MASK]")  # ids 0..4, in this order
# A line break. An ordinary vocabulary token, not a special one: `skip_special_tokens=True` (the
# pipeline's decoding) must keep a summary's paragraphs. A vocabulary file holds one token per
# line, so "\n" itself cannot be a line of it.
LINE_BREAK = "[NL]"
LINE_BREAK_CHARACTERS = "\n\r\x0b\x0c\x85\u2028\u2029"  # what str.splitlines breaks at
CONTINUATION = "##"
SEGMENTATIONS = ("word", "char")

ALNUM_RUN = re.compile(r"[A-Za-z0-9]+(?:\.[0-9][A-Za-z0-9]*)*")  # maximal: two runs never touch
ASCII_ALNUM = re.compile(r"[A-Za-z0-9]")
SPACES = re.compile(r"\s+")
MAX_LINE_BREAKS = 2  # "\n\n\n" and more are a blank line, like "\n\n"
ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
# Full-width punctuation and symbols (！＂＃ ... ／, ：；＜＝＞？＠, ［＼］＾＿｀, ｛｜｝～｟｠) and the
# ellipses …/‥, which NFKC would turn into ASCII: Chinese text writes them full-width.
CJK_PUNCTUATION = re.compile("([\uFF01-\uFF0F\uFF1A-\uFF20\uFF3B-\uFF40\uFF5B-\uFF60\u2025\u2026]+)")


def is_ascii_alnum(character: str) -> bool:
    return bool(character) and character.isascii() and character.isalnum()


def collapse_whitespace(run: re.Match) -> str:
    """A run of whitespace -> " ", or up to `MAX_LINE_BREAKS` "\n" when it holds line breaks."""
    breaks = sum(character == "\n" for character in run.group())
    return "\n" * min(breaks, MAX_LINE_BREAKS) if breaks else " "


def normalize_text(
    text: str, lowercase: bool = True, keep_cjk_punctuation: bool = True, keep_line_breaks: bool = False
) -> str:
    """NFKC (but for `CJK_PUNCTUATION` when `keep_cjk_punctuation`), control/format characters
    out, ASCII lowercased, spaces kept only between two ASCII letters or digits, line breaks kept
    as one or two "\n" when `keep_line_breaks` (see the module docstring)."""
    if keep_line_breaks:
        text = text.replace("\r\n", "\n")
    if keep_cjk_punctuation:
        pieces = CJK_PUNCTUATION.split(text)  # odd indices: the kept punctuation
        text = "".join(piece if index % 2 else unicodedata.normalize("NFKC", piece) for index, piece in enumerate(pieces))
    else:
        text = unicodedata.normalize("NFKC", text)
    characters = []
    for character in text:
        category = unicodedata.category(character)
        if character.isspace():
            characters.append("\n" if keep_line_breaks and character in LINE_BREAK_CHARACTERS else " ")
        elif category[0] == "C":  # control, format (zero-width), private use, surrogates, unassigned
            continue
        else:
            characters.append(character)
    text = SPACES.sub(collapse_whitespace, "".join(characters)).strip()
    if lowercase:
        text = text.translate(ASCII_LOWER)
    if " " not in text:
        return text
    pieces = text.split(" ")
    kept = [pieces[0]]
    for piece in pieces[1:]:
        separator = " " if is_ascii_alnum(kept[-1][-1:]) and is_ascii_alnum(piece[:1]) else ""
        kept.append(separator + piece)
    return "".join(kept)


def split_runs(text: str) -> list[tuple[str, bool]]:
    """Normalised text -> [(run, is_alphanumeric)], spaces dropped."""
    runs: list[tuple[str, bool]] = []
    position = 0
    for match in ALNUM_RUN.finditer(text):
        if match.start() > position:
            runs.append((text[position : match.start()], False))
        runs.append((match.group(), True))
        position = match.end()
    if position < len(text):
        runs.append((text[position:], False))
    return [(run.replace(" ", ""), alnum) for run, alnum in runs if run.strip()]


def alnum_pieces(run: str, vocab: dict[str, int]) -> list[str]:
    """Greedy longest match, `##` on every piece after the first; a character with no piece
    becomes its bare (or `##`) character, which `_convert_token_to_id` maps to `[UNK]`."""
    if run in vocab:
        return [run]
    pieces = []
    start = 0
    while start < len(run):
        prefix = CONTINUATION if start else ""
        end = len(run)
        while end > start + 1 and prefix + run[start:end] not in vocab:
            end -= 1
        pieces.append(prefix + run[start:end])
        start = end
    return pieces


def load_vocab(vocab_file: str) -> dict[str, int]:
    with open(vocab_file, encoding="utf-8") as handle:
        tokens = handle.read().split("\n")
    if tokens and tokens[-1] == "":
        tokens.pop()
    vocab: dict[str, int] = {}
    for index, token in enumerate(tokens):
        if token in vocab:
            raise ValueError(f"{vocab_file}: token {token!r} appears twice (lines {vocab[token] + 1} and {index + 1}).")
        vocab[token] = index
    return vocab


class ReformerZhTokenizer(PreTrainedTokenizer):
    """jieba word tokenizer with character fallback (word mode) or a character tokenizer (char mode).

    Args:
        vocab_file: one token per line; the line number is the id. `[PAD]` must be id 0.
        user_dict_file: an optional jieba user dictionary, saved with the tokenizer and used after
            loading.
        segmentation: "word" (jieba) or "char".
        lowercase: lowercase ASCII letters during normalisation.
        keep_cjk_punctuation: keep full-width punctuation as written instead of folding it to
            ASCII with NFKC. `scripts/build_tokenizer.py` builds tokenizers with True; the default
            False is what tokenizers saved before the option existed were built with.
        keep_line_breaks: keep paragraphs: a line break is the `[NL]` token (two for a blank
            line), which the vocabulary must hold; decoding restores "\n". Without it a line break
            is a space. `scripts/build_tokenizer.py` builds tokenizers with True; the default False
            is what older tokenizers (whose vocabularies lack `[NL]`) were built with.
    """

    vocab_files_names = VOCAB_FILES_NAMES
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(
        self,
        vocab_file: str,
        user_dict_file: str | None = None,
        segmentation: str = "word",
        lowercase: bool = True,
        keep_cjk_punctuation: bool = False,
        keep_line_breaks: bool = False,
        pad_token: str = "[PAD]",
        unk_token: str = "[UNK]",
        bos_token: str = "[BOS]",
        eos_token: str = "[EOS]",
        mask_token: str = "[MASK]",
        **kwargs: Any,
    ) -> None:
        if segmentation not in SEGMENTATIONS:
            raise ValueError(f"`segmentation` must be one of {list(SEGMENTATIONS)}, got {segmentation!r}.")
        self.vocab = load_vocab(vocab_file)
        # from_pretrained passes the special tokens as AddedToken objects
        if self.vocab.get(str(pad_token)) != 0:
            raise ValueError(f"{vocab_file}: `{pad_token}` must be the first line (id 0); the model pads with id 0.")
        missing = [str(t) for t in (unk_token, bos_token, eos_token, mask_token) if str(t) not in self.vocab]
        if missing:
            raise ValueError(f"{vocab_file} lacks the special token(s) {missing}; rebuild it with scripts/build_tokenizer.py.")
        if keep_line_breaks and LINE_BREAK not in self.vocab:
            raise ValueError(
                f"keep_line_breaks=True needs the line-break token {LINE_BREAK} in {vocab_file}; rebuild the vocabulary "
                "with scripts/build_tokenizer.py, or load with keep_line_breaks=False (line breaks become spaces)."
            )
        self.ids_to_tokens = {index: token for token, index in self.vocab.items()}
        self.vocab_file = vocab_file
        self.user_dict_file = user_dict_file
        self.segmentation = segmentation
        self.lowercase = lowercase
        self.keep_cjk_punctuation = keep_cjk_punctuation
        self.keep_line_breaks = keep_line_breaks
        self._jieba = None
        kwargs.setdefault("special_tokens_pattern", "eos")
        kwargs.setdefault("clean_up_tokenization_spaces", False)
        super().__init__(
            segmentation=segmentation,
            lowercase=lowercase,
            keep_cjk_punctuation=keep_cjk_punctuation,
            keep_line_breaks=keep_line_breaks,
            pad_token=pad_token,
            unk_token=unk_token,
            bos_token=bos_token,
            eos_token=eos_token,
            mask_token=mask_token,
            **kwargs,
        )

    # -- jieba: a private instance, built lazily, never pickled (it holds a lock) ------------------

    @property
    def jieba(self):
        if self._jieba is None:
            import logging

            import jieba

            jieba.setLogLevel(logging.WARNING)
            segmenter = jieba.Tokenizer()
            if self.user_dict_file:
                segmenter.load_userdict(self.user_dict_file)
            self._jieba = segmenter
        return self._jieba

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_jieba"] = None
        return state

    # -- vocabulary --------------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def get_vocab(self) -> dict[str, int]:
        return {**self.vocab, **self.added_tokens_encoder}

    def _convert_token_to_id(self, token: str) -> int:
        return self.vocab.get(token, self.vocab[self.unk_token])

    def _convert_id_to_token(self, index: int) -> str:
        return self.ids_to_tokens.get(index, self.unk_token)

    # -- text to tokens ----------------------------------------------------------------------------

    def normalize(self, text: str) -> str:
        return normalize_text(
            text, lowercase=self.lowercase, keep_cjk_punctuation=self.keep_cjk_punctuation,
            keep_line_breaks=self.keep_line_breaks,
        )

    def _tokenize(self, text: str, **kwargs: Any) -> list[str]:
        tokens: list[str] = []
        for index, line in enumerate(self.normalize(text).split("\n")):  # no "\n" without keep_line_breaks
            if index:
                tokens.append(LINE_BREAK)
            tokens.extend(self._tokenize_line(line))
        return tokens

    def _tokenize_line(self, text: str) -> list[str]:
        tokens: list[str] = []
        for run, is_alnum in split_runs(text):
            if is_alnum:
                tokens.extend(alnum_pieces(run, self.vocab))
            elif self.segmentation == "char":
                tokens.extend(run)
            else:
                for word in self.jieba.cut(run, HMM=True):
                    tokens.extend([word] if word in self.vocab else list(word))
        return tokens

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        text = ""
        for token in tokens:
            if token == LINE_BREAK and self.keep_line_breaks:
                text += "\n"
            elif token.startswith(CONTINUATION) and len(token) > len(CONTINUATION):
                text += token[len(CONTINUATION) :]
            elif is_ascii_alnum(text[-1:]) and is_ascii_alnum(token[:1]):
                text += " " + token
            else:
                text += token
        return text

    def build_inputs_with_special_tokens(self, token_ids_0: list[int], token_ids_1: list[int] | None = None) -> list[int]:
        """`text [EOS]`, or `a [EOS] b [EOS]` for a pair."""
        eos = [self.eos_token_id]
        return token_ids_0 + eos if token_ids_1 is None else token_ids_0 + eos + token_ids_1 + eos

    def get_special_tokens_mask(self, token_ids_0, token_ids_1=None, already_has_special_tokens: bool = False):
        if already_has_special_tokens:
            return [int(token in self.all_special_ids) for token in token_ids_0]
        mask = [0] * len(token_ids_0) + [1]
        return mask if token_ids_1 is None else mask + [0] * len(token_ids_1) + [1]

    # -- saving ------------------------------------------------------------------------------------

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, ...]:
        prefix = f"{filename_prefix}-" if filename_prefix else ""
        vocab_path = os.path.join(save_directory, prefix + VOCAB_FILES_NAMES["vocab_file"])
        with open(vocab_path, "w", encoding="utf-8") as handle:
            for token, _ in sorted(self.vocab.items(), key=lambda item: item[1]):
                handle.write(token + "\n")
        saved = [vocab_path]
        if self.user_dict_file:
            user_dict_path = os.path.join(save_directory, prefix + VOCAB_FILES_NAMES["user_dict_file"])
            if os.path.abspath(self.user_dict_file) != os.path.abspath(user_dict_path):
                shutil.copyfile(self.user_dict_file, user_dict_path)
            saved.append(user_dict_path)
        return tuple(saved)


__all__ = ["ReformerZhTokenizer", "normalize_text", "split_runs", "SPECIAL_TOKENS", "LINE_BREAK"]
