"""The jieba/character tokenizer: normalisation, pinned segmentations, round trips, save/load,
remote code, batching, pickling, and a vocabulary built from the shared LCSTS data."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

import modeling_reformer_zh  # noqa: F401  (registers AutoTokenizer)
from tokenization import ReformerZhTokenizer, normalize_text
from tokenization.build_vocab import build_tokenizer
from transformers import AutoTokenizer

from reformer_zh.release.publish import BLOCK_PROJECT_IMPORTS  # scripts/ is on the path (conftest)

LCSTS = Path(__file__).resolve().parents[2] / "shared" / "data" / "lcsts"
ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
WORDS = ["李小明", "北京大学", "公里", "苹果", "发布", "小米", "售价", "万元", "2024", "2.4", "iphone", "macbook",
         "郑州", "房妹", "一家", "中文", "大学"]
CJK = "李小明在北京大学读书全程公里年月日苹果发布和售价万元郑州房妹一家你好中文的人"
PUNCTUATION = ",.!?、。:;()-%"
SPECIALS = ["[PAD]", "[UNK]", "[BOS]", "[EOS]", "[MASK]"]


def write_vocab(folder: Path, extra: str = "") -> Path:
    characters = list(dict.fromkeys(CJK + ALNUM + PUNCTUATION + extra))
    tokens = SPECIALS + characters + ["##" + c for c in ALNUM + "."] + WORDS
    path = folder / "vocab.txt"
    path.write_text("\n".join(dict.fromkeys(tokens)) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def vocab_file(tmp_path_factory) -> Path:
    return write_vocab(tmp_path_factory.mktemp("vocab"))


@pytest.fixture(scope="module")
def word_tokenizer(vocab_file) -> ReformerZhTokenizer:
    return ReformerZhTokenizer(vocab_file=str(vocab_file))


@pytest.fixture(scope="module")
def char_tokenizer(vocab_file) -> ReformerZhTokenizer:
    return ReformerZhTokenizer(vocab_file=str(vocab_file), segmentation="char")


SEGMENTATIONS = [
    # text, word mode, char mode
    ("李小明在北京大学读书", ["李小明", "在", "北京大学", "读", "书"], list("李小明在北京大学读书")),
    ("全程2.4公里", ["全", "程", "2.4", "公里"], ["全", "程", "2.4", "公", "里"]),
    ("2024年3月15日", ["2024", "年", "3", "月", "1", "##5", "日"], ["2024", "年", "3", "月", "1", "##5", "日"]),
    ("苹果发布iPhone15和MacBook Pro",
     ["苹果", "发布", "iphone", "##1", "##5", "和", "macbook", "p", "##r", "##o"],
     ["苹", "果", "发", "布", "iphone", "##1", "##5", "和", "macbook", "p", "##r", "##o"]),
    ("小米SU7售价21.59万元",
     ["小米", "s", "##u", "##7", "售价", "2", "##1", "##.", "##5", "##9", "万元"],
     ["小", "米", "s", "##u", "##7", "售", "价", "2", "##1", "##.", "##5", "##9", "万", "元"]),
    ("ＡＢＣ１２３，你好！", ["a", "##b", "##c", "##1", "##2", "##3", ",", "你", "好", "!"],
     ["a", "##b", "##c", "##1", "##2", "##3", ",", "你", "好", "!"]),
]


@pytest.mark.parametrize("text,word,char", SEGMENTATIONS, ids=[row[0] for row in SEGMENTATIONS])
def test_pinned_segmentations(word_tokenizer, char_tokenizer, text, word, char):
    assert word_tokenizer.tokenize(text) == word
    assert char_tokenizer.tokenize(text) == char


def test_normalisation():
    assert normalize_text("ＡＢＣ　１２３") == "abc 123"  # full-width to half-width, ASCII lowercased
    assert normalize_text("中 文  abc   def 中") == "中文abc def中"  # a space survives only between letters/digits
    assert normalize_text("a\u200bb\x00c\n\td") == "abc d"  # zero-width and control characters removed
    assert normalize_text("") == ""
    assert normalize_text("ABC", lowercase=False) == "ABC"


def test_special_tokens_and_eos(word_tokenizer):
    assert word_tokenizer.pad_token_id == 0
    assert [word_tokenizer.convert_ids_to_tokens(i) for i in range(5)] == SPECIALS
    ids = word_tokenizer("北京大学").input_ids
    assert ids[-1] == word_tokenizer.eos_token_id
    assert word_tokenizer.decode(ids, skip_special_tokens=True) == "北京大学"
    assert word_tokenizer("").input_ids == [word_tokenizer.eos_token_id]


def test_unknown_characters_become_unk_and_nothing_is_dropped(word_tokenizer):
    ids = word_tokenizer("北京大学😀中文繁體", add_special_tokens=False).input_ids
    assert word_tokenizer.convert_ids_to_tokens(ids) == ["北京大学", "[UNK]", "中文", "[UNK]", "[UNK]"]
    assert word_tokenizer.decode(ids) == "北京大学[UNK]中文[UNK][UNK]"


TEXT = st.text(
    alphabet=st.sampled_from(list(CJK + ALNUM + ALNUM.upper() + PUNCTUATION + "ＡＢ１２，！　 \t\n")), max_size=60
)


@settings(max_examples=150, deadline=None)
@given(text=TEXT)
def test_in_vocabulary_text_round_trips(word_tokenizer, char_tokenizer, text):
    """Tokenizers saved before `keep_cjk_punctuation` existed (its default False) fold it to ASCII."""
    normalised = normalize_text(text, keep_cjk_punctuation=False)
    for tokenizer in (word_tokenizer, char_tokenizer):
        ids = tokenizer(text, add_special_tokens=False).input_ids
        assert tokenizer.unk_token_id not in ids
        assert tokenizer.decode(ids) == normalised


@settings(max_examples=100, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list(CJK[:10] + "ab1 😀🎉繁體\u0301\x07")), max_size=40))
def test_out_of_vocabulary_characters_come_back_as_unk_in_place(word_tokenizer, text):
    normalised = normalize_text(text)
    ids = word_tokenizer(text, add_special_tokens=False).input_ids
    expected = "".join(c if c in word_tokenizer.vocab or c == " " else "[UNK]" for c in normalised)
    assert word_tokenizer.decode(ids) == expected


def test_out_of_vocabulary_words_fall_back_to_their_characters(word_tokenizer):
    # jieba makes one word of 读书 and of 你好; neither is in the vocabulary, their characters are
    assert word_tokenizer.tokenize("读书你好") == ["读", "书", "你", "好"]


def test_batch_call_with_targets_and_padding(word_tokenizer):
    batch = word_tokenizer(
        ["李小明在北京大学读书全程2.4公里", "全程2.4公里"],
        text_target=["北京大学", "公里"],
        max_length=8,
        truncation=True,
        padding="longest",
        pad_to_multiple_of=4,
    )
    eos = word_tokenizer.eos_token_id
    assert [len(ids) for ids in batch["input_ids"]] == [8, 8]
    assert batch["input_ids"][0][-1] == eos  # truncated from 10 to 8, [EOS] kept
    assert batch["attention_mask"][1] == [1, 1, 1, 1, 1, 0, 0, 0]
    assert batch["labels"] == [[word_tokenizer.vocab["北京大学"], eos, 0, 0], [word_tokenizer.vocab["公里"], eos, 0, 0]]


def test_pickles_and_maps_in_parallel(word_tokenizer):
    import datasets

    clone = pickle.loads(pickle.dumps(word_tokenizer))
    assert clone("李小明在北京大学读书").input_ids == word_tokenizer("李小明在北京大学读书").input_ids
    dataset = datasets.Dataset.from_dict({"text": [row[0] for row in SEGMENTATIONS] * 4})
    mapped = dataset.map(lambda batch: word_tokenizer(batch["text"]), batched=True, batch_size=4, num_proc=2)
    assert mapped["input_ids"] == [word_tokenizer(text).input_ids for text in dataset["text"]]


def test_save_load_round_trip_and_auto_tokenizer(word_tokenizer, tmp_path):
    word_tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert isinstance(loaded, ReformerZhTokenizer)
    for text, _, _ in SEGMENTATIONS:
        assert loaded(text).input_ids == word_tokenizer(text).input_ids
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["segmentation"] == "word"
    assert config["auto_map"]["AutoTokenizer"][0] == "tokenization_reformer_zh.ReformerZhTokenizer"
    assert (tmp_path / "tokenization_reformer_zh.py").exists()


def test_user_dictionary_is_saved_and_used_after_loading(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("量子猫咖啡开业了\n量子猫咖啡很好喝\n" * 3, encoding="utf-8")
    user_dict = tmp_path / "user.txt"
    user_dict.write_text("量子猫咖啡 100 n\n", encoding="utf-8")
    plain = build_tokenizer(train_file=str(corpus), output_dir=str(tmp_path / "plain"), vocab_size=100, min_frequency=1)
    assert "量子猫咖啡" not in plain.tokenize("量子猫咖啡开业了")
    custom = build_tokenizer(train_file=str(corpus), output_dir=str(tmp_path / "custom"), vocab_size=100,
                             min_frequency=1, user_dict_file=str(user_dict))
    assert custom.tokenize("量子猫咖啡开业了")[0] == "量子猫咖啡"
    assert (tmp_path / "custom" / "jieba_user_dict.txt").exists()
    custom.save_pretrained(tmp_path / "resaved")
    loaded = AutoTokenizer.from_pretrained(tmp_path / "resaved")
    assert loaded.tokenize("量子猫咖啡开业了")[0] == "量子猫咖啡"


REMOTE_SCRIPT = BLOCK_PROJECT_IMPORTS + textwrap.dedent(
    """
    import sys
    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(sys.argv[1], trust_remote_code=True)
    print("REMOTE", type(tokenizer).__module__, tokenizer("李小明在北京大学读书").input_ids)
    """
)


def test_remote_code_load_without_the_project(word_tokenizer, tmp_path):
    word_tokenizer.save_pretrained(tmp_path)
    script = tmp_path / "load.py"
    script.write_text(REMOTE_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, cwd=tmp_path, timeout=300,
        env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")},
    )
    expected = word_tokenizer("李小明在北京大学读书").input_ids
    assert f"REMOTE transformers_modules" in result.stdout and str(expected) in result.stdout, result.stdout + result.stderr


def test_bad_vocab_files_fail_clearly(tmp_path):
    bad = tmp_path / "vocab.txt"
    bad.write_text("a\n[PAD]\n[UNK]\n[BOS]\n[EOS]\n[MASK]\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"\[PAD\].*id 0"):
        ReformerZhTokenizer(vocab_file=str(bad))
    bad.write_text("[PAD]\n[UNK]\n", encoding="utf-8")
    with pytest.raises(ValueError, match="lacks the special token"):
        ReformerZhTokenizer(vocab_file=str(bad))
    with pytest.raises(ValueError, match="segmentation"):
        ReformerZhTokenizer(vocab_file=str(bad), segmentation="bpe")


def test_build_tokenizer_rejects_bad_input(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty"):
        build_tokenizer(train_file=str(empty), output_dir=str(tmp_path / "out"))
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text('{"body": "中文"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"columns \['body'\]"):
        build_tokenizer(train_file=str(wrong), output_dir=str(tmp_path / "out"))
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9 中".encode("utf-8")[:-3] + b"\xe9\xff\n")
    with pytest.raises(ValueError, match="UTF-8"):
        build_tokenizer(train_file=str(latin1), output_dir=str(tmp_path / "out"))


@pytest.mark.skipif(not (LCSTS / "train.jsonl").exists(), reason=f"shared LCSTS data not found at {LCSTS}")
@pytest.mark.parametrize("segmentation", ["word", "char"])
def test_vocabulary_from_lcsts(tmp_path, segmentation):
    tokenizer = build_tokenizer(
        train_file=str(LCSTS / "train.jsonl"), output_dir=str(tmp_path), vocab_size=20000 if segmentation == "word" else 5000,
        min_frequency=2, segmentation=segmentation, num_proc=2,
    )
    assert tokenizer.vocab_size == (20000 if segmentation == "word" else 5000)
    unknown = total = 0
    for line in (LCSTS / "validation.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        for text in (row["document"], row["summary"]):
            ids = tokenizer(text, add_special_tokens=False).input_ids
            unknown += ids.count(tokenizer.unk_token_id)
            total += len(ids)
    rate = unknown / total
    print(f"LCSTS validation [UNK] rate ({segmentation} mode): {rate:.4%} of {total} tokens")
    if segmentation == "word":
        assert rate < 0.005


FULL_WIDTH_PUNCTUATION = "，。！？：；（）“”、…％"


@pytest.fixture(scope="module")
def punctuation_tokenizers(tmp_path_factory) -> list[ReformerZhTokenizer]:
    vocab = write_vocab(tmp_path_factory.mktemp("vocab_cjk"), extra=FULL_WIDTH_PUNCTUATION + "记者说增长")
    return [ReformerZhTokenizer(vocab_file=str(vocab), segmentation=mode, keep_cjk_punctuation=True)
            for mode in ("word", "char")]


def test_chinese_punctuation_decodes_as_written(punctuation_tokenizers, tmp_path):
    text = "记者：李小明（北京）说，“你好！”……增长4.1％"
    for tokenizer in punctuation_tokenizers:
        ids = tokenizer(text, add_special_tokens=False).input_ids
        assert tokenizer.unk_token_id not in ids
        assert tokenizer.decode(ids) == text, tokenizer.segmentation
        tokenizer.save_pretrained(tmp_path / tokenizer.segmentation)
        loaded = AutoTokenizer.from_pretrained(tmp_path / tokenizer.segmentation)
        assert loaded.keep_cjk_punctuation and loaded.decode(loaded(text, add_special_tokens=False).input_ids) == text
    # full-width letters, digits and spaces still fold
    assert normalize_text("ＡＢ１２　中文，") == "ab12中文，"


@settings(max_examples=100, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list(CJK + ALNUM + FULL_WIDTH_PUNCTUATION + "ＡＢ１２　 \n")), max_size=60))
def test_text_with_chinese_punctuation_round_trips(punctuation_tokenizers, text):
    for tokenizer in punctuation_tokenizers:
        ids = tokenizer(text, add_special_tokens=False).input_ids
        assert tokenizer.unk_token_id not in ids
        decoded = tokenizer.decode(ids)
        assert decoded == normalize_text(text)
        assert [c for c in decoded if c in FULL_WIDTH_PUNCTUATION] == [c for c in text if c in FULL_WIDTH_PUNCTUATION]


def test_built_tokenizers_keep_chinese_punctuation(tmp_path):
    rows = [{"document": "记者：李小明（北京）说，“你好！”", "summary": "你好！"}] * 3
    train_file = tmp_path / "train.jsonl"
    train_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    tokenizer = build_tokenizer(train_file=str(train_file), output_dir=str(tmp_path / "tok"), vocab_size=200,
                                min_frequency=1, segmentation="char")
    assert "：" in tokenizer.vocab and ":" not in tokenizer.vocab
    loaded = AutoTokenizer.from_pretrained(tmp_path / "tok")
    assert loaded.decode(loaded("李小明（北京）", add_special_tokens=False).input_ids) == "李小明（北京）"


# -- paragraphs: a line break is the [NL] token (one per "\n", at most two in a row) -------------


@pytest.fixture(scope="module")
def paragraph_tokenizers(tmp_path_factory) -> list[ReformerZhTokenizer]:
    folder = tmp_path_factory.mktemp("vocab_nl")
    vocab = write_vocab(folder, extra=FULL_WIDTH_PUNCTUATION)
    vocab.write_text(vocab.read_text(encoding="utf-8") + "[NL]\n", encoding="utf-8")
    return [ReformerZhTokenizer(vocab_file=str(vocab), segmentation=mode, keep_cjk_punctuation=True, keep_line_breaks=True)
            for mode in ("word", "char")]


def test_line_breaks_normalise_to_one_or_two():
    assert normalize_text("甲 \r\n 乙\n\n\n\n丙\u2029丁", keep_line_breaks=True) == "甲\n乙\n\n丙\n丁"
    assert normalize_text("\n\n甲\t\n", keep_line_breaks=True) == "甲"  # leading and trailing breaks go
    assert normalize_text("ab\ncd", keep_line_breaks=True) == "ab\ncd"
    assert normalize_text("甲\n\n乙 ab\ncd") == "甲乙ab cd"  # without the option: spaces, as before


def test_paragraphs_survive_tokenization(paragraph_tokenizers, tmp_path):
    evening = "李小明在北京大学读书。\n全程2.4公里。\n\n苹果发布iphone15。"
    for tokenizer in paragraph_tokenizers:
        tokens = tokenizer.tokenize(evening)
        assert tokens.count("[NL]") == 3 and tokens[tokens.index("[NL]") - 1] == "。"
        ids = tokenizer(evening).input_ids
        assert tokenizer.unk_token_id not in ids
        # the pipeline decodes with skip_special_tokens=True: the breaks are not special tokens
        assert tokenizer.decode(ids, skip_special_tokens=True) == evening, tokenizer.segmentation
        tokenizer.save_pretrained(tmp_path / tokenizer.segmentation)
        loaded = AutoTokenizer.from_pretrained(tmp_path / tokenizer.segmentation)
        assert loaded.keep_line_breaks and loaded.decode(loaded(evening).input_ids, skip_special_tokens=True) == evening


@settings(max_examples=100, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list(CJK[:12] + "ab12.，。 \n\r\t\u2028")), max_size=60))
def test_text_with_paragraphs_round_trips(paragraph_tokenizers, text):
    expected = normalize_text(text, keep_line_breaks=True)
    for tokenizer in paragraph_tokenizers:
        ids = tokenizer(text, add_special_tokens=False).input_ids
        assert tokenizer.unk_token_id not in ids
        assert tokenizer.decode(ids) == expected


def test_tokenizers_without_the_line_break_token(word_tokenizer, vocab_file):
    """Older vocabularies lack [NL]: line breaks stay spaces, and asking for them fails clearly."""
    assert "[NL]" not in word_tokenizer.tokenize("甲\n乙") and word_tokenizer.decode(
        word_tokenizer("ab\ncd", add_special_tokens=False).input_ids) == "ab cd"
    with pytest.raises(ValueError, match=r"keep_line_breaks=True needs the line-break token \[NL\]"):
        ReformerZhTokenizer(vocab_file=str(vocab_file), keep_line_breaks=True)


def test_built_tokenizers_keep_paragraphs(tmp_path):
    rows = [{"document": "第一段。\n第二段。\n\n第二条新闻。", "summary": "第一段；第二条"}] * 3
    train_file = tmp_path / "train.jsonl"
    train_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    for segmentation in ("word", "char"):
        tokenizer = build_tokenizer(train_file=str(train_file), output_dir=str(tmp_path / segmentation), vocab_size=200,
                                    min_frequency=1, segmentation=segmentation)
        assert tokenizer.convert_ids_to_tokens(5) == "[NL]" and "\n" not in "".join(tokenizer.vocab)
        loaded = AutoTokenizer.from_pretrained(tmp_path / segmentation)
        ids = loaded(rows[0]["document"]).input_ids
        assert loaded.unk_token_id not in ids and loaded.decode(ids, skip_special_tokens=True) == rows[0]["document"]
