"""Train, evaluate and predict with a reformer-zh summarizer through `Seq2SeqTrainer`.

The flags are those of transformers' summarization example (`run_summarization.py`):

    # from scratch on LCSTS (the tokenizer is built from the training file when none is given)
    python scripts/train.py --train_file ../shared/data/lcsts/train.jsonl \\
        --validation_file ../shared/data/lcsts/validation.jsonl --config_name small \\
        --output_dir outputs/lcsts --do_train --do_eval --predict_with_generate \\
        --per_device_train_batch_size 32 --learning_rate 5e-4 --max_steps 3000

    # fine-tune a checkpoint
    python scripts/train.py --model_name_or_path outputs/lcsts --train_file ... --do_train

Runs unchanged under `torchrun --nproc_per_node N` and `accelerate launch` (DDP; gloo on CPU).
On the command line it first picks the allocator (reformer_zh/allocator.py): it re-executes under
jemalloc when installed (long inputs train 2.4x faster), else keeps glibc and says so;
REFORMER_ZH_ALLOCATOR=tuned tunes glibc instead, =system skips it.
Run it as `reformer-zh-train` (installed) or `python scripts/train.py` (a checkout); `python -m
reformer_zh.train` works too but imports torch before choosing the allocator, so a re-execution
under jemalloc costs a second start-up. Without any data flag it uses the embedded sample
(reformer_zh/sample/). Bad input fails before any training starts, with a message that says what
was found and how to fix it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import datasets  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import (  # noqa: E402
    CONFIG_MAPPING,
    AutoConfig,
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    HfArgumentParser,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
)
from transformers.trainer_utils import has_length  # noqa: E402

from reformer_zh.collator import ReformerZhSeq2SeqCollator  # noqa: E402
from reformer_zh.led_positions import LED_GROWABLE_KEY, grow_led_encoder_positions  # noqa: E402
import modeling_reformer_zh  # noqa: E402,F401  (registers the Auto classes)
from modeling_reformer_zh import ReformerZhConfig  # noqa: E402
from modeling_reformer_zh.product_key_memory import memory_usage, product_key_memories  # noqa: E402
from reformer_zh.rouge_zh import rouge_scores  # noqa: E402
from reformer_zh.sharding import check_sharding_arguments  # noqa: E402
from reformer_zh.hardware import cpu_bf16_decision, machine_record  # noqa: E402
from reformer_zh.label_smoothing import LogProbabilityLabelSmoother  # noqa: E402
from reformer_zh.training_budget import SaveEveryMinutesCallback, TimeBudgetCallback, add_cooldown  # noqa: E402
from tokenization.build_vocab import build_tokenizer, check_utf8, data_format_of  # noqa: E402

logger = logging.getLogger("train")
SAMPLE_DIR = Path(__file__).resolve().parent / "sample"

# Named configurations for --config_name (a path to a config.json or a folder works too).
CONFIG_PRESETS = {
    # seconds on a laptop CPU: tests and `make demo`
    "tiny": dict(hidden_size=64, num_attention_heads=4, attention_head_size=16, feed_forward_size=128,
                 encoder_attn_layers=["local", "lsh"], decoder_attn_layers=["full", "full"],
                 lsh_attn_chunk_length=32, local_attn_chunk_length=32, axial_pos_shape=[32, 32],
                 axial_pos_embds_dim=[16, 48], max_position_embeddings=1024, full_attn_threshold=128),
    # the short-input workhorse (LCSTS-sized documents): LSH layers run exactly below 512 tokens
    "small": dict(hidden_size=256, num_attention_heads=4, attention_head_size=64, feed_forward_size=1024,
                  encoder_attn_layers=["local", "lsh"] * 3, decoder_attn_layers=["full"] * 3,
                  lsh_attn_chunk_length=64, local_attn_chunk_length=64, axial_pos_shape=[64, 64],
                  axial_pos_embds_dim=[64, 192], max_position_embeddings=4096, full_attn_threshold=512),
    # headlines from short documents (LCSTS, xwlb stories; `make lcsts`, `make xwlb-story`): copy
    # attention makes the decoder read its input within a few hundred steps (issue 12,
    # benchmarks/results/quality_diagnosis_steps.json); inputs up to 1024 tokens run the LSH layers
    # exactly, and a plain backward is faster than the reversible one at these lengths
    "headline": dict(hidden_size=256, num_attention_heads=4, attention_head_size=64, feed_forward_size=1024,
                     encoder_attn_layers=["local", "lsh"] * 2, decoder_attn_layers=["full"] * 3,
                     lsh_attn_chunk_length=64, local_attn_chunk_length=64, local_num_chunks_after=1,
                     axial_pos_shape=[32, 32], axial_pos_embds_dim=[64, 192], max_position_embeddings=1024,
                     full_attn_threshold=1024, reversible=False, copy_attention=True),
    # the full-attention baseline of the long-input side-by-side (issue 13): `headline`'s size
    # (hidden 256, 4+3 layers, 4 heads, feed-forward 1024) as a BART with its 1,024 learned
    # positions and no copy attention
    "bart-headline": dict(model_type="bart", d_model=256, encoder_layers=4, decoder_layers=3,
                          encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=1024,
                          decoder_ffn_dim=1024, max_position_embeddings=1024, forced_eos_token_id=None),
    # the long-input side-by-side's sparse-attention baseline (issue 13): `headline`'s size as an
    # LED (Longformer encoder: sliding windows of 256 tokens, 128 on each side, as in
    # benchmarks/scaling.py; no global tokens, since the decoder's cross-attention already reads
    # every position), 1,024 learned positions until a fine-tune grows them by copying
    # (reformer_zh/led_positions.py), no copy attention
    "led-headline": dict(model_type="led", d_model=256, encoder_layers=4, decoder_layers=3,
                         encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=1024,
                         decoder_ffn_dim=1024, attention_window=256, max_encoder_position_embeddings=1024,
                         max_decoder_position_embeddings=1024, forced_eos_token_id=None),
    # the long-input reference (benchmarks/): 6+6 layers, 64K positions
    "long": dict(hidden_size=256, num_attention_heads=4, attention_head_size=64, feed_forward_size=1024,
                 encoder_attn_layers=["local", "lsh"] * 3, decoder_attn_layers=["full"] * 6,
                 lsh_attn_chunk_length=64, local_attn_chunk_length=64, axial_pos_shape=[256, 256],
                 axial_pos_embds_dim=[64, 192], max_position_embeddings=65536),
}


@dataclass
class ModelArguments:
    model_name_or_path: str | None = field(default=None, metadata={"help": "checkpoint to fine-tune (folder or Hub id)"})
    config_name: str | None = field(
        default=None, metadata={"help": f"from scratch: a preset ({', '.join(CONFIG_PRESETS)}) or a config path"}
    )
    config_overrides: str | None = field(
        default=None,
        metadata={"help": "comma-separated key=value (JSON values), e.g. 'num_hashes=4,hidden_dropout_prob=0.2'"},
    )
    tokenizer_name: str | None = field(default=None, metadata={"help": "tokenizer folder (scripts/build_tokenizer.py)"})
    tokenizer_vocab_size: int = field(default=32000, metadata={"help": "vocabulary size when building a tokenizer"})
    tokenizer_segmentation: str = field(default="word", metadata={"help": "word | char, when building a tokenizer"})
    memory_learning_rate: float | None = field(
        default=None,
        metadata={"help": "learning rate of the product-key memory values (pkm_layers); default: --learning_rate"},
    )
    # run_summarization's loading flags: all four go to every from_pretrained, --cache_dir and
    # --token to load_dataset too
    cache_dir: str | None = field(default=None, metadata={"help": "where downloaded models and datasets are stored"})
    model_revision: str = field(default="main", metadata={"help": "branch, tag or commit of --model_name_or_path"})
    token: str | None = field(default=None, metadata={"help": "Hub token for private models and datasets (default: "
                                                               "HF_TOKEN or `hf auth login`)"})
    trust_remote_code: bool = field(default=False, metadata={"help": "let a checkpoint run its own code "
                                                                     "(reformer-zh checkpoints need not: this package "
                                                                     "registers them)"})


@dataclass
class DataArguments:
    dataset_name: str | None = field(default=None, metadata={"help": "a dataset on the Hub"})
    dataset_config_name: str | None = field(default=None)
    train_file: str | None = field(default=None, metadata={"help": "jsonl, json or csv"})
    validation_file: str | None = field(default=None)
    test_file: str | None = field(default=None)
    text_column: str = field(default="document")
    summary_column: str = field(default="summary")
    max_source_length: int = field(default=1024)
    max_target_length: int = field(default=64)
    val_max_target_length: int | None = field(default=None, metadata={"help": "generation length (default: max_target_length)"})
    num_beams: int | None = field(default=None, metadata={"help": "beams for evaluation and prediction"})
    source_prefix: str = field(default="")
    max_train_samples: int | None = field(default=None)
    max_eval_samples: int | None = field(default=None)
    max_predict_samples: int | None = field(default=None)
    preprocessing_num_workers: int | None = field(default=None)
    overwrite_cache: bool = field(default=False, metadata={"help": "tokenize again instead of reusing the cached result"})
    streaming: bool = field(default=False, metadata={"help": "read the training data as a stream (datasets' "
                                                             "IterableDataset): needs --max_steps; no length grouping"})
    jieba_rouge: bool = field(default=False, metadata={"help": "also report word-level (jieba) ROUGE"})
    no_repeat_ngram_size: int | None = field(
        default=None, metadata={"help": "generation: never repeat an n-gram of this many tokens (saved in the checkpoint)"}
    )
    min_new_tokens: int | None = field(
        default=None, metadata={"help": "generation: write at least this many tokens (saved in the checkpoint)"}
    )
    length_penalty: float | None = field(
        default=None, metadata={"help": "generation: beam scores divided by length ** this; above 1 favours longer "
                                        "summaries (saved in the checkpoint)"}
    )


@dataclass
class RecipeArguments:
    max_train_minutes: float | None = field(
        default=None,
        metadata={"help": "stop training after this many wall-clock minutes (then save, evaluate, predict as asked); "
                          "pair it with a large --max_steps and --lr_scheduler_type constant_with_warmup"},
    )
    decoder_token_dropout: float = field(
        default=0.0,
        metadata={"help": "replace teacher-forced decoder input tokens by [MASK] with this probability (training only)"},
    )
    lr_cooldown_share: float = field(
        default=0.0,
        metadata={"help": "cool the learning rate linearly to 0 over this last share of the budget (of "
                          "--max_train_minutes when given, else of --max_steps); 0: the schedule as it is"},
    )
    save_every_minutes: float | None = field(
        default=None,
        metadata={"help": "save a checkpoint every this many minutes of training (with --save_total_limit, the "
                          "last ones are kept); a run resumed from one counts --max_train_minutes already spent"},
    )
    cpu_bf16: str = field(
        default="auto",
        metadata={"help": "training on a CPU: bf16 autocast on, off, or auto (on where the CPU has AMX or "
                          "avx512_bf16 and a bf16 matmul measures faster than fp32 here); --bf16 also turns it on"},
    )


def parse_overrides(text: str | None) -> dict:
    """'a=1,b=[1,2],c=x' -> {'a': 1, 'b': [1, 2], 'c': 'x'}; commas inside brackets stay."""
    if not text:
        return {}
    items, depth, current = [], 0, ""
    for character in text:
        depth += character in "[{" and 1 or (character in "]}" and -1 or 0)
        if character == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += character
    items.append(current)
    overrides = {}
    for item in filter(None, (i.strip() for i in items)):
        if "=" not in item:
            raise ValueError(f"--config_overrides entry {item!r} is not key=value")
        key, value = item.split("=", 1)
        try:
            overrides[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key.strip()] = value
    return overrides


def data_files(data_args: DataArguments, training_args) -> dict[str, str]:
    files = {}
    for split, path in (("train", data_args.train_file), ("validation", data_args.validation_file),
                        ("test", data_args.test_file)):
        if path:
            files[split] = path
    if not files and not data_args.dataset_name:
        logger.info("no data given: using the embedded sample in %s", SAMPLE_DIR)
        files = {"train": str(SAMPLE_DIR / "train.jsonl"), "validation": str(SAMPLE_DIR / "validation.jsonl")}
        if training_args.do_predict:
            files["test"] = str(SAMPLE_DIR / "validation.jsonl")
    return files


def first_row(dataset) -> dict | None:
    return next(iter(dataset), None)


def load_raw_datasets(data_args: DataArguments, files: dict[str, str], model_args: ModelArguments) -> dict:
    """Load and check every split before anything is trained. With --streaming the training
    split is an IterableDataset, checked on its first row (its length is unknown)."""
    hub = dict(cache_dir=model_args.cache_dir, token=model_args.token)
    if data_args.dataset_name and data_args.streaming:
        # the training split as a stream, never downloaded whole; the others as usual
        splits = datasets.get_dataset_split_names(data_args.dataset_name, data_args.dataset_config_name, **hub)
        raw = {split: datasets.load_dataset(data_args.dataset_name, data_args.dataset_config_name, split=split,
                                            streaming=split == "train", **hub) for split in splits}
    elif data_args.dataset_name:
        raw = dict(datasets.load_dataset(data_args.dataset_name, data_args.dataset_config_name, **hub))
    else:
        raw = {}
        for split, path in files.items():
            file = Path(path)
            flag = {"train": "--train_file", "validation": "--validation_file", "test": "--test_file"}[split]
            if not file.is_file():
                raise FileNotFoundError(f"{flag} {path} does not exist.")
            if file.stat().st_size == 0:
                raise ValueError(f"{flag} {path} is empty.")
            data_format = data_format_of(file)
            if data_format not in ("json", "csv"):
                raise ValueError(f"{flag} {path}: use a .jsonl, .json or .csv file (or one of them gzipped: .jsonl.gz).")
            check_utf8(file, flag)
            raw[split] = datasets.load_dataset(data_format, data_files=str(file), split="train",
                                               streaming=data_args.streaming and split == "train", **hub)
    for split, dataset in raw.items():
        if isinstance(dataset, datasets.IterableDataset):
            row = first_row(dataset)
            if row is None:
                raise ValueError(f"the {split} data has no rows.")
            missing = [c for c in (data_args.text_column, data_args.summary_column) if c not in row]
            if missing:
                raise ValueError(f"the {split} data has columns {list(row)}, not {missing}; "
                                 "name yours with --text_column and --summary_column.")
            continue
        missing = [c for c in (data_args.text_column, data_args.summary_column) if c not in dataset.column_names]
        if missing:
            raise ValueError(
                f"the {split} data has columns {dataset.column_names}, not {missing}; "
                "name yours with --text_column and --summary_column."
            )
        if len(dataset) == 0:
            raise ValueError(f"the {split} data has no rows.")
        if split == "train" and not any((s or "").strip() for s in dataset[data_args.summary_column]):
            raise ValueError(f"every value of the summary column '{data_args.summary_column}' in the train data is empty.")
    return raw


def hub_options(model_args: ModelArguments) -> dict:
    """What every from_pretrained of this run is given (run_summarization's flags)."""
    return dict(cache_dir=model_args.cache_dir, revision=model_args.model_revision, token=model_args.token,
                trust_remote_code=model_args.trust_remote_code)


def load_tokenizer(model_args: ModelArguments, files: dict[str, str], data_args: DataArguments, training_args):
    source = model_args.tokenizer_name or model_args.model_name_or_path
    if source:
        return AutoTokenizer.from_pretrained(source, **hub_options(model_args))
    if "train" not in files:
        raise ValueError("no tokenizer to use: give --tokenizer_name, --model_name_or_path or a --train_file to build one from.")
    folder = os.path.join(training_args.output_dir, "tokenizer")
    if training_args.local_process_index != 0:
        return AutoTokenizer.from_pretrained(folder)  # built by the main process (main_process_first)
    logger.info("building a %s tokenizer from %s into %s", model_args.tokenizer_segmentation, files["train"], folder)
    return build_tokenizer(
        train_file=files["train"],
        output_dir=folder,
        vocab_size=model_args.tokenizer_vocab_size,
        segmentation=model_args.tokenizer_segmentation,
        text_columns=[data_args.text_column, data_args.summary_column],
        num_proc=data_args.preprocessing_num_workers,
    )


# What --config_overrides may change on a trained checkpoint: how the same weights are run
# (attention windows, hashing, the backward, dropout), never a weight's shape, except
# max_position_embeddings, which grows the position tables (resize_position_embeddings).
FINE_TUNE_OVERRIDES = (
    "reversible", "full_attn_threshold", "hidden_dropout_prob", "attention_probs_dropout_prob", "num_hashes",
    "num_buckets", "hash_seed", "lsh_attn_chunk_length", "lsh_num_chunks_before", "lsh_num_chunks_after",
    "local_attn_chunk_length", "local_num_chunks_before", "local_num_chunks_after", "chunk_size_feed_forward",
    "cross_attn_chunk_length", "max_position_embeddings", "encoder_position_offset_in_training",
)


def check_override_keys(overrides: dict, config_class: type) -> None:
    """An unknown key would be stored and ignored; name the nearest real one instead."""
    import difflib

    valid = list(config_class().to_dict())
    for key in overrides:
        if key not in valid:
            near = difflib.get_close_matches(key, valid, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ValueError(f"--config_overrides: {key!r} is not a {config_class.__name__} attribute{hint}")


def config_class_for(values: dict) -> type:
    """The config class of a preset or config.json: ours unless it names another model type (a
    baseline such as `bart-headline` trains through the same script, data and tokenizer)."""
    model_type = values.get("model_type", ReformerZhConfig.model_type)
    if model_type == ReformerZhConfig.model_type:
        return ReformerZhConfig
    if model_type not in CONFIG_MAPPING:
        raise ValueError(f"--config_name: unknown model_type {model_type!r}; use a preset ({', '.join(CONFIG_PRESETS)}) "
                         "or a config.json of a transformers encoder-decoder.")
    return CONFIG_MAPPING[model_type]


def load_model(model_args: ModelArguments, tokenizer):
    overrides = parse_overrides(model_args.config_overrides)
    if model_args.model_name_or_path:
        config = AutoConfig.from_pretrained(model_args.model_name_or_path, **hub_options(model_args))
        if overrides and config.model_type == "led":
            return load_led_with_more_positions(model_args, config, overrides)
        if overrides and not isinstance(config, ReformerZhConfig):
            raise ValueError(f"--config_overrides on a checkpoint applies to reformer-zh checkpoints (and an LED's "
                             f"{LED_GROWABLE_KEY}) only; {model_args.model_name_or_path} is a {config.model_type} "
                             "checkpoint.")
        check_override_keys(overrides, ReformerZhConfig)
        fixed = [key for key in overrides if key not in FINE_TUNE_OVERRIDES]
        if fixed:
            raise ValueError(f"--config_overrides {fixed[0]} would change a trained weight's shape or meaning; with "
                             f"--model_name_or_path only these apply: {', '.join(FINE_TUNE_OVERRIDES)}.")
        positions = overrides.pop("max_position_embeddings", None)
        for key, value in overrides.items():
            setattr(config, key, value)
        model = AutoModelForSeq2SeqLM.from_pretrained(model_args.model_name_or_path, config=config,
                                                      **hub_options(model_args))
        if positions is not None and positions != model.config.max_position_embeddings:
            logger.info("position tables grown from %d to %d positions", model.config.max_position_embeddings, positions)
            model.resize_position_embeddings(positions)
        return model
    name = model_args.config_name or "small"
    if name in CONFIG_PRESETS:
        values = dict(CONFIG_PRESETS[name])
    else:
        values = AutoConfig.from_pretrained(name, **hub_options(model_args)).to_dict()
    config_class = config_class_for(values)
    check_override_keys(overrides, config_class)
    values.update(overrides)
    values.update(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.bos_token_id,
    )
    for key in ("model_type", "architectures", "auto_map", "transformers_version", "_name_or_path"):
        values.pop(key, None)
    return AutoModelForSeq2SeqLM.from_config(config_class(**values))


def load_led_with_more_positions(model_args: ModelArguments, config, overrides: dict):
    """An LED baseline checkpoint fine-tuned on longer inputs (`xwlb-program-led`): the one key
    its --config_overrides take grows the encoder's learned positions by copying the trained ones
    (reformer_zh/led_positions.py)."""
    other = [key for key in overrides if key != LED_GROWABLE_KEY]
    if other:
        raise ValueError(f"--config_overrides {other[0]} on an LED checkpoint: only {LED_GROWABLE_KEY} applies "
                         "(it grows the encoder's positions); the rest would change trained weights.")
    model = AutoModelForSeq2SeqLM.from_pretrained(model_args.model_name_or_path, config=config,
                                                  **hub_options(model_args))
    positions = int(overrides[LED_GROWABLE_KEY])
    if positions != config.max_encoder_position_embeddings:
        logger.info("LED encoder positions grown from %d to %d by copying the trained rows",
                    config.max_encoder_position_embeddings, positions)
        grow_led_encoder_positions(model, positions)
    return model


def input_positions(config) -> tuple[int, str]:
    """The longest input the encoder reads, and the config key that sets it."""
    if getattr(config, "max_encoder_position_embeddings", None):  # LED
        return config.max_encoder_position_embeddings, "max_encoder_position_embeddings"
    return config.max_position_embeddings, "max_position_embeddings"


def target_positions(config) -> tuple[int, str]:
    """The longest target the decoder reads, and the config key that sets it."""
    if getattr(config, "max_decoder_position_embeddings", None):  # LED
        return config.max_decoder_position_embeddings, "max_decoder_position_embeddings"
    return config.max_position_embeddings, "max_position_embeddings"


def chunk_multiple(config) -> int:
    """The encoder input's length multiple: every chunk length its layers use (labels: see the collator)."""
    if not isinstance(config, ReformerZhConfig):
        return 8  # a full-attention baseline: any length runs
    lengths = [config.local_attn_chunk_length if kind == "local" else config.lsh_attn_chunk_length
               for kind in config.encoder_attn_layers if kind != "full"]
    return math.lcm(*lengths) if lengths else 8


class ReformerZhTrainer(Seq2SeqTrainer):
    """`Seq2SeqTrainer` plus what the product-key memory needs: the memory values in their own
    optimizer group (`--memory_learning_rate`, no weight decay), and the share of memory slots
    read since the last log reported beside the loss (`pkm_usage/<layer>`)."""

    def __init__(self, *args, memory_learning_rate: float | None = None, budget: TimeBudgetCallback | None = None,
                 lr_cooldown_share: float = 0.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.memory_learning_rate = memory_learning_rate
        self.budget = budget or TimeBudgetCallback(None)
        self.lr_cooldown_share = lr_cooldown_share
        if self.label_smoother is not None and getattr(self.model.config, "copy_attention", False):
            # copy attention returns log P already: no second log_softmax over the vocabulary
            self.label_smoother = LogProbabilityLabelSmoother(epsilon=self.label_smoother.epsilon)

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        fresh = self.lr_scheduler is None
        scheduler = super().create_scheduler(num_training_steps, optimizer)
        if fresh and self.lr_cooldown_share > 0:
            add_cooldown(scheduler, self.lr_cooldown_share, self.budget, num_training_steps)
        return scheduler

    def create_optimizer(self, model=None):
        fresh = self.optimizer is None
        optimizer = super().create_optimizer(model)
        if fresh and self.memory_learning_rate is not None:
            values = {id(m.values.weight): m.values.weight for m in product_key_memories(self.model).values()}
            for group in optimizer.param_groups:
                group["params"] = [p for p in group["params"] if id(p) not in values]
            optimizer.add_param_group({"params": list(values.values()), "lr": self.memory_learning_rate,
                                       "weight_decay": 0.0})
        return optimizer

    def _get_eval_sampler(self, eval_dataset):
        """Evaluation and prediction in dataset order. transformers v5 length-groups them too when
        training is (`train_sampling_strategy="group_by_length"`): the predictions then come back
        permuted, and generated_predictions.jsonl would pair each with another row's document."""
        if eval_dataset is None or not has_length(eval_dataset):
            return None
        return torch.utils.data.SequentialSampler(eval_dataset) if self.args.world_size <= 1 else None

    def get_eval_dataloader(self, eval_dataset=None):
        with self.evaluation_collator():
            return super().get_eval_dataloader(eval_dataset)

    def get_test_dataloader(self, test_dataset):
        with self.evaluation_collator():
            return super().get_test_dataloader(test_dataset)

    @contextlib.contextmanager
    def evaluation_collator(self):
        """Evaluation batches come from the collator without its training-only noise
        (`--decoder_token_dropout`); the data loader keeps the collator it was built with."""
        training_collator = self.data_collator
        if hasattr(training_collator, "for_evaluation"):
            self.data_collator = training_collator.for_evaluation()
        try:
            yield
        finally:
            self.data_collator = training_collator

    def log(self, logs: dict, *args, **kwargs) -> None:
        if "loss" in logs:  # a training log: report the memory usage of the steps since the last one
            logs.update({name: round(share, 4) for name, share in memory_usage(self.model).items()})
        super().log(logs, *args, **kwargs)


def check_hub_arguments(training_args, argv: list[str]) -> None:
    """Before training: what --push_to_hub will publish, and where (a bare --hub_model_id NAME
    gets the token's namespace, as the Trainer does)."""
    from reformer_zh.publish import resolve_repo_id

    if not training_args.do_train:
        raise ValueError("--push_to_hub publishes the model this run trains: add --do_train, or publish an existing "
                         "checkpoint with reformer-zh-publish CHECKPOINT --repo_id USER/NAME.")
    strategy = getattr(training_args.hub_strategy, "value", training_args.hub_strategy)
    given = any(a == "--hub_strategy" or a.startswith("--hub_strategy=") for a in argv)
    if strategy != "end" and (given or strategy != "every_save"):  # every_save: the field's default
        raise ValueError(f"--hub_strategy {strategy} would push checkpoints during training without "
                         "the checks reformer-zh-publish applies (safetensors only, loads without this package, model "
                         "card); this script publishes once, at the end (--hub_strategy end). To share a checkpoint "
                         "of a run, use reformer-zh-publish OUTPUT_DIR/checkpoint-N --repo_id USER/NAME --revision BRANCH.")
    if not training_args.hub_model_id:
        raise ValueError("--push_to_hub needs --hub_model_id NAME or USER/NAME.")
    training_args.hub_model_id = resolve_repo_id(training_args.hub_model_id, training_args.hub_token)


# The hyperparameters a model card lists (the Trainer's own card lists the same ones); they go to
# training_summary.json as JSON, since training_args.bin is a pickle that publishing never loads.
CARD_HYPERPARAMETERS = ("learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps", "seed",
                        "optim", "lr_scheduler_type", "warmup_steps", "weight_decay", "adam_beta1", "adam_beta2",
                        "max_grad_norm", "label_smoothing_factor", "max_steps", "num_train_epochs", "bf16", "fp16")


def training_summary(model_args: ModelArguments, data_args: DataArguments, training_args, recipe_args) -> dict:
    """What reformer-zh-publish writes into the model card: where the weights started, the
    data, the hyperparameters and the library versions that trained them."""
    import platform

    hyperparameters = {}
    for name in CARD_HYPERPARAMETERS:
        value = getattr(training_args, name)
        hyperparameters[name] = getattr(value, "value", value)
    hyperparameters.update(world_size=training_args.world_size, max_source_length=data_args.max_source_length,
                           max_target_length=data_args.max_target_length,
                           max_train_minutes=recipe_args.max_train_minutes)
    return {
        "base_model": model_args.model_name_or_path,
        "dataset": data_args.dataset_name,
        "train_file": Path(data_args.train_file).name if data_args.train_file else None,  # no local path
        "hyperparameters": hyperparameters,
        "framework_versions": {"transformers": transformers.__version__, "torch": torch.__version__,
                               "datasets": datasets.__version__, "python": platform.python_version()},
    }


def generated_length(tokens: list[int], pad_token_id: int, eos_token_id: int) -> int:
    """gen_len's count for one sequence: its tokens up to and including the first [EOS], the start
    token included. Beam search fills a finished sequence with [EOS] up to the batch's longest
    (not with padding), so counting every token that is not padding, as run_summarization does,
    reports the batch's longest summary for every row."""
    count = 0
    for token in tokens:
        if token == pad_token_id:
            continue
        count += 1
        if token == eos_token_id:
            break
    return count


def check_memory_arguments(model, model_args: ModelArguments, training_args) -> None:
    memories = product_key_memories(model)
    if model_args.memory_learning_rate is not None and not memories:
        raise ValueError("--memory_learning_rate is set but the model has no product-key memory; add "
                         "--config_overrides pkm_layers=[3] (or drop the flag).")
    sparse = any(m.values.sparse for m in memories.values())
    if sparse and str(getattr(training_args.optim, "value", training_args.optim)) not in SPARSE_OPTIMIZERS:
        raise ValueError(f"pkm_sparse_gradients=True gives the memory values sparse gradients, which --optim "
                         f"{training_args.optim} cannot apply; use --optim sgd or --optim adagrad, or set "
                         "--config_overrides pkm_sparse_gradients=false (the dense gradient is zero outside the "
                         "selected rows anyway).")


SPARSE_OPTIMIZERS = ("sgd", "adagrad")



def written_summaries(dataset, summary_column: str) -> list[str] | None:
    """The reference summaries of an evaluation split as written, in order (None for a streamed
    split, whose rows are read once: its scores then use the labels, cut at the target length)."""
    if dataset is None or isinstance(dataset, datasets.IterableDataset):
        return None
    return [summary or "" for summary in dataset[summary_column]]

def main(argv: list[str] | None = None) -> dict:
    parser = HfArgumentParser((ModelArguments, DataArguments, Seq2SeqTrainingArguments, RecipeArguments))
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) == 1 and argv[0].endswith(".json"):
        model_args, data_args, training_args, recipe_args = parser.parse_json_file(json_file=argv[0])
    else:
        if "--bf16" in argv and "--use_cpu" not in argv and not torch.cuda.is_available():
            # transformers refuses bf16 without a GPU unless told the CPU is meant ("Your setup doesn't
            # support bf16/gpu"); on a machine without a GPU the CPU is the only thing --bf16 can mean
            argv += ["--use_cpu", "true"]
        model_args, data_args, training_args, recipe_args = parser.parse_args_into_dataclasses(args=argv)
    if recipe_args.max_train_minutes is not None and recipe_args.max_train_minutes <= 0:
        raise ValueError(f"--max_train_minutes must be positive, got {recipe_args.max_train_minutes}.")
    if not 0 <= recipe_args.lr_cooldown_share <= 1:
        raise ValueError(f"--lr_cooldown_share is a share of the budget, from 0 to 1; got {recipe_args.lr_cooldown_share}.")
    bf16_note = None
    if training_args.device.type == "cpu" and not (training_args.bf16 or training_args.fp16):
        use_bf16, bf16_note = cpu_bf16_decision(recipe_args.cpu_bf16)
        # after parsing, `bf16` alone changes nothing: the Trainer's accelerator reads mixed_precision
        training_args.bf16 = use_bf16
        training_args.mixed_precision = "bf16" if use_bf16 else training_args.mixed_precision
    if "--train_sampling_strategy" not in argv and not data_args.streaming:
        # long documents: batch similar lengths (a stream has no lengths to sort by)
        training_args.train_sampling_strategy = "group_by_length"
    if data_args.streaming and training_args.train_sampling_strategy == "group_by_length":
        raise ValueError("--train_sampling_strategy group_by_length sorts the training data by length, which a "
                         "--streaming run cannot read ahead: drop one of the two.")
    # transformers' own logs at --log_level (warning unless given), other ranks at --log_level_replica;
    # this script's progress lines at INFO on the main process unless --log_level says otherwise
    transformers.utils.logging.set_verbosity_warning()
    library_level = training_args.get_process_log_level()
    transformers.utils.logging.set_verbosity(library_level)
    log_level = logging.INFO if training_args.log_level == "passive" and training_args.should_log else library_level
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logger.setLevel(log_level)
    if bf16_note and training_args.do_train:
        logger.info(bf16_note)
    if not (training_args.do_train or training_args.do_eval or training_args.do_predict):
        raise ValueError("nothing to do: pass --do_train, --do_eval and/or --do_predict.")
    # --push_to_hub publishes the finished run through reformer-zh-publish (validated, with a model
    # card), the same repository content as running that command; the Trainer itself pushes nothing.
    push_to_hub, training_args.push_to_hub = training_args.push_to_hub, False
    if push_to_hub:
        check_hub_arguments(training_args, argv)

    # 1. data, tokenizer, model -- every check before any training
    files = data_files(data_args, training_args)
    if data_args.streaming and training_args.do_train and training_args.max_steps <= 0:
        raise ValueError("--streaming reads the training data as a stream of unknown length: give --max_steps.")
    raw = load_raw_datasets(data_args, files, model_args)
    for flag, split in (("--do_train", "train"), ("--do_eval", "validation"), ("--do_predict", "test")):
        if getattr(training_args, flag[2:]) and split not in raw:
            raise ValueError(f"{flag} needs the {split} split; give --{split}_file.")
    with training_args.main_process_first(desc="tokenizer"):
        tokenizer = load_tokenizer(model_args, files, data_args, training_args)
    transformers.set_seed(training_args.seed)  # the same initial weights in every process and every run
    model = load_model(model_args, tokenizer)
    config = model.config
    if push_to_hub and not isinstance(config, ReformerZhConfig):
        raise ValueError(f"--push_to_hub publishes reformer-zh checkpoints (with their pipeline and remote code); this "
                         f"is a {config.model_type} model, a baseline for the benchmarks: drop --push_to_hub.")
    check_memory_arguments(model, model_args, training_args)
    sharding_note = check_sharding_arguments(model, training_args, on_accelerator=training_args.device.type != "cpu")
    if sharding_note:
        logger.info(sharding_note)
    if len(tokenizer) != config.vocab_size:
        raise ValueError(f"the tokenizer has {len(tokenizer)} tokens but the model's vocab_size is {config.vocab_size}.")
    for flag in ("max_source_length", "max_target_length", "val_max_target_length"):
        value = getattr(data_args, flag)
        positions, key = input_positions(config) if flag == "max_source_length" else target_positions(config)
        if value is not None and value > positions:
            raise ValueError(
                f"--{flag} {value} exceeds the model's {key} ({positions}); "
                f"lower it or use a config with more positions (--config_overrides {key}=...)."
            )
    if data_args.source_prefix:
        config.prefix = data_args.source_prefix  # the summarization pipeline puts it before every input
    val_max_target_length = data_args.val_max_target_length or data_args.max_target_length
    num_beams = data_args.num_beams or training_args.generation_num_beams or 1
    if training_args.generation_max_length is not None:
        # run_summarization's meaning: the longest generated sequence, the start token included
        model.generation_config.max_new_tokens = None
        model.generation_config.max_length = training_args.generation_max_length
    else:
        model.generation_config.max_new_tokens = val_max_target_length
        model.generation_config.max_length = None
    model.generation_config.num_beams = num_beams
    for option in ("no_repeat_ngram_size", "min_new_tokens", "length_penalty"):
        if getattr(data_args, option) is not None:
            setattr(model.generation_config, option, getattr(data_args, option))
    # a summary never contains padding, [BOS] or [MASK]
    model.generation_config.suppress_tokens = sorted(
        {i for i in (tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.mask_token_id) if i is not None}
    )
    training_args.generation_num_beams = num_beams

    # 2. tokenise
    def tokenize(batch, target_length: int):
        sources = [data_args.source_prefix + (text or "") for text in batch[data_args.text_column]]
        encoded = tokenizer(sources, max_length=data_args.max_source_length, truncation=True)
        summaries = [summary or "" for summary in batch[data_args.summary_column]]
        encoded["labels"] = tokenizer(text_target=summaries, max_length=target_length, truncation=True)["input_ids"]
        return encoded

    def prepare(split: str, limit: int | None):
        dataset = raw[split]
        target_length = data_args.max_target_length if split == "train" else val_max_target_length
        if isinstance(dataset, datasets.IterableDataset):  # --streaming: tokenized as it is read
            if limit is not None:
                dataset = dataset.take(limit)
            row = first_row(dataset)
            if row is None:
                raise ValueError(f"the streamed {split} data yields no rows (--max_{split}_samples {limit}?).")
            columns = list(row)
            return dataset, dataset.map(tokenize, batched=True, remove_columns=columns,
                                        fn_kwargs={"target_length": target_length})
        if limit is not None:
            dataset = dataset.select(range(min(limit, len(dataset))))
        with training_args.main_process_first(desc=f"tokenizing {split}"):
            encoded = dataset.map(tokenize, batched=True, num_proc=data_args.preprocessing_num_workers,
                                  remove_columns=dataset.column_names, fn_kwargs={"target_length": target_length},
                                  load_from_cache_file=not data_args.overwrite_cache, desc=f"tokenizing {split}")
        return dataset, encoded

    train_dataset = prepare("train", data_args.max_train_samples)[1] if training_args.do_train else None
    eval_raw, eval_dataset = prepare("validation", data_args.max_eval_samples) if training_args.do_eval else (None, None)
    test_raw, test_dataset = prepare("test", data_args.max_predict_samples) if training_args.do_predict else (None, None)
    # ROUGE compares with the summaries as written, not as the labels hold them: labels stop at
    # the target length (9% of xwlb headlines are longer than 40 tokens) and hold [UNK] for
    # characters outside the vocabulary. compute_metrics is told which split it scores.
    scoring = {"references": written_summaries(eval_raw, data_args.summary_column)}

    collator = ReformerZhSeq2SeqCollator(tokenizer, model=model, pad_to_multiple_of=chunk_multiple(config),
                                         decoder_token_dropout=recipe_args.decoder_token_dropout)

    def decode_pairs(eval_prediction):
        predictions, labels = eval_prediction.predictions, eval_prediction.label_ids
        if isinstance(predictions, tuple):
            predictions = predictions[0]
        predictions = [[t for t in row if t >= 0] for row in predictions.tolist()]
        labels = [[t for t in row if t >= 0] for row in labels.tolist()]
        decoded = tokenizer.batch_decode(predictions, skip_special_tokens=True)
        references = scoring["references"]
        if references is None:  # a streamed split: only its labels are kept
            references = tokenizer.batch_decode(labels, skip_special_tokens=True)
        elif len(references) != len(decoded):
            raise RuntimeError(f"{len(decoded)} predictions for {len(references)} references: "
                               "the evaluation did not score the split in order.")
        lengths = [generated_length(row, tokenizer.pad_token_id, tokenizer.eos_token_id) for row in predictions]
        return decoded, references, sum(lengths) / max(len(lengths), 1)

    def compute_metrics(eval_prediction):
        decoded, references, gen_len = decode_pairs(eval_prediction)
        return {**rouge_scores(decoded, references, jieba_words=data_args.jieba_rouge), "gen_len": gen_len}

    budget = TimeBudgetCallback(recipe_args.max_train_minutes)
    callbacks = [budget]
    if recipe_args.save_every_minutes is not None:
        if recipe_args.save_every_minutes <= 0:
            raise ValueError(f"--save_every_minutes must be positive, got {recipe_args.save_every_minutes}.")
        callbacks.append(SaveEveryMinutesCallback(recipe_args.save_every_minutes))
    trainer = ReformerZhTrainer(
        memory_learning_rate=model_args.memory_learning_rate,
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        data_collator=collator,
        compute_metrics=compute_metrics if training_args.predict_with_generate else None,
        callbacks=callbacks,
        budget=budget,
        lr_cooldown_share=recipe_args.lr_cooldown_share,
    )

    all_metrics: dict = {}
    if training_args.do_train:
        budget.resume_from(training_args.resume_from_checkpoint)
        result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
        trainer.save_model()
        # the precision the accelerator actually trained in ("bf16" or "no"), not what was asked
        metrics = dict(result.metrics, train_steps=trainer.state.global_step,
                       train_mixed_precision=str(trainer.accelerator.mixed_precision))
        if budget.cooldown_started_step is not None:
            metrics["train_cooldown_started_step"] = budget.cooldown_started_step
        if has_length(train_dataset):  # a --streaming run does not know how many rows it read
            metrics["train_samples"] = len(train_dataset)
        trainer.log_metrics("train", metrics)
        trainer.save_metrics("train", metrics)
        trainer.save_state()
        if trainer.is_world_process_zero():
            summary = training_summary(model_args, data_args, training_args, recipe_args)
            (Path(training_args.output_dir) / "training_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        all_metrics.update(metrics)
    if training_args.do_eval:
        metrics = trainer.evaluate(metric_key_prefix="eval")
        metrics["eval_samples"] = len(eval_dataset)
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
        all_metrics.update(metrics)
    if training_args.do_predict:
        scoring["references"] = written_summaries(test_raw, data_args.summary_column)
        output = trainer.predict(test_dataset, metric_key_prefix="predict")
        metrics = dict(output.metrics, predict_samples=len(test_dataset))
        trainer.log_metrics("predict", metrics)
        trainer.save_metrics("predict", metrics)
        all_metrics.update(metrics)
        if trainer.is_world_process_zero() and training_args.predict_with_generate:
            decoded, _, _ = decode_pairs(output)
            path = Path(training_args.output_dir) / "generated_predictions.jsonl"
            with open(path, "w", encoding="utf-8") as handle:
                for row, prediction in zip(test_raw, decoded):
                    record = {"id": row.get("id"), "prediction": prediction, "reference": row[data_args.summary_column]}
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    if push_to_hub and trainer.is_world_process_zero():
        from reformer_zh import publish

        if training_args.hub_token:  # the token whose namespace resolved a bare --hub_model_id
            os.environ["HF_TOKEN"] = training_args.hub_token
        dataset = data_args.dataset_name or Path(files.get("train", "data")).parent.name
        publish.main([training_args.output_dir, "--repo_id", training_args.hub_model_id, "--dataset", dataset]
                     + (["--private"] if training_args.hub_private_repo else [])
                     + (["--revision", training_args.hub_revision] if training_args.hub_revision else []))
    return all_metrics


if __name__ == "__main__":
    from reformer_zh.commands import train

    train()
