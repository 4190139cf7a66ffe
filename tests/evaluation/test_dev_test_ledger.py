"""The dev_test ledger counts the scorings of each system, keyed by method, checkpoint and decoding."""

from __future__ import annotations

import json

from reformer_zh.evaluation.dev_test_ledger import record_dev_test_scoring


def test_a_second_scoring_of_the_same_system_is_counted_and_another_system_starts_at_one(tmp_path):
    ledger = tmp_path / "ledger.jsonl"
    assert record_dev_test_scoring("one pass", "outputs/run", {"num_beams": 4, "min_new_tokens": 1}, ledger) == 1
    # the same checkpoint folder from another checkout, options in another order: the same system
    assert record_dev_test_scoring("one pass", "/elsewhere/run", {"min_new_tokens": 1, "num_beams": 4}, ledger) == 2
    assert record_dev_test_scoring("one pass", "outputs/run", {"num_beams": 2}, ledger) == 1
    assert record_dev_test_scoring("split", "outputs/run", {"num_beams": 4}, ledger) == 1
    entries = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert len(entries) == 4 and all(entry["date"] for entry in entries)
