"""scripts/train.py, scripts/summarize.py and the summarization pipeline, end to end on a tiny
config and the embedded sample (reformer_zh/sample/); the batches (reformer_zh/training/collator.py) and the allocator
(reformer_zh/allocator.py) that train.py uses."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from reformer_zh.serving import summarize  # noqa: E402
from reformer_zh.training import train  # noqa: E402
from reformer_zh.evaluation.rouge_zh import rouge_scores  # noqa: E402

TINY = [
    "--config_name", "tiny", "--tokenizer_vocab_size", "600", "--max_source_length", "256",
    "--max_target_length", "32", "--report_to", "none", "--learning_rate", "2e-3", "--seed", "0",
    "--per_device_train_batch_size", "4", "--use_cpu", "--disable_tqdm", "true",
    "--cpu_bf16", "off",  # the same precision on every CPU; bf16 has its own test
]


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


def test_pipeline_and_cli_return_summaries(trained, tmp_path, capsys):
    from transformers import pipeline

    summarizer = pipeline("summarization", model=str(trained), trust_remote_code=True)
    # a model trained for 12 steps may still prefer special tokens; forbid them to get visible text
    visible = dict(min_new_tokens=2, suppress_tokens=[0, 1, 2, 4])
    document = "博物馆推出古代丝绸文物特展，展出一百二十件珍贵展品。"
    single = summarizer(document, max_new_tokens=6, **visible)
    assert isinstance(single, list) and set(single[0]) == {"summary_text"} and single[0]["summary_text"]
    # the pipeline is generate + decode, nothing else
    tokenizer, model = summarizer.tokenizer, summarizer.model
    expected = model.generate(**tokenizer(document, return_tensors="pt"), max_new_tokens=6, **visible)
    assert single[0]["summary_text"] == tokenizer.decode(expected[0], skip_special_tokens=True)
    batch = summarizer(["医院开设夜间儿科门诊。", "市图书馆延长开放时间。"], max_new_tokens=4,
                       num_beams=2, batch_size=2, **visible)
    assert len(batch) == 2 and all(item["summary_text"] for item in batch)
    assert pipeline(model=str(trained), trust_remote_code=True)("医院开设夜间儿科门诊。", **visible)[0]["summary_text"]
    with pytest.raises(ValueError, match="truncation=True"):
        summarizer("长" * 2000, truncation=False)

    documents = tmp_path / "docs.jsonl"
    documents.write_text('{"id": 1, "document": "医院开设夜间儿科门诊。"}\n', encoding="utf-8")
    output = tmp_path / "out.jsonl"
    summarize.main([str(trained), "--file", str(documents), "--output", str(output), "--min_new_tokens", "2",
                    "--max_new_tokens", "4", "--num_beams", "1"])
    row = json.loads(output.read_text(encoding="utf-8"))
    assert row["id"] == 1 and "summary_generated" in row
    summaries = summarize.main([str(trained), "第一篇文档。", "第二篇文档。", "--min_new_tokens", "1", "--max_new_tokens", "3"])
    assert len(summaries) == 2 and capsys.readouterr().out.count("\n") >= 2


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


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return str(path)


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


def test_character_rouge_scores_chinese_and_reports_collapse():
    scores = rouge_scores(["北京大学", "北京大学"], ["北京大学", "清华大学"])
    assert scores["rouge1"] == pytest.approx(75.0)  # 4/4 and 2/4 characters
    assert scores["distinct_share"] == 0.5
    assert rouge_scores(["天气很好"], ["今天天气很好"], jieba_words=True)["rouge1_jieba"] > 0


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


# --- the collator: encoder input to its chunk multiple, labels on their own with a decoder mask ---


@pytest.fixture(scope="module")
def sample_tokenizer(tmp_path_factory):
    from tokenization.build_vocab import build_tokenizer

    return build_tokenizer(train_file=str(ROOT / "reformer_zh" / "sample" / "train.jsonl"), vocab_size=600,
                           output_dir=str(tmp_path_factory.mktemp("tokenizer")), segmentation="char",
                           text_columns=["document", "summary"])


def lsh_decoder_model():
    """Decoder LSH above no threshold with chunk 4: padding taken for tokens would move buckets."""
    from utils import ReformerZhModelTester

    tester = ReformerZhModelTester(decoder_attn_layers=["lsh", "lsh"])
    return tester.build_model(tester.get_config()).eval()


def random_pairs(source_lengths: list[int], label_lengths: list[int], seed: int = 0) -> list[dict]:
    generator = torch.Generator().manual_seed(seed)
    return [{"input_ids": torch.randint(5, 99, (s,), generator=generator).tolist(), "attention_mask": [1] * s,
             "labels": torch.randint(5, 99, (t,), generator=generator).tolist()}
            for s, t in zip(source_lengths, label_lengths)]


def test_collator_pads_labels_to_a_multiple_of_8_not_the_encoder_chunk(sample_tokenizer):
    from reformer_zh.training.collator import ReformerZhSeq2SeqCollator
    from modeling_reformer_zh.modeling_reformer_zh import shift_tokens_right

    multiple = train.chunk_multiple(train.ReformerZhConfig(**train.CONFIG_PRESETS["small"]))
    assert multiple == 64
    model = lsh_decoder_model()
    collator = ReformerZhSeq2SeqCollator(sample_tokenizer, model=model, pad_to_multiple_of=multiple)
    batch = collator(random_pairs([108, 30], [20, 3]))  # an LCSTS-sized pair: 108-token text, 19 + [EOS]
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (2, 128)
    assert batch["attention_mask"].sum(1).tolist() == [108, 30]
    assert batch["labels"].shape == (2, 24)  # the longest label rounded up to 8, not to 64
    assert (batch["labels"][0, 20:] == -100).all() and (batch["labels"][1, 3:] == -100).all()
    assert batch["decoder_attention_mask"].dtype == torch.long
    assert torch.equal(batch["decoder_attention_mask"], (batch["labels"] != -100).long())
    assert torch.equal(batch["decoder_input_ids"], shift_tokens_right(batch["labels"], 0, 2))


def test_collator_loss_equals_pairs_run_one_at_a_time_with_a_decoder_lsh(sample_tokenizer):
    from reformer_zh.training.collator import ReformerZhSeq2SeqCollator

    model = lsh_decoder_model()
    pairs = random_pairs([9, 16, 23, 5], [3, 11, 6, 17])
    batch = ReformerZhSeq2SeqCollator(sample_tokenizer, model=model, pad_to_multiple_of=4)(pairs)
    assert batch["labels"].shape == (4, 24)
    with torch.no_grad():
        collated = model(**batch)
        singles = [model(input_ids=torch.tensor([p["input_ids"]]), labels=torch.tensor([p["labels"]])) for p in pairs]
    for row, (pair, single) in enumerate(zip(pairs, singles)):
        length = len(pair["labels"])
        assert torch.allclose(collated.logits[row, :length], single.logits[0], atol=1e-5), row
    lengths = torch.tensor([len(p["labels"]) for p in pairs], dtype=torch.float)
    expected = (torch.stack([s.loss for s in singles]) * lengths).sum() / lengths.sum()  # the mean over tokens
    assert torch.allclose(collated.loss, expected, atol=1e-6), (collated.loss.item(), expected.item())


def test_collator_batches_generate_from_the_start_token_under_predict_with_generate(sample_tokenizer, tmp_path):
    """`Seq2SeqTrainer.prediction_step` drops `decoder_input_ids` and `decoder_attention_mask` when
    they have the labels' shape; a mask left in would reach `generate()`, which rejects it."""
    from reformer_zh.training.collator import ReformerZhSeq2SeqCollator
    from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments

    model = lsh_decoder_model()
    collator = ReformerZhSeq2SeqCollator(sample_tokenizer, model=model, pad_to_multiple_of=4)
    arguments = Seq2SeqTrainingArguments(output_dir=str(tmp_path), predict_with_generate=True, use_cpu=True,
                                         report_to="none")
    trainer = Seq2SeqTrainer(model=model, args=arguments, data_collator=collator, processing_class=sample_tokenizer)
    batch = collator(random_pairs([9, 16], [3, 11]))
    loss, generated, labels = trainer.prediction_step(model, batch, prediction_loss_only=False, max_new_tokens=5,
                                                      num_beams=1, do_sample=False)
    expected = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], max_new_tokens=5,
                              num_beams=1, do_sample=False)
    assert torch.equal(generated[:, : expected.shape[1]], expected)
    assert torch.equal(labels[:, :16], batch["labels"])  # then padded to the generation length
    with torch.no_grad():
        assert torch.allclose(loss, model(**batch).loss)


# --- the allocator scripts/train.py picks on the command line ---

JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


@pytest.mark.parametrize("environ,maps,jemalloc,is_glibc,action", [
    ({}, "", JEMALLOC, True, "reexec"),
    ({}, f"7f00-7f01 r-xp 0 08:01 1 {JEMALLOC}\n", JEMALLOC, True, "keep"),  # preloaded by the user
    ({}, "7f00-7f01 r-xp 0 08:01 1 /usr/lib/libtcmalloc_minimal.so.4\n", JEMALLOC, True, "keep"),
    ({"REFORMER_ZH_ALLOCATOR": "system"}, "", JEMALLOC, True, "keep"),
    ({"REFORMER_ZH_ALLOCATOR": "system"}, "", None, True, "keep"),
    ({"REFORMER_ZH_ALLOCATOR": "tuned"}, "", JEMALLOC, True, "tune"),
    ({}, "", None, True, "advise"),  # no jemalloc installed: glibc kept (tuning costs peak memory)
    ({"REFORMER_ZH_ALLOCATOR": "tuned"}, "", None, True, "tune"),
    ({"REFORMER_ZH_ALLOCATOR_REEXECUTED": "1"}, "", JEMALLOC, True, "advise"),  # the preload failed: no loop
    ({}, "", JEMALLOC, False, "keep"),  # musl, macOS, Windows
])
def test_allocator_decision_follows_the_environment(environ, maps, jemalloc, is_glibc, action):
    from reformer_zh import allocator

    assert allocator.decide(environ, maps=maps, jemalloc=jemalloc, is_glibc=is_glibc)[0] == action
    with pytest.raises(ValueError, match="REFORMER_ZH_ALLOCATOR='jemaloc': use one of auto, tuned, system"):
        allocator.decide({"REFORMER_ZH_ALLOCATOR": "jemaloc"}, maps="", jemalloc=None, is_glibc=True)


def test_allocator_jemalloc_environment_keeps_other_preloads_and_marks_the_reexecution():
    from reformer_zh import allocator

    environment = allocator.jemalloc_environment({"LD_PRELOAD": "/opt/libfoo.so", "PATH": "/bin"}, JEMALLOC)
    assert environment["LD_PRELOAD"] == f"{JEMALLOC}:/opt/libfoo.so"
    assert environment["MALLOC_CONF"] == "dirty_decay_ms:-1,muzzy_decay_ms:-1"
    assert environment["PATH"] == "/bin" and environment["REFORMER_ZH_ALLOCATOR_REEXECUTED"] == "1"


MALLINFO_PROBE = """
import ctypes, sys
sys.path.insert(0, "scripts")
from reformer_zh import allocator
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype, libc.malloc.restype, libc.free.argtypes = Info, ctypes.c_void_p, [ctypes.c_void_p]
if sys.argv[1] == "tuned":
    print(allocator.tune_glibc())
block = libc.malloc(256 << 20)
ctypes.memset(block, 1, 256 << 20)
mapped = libc.mallinfo2().hblkhd
libc.free(block)
print(mapped >> 20, libc.mallinfo2().arena >> 20)
"""


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt")
def test_allocator_mallopt_keeps_a_freed_large_block_in_the_heap():
    def probe(mode: str) -> list[str]:
        environment = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "GLIBC_TUNABLES")}
        result = subprocess.run([sys.executable, "-c", MALLINFO_PROBE, mode], capture_output=True, text=True, cwd=ROOT,
                                env=environment, check=True)
        return result.stdout.split("\n")

    mapped, heap_after_free = map(int, probe("system")[0].split())
    assert mapped >= 256 and heap_after_free < 256  # glibc as it comes: mmap'd, unmapped on free
    settings, sizes = probe("tuned")[:2]
    mapped, heap_after_free = map(int, sizes.split())
    assert mapped == 0 and heap_after_free >= 256  # tuned: from the heap, and kept there after free
    assert settings == "['M_MMAP_MAX=0', 'M_TRIM_THRESHOLD=-1']"


ALLOCATOR_PROBE = """
import sys
sys.path.insert(0, "scripts")
from reformer_zh.allocator import configure_allocator
configure_allocator()
print("jemalloc" if "libjemalloc" in open("/proc/self/maps").read() else "glibc", sys.argv[1:])
"""


@pytest.mark.skipif(not Path(JEMALLOC).exists(), reason="libjemalloc2 is not installed")
def test_allocator_reexecutes_once_under_jemalloc_with_the_same_arguments():
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("LD_PRELOAD", "REFORMER_ZH_ALLOCATOR", "REFORMER_ZH_ALLOCATOR_REEXECUTED")}
    result = subprocess.run([sys.executable, "-c", ALLOCATOR_PROBE, "a", "b c"], capture_output=True, text=True,
                            cwd=ROOT, env=environment, check=True)
    assert result.stdout.strip() == "jemalloc ['a', 'b c']"
    assert result.stderr.count("allocator: re-running under jemalloc") == 1, result.stderr
    result = subprocess.run([sys.executable, "-c", ALLOCATOR_PROBE], capture_output=True, text=True, cwd=ROOT,
                            env={**environment, "REFORMER_ZH_ALLOCATOR": "system"}, check=True)
    assert result.stdout.strip() == "glibc []" and "allocator:" not in result.stderr


def test_allocator_is_chosen_by_the_train_command_line():
    environment = {k: v for k, v in os.environ.items() if not k.startswith("REFORMER_ZH_ALLOCATOR")}
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), "--help"], capture_output=True,
                            text=True, cwd=ROOT, env={**environment, "LOCAL_RANK": "0"}, timeout=300)
    assert result.returncode == 0 and "--max_source_length" in result.stdout
    preloaded = any(name in os.environ.get("LD_PRELOAD", "") for name in ("jemalloc", "tcmalloc"))
    assert result.stderr.count("allocator: ") == (0 if preloaded or not GLIBC else 1), result.stderr


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


def test_the_pipeline_takes_every_generate_option_names_typos_and_applies_the_training_prefix(trained, tmp_path):
    from transformers import AutoModelForSeq2SeqLM, pipeline

    summarizer = pipeline("summarization", model=str(trained), trust_remote_code=True)
    document = "博物馆推出古代丝绸文物特展。"
    sampled = summarizer(document, do_sample=True, typical_p=0.9, max_new_tokens=3, suppress_tokens=[0, 1, 2, 4])
    assert sampled[0]["summary_text"]
    with pytest.raises(TypeError, match="did you mean 'num_beams'"):
        summarizer(document, num_beam=2)
    # no empty summary unless asked for: min_new_tokens=1 where neither the call nor the model bounds the length
    calls, generate = [], summarizer.model.generate
    summarizer.model.generate = lambda **kwargs: calls.append(kwargs) or generate(**kwargs)
    for options in ({}, {"min_length": 3}, {"min_new_tokens": 0}):
        summarizer(document, max_new_tokens=3, **options)
    assert [call.get("min_new_tokens") for call in calls] == [1, None, 0]
    assert calls[1]["min_length"] == 3
    summarizer.model.generate = generate

    prefixed = tmp_path / "prefixed"
    model = AutoModelForSeq2SeqLM.from_pretrained(trained)
    model.config.prefix = "摘要："
    model.save_pretrained(prefixed)
    summarizer.tokenizer.save_pretrained(prefixed)
    with_prefix = pipeline("summarization", model=str(prefixed), trust_remote_code=True)
    expected = with_prefix.tokenizer("摘要：" + document)["input_ids"]
    assert with_prefix.preprocess(document)["input_ids"][0].tolist() == expected
    assert summarizer.preprocess(document)["input_ids"][0].tolist() == summarizer.tokenizer(document)["input_ids"]

    from modeling_reformer_zh import SummarizationPipeline

    in_memory = SummarizationPipeline(model=model, tokenizer=summarizer.tokenizer)  # the README's model-object path
    assert in_memory(document, max_new_tokens=3, min_new_tokens=2, suppress_tokens=[0, 1, 2, 4])[0]["summary_text"]


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


def test_the_pipeline_refuses_empty_documents_by_index_and_warns_on_what_it_cannot_read(trained, caplog):
    from transformers import pipeline

    summarizer = pipeline("summarization", model=str(trained), trust_remote_code=True)
    for documents, index in ((["医院开设夜间儿科门诊。", "  \n "], 1), ("", 0), (["", "市图书馆延长开放时间。"], 0)):
        with pytest.raises(ValueError, match=f"document {index} is empty"):
            summarizer(documents, max_new_tokens=2)
    with pytest.raises(TypeError, match="document 1 is a int"):
        summarizer(["医院开设夜间儿科门诊。", 7])
    for invisible in ("\x00", "\u200b\u200b", " \u200b\x07 "):  # the tokenizer would read nothing
        with pytest.raises(ValueError, match="document 1 has no visible characters"):
            summarizer(["医院开设夜间儿科门诊。", invisible], max_new_tokens=2)
    for text in ("🙂🙂🙂", "The museum opens a silk exhibition.", "<p><b>hello</b></p>"):
        caplog.clear()
        with caplog.at_level("WARNING"):
            summarizer(text, max_new_tokens=2)
        assert "document 0 has no Chinese characters" in caplog.text
    caplog.clear()
    only_special = [i for i in range(len(summarizer.tokenizer)) if i not in summarizer.tokenizer.all_special_ids]
    with caplog.at_level("WARNING"):  # every visible token suppressed: the summary decodes to ""
        result = summarizer("医院开设夜间儿科门诊。", max_new_tokens=2, suppress_tokens=only_special)
    assert result[0]["summary_text"] == "" and caplog.text.count("decoded to the empty string") == 1
    caplog.clear()
    with caplog.at_level("WARNING"):  # each document warned about once, by its index
        summarizer(["医院开设夜间儿科门诊。", "hello"], max_new_tokens=2)
    assert caplog.text.count("has no Chinese characters") == 1 and "document 1 has" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):  # a Chinese document that decodes to text: no warning at all
        summarizer("医院开设夜间儿科门诊。", max_new_tokens=3, min_new_tokens=2, suppress_tokens=[0, 1, 2, 4])
    assert "no Chinese characters" not in caplog.text and "empty string" not in caplog.text


def test_the_command_refuses_an_empty_document_in_one_line(trained, tmp_path):
    documents = tmp_path / "docs.jsonl"
    documents.write_text('{"document": "医院开设夜间儿科门诊。"}\n{"document": "   "}\n', encoding="utf-8")
    for args in (["--file", str(documents)], [" "]):
        result = subprocess.run([sys.executable, str(ROOT / "scripts" / "summarize.py"), str(trained), *args],
                                capture_output=True, text=True, cwd=ROOT,
                                env={**os.environ, "REFORMER_ZH_ALLOCATOR": "system", "REFORMER_ZH_TRACEBACK": "0"})
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert "error: document " in result.stderr and "is empty" in result.stderr, result.stderr


def test_the_command_uses_the_shipped_model_by_default_and_any_checkpoint_with_model(trained, tmp_path, monkeypatch,
                                                                                     capsys):
    from reformer_zh.release import reference_model

    monkeypatch.setattr(reference_model, "REFERENCE_MODEL_DIR", trained)  # stands in for the shipped folder
    options = ["--min_new_tokens", "1", "--max_new_tokens", "3", "--num_beams", "1"]
    by_default = summarize.main(["医院开设夜间儿科门诊。", *options])
    assert summarize.main(["--model", str(trained), "医院开设夜间儿科门诊。", *options]) == by_default
    assert summarize.main([str(trained), "医院开设夜间儿科门诊。", *options]) == by_default  # the older form
    documents = tmp_path / "docs.txt"
    documents.write_text("医院开设夜间儿科门诊。\n\n市图书馆延长开放时间。\n", encoding="utf-8")
    assert len(summarize.main(["--file", str(documents), *options])) == 2
    assert "2/2" in capsys.readouterr().err  # the progress bar on a file
    monkeypatch.setattr(reference_model, "REFERENCE_MODEL_DIR", tmp_path / "none")
    with pytest.raises(FileNotFoundError, match="--model"):
        summarize.main(["医院开设夜间儿科门诊。"])


def test_only_a_folder_or_a_model_id_is_taken_for_the_older_model_argument(tmp_path):
    assert summarize.names_a_model(str(tmp_path)) and summarize.names_a_model("someone/reformer-zh-lcsts")
    assert summarize.names_a_model(str(tmp_path / "missing_checkpoint"))  # fails as a model, not summarized as text
    assert not summarize.names_a_model("医院开设夜间儿科门诊。")
    assert not summarize.names_a_model("比分 3/1 获胜") and not summarize.names_a_model("1/2的居民")


def test_the_demo_summarizes_the_sample_with_the_shipped_model_beside_the_first_sentence(trained, monkeypatch, capsys):
    import demo

    from reformer_zh.release import reference_model

    monkeypatch.setattr(reference_model, "REFERENCE_MODEL_DIR", trained)  # stands in for the shipped folder
    scores = demo.main(["--num_beams", "1"])
    assert set(scores) == {"reformer-zh (shipped)", "first sentence"}
    printed = capsys.readouterr().out
    assert printed.count("参考:") == 3 and printed.count("首句:") == 3 and printed.count("模型:") == 3
    assert f"model: {trained}" in printed


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


BRIEF = ("新版国家医保药品目录落地实施\n今天，新版国家医保药品目录落地实施，91种药品新增纳入目录。\n"
         "《能源法》今起施行\n《中华人民共和国能源法》今天起正式施行，国家支持优先开发利用可再生能源。")
STORY = "博物馆推出古代丝绸文物特展，展出一百二十件珍贵展品。"
OTHER = "市图书馆延长开放时间，周末开放到晚上九点。"


def test_news_briefs_are_told_from_stories_with_subheadings_and_each_reading_is_planned_once():
    from types import SimpleNamespace

    from modeling_reformer_zh.pipeline_reformer_zh import is_news_brief, plan_reading

    assert is_news_brief(BRIEF) and not is_news_brief(STORY)
    # a story that opens with text and has two subheadings is not a brief
    assert not is_news_brief("据报道，会议今天召开。\n会议指出\n要做好工作。\n会议强调\n要抓好落实。\n会上还通报了情况。")
    split, one_pass = SimpleNamespace(task_specific_params=None), SimpleNamespace(section_embeddings=32)

    def read(document, config, split_sections=None):
        reading = plan_reading(document, config, split_sections)
        return reading.how, reading.pieces

    assert read(STORY, split) == ("whole", [STORY]) and read(BRIEF, split) == ("whole", [BRIEF])  # briefs only
    assert read(f"{STORY}\n\n{BRIEF}", split) == ("by section", [STORY])
    assert read(f"{STORY}\n\n{BRIEF}\n\n{OTHER}", split) == ("by section", [STORY, OTHER])
    assert read(f"{STORY}\n\n{BRIEF}\n\n{OTHER}", one_pass) == ("one pass", [f"{STORY}\n\n{OTHER}"])
    assert read(f"{STORY}\n\n{OTHER}", one_pass, split_sections=True)[0] == "by section"


def test_a_sectioned_document_is_summarized_section_by_section_in_one_batched_call(trained):
    from transformers import pipeline

    summarizer = pipeline("summarization", model=str(trained), trust_remote_code=True)
    options = dict(max_new_tokens=4, min_new_tokens=2, suppress_tokens=[0, 1, 2, 4], num_beams=1)
    alone = [summarizer(text, **options)[0]["summary_text"] for text in (STORY, OTHER)]
    evening = f"{STORY}\n\n{BRIEF}\n\n{OTHER}"
    result = summarizer([evening, STORY], **options)
    assert result[0]["summary_text"] == "；".join(s.rstrip("；。") for s in alone) + "。"
    assert result[1]["summary_text"] == alone[0]  # a one-section document in the same call: whole
    batched = summarizer([evening, STORY], batch_size=4, **options)  # sections of both documents in batches
    assert len(batched) == 2 and batched[0]["summary_text"].count("；") == 1
    # under the tiny model's 128-token threshold, so its LSH layer attends exactly (no random hashing)
    short_evening = f"{STORY}\n\n{OTHER}"
    whole = summarizer(short_evening, split_sections=False, **options)[0]["summary_text"]
    expected = summarizer.tokenizer.decode(summarizer.model.generate(
        **summarizer.tokenizer(short_evening, return_tensors="pt"), **options)[0], skip_special_tokens=True)
    assert whole == expected
    # in one pass the news brief is left out before the model reads the evening (no headline of its own)
    assert summarizer(f"{STORY}\n\n{BRIEF}\n\n{OTHER}", split_sections=False, **options)[0]["summary_text"] == expected
    # a checkpoint trained to see sections reads a sectioned document in one pass by default
    summarizer.model.config.section_embeddings = 4
    try:
        assert summarizer(f"{STORY}\n\n{BRIEF}\n\n{OTHER}", **options)[0]["summary_text"] == expected
    finally:
        summarizer.model.config.section_embeddings = 0


def test_a_documents_sections_go_through_generate_together_unless_a_batch_size_is_given(trained, monkeypatch):
    """Issue 43: `summarizer(evening)` with no batch argument batches the evening's sections, and
    writes what one section at a time writes."""
    from transformers import pipeline

    summarizer = pipeline("summarization", model=str(trained), trust_remote_code=True)
    options = dict(max_new_tokens=4, min_new_tokens=2, suppress_tokens=[0, 1, 2, 4], num_beams=2)
    batches = []
    forward = summarizer._forward
    monkeypatch.setattr(summarizer, "_forward", lambda inputs, **kw: batches.append(len(inputs["input_ids"])) or
                        forward(inputs, **kw))
    evening = f"{STORY}\n\n{BRIEF}\n\n{OTHER}\n\n{STORY}"
    together = summarizer(evening, **options)[0]["summary_text"]
    assert batches == [3]
    batches.clear()
    assert summarizer(evening, batch_size=1, **options)[0]["summary_text"] == together
    assert batches == [1, 1, 1]


def test_rouge_is_scored_against_the_summaries_as_written_not_the_cut_labels(trained):
    """The labels stop at --max_target_length and hold [UNK] for characters outside the
    vocabulary; the reported ROUGE must be the one of the written references, which
    generated_predictions.jsonl holds beside each prediction."""
    results = json.loads((trained / "all_results.json").read_text())
    records = [json.loads(line) for line in (trained / "generated_predictions.jsonl").read_text().splitlines()]
    written = rouge_scores([r["prediction"] for r in records], [r["reference"] for r in records])
    assert results["predict_rougeL"] == pytest.approx(written["rougeL"], abs=1e-9)
    assert results["predict_rouge1"] == pytest.approx(written["rouge1"], abs=1e-9)


def test_max_input_tokens_reads_the_first_tokens_as_training_did_without_a_warning(trained, caplog):
    """max_input_tokens=N summarizes exactly what generate() writes for the first N tokens; a
    value that is not a positive integer is refused, and a typo names it."""
    from transformers import AutoModelForSeq2SeqLM, pipeline

    summarizer = pipeline("summarization", model=str(trained), trust_remote_code=True)
    model = AutoModelForSeq2SeqLM.from_pretrained(trained).eval()
    row = json.loads((ROOT / "reformer_zh" / "sample" / "validation.jsonl").read_text(encoding="utf-8").splitlines()[0])
    document = row["document"]
    assert len(summarizer.tokenizer(document)["input_ids"]) > 40  # else nothing is cut
    cut = summarizer.tokenizer(document, max_length=40, truncation=True, return_tensors="pt")
    with torch.no_grad():
        expected = summarizer.tokenizer.decode(model.generate(**cut, max_new_tokens=6, num_beams=1)[0],
                                               skip_special_tokens=True)
    assert summarizer.preprocess(document, max_input_tokens=40)["input_ids"].shape[1] == 40
    with caplog.at_level("WARNING"):
        read_40 = summarizer(document, max_input_tokens=40, max_new_tokens=6, num_beams=1)[0]["summary_text"]
    assert read_40 == expected and "truncated" not in caplog.text
    for bad in (0, -3, 2.5, True, "256"):
        with pytest.raises(ValueError, match="max_input_tokens must be a positive integer"):
            summarizer(document, max_input_tokens=bad)
    with pytest.raises(TypeError, match="did you mean 'max_input_tokens'"):
        summarizer(document, max_input_token=40)


@pytest.mark.slow
def test_explain_marks_copied_runs_of_the_same_summary_the_command_writes(trained, capsys):
    """--explain prints the summary the command writes, with brackets around copied runs only."""
    document = json.loads((ROOT / "reformer_zh" / "sample" / "validation.jsonl").read_text(encoding="utf-8")
                          .splitlines()[0])["document"]
    flags = ["--model", str(trained), "--num_beams", "2", "--max_new_tokens", "8", "--no_split_sections"]
    plain = summarize.main(flags + [document])
    marked = summarize.main(flags + ["--explain", document])
    assert [m.replace("[", "").replace("]", "") for m in marked] == plain
    assert capsys.readouterr().out.splitlines()[-1] == marked[0]
    # a sectioned document: by section (the default) and in one pass, as the command reads it
    evening = f"{document}\n\n{BRIEF}\n\n{STORY}"
    for split in ([], ["--no_split_sections"]):
        flags = ["--model", str(trained), "--num_beams", "2", "--max_new_tokens", "8", *split]
        plain = summarize.main(flags + [evening])
        marked = summarize.main(flags + ["--explain", evening])
        assert [m.replace("[", "").replace("]", "") for m in marked] == plain
        if not split:  # two stories, the brief skipped: two segments
            assert plain[0].count("；") == 1 and plain[0].endswith("。")


def test_one_segment_per_section_reaches_generate_and_names_what_a_checkpoint_lacks(trained):
    """The pipeline option builds OneSegmentPerSection from the document read: for a document of
    one section the separator is banned, so a token the model writes first when free (taken as
    the separator here) never appears; a checkpoint without the section token ids is told so."""
    from transformers import pipeline

    summarizer = pipeline("summarization", model=str(trained), trust_remote_code=True)
    options = {"num_beams": 1, "max_new_tokens": 6}
    with pytest.raises(ValueError, match="needs the checkpoint's section_break_token_id"):
        summarizer(STORY, one_segment_per_section=True, **options)
    free = summarizer.model.generate(**summarizer.tokenizer(STORY, return_tensors="pt"), **options)[0]
    first = int(free[1])  # after the decoder's start token
    config = summarizer.model.config
    config.section_break_token_id = summarizer.tokenizer.convert_tokens_to_ids("[NL]")
    config.summary_separator_token_id = first
    try:
        def written(**option):  # the pipeline's own steps, its ids before decoding
            return summarizer.forward(summarizer.preprocess(STORY), **option, **options)["output_ids"][0].tolist()

        assert first not in written(one_segment_per_section=True) and first in free.tolist()
        assert written(one_segment_per_section=False) == written() == free.tolist()
    finally:
        config.section_break_token_id = config.summary_separator_token_id = None
