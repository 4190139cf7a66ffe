"""scripts/train.py (reformer-zh-train) end to end on a tiny config and the embedded sample
(reformer_zh/sample/): a complete checkpoint, predictions in order, resuming, two processes,
bad input refused before training, gzipped input, memory options, fine-tuning overrides, the
BART baseline, generation options, bf16, saving by the clock, ROUGE of what was written."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from utils import ROOT, TINY, write_jsonl

sys.path.insert(0, str(ROOT / "scripts"))

from reformer_zh.evaluation.rouge_zh import rouge_scores  # noqa: E402
from reformer_zh.training import train  # noqa: E402


def test_train_evaluate_predict_writes_a_complete_checkpoint(trained):
    results = json.loads((trained / "all_results.json").read_text())
    for key in ("train_loss", "eval_loss", "eval_rouge1", "eval_rouge2", "eval_rougeL", "eval_distinct_share",
                "predict_rougeL", "eval_gen_len"):
        assert key in results, key
    assert 0 < results["eval_gen_len"] <= 33  # tokens per summary: the start token and at most 32 new ones
    predictions = [json.loads(line) for line in (trained / "generated_predictions.jsonl").read_text().splitlines()]
    validation = (ROOT / "reformer_zh" / "sample" / "validation.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(predictions) == len(validation)
    assert {"id", "prediction", "reference"} <= set(predictions[0])
    for name in ("model.safetensors", "config.json", "generation_config.json", "tokenizer_config.json", "vocab.txt",
                 "pipeline_reformer_zh.py", "tokenization_reformer_zh.py", "modeling_reformer_zh.py"):
        assert (trained / name).exists(), name
    config = json.loads((trained / "config.json").read_text())
    assert config["custom_pipelines"]["summarization"]["impl"] == "pipeline_reformer_zh.SummarizationPipeline"
    assert json.loads((trained / "generation_config.json").read_text())["num_beams"] == 2


def test_each_written_prediction_is_the_summary_of_its_own_row(trained):
    """Predictions are written beside the rows they summarize: regenerate some, one row at a time."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    model = AutoModelForSeq2SeqLM.from_pretrained(trained).eval()
    tokenizer = AutoTokenizer.from_pretrained(trained)
    records = [json.loads(line) for line in (trained / "generated_predictions.jsonl").read_text().splitlines()]
    rows = {json.loads(line)["id"]: json.loads(line) for line in
            (ROOT / "reformer_zh" / "sample" / "validation.jsonl").read_text(encoding="utf-8").splitlines()}
    assert len({r["prediction"] for r in records}) > 1  # else any order would pass
    for record in records[:6]:
        assert record["reference"] == rows[record["id"]]["summary"]
        inputs = tokenizer(rows[record["id"]]["document"], max_length=256, truncation=True, return_tensors="pt")
        with torch.no_grad():
            alone = tokenizer.decode(model.generate(**inputs)[0], skip_special_tokens=True)
        assert alone == record["prediction"], record["id"]


def test_resume_from_checkpoint_continues_with_identical_state(tmp_path):
    args = TINY + ["--do_train", "--max_steps", "6", "--save_strategy", "steps", "--save_steps", "3",
                   "--config_overrides", "hidden_dropout_prob=0.1,attention_probs_dropout_prob=0.1"]
    straight = tmp_path / "straight"
    train.main(args + ["--output_dir", str(straight)])
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    subprocess.run(["cp", "-r", str(straight / "checkpoint-3"), str(resumed / "checkpoint-3")], check=True)
    train.main(args + ["--output_dir", str(resumed), "--tokenizer_name", str(straight / "tokenizer"),
                       "--resume_from_checkpoint", str(resumed / "checkpoint-3")])
    expected, actual = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.allclose(actual[name], expected[name], atol=1e-6), name


@pytest.mark.slow
def test_two_processes_match_one_with_the_same_global_batch(tmp_path):
    common = TINY + ["--do_train", "--max_steps", "3", "--save_strategy", "no", "--train_sampling_strategy",
                     "sequential", "--config_overrides",
                     "hash_seed=0,hidden_dropout_prob=0.0,attention_probs_dropout_prob=0.0"]
    single, double = tmp_path / "single", tmp_path / "double"
    single_args = [a if a != "4" else "4" for a in common] + ["--output_dir", str(single)]
    train.main(single_args)
    double_args = common + ["--output_dir", str(double)]
    double_args[double_args.index("--per_device_train_batch_size") + 1] = "2"
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(ROOT / "scripts" / "train.py"),
         *double_args],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    one, two = load_file(single / "model.safetensors"), load_file(double / "model.safetensors")
    difference = max((one[name] - two[name]).abs().max().item() for name in one)
    # Float sums in another order (an all-reduce of two half-batch means against one mean) move
    # weights by ~1e-5 after three Adam steps (Adam rescales near-zero gradients); training on the
    # wrong rows moves them by the order of one step, lr = 2e-3.
    assert difference < 1e-4, difference


@pytest.mark.parametrize(
    "case,pattern",
    [
        ("missing_columns", r"columns \['title', 'body'\], not \['document', 'summary'\]"),
        ("empty_file", r"--train_file .* is empty"),
        ("not_utf8", r"not UTF-8 .*offset"),
        ("gzipped_not_utf8", r"not UTF-8 .*offset 14 of the decompressed text"),
        ("damaged_gzip", r"train.jsonl.gz cannot be decompressed .*gzip -t"),
        ("unknown_extension", r"--train_file .*train.parquet: use a .jsonl, .json or .csv file \(or one of them gzipped"),
        ("empty_summaries", r"summary column 'summary' .* is empty"),
        ("too_long", r"--max_source_length 5000 exceeds the model's max_position_embeddings \(1024\)"),
        ("nothing_to_do", r"nothing to do"),
    ],
)
def test_bad_input_fails_before_training(tmp_path, case, pattern):
    import gzip

    good = [{"document": "医院开设夜间儿科门诊。", "summary": "夜间门诊"}] * 4
    train_file = tmp_path / "train.jsonl"
    extra = []
    if case == "gzipped_not_utf8":
        train_file = tmp_path / "train.jsonl.gz"
        train_file.write_bytes(gzip.compress('{"document": "'.encode() + "中文".encode("gb18030") + b'"}\n'))
    elif case == "damaged_gzip":
        train_file = tmp_path / "train.jsonl.gz"
        train_file.write_bytes(gzip.compress(b'{"document": "a", "summary": "b"}\n' * 50)[:40])
    elif case == "unknown_extension":
        train_file = tmp_path / "train.parquet"
        train_file.write_bytes(b"PAR1")
    elif case == "missing_columns":
        write_jsonl(train_file, [{"title": "a", "body": "b"}])
    elif case == "empty_file":
        train_file.write_text("")
    elif case == "not_utf8":
        train_file.write_bytes('{"document": "'.encode() + "中文".encode("gb18030") + b'", "summary": "x"}\n')
    elif case == "empty_summaries":
        write_jsonl(train_file, [{"document": "医院开设夜间儿科门诊。", "summary": ""}] * 3)
    else:
        write_jsonl(train_file, good)
        extra = ["--max_source_length", "5000"] if case == "too_long" else []
    do = [] if case == "nothing_to_do" else ["--do_train"]
    with pytest.raises((ValueError, FileNotFoundError), match=pattern):
        train.main(TINY + ["--output_dir", str(tmp_path / "out"), "--train_file", str(train_file), *do, *extra])
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_gzipped_json_lines_train_like_plain_ones(tmp_path):
    """.jsonl.gz (the xwlb files) as `datasets` reads them: the tokenizer built from the gzipped
    file equals the one built from the plain file, and training runs on it."""
    import gzip

    plain = ROOT / "reformer_zh" / "sample" / "train.jsonl"
    gzipped = tmp_path / "train.jsonl.gz"
    gzipped.write_bytes(gzip.compress(plain.read_bytes()))
    runs = {}
    for name, path in (("plain", plain), ("gzipped", gzipped)):
        output = tmp_path / name
        train.main(TINY + ["--output_dir", str(output), "--train_file", str(path), "--do_train", "--max_steps", "2",
                           "--save_strategy", "no"])
        runs[name] = (output / "tokenizer" / "vocab.txt").read_text(encoding="utf-8")
    assert runs["gzipped"] == runs["plain"] and len(runs["plain"].splitlines()) > 100
    assert (tmp_path / "gzipped" / "model.safetensors").exists()


def test_memory_options_train_with_their_own_learning_rate_and_log_usage(tmp_path):
    output = tmp_path / "pkm"
    overrides = "pkm_layers=[0],decoder_pkm_layers=[0],pkm_num_keys=16,pkm_topk=4,pkm_heads=2,pkm_dim_key=16,num_mem_kv=2"
    train.main(TINY + ["--output_dir", str(output), "--do_train", "--max_steps", "4", "--logging_steps", "2",
                       "--save_strategy", "no", "--config_overrides", overrides, "--memory_learning_rate", "0.05"])
    history = json.loads((output / "trainer_state.json").read_text())["log_history"]
    usage_logs = [entry for entry in history if "loss" in entry]
    assert len(usage_logs) == 2
    for entry in usage_logs:
        usage = {k: v for k, v in entry.items() if k.startswith("pkm_usage/")}
        assert set(usage) == {"pkm_usage/model.encoder.layers.0.feed_forward.memory",
                              "pkm_usage/model.decoder.layers.0.feed_forward.memory"}
        assert all(0 < share <= 1 for share in usage.values())
    config = json.loads((output / "config.json").read_text())
    assert config["pkm_layers"] == [0] and config["num_mem_kv"] == 2


def test_memory_optimizer_group_has_the_memory_rate(tmp_path):
    captured = {}

    class Capture(train.ReformerZhTrainer):
        def create_optimizer(self, model=None):
            optimizer = super().create_optimizer(model)
            captured["groups"] = [(len(g["params"]), g["lr"], g["weight_decay"]) for g in optimizer.param_groups]
            captured["values"] = [m.values.weight for m in train.product_key_memories(self.model).values()]
            captured["memory_group"] = optimizer.param_groups[-1]["params"]
            captured["other_ids"] = [id(p) for g in optimizer.param_groups[:-1] for p in g["params"]]
            return optimizer

    original, train.ReformerZhTrainer = train.ReformerZhTrainer, Capture
    try:
        train.main(TINY + ["--output_dir", str(tmp_path / "out"), "--do_train", "--max_steps", "1", "--save_strategy",
                           "no", "--config_overrides", "pkm_layers=[0],pkm_num_keys=8,pkm_topk=2,pkm_heads=1,pkm_dim_key=8",
                           "--memory_learning_rate", "0.05", "--weight_decay", "0.01"])
    finally:
        train.ReformerZhTrainer = original
    assert captured["groups"][-1] == (1, 0.05, 0.0)
    assert len(captured["memory_group"]) == 1 and captured["memory_group"][0] is captured["values"][0]
    assert all(count == 0 or lr == 2e-3 for count, lr, _ in captured["groups"][:-1])
    assert id(captured["values"][0]) not in captured["other_ids"]  # in exactly one group


@pytest.mark.parametrize("overrides,extra,pattern", [
    ("", ["--memory_learning_rate", "0.1"], "no product-key memory"),
    ("pkm_layers=[0],pkm_sparse_gradients=true", [], "sparse gradients.*--optim sgd"),
])
def test_memory_arguments_are_checked_before_training(tmp_path, overrides, extra, pattern):
    args = TINY + ["--output_dir", str(tmp_path / "out"), "--do_train", "--max_steps", "1", *extra]
    if overrides:
        args += ["--config_overrides", overrides]
    with pytest.raises(ValueError, match=pattern):
        train.main(args)


def test_fine_tuning_overrides_run_the_same_weights_longer_and_reject_the_rest(trained, tmp_path):
    """A checkpoint fine-tuned on longer inputs: positions grow, the backward may change; a
    typo names the real key, and a key that would reshape trained weights is refused."""
    fine_tuned = tmp_path / "longer"
    base = TINY + ["--model_name_or_path", str(trained), "--do_train", "--max_steps", "1", "--save_strategy", "no"]
    train.main(base + ["--output_dir", str(fine_tuned), "--config_overrides",
                       "max_position_embeddings=2048,reversible=false,full_attn_threshold=0"])
    config = json.loads((fine_tuned / "config.json").read_text())
    assert config["max_position_embeddings"] == 2048 and config["axial_pos_shape"] == [64, 32]
    assert config["reversible"] is False and config["full_attn_threshold"] == 0
    with pytest.raises(ValueError, match="did you mean 'num_hashes'"):
        train.main(base + ["--output_dir", str(tmp_path / "typo"), "--config_overrides", "num_hashs=4"])
    with pytest.raises(ValueError, match="hidden_size would change"):
        train.main(base + ["--output_dir", str(tmp_path / "reshape"), "--config_overrides", "hidden_size=32"])
    with pytest.raises(ValueError, match="did you mean"):  # from scratch too
        train.main(TINY + ["--output_dir", str(tmp_path / "scratch"), "--do_train", "--config_overrides", "reversable=1"])


@pytest.mark.slow
def test_a_bart_baseline_trains_through_the_same_script_and_fine_tunes_from_its_checkpoint(tmp_path):
    """`--config_name bart-headline`: the long-input side-by-side's BART, same data, tokenizer,
    collator and metrics; its checkpoint fine-tunes, refuses reformer-zh overrides, and names
    the nearest BART key for a typo."""
    from transformers import AutoModelForSeq2SeqLM, BartForConditionalGeneration

    small = "d_model=32,encoder_layers=1,decoder_layers=1,encoder_ffn_dim=64,decoder_ffn_dim=64,max_position_embeddings=256"
    bart = ["bart-headline" if a == "tiny" else a for a in TINY]
    metrics = train.main(bart + ["--output_dir", str(tmp_path / "bart"), "--config_overrides", small, "--do_train",
                                 "--do_eval", "--predict_with_generate", "--max_steps", "2", "--save_strategy", "no",
                                 "--max_eval_samples", "4", "--max_target_length", "8"])
    assert "eval_rougeL" in metrics and "train_loss" in metrics
    model = AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "bart")
    assert isinstance(model, BartForConditionalGeneration) and model.config.d_model == 32
    assert model.config.vocab_size == 600 and model.config.decoder_start_token_id == model.config.bos_token_id

    base = [a for a in TINY if a not in ("tiny", "--config_name")] + ["--do_train", "--max_steps", "1",
                                                                     "--save_strategy", "no"]
    train.main(base + ["--model_name_or_path", str(tmp_path / "bart"), "--output_dir", str(tmp_path / "tuned")])
    assert isinstance(AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "tuned"), BartForConditionalGeneration)
    with pytest.raises(ValueError, match="applies to reformer-zh checkpoints"):
        train.main(base + ["--model_name_or_path", str(tmp_path / "bart"), "--output_dir", str(tmp_path / "x"),
                           "--config_overrides", "reversible=false"])
    with pytest.raises(ValueError, match="baseline for the benchmarks"):  # no pipeline, no remote code: not published
        train.main(bart + ["--output_dir", str(tmp_path / "push"), "--do_train", "--config_overrides", small,
                           "--push_to_hub", "--hub_model_id", "someone/bart"])
    with pytest.raises(ValueError, match="not a BartConfig attribute; did you mean 'd_model'"):
        train.main(bart + ["--output_dir", str(tmp_path / "typo"), "--do_train", "--config_overrides", "d_modell=32"])


def test_generation_max_length_and_log_level_are_honoured(tmp_path, caplog):
    """--generation_max_length is run_summarization's generation bound (the start token included),
    not overwritten by --val_max_target_length; --log_level error silences this script's INFO lines."""
    import logging

    flags = TINY + ["--do_train", "--max_steps", "1", "--save_strategy", "no", "--config_overrides", "copy_attention=true"]
    with caplog.at_level(logging.INFO):
        train.main(flags + ["--output_dir", str(tmp_path / "a"), "--generation_max_length", "7",
                            "--val_max_target_length", "20", "--source_prefix", "摘要："])
    assert json.loads((tmp_path / "a" / "config.json").read_text())["prefix"] == "摘要："  # the pipeline applies it
    generation = json.loads((tmp_path / "a" / "generation_config.json").read_text())
    assert generation["max_length"] == 7 and generation.get("max_new_tokens") is None
    assert any(record.name == "train" and record.levelno == logging.INFO for record in caplog.records)

    caplog.clear()
    with caplog.at_level(logging.INFO):
        train.main(flags + ["--output_dir", str(tmp_path / "b"), "--log_level", "error"])
    assert not [record for record in caplog.records if record.name == "train" and record.levelno < logging.ERROR]
    assert json.loads((tmp_path / "b" / "generation_config.json").read_text())["max_new_tokens"] == 32


def test_run_summarization_loading_flags_reach_from_pretrained_and_streaming_trains(trained, tmp_path, monkeypatch):
    """--cache_dir/--model_revision/--token/--trust_remote_code go to every from_pretrained;
    --streaming trains from an IterableDataset (no length, no length grouping)."""
    from reformer_zh.training import train

    seen = []
    original = train.AutoModelForSeq2SeqLM.from_pretrained

    def recording(*args, **kwargs):
        seen.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(train.AutoModelForSeq2SeqLM, "from_pretrained", recording)
    common = ["--model_name_or_path", str(trained), "--max_source_length", "256", "--max_target_length", "32",
              "--report_to", "none", "--use_cpu", "--disable_tqdm", "true", "--per_device_train_batch_size", "4",
              "--do_train", "--save_strategy", "no"]
    output = tmp_path / "streamed"
    metrics = train.main(common + ["--output_dir", str(output), "--streaming", "--max_steps", "2",
                                   "--cache_dir", str(tmp_path / "cache"), "--model_revision", "main",
                                   "--token", "hf_not_a_real_token", "--trust_remote_code", "--overwrite_cache"])
    assert seen and all(kwargs["revision"] == "main" and kwargs["token"] == "hf_not_a_real_token"
                        and kwargs["trust_remote_code"] is True and kwargs["cache_dir"] == str(tmp_path / "cache")
                        for kwargs in seen), seen
    assert json.loads((output / "trainer_state.json").read_text())["global_step"] == 2
    assert "train_samples" not in metrics  # a stream's length is unknown: not reported as a guess
    with pytest.raises(ValueError, match="give --max_steps"):
        train.main(common + ["--output_dir", str(tmp_path / "a"), "--streaming"])
    with pytest.raises(ValueError, match="cannot read ahead"):
        train.main(common + ["--output_dir", str(tmp_path / "b"), "--streaming", "--max_steps", "2",
                             "--train_sampling_strategy", "group_by_length"])


def test_gen_len_stops_at_the_first_eos_of_a_beam_padded_sequence():
    from reformer_zh.training.train import generated_length

    # [BOS] two tokens [EOS], then the [EOS] filling beam search writes after a finished sequence
    assert generated_length([2, 17, 18, 3, 3, 3, 3], pad_token_id=0, eos_token_id=3) == 4
    assert generated_length([2, 17, 18, 19], pad_token_id=0, eos_token_id=3) == 4  # cut at the length limit
    assert generated_length([2, 17, 3, 0, 0], pad_token_id=0, eos_token_id=3) == 3


def test_generation_options_are_saved_in_the_checkpoint(tmp_path):
    """What the recipes choose on validation (benchmarks/decoding.py) is what the pipeline then uses."""
    from reformer_zh.training import train

    train.main(TINY + ["--output_dir", str(tmp_path), "--do_train", "--max_steps", "1", "--save_strategy", "no",
                       "--num_beams", "2", "--no_repeat_ngram_size", "6", "--min_new_tokens", "3", "--length_penalty", "1.5"])
    saved = json.loads((tmp_path / "generation_config.json").read_text())
    assert (saved["no_repeat_ngram_size"], saved["min_new_tokens"], saved["length_penalty"]) == (6, 3, 1.5)


@pytest.mark.slow
@pytest.mark.parametrize("flags, precision", [(["--cpu_bf16", "on"], "bf16"), (["--cpu_bf16", "off"], "no")])
def test_cpu_bf16_reaches_the_accelerator_and_is_recorded(tmp_path, flags, precision):
    """--cpu_bf16 decides after transformers has parsed its arguments, so it must set the
    accelerator's mixed precision itself (setting `bf16` alone trains in fp32)."""
    argv = [a for a in TINY if a not in ("--cpu_bf16", "off")]
    train.main(argv + flags + ["--output_dir", str(tmp_path), "--do_train", "--max_steps", "2",
                               "--save_strategy", "no"])
    assert json.loads((tmp_path / "train_results.json").read_text())["train_mixed_precision"] == precision


def test_bf16_without_use_cpu_trains_on_a_machine_without_a_gpu(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: --bf16 means the GPU there")
    argv = [a for a in TINY if a not in ("--use_cpu", "--cpu_bf16", "off")]
    train.main(argv + ["--bf16", "--output_dir", str(tmp_path), "--do_train", "--max_steps", "1",
                       "--save_strategy", "no"])
    assert json.loads((tmp_path / "train_results.json").read_text())["train_mixed_precision"] == "bf16"


def test_a_long_run_saves_by_the_clock_and_a_resumed_run_counts_the_minutes_already_spent(tmp_path, caplog):
    """--save_every_minutes saves checkpoints although --save_strategy is no; each records the
    training seconds spent, and a run resumed from it stops once the total reaches the budget."""
    output = tmp_path / "run"
    common = TINY + ["--output_dir", str(output), "--do_train", "--save_strategy", "no", "--save_total_limit", "1"]
    train.main(common + ["--max_steps", "3", "--save_every_minutes", "0.00001"])
    checkpoints = sorted(output.glob("checkpoint-*"))
    assert [path.name for path in checkpoints] == ["checkpoint-3"]  # one per step, the last one kept
    spent = json.loads((checkpoints[0] / "time_budget.json").read_text())["training_seconds"]
    assert spent > 0
    # a budget smaller than what the checkpoint spent: the resumed run stops after its first step
    with caplog.at_level("INFO", logger="train"):
        train.main(common + ["--max_steps", "50", "--max_train_minutes", str(spent / 60 / 2),
                             "--resume_from_checkpoint", str(checkpoints[0])])
    assert json.loads((output / "train_results.json").read_text())["train_steps"] == 4
    assert "already spent" in caplog.text
    with pytest.raises(ValueError, match="--save_every_minutes must be positive"):
        train.main(common + ["--max_steps", "1", "--save_every_minutes", "0"])


def test_rouge_is_scored_against_the_summaries_as_written_not_the_cut_labels(trained):
    """The labels stop at --max_target_length and hold [UNK] for characters outside the
    vocabulary; the reported ROUGE must be the one of the written references, which
    generated_predictions.jsonl holds beside each prediction."""
    results = json.loads((trained / "all_results.json").read_text())
    records = [json.loads(line) for line in (trained / "generated_predictions.jsonl").read_text().splitlines()]
    written = rouge_scores([r["prediction"] for r in records], [r["reference"] for r in records])
    assert results["predict_rougeL"] == pytest.approx(written["rougeL"], abs=1e-9)
    assert results["predict_rouge1"] == pytest.approx(written["rouge1"], abs=1e-9)
