"""The command line of reformer-zh-train: the presets --config_name names, the argument
dataclasses (run_summarization's flags plus this project's), and the checks and defaults that
follow from them before any data is read."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

import torch
import transformers
from transformers import HfArgumentParser, Seq2SeqTrainingArguments

from reformer_zh.hardware import cpu_bf16_decision

logger = logging.getLogger("train")

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
    # (reformer_zh/training/led_positions.py), no copy attention
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
    target_length_bucket: int = field(
        default=32,
        metadata={"help": "with group_by_length (the default here): batch rows by their summary's length in buckets of "
                          "this many tokens first, their document's length second (transformers: the document's "
                          "alone); 0: the document's alone (reformer_zh/training/length_grouping.py)"},
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


def parse_arguments(argv: list[str]):
    """argv (or one .json file of them) -> (model, data, training, recipe) arguments, checked, and
    the note saying why CPU training runs in bf16 or not (None when the CPU is not used)."""
    parser = HfArgumentParser((ModelArguments, DataArguments, Seq2SeqTrainingArguments, RecipeArguments))
    if len(argv) == 1 and argv[0].endswith(".json"):
        model_args, data_args, training_args, recipe_args = parser.parse_json_file(json_file=argv[0])
    else:
        if "--bf16" in argv and "--use_cpu" not in argv and not torch.cuda.is_available():
            # transformers refuses bf16 without a GPU unless told the CPU is meant ("Your setup doesn't
            # support bf16/gpu"); on a machine without a GPU the CPU is the only thing --bf16 can mean
            argv = argv + ["--use_cpu", "true"]
        model_args, data_args, training_args, recipe_args = parser.parse_args_into_dataclasses(args=argv)
    check_recipe_arguments(recipe_args)
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
    if not (training_args.do_train or training_args.do_eval or training_args.do_predict):
        raise ValueError("nothing to do: pass --do_train, --do_eval and/or --do_predict.")
    return model_args, data_args, training_args, recipe_args, bf16_note


def check_recipe_arguments(recipe_args: RecipeArguments) -> None:
    if recipe_args.max_train_minutes is not None and recipe_args.max_train_minutes <= 0:
        raise ValueError(f"--max_train_minutes must be positive, got {recipe_args.max_train_minutes}.")
    if not 0 <= recipe_args.lr_cooldown_share <= 1:
        raise ValueError(f"--lr_cooldown_share is a share of the budget, from 0 to 1; got {recipe_args.lr_cooldown_share}.")
    if recipe_args.target_length_bucket < 0:
        raise ValueError(f"--target_length_bucket is a number of tokens (0: group by the document's length alone), "
                         f"got {recipe_args.target_length_bucket}.")
    if recipe_args.save_every_minutes is not None and recipe_args.save_every_minutes <= 0:
        raise ValueError(f"--save_every_minutes must be positive, got {recipe_args.save_every_minutes}.")


def configure_logging(training_args) -> None:
    """transformers' own logs at --log_level (warning unless given), other ranks at
    --log_level_replica; this command's progress lines at INFO on the main process unless
    --log_level says otherwise."""
    transformers.utils.logging.set_verbosity_warning()
    library_level = training_args.get_process_log_level()
    transformers.utils.logging.set_verbosity(library_level)
    log_level = logging.INFO if training_args.log_level == "passive" and training_args.should_log else library_level
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logger.setLevel(log_level)


def check_hub_arguments(training_args, argv: list[str]) -> None:
    """Before training: what --push_to_hub will publish, and where (a bare --hub_model_id NAME
    gets the token's namespace, as the Trainer does)."""
    from reformer_zh.release.publish import resolve_repo_id

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
