"""What the recipes are made of: denoising pre-training (scripts/pretrain.py), the training-time
budget and decoder token dropout of scripts/train.py, and scripts/recipe.py."""

from __future__ import annotations

import json
import random
import shlex
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

# the recipes end to end on tiny checkpoints: `make test-slow` (tests/conftest.py)
pytestmark = pytest.mark.slow


ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from reformer_zh.training import pretrain  # noqa: E402
from reformer_zh.training import train  # noqa: E402
from utils import TINY, random_pairs  # noqa: E402

TEXT = "北京今天发布暴雨预警。市民出行请注意安全！地铁部分线路临时停运；公交绕行。气象台说雨将持续到周末?"


def test_segments_keep_whole_sentences_within_the_length():
    pieces = pretrain.segments(TEXT, 24)
    assert "".join(pieces) == TEXT
    assert all(len(p) <= 24 for p in pieces)
    assert pieces[0] == "北京今天发布暴雨预警。市民出行请注意安全！"  # two sentences fit, the third does not
    assert pretrain.segments("长" * 50, 20) == ["长" * 20, "长" * 20, "长" * 10]  # an overlong sentence is cut


def test_infilling_masks_about_the_ratio_in_spans_and_keeps_the_rest_in_order():
    rng = random.Random(0)
    text = "".join(chr(0x4E00 + i) for i in range(400))  # distinct characters: every kept one is traceable
    noised = pretrain.infill(text, rng, mask_ratio=0.3, poisson_lambda=3.0)
    kept = noised.replace(pretrain.MASK, "")
    assert 0.25 < 1 - len(kept) / len(text) < 0.35
    positions = [text.index(c) for c in kept]
    assert positions == sorted(positions)  # no character moves or repeats
    masks = noised.count(pretrain.MASK)
    assert 400 * 0.3 / 6 < masks < 400 * 0.3 / 2  # spans average ~3 characters, not single ones


def test_sentence_permutation_keeps_every_sentence():
    permuted = pretrain.permute_sentences(TEXT, random.Random(1))
    assert permuted != TEXT
    split = lambda t: Counter(s for s in pretrain.SENTENCE_END.split(t) if s)  # noqa: E731
    assert split(permuted) == split(TEXT)


def test_poisson_sampler_has_the_rate_as_mean():
    rng = random.Random(0)
    draws = [pretrain.poisson(rng, 3.0) for _ in range(20000)]
    assert abs(sum(draws) / len(draws) - 3.0) < 0.06


def test_pretraining_writes_a_checkpoint_that_train_fine_tunes(tmp_path):
    raw = tmp_path / "raw.txt"
    raw.write_text("\n".join(json.loads(line)["document"] for line in
                             (ROOT / "reformer_zh" / "sample" / "train.jsonl").read_text(encoding="utf-8").splitlines()),
                   encoding="utf-8")
    pretrained = tmp_path / "pretrained"
    pretrain.main(["--pretrain_file", str(raw), "--segment_length", "48", *TINY, "--output_dir", str(pretrained),
                   "--tokenizer_segmentation", "char", "--max_steps", "3", "--save_strategy", "no"])
    pairs = [json.loads(line) for line in (pretrained / "pretrain_pairs.jsonl").read_text(encoding="utf-8").splitlines()]
    assert pairs and all(pretrain.MASK in p["document"] for p in pairs[:20])
    assert all(len(p["summary"]) <= 48 for p in pairs)
    assert (pretrained / "model.safetensors").exists()
    fine_tuned = tmp_path / "fine_tuned"
    train.main([a for a in TINY if a not in ("tiny", "--config_name", "--tokenizer_vocab_size", "600")]
               + ["--model_name_or_path", str(pretrained), "--output_dir", str(fine_tuned), "--do_train",
                  "--max_steps", "2", "--save_strategy", "no"])
    assert json.loads((fine_tuned / "trainer_state.json").read_text())["global_step"] == 2
    assert (fine_tuned / "model.safetensors").exists()


@pytest.mark.parametrize("argv, pattern", [
    (["--pretrain_file", "missing.jsonl"], "does not exist"),
    (["--pretrain_file", "x.txt", "--mask_ratio", "1.5"], "mask_ratio"),
    (["--pretrain_file", "x.txt", "--output_dir", "o", "--train_file", "t.jsonl"], "--train_file is set by pre-training"),
])
def test_pretraining_rejects_bad_arguments_without_a_traceback(argv, pattern, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = argv if "--output_dir" in argv else argv + ["--output_dir", "o"]
    with pytest.raises(SystemExit) as exit_info:
        pretrain.main(argv)
    assert exit_info.value.code == 2
    assert pattern in capsys.readouterr().err


def test_time_budget_stops_training_and_still_saves_and_evaluates(tmp_path):
    metrics = train.main(TINY + ["--output_dir", str(tmp_path), "--do_train", "--do_eval", "--max_steps", "100000",
                                 "--save_strategy", "no", "--max_train_minutes", "0.05"])
    steps = json.loads((tmp_path / "trainer_state.json").read_text())["global_step"]
    assert 0 < steps < 1000  # three seconds of a tiny model, not the 100000 steps asked for
    assert (tmp_path / "model.safetensors").exists() and "eval_loss" in metrics


def test_decoder_token_dropout_masks_inputs_in_training_batches_only(sample_tokenizer):
    from reformer_zh.training.collator import ReformerZhSeq2SeqCollator
    from utils import ReformerZhModelTester

    tester = ReformerZhModelTester()
    model = tester.build_model(tester.get_config())
    pairs = random_pairs([30] * 64, [20] * 64)
    torch.manual_seed(0)
    collator = ReformerZhSeq2SeqCollator(sample_tokenizer, model=model, pad_to_multiple_of=4, decoder_token_dropout=0.25)
    noisy = collator(pairs)
    clean = collator.for_evaluation()(pairs)
    assert torch.equal(noisy["labels"], clean["labels"])
    dropped = noisy["decoder_input_ids"] != clean["decoder_input_ids"]
    assert (noisy["decoder_input_ids"][dropped] == sample_tokenizer.mask_token_id).all()
    assert not dropped[:, 0].any()  # the start token stays
    assert not dropped[~clean["decoder_attention_mask"].bool()].any()  # padding stays padding
    real = clean["decoder_attention_mask"].bool()[:, 1:]
    assert 0.2 < dropped[:, 1:][real].float().mean() < 0.3
    with pytest.raises(ValueError, match="decoder_token_dropout"):
        ReformerZhSeq2SeqCollator(sample_tokenizer, model=model, pad_to_multiple_of=4, decoder_token_dropout=1.0)


def test_recipes_name_existing_presets_and_flags(capsys):
    import recipe

    from reformer_zh.evaluation.baselines import BASELINES

    for name, entry in recipe.RECIPES.items():
        recipe.main([name, "--dry_run"])
        command = capsys.readouterr().out.split()[2:]
        assert set(entry.baselines) <= set(BASELINES)
        if entry.start_from:  # a fine-tune: only overrides a trained checkpoint accepts
            from reformer_zh.release.reference_model import REFERENCE_MODEL_DIR

            start = str(REFERENCE_MODEL_DIR) if entry.start_from == recipe.SHIPPED else entry.start_from
            assert command[command.index("--model_name_or_path") + 1].endswith(start)
            if "--config_overrides" in command:
                overrides = train.parse_overrides(command[command.index("--config_overrides") + 1])
                allowed = {train.LED_GROWABLE_KEY} if entry.label == "led" else set(train.FINE_TUNE_OVERRIDES)
                assert set(overrides) <= allowed
        else:
            preset = dict(train.CONFIG_PRESETS[command[command.index("--config_name") + 1]])
            train.config_class_for(preset)(**{k: v for k, v in preset.items() if k != "model_type"})  # a valid config
        parser = train.HfArgumentParser((train.ModelArguments, train.DataArguments, train.Seq2SeqTrainingArguments,
                                         train.RecipeArguments))
        parser.parse_args_into_dataclasses(args=command)  # every flag exists


XWLB = ROOT.parent / "shared" / "data" / "xwlb"


@pytest.mark.skipif(not (XWLB / "program_train.jsonl.gz").is_file(), reason=f"xwlb data not found at {XWLB}")
def test_program_recipe_fine_tunes_a_story_checkpoint_on_windows_and_reads_whole_evenings(trained, tmp_path, capsys,
                                                                                           monkeypatch):
    """The xwlb-program path end to end on a tiny checkpoint and a few rows: windows written,
    positions grown to whole evenings, dev_test scored (asked for: --dev_test, recorded in the
    ledger, here a temporary one) beside the three long-document baselines."""
    import recipe
    from reformer_zh.evaluation import dev_test_ledger

    with pytest.raises(SystemExit) as missing:
        recipe.main(["xwlb-program", "--start_from", str(tmp_path / "nothing"), "--output_dir", str(tmp_path / "x")])
    assert missing.value.code == 2 and "make xwlb-story" in capsys.readouterr().err

    ledger = tmp_path / "ledger.jsonl"
    monkeypatch.setattr(dev_test_ledger, "LEDGER", ledger)
    results = recipe.main(["xwlb-program", "--start_from", str(trained), "--output_dir", str(tmp_path / "program"),
                           "--max_train_minutes", "5", "--dev_test", "--", "--max_train_samples", "8", "--max_eval_samples", "1",
                           "--max_predict_samples", "2", "--num_beams", "1", "--val_max_target_length", "6",
                           "--per_device_train_batch_size", "2", "--max_steps", "2", "--use_cpu"])
    assert (tmp_path / "program" / "train_windows_4096.jsonl").stat().st_size > 0
    config = json.loads((tmp_path / "program" / "config.json").read_text())
    assert config["max_position_embeddings"] == 16384
    assert set(results["dev_test_baselines"]) == {"first 287 characters", "story leads in the first 1024 characters",
                                                  "story leads of the whole evening"}
    assert results["train_steps"] == 2 and "rougeL" in results["dev_test"]
    assert results["dev_test_scorings"] == 1 and json.loads(ledger.read_text())["method"] == "recipe: xwlb-program"
    # what replays the run names the checkpoint it continued and the flags it was given
    assert results["started_from"] == str(trained)
    replay = shlex.split(results["reproduce_by_steps"])
    assert replay[replay.index("--start_from") + 1] == str(trained)
    assert replay[replay.index("--") + 1:replay.index("--") + 3] == ["--max_train_samples", "8"]


@pytest.mark.skipif(not (XWLB / "program_train.jsonl.gz").is_file(), reason=f"xwlb data not found at {XWLB}")
def test_the_one_pass_recipe_trains_sections_segments_and_the_alignment_on_headlined_windows(trained, tmp_path):
    """xwlb-program-onepass end to end on a tiny checkpoint: windows without briefs, the section
    options on, two steps through the Trainer's label smoother with the alignment loss added."""
    import recipe

    results = recipe.main(["xwlb-program-onepass", "--start_from", str(trained), "--output_dir", str(tmp_path / "one"),
                           "--", "--max_train_samples", "8", "--max_eval_samples", "1",
                           "--num_beams", "1", "--val_max_target_length", "6", "--per_device_train_batch_size", "2",
                           "--max_steps", "2", "--use_cpu"])
    windows = [json.loads(line) for line in (tmp_path / "one" / "train_windows_4096_headlined.jsonl").open()]
    assert windows and all(w["document"].count("\n\n") == w["summary"].count("；") for w in windows)
    config = json.loads((tmp_path / "one" / "config.json").read_text())
    assert (config["section_embeddings"], config["summary_segment_embeddings"], config["copy_alignment_loss_weight"]) \
        == (32, 32, 0.5)
    assert config["task_specific_params"]["summarization"]["one_segment_per_section"] is True  # the pipeline's default
    assert results["train_steps"] == 2 and "rougeL" in results["validation"]


def test_a_recipe_trains_by_steps_and_an_exploration_run_leaves_dev_test_unread(capsys):
    """--max_steps replaces the time budget (a timed run's train_steps reproduces it elsewhere);
    without --dev_test prediction on dev_test is off, so exploring never reads it."""
    import recipe

    recipe.main(["xwlb-story", "--dry_run", "--max_steps", "30"])
    command = capsys.readouterr().out.split()[2:]
    assert "--max_train_minutes" not in command
    parser = train.HfArgumentParser((train.ModelArguments, train.DataArguments, train.Seq2SeqTrainingArguments,
                                     train.RecipeArguments))
    _, _, training_args, recipe_args = parser.parse_args_into_dataclasses(args=command)
    assert training_args.max_steps == 30 and not training_args.do_predict and training_args.do_eval
    assert recipe_args.lr_cooldown_share == 0.2
    recipe.main(["xwlb-story", "--dry_run", "--dev_test"])
    command = capsys.readouterr().out.split()[2:]
    _, _, training_args, recipe_args = parser.parse_args_into_dataclasses(args=command)
    assert training_args.do_predict and recipe_args.max_train_minutes == 120


def test_a_reweighted_general_mixture_trains_on_its_own_file(capsys):
    """--mixture_rows writes another training file, so a run never reuses a stale mixture written
    with other shares in the same output folder."""
    import recipe

    train_files = []
    for extra in ([], ["--mixture_rows", "cail2020=2824", "--mixture_rows", "vcsum segment=880"]):
        recipe.main(["general", "--dry_run", *extra])
        command = capsys.readouterr().out.split()
        train_files.append(command[command.index("--train_file") + 1])
    assert train_files[0].endswith("train_mixture_10_rounds.jsonl")
    assert train_files[1].endswith("train_mixture_10_rounds_cail2020=2824_vcsum-segment=880.jsonl")
