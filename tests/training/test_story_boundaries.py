"""reformer_zh/training/story_boundaries.py: the examples it learns from, the threshold it picks and where
it writes the model; the pipeline's use of the model is tested in test_document_sections.py."""

from __future__ import annotations

import json

from reformer_zh.training.story_boundaries import best_threshold, labelled_examples, pasted, train_weights, write_into

STORIES = ["今天，第一条新闻开始了。它还有第二段。\n这是第二段的话。", "本台消息，第二条新闻开始了。", "第三条新闻说完了。"]


def test_pasted_stories_know_where_each_starts_in_both_shapes():
    lines, starts = pasted(STORIES, one_block=False)
    assert lines == "\n".join(STORIES) and [lines[start:start + 4] for start in starts] == ["今天，第", "本台消息", "第三条新"]
    block, starts = pasted(STORIES, one_block=True)
    assert "\n" not in block and [block[start:start + 4] for start in starts] == ["今天，第", "本台消息", "第三条新"]


def test_every_sentence_but_the_first_is_an_example_and_story_starts_are_the_positives():
    document, starts = pasted(STORIES, one_block=False)
    examples = labelled_examples(document, set(starts))
    assert [label for _, label in examples] == [0, 0, 1, 1]
    assert "break" in examples[1][0] and "break" not in examples[0][0]  # 这是第二段 follows a line break


def test_training_learns_the_signal_and_the_threshold_is_the_best_f1():
    examples = [(["bias", "p2:本台"], 1), (["bias", "p2:他说"], 0)] * 50
    weights = train_weights(examples, min_count=1, epochs=20, seed=0)
    assert weights["p2:本台"] > 0 > weights["p2:他说"]
    threshold, quality = best_threshold([3.0, 2.0, -1.0, -2.0], [1, 1, 0, 0])
    assert -1.0 <= threshold < 2.0 and quality["f1"] == 1.0


def test_the_model_goes_into_a_checkpoints_config_beside_what_is_there(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"task_specific_params": {"summarization": {"max_input_tokens": 9}}}))
    write_into(tmp_path, {"weights": {"bias": -1.0}, "threshold": 0.5})
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["task_specific_params"]["summarization"] == {
        "max_input_tokens": 9, "story_boundaries": {"weights": {"bias": -1.0}, "threshold": 0.5}}


def test_copy_from_puts_a_trained_model_into_another_checkpoint_and_names_a_missing_one(tmp_path, capsys):
    import pytest

    from reformer_zh.training.story_boundaries import main

    source, target = tmp_path / "source", tmp_path / "target"
    for folder in (source, target):
        folder.mkdir()
        (folder / "config.json").write_text("{}")
    with pytest.raises(SystemExit):
        main(["--copy_from", str(source), "--into", str(target)])
    assert "carries no story_boundaries" in capsys.readouterr().err
    write_into(source, {"weights": {"bias": 1.0}, "threshold": 0.0})
    main(["--copy_from", str(source), "--into", str(target)])
    assert json.loads((target / "config.json").read_text())["task_specific_params"]["summarization"][
        "story_boundaries"] == {"weights": {"bias": 1.0}, "threshold": 0.0}


def test_the_length_prior_is_fitted_to_the_stories_and_the_decoding_chosen_is_the_grids_best():
    import math

    from reformer_zh.training.story_boundaries import PRIOR_WEIGHTS, THRESHOLDS, best_decoding, counts_within_one, length_prior

    story, longer = "本台消息，一条新闻开始了。" + "它说了一件事情。" * 3, "本台消息，又一条新闻。" + "它说了很多很多事情。" * 6
    evenings = [{"document": "\n\n".join([story, longer] * 3)}, {"document": "\n\n".join([story, longer] * 4)}]
    logs = [math.log(len(story)), math.log(len(longer))]
    prior = length_prior(evenings)  # 7 of each length: mean halfway, sample sd
    assert prior["log_mean"] == round(sum(logs) / 2, 3)
    assert prior["log_sd"] == round(math.sqrt(14 / 13) * abs(logs[1] - logs[0]) / 2, 3)
    model = {"weights": {"p2:本台": 4.0, "bias": -2.0}, "threshold": 0.0, "min_section_characters": 10,
             "min_document_characters": 0}
    chosen, grid = best_decoding(model, prior, evenings)
    assert len(grid) == len(THRESHOLDS) * len(PRIOR_WEIGHTS)
    best = max(row["mean"] for row in grid)
    assert best == 1.0 and sum(counts_within_one(chosen, evenings).values()) / 2 == best
    assert grid[0]["threshold"] == THRESHOLDS[0] and "model" not in grid[0]


def test_a_checkpoints_meaning_is_what_its_pipeline_reads_and_training_examples_carry_it(trained):
    """--meaning_from trains on the meaning the pipeline will read (the checkpoint's embeddings and
    tokenizer; SummarizationPipeline.plan_reading), and every example gets its features."""
    from transformers import pipeline

    from modeling_reformer_zh.document_sections import document_sections, sentence_features, sentences_of
    from reformer_zh.training.story_boundaries import checkpoint_meaning

    sentences = ["今天召开会议。", "会议讨论了预算。", "天气晴朗，气温回升。", "明天有雨。", "学校开学了。", "学生们回到教室。"]
    document = "".join(sentences) * 60  # long enough for the story-boundary model to read it
    meaning_of = checkpoint_meaning(trained)
    split, after_break = sentences_of(document)
    features = sentence_features(split, after_break, meaning_of(split))
    # a model that fires only on the least alike neighbours' bucket: any cut it makes is meaning's
    lowest = min((f for row in features for f in row if f.startswith("meaning1:")), key=lambda f: int(f.split(":")[1]))
    model = {"weights": {lowest: 20.0, "bias": -10.0}, "threshold": 0.0, "min_section_characters": 40,
             "min_document_characters": 2000, "reads_meaning": True}
    expected = document_sections(document, model, meaning_of)
    assert expected.found_by == "story boundaries" and len(expected.sections) > 2
    summarizer = pipeline("summarization", model=str(trained), trust_remote_code=True)
    summarizer.model.config.task_specific_params = {"summarization": {"story_boundaries": model}}
    assert summarizer.plan_reading(document).found.sections == expected.sections
    examples = labelled_examples("".join(sentences), {0, len("".join(sentences[:2]))}, meaning_of)
    assert all(any(feature.startswith("meaning3:") for feature in features) for features, _ in examples)
    assert [label for _, label in examples] == [0, 1, 0, 0, 0]
