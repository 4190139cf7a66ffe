"""reformer_zh/training/mixture.py: the general model's training file, in rounds of fixed shares."""

import json
from collections import Counter

import pytest

from reformer_zh.training.mixture import GENERAL_MIXTURE, MixturePart, mixture_rows, reweighted, write_mixture


def rows(name: str, count: int) -> list[dict]:
    return [{"document": f"{name} 文档 {i}", "summary": f"{name} 摘要 {i}"} for i in range(count)]


def test_each_round_holds_every_part_in_its_share_and_a_large_part_never_repeats_early():
    parts = {"large": rows("large", 100), "small": rows("small", 3)}
    written = list(mixture_rows(parts, {"large": 20, "small": 6}, rounds=4))
    assert len(written) == 4 * 26
    for start in range(0, len(written), 26):
        assert Counter(row["source"] for row in written[start:start + 26]) == {"large": 20, "small": 6}
    large_documents = [row["document"] for row in written if row["source"] == "large"]
    assert len(set(large_documents)) == 80  # 80 of 100 rows used: none seen twice yet
    small_documents = Counter(row["document"] for row in written if row["source"] == "small")
    assert set(small_documents.values()) == {8}  # 3 rows, 24 draws: each exactly 8 times (whole passes)


def test_rounds_are_shuffled_and_reproducible():
    parts = {"a": rows("a", 50), "b": rows("b", 50)}
    first = list(mixture_rows(parts, {"a": 50, "b": 50}, rounds=1, seed=0))
    again = list(mixture_rows(parts, {"a": 50, "b": 50}, rounds=1, seed=0))
    other = list(mixture_rows(parts, {"a": 50, "b": 50}, rounds=1, seed=1))
    assert first == again and first != other
    sources = [row["source"] for row in first]
    assert sources != sorted(sources)  # the parts are interleaved, not one block after another


def test_write_mixture_reads_in_place_and_names_a_missing_file(tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "train.jsonl").write_text(
        "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows("one", 4)), encoding="utf-8")
    mixture = (MixturePart("one", "one/train.jsonl", 6),)
    summary = write_mixture(tmp_path / "out.jsonl", 2, tmp_path, mixture)
    assert summary["rows"] == {"one": 12} and summary["train_rows"] == {"one": 4}
    written = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(written) == 12 and all(set(row) == {"document", "summary", "source"} for row in written)
    with pytest.raises(FileNotFoundError, match="two/train.jsonl"):
        write_mixture(tmp_path / "out.jsonl", 1, tmp_path, (*mixture, MixturePart("two", "two/train.jsonl", 1)))


def test_reweighting_changes_only_the_named_parts_rows_per_round():
    changed = reweighted(GENERAL_MIXTURE, ["cail2020=2824", "vcsum segment=880"])
    rows = {part.name: part.rows_per_round for part in changed}
    unchanged = {part.name: part.rows_per_round for part in GENERAL_MIXTURE}
    assert rows == {**unchanged, "cail2020": 2824, "vcsum segment": 880}
    assert [part.file for part in changed] == [part.file for part in GENERAL_MIXTURE]
    assert reweighted(GENERAL_MIXTURE, []) == GENERAL_MIXTURE
    with pytest.raises(ValueError, match="the parts are xwlb story, lcsts"):
        reweighted(GENERAL_MIXTURE, ["judgments=10"])
