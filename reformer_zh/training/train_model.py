"""The tokenizer and model reformer-zh-train trains: built from a preset or config (a tokenizer
built from the training file when none is named) or loaded from a checkpoint with the overrides
that may change on trained weights; the checks that the data fits the model; the generation
settings saved with it."""

from __future__ import annotations

import logging
import math
import os

from transformers import CONFIG_MAPPING, AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer

import modeling_reformer_zh  # noqa: F401  (registers the Auto classes)
from modeling_reformer_zh import ReformerZhConfig
from modeling_reformer_zh.product_key_memory import product_key_memories
from reformer_zh.training.led_positions import LED_GROWABLE_KEY, grow_led_encoder_positions
from reformer_zh.training.train_arguments import CONFIG_PRESETS, ModelArguments, parse_overrides
from tokenization.build_vocab import build_tokenizer

logger = logging.getLogger("train")


def hub_options(model_args: ModelArguments) -> dict:
    """What every from_pretrained of this run is given (run_summarization's flags)."""
    return dict(cache_dir=model_args.cache_dir, revision=model_args.model_revision, token=model_args.token,
                trust_remote_code=model_args.trust_remote_code)


def load_tokenizer(model_args: ModelArguments, files: dict[str, str], data_args, training_args):
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
    # new rows that start at zero: the trained weights run the same function until they learn
    "section_embeddings", "section_break_token_id", "summary_segment_embeddings", "summary_separator_token_id",
    # a training loss only, no weights
    "copy_alignment_loss_weight",
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
        for key, token_id in missing_section_token_ids(config.to_dict(), tokenizer).items():
            setattr(config, key, token_id)
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
    values.update(missing_section_token_ids(values, tokenizer))
    return AutoModelForSeq2SeqLM.from_config(config_class(**values))


# The token ids the section options read: (config key, token, the options that need it, how to
# get a tokenizer that has it)
SECTION_TOKENS = (
    ("section_break_token_id", "[NL]", ("section_embeddings", "copy_alignment_loss_weight"),
     "a tokenizer that keeps line breaks ([NL]): build it with keep_line_breaks"),
    ("summary_separator_token_id", "；", ("summary_segment_embeddings", "copy_alignment_loss_weight"),
     "a tokenizer with the segment separator '；': build it from summaries that use it"),
)


def missing_section_token_ids(settings: dict, tokenizer) -> dict:
    """The token ids that the section options in `settings` (a config's values) need and it
    lacks, read from the tokenizer: a blank line is two [NL], a summary segment ends at '；'."""
    found = {}
    for key, token, options, fix in SECTION_TOKENS:
        wanting = [option for option in options if settings.get(option)]
        if not wanting or settings.get(key) is not None:
            continue
        token_id = tokenizer.convert_tokens_to_ids(token)
        if token_id is None or token_id == tokenizer.unk_token_id:
            raise ValueError(f"{wanting[0]} needs {fix}, or set {key}; this tokenizer has no {token}.")
        found[key] = token_id
    return found


def load_led_with_more_positions(model_args: ModelArguments, config, overrides: dict):
    """An LED baseline checkpoint fine-tuned on longer inputs (`xwlb-program-led`): the one key
    its --config_overrides take grows the encoder's learned positions by copying the trained ones
    (reformer_zh/training/led_positions.py)."""
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


def check_memory_arguments(model, model_args: ModelArguments, training_args) -> None:
    """--memory_learning_rate needs a product-key memory; sparse memory gradients need an optimizer
    that applies them."""
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


def check_model_fits(model, tokenizer, data_args) -> None:
    """The tokenizer is the model's, and the lengths asked for fit its positions."""
    config = model.config
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


def configure_generation(model, tokenizer, data_args, training_args) -> int:
    """The generation settings evaluation uses and the checkpoint keeps (so the pipeline decodes
    as the run evaluated); returns the generation length in new tokens."""
    if data_args.source_prefix:
        model.config.prefix = data_args.source_prefix  # the summarization pipeline puts it before every input
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
    # a checkpoint that tells the pipeline how much to read (the shipped story model: 256 tokens)
    # passes that on to its fine-tunes; a fine-tune on longer inputs reads what it trained on
    reading = (getattr(model.config, "task_specific_params", None) or {}).get("summarization") or {}
    if reading.get("max_input_tokens") is not None and reading["max_input_tokens"] != data_args.max_source_length:
        reading["max_input_tokens"] = data_args.max_source_length
    # a model that sees its sections and the segment it writes: the pipeline writes one segment
    # per section (issue 35; on 30 validation evenings R-L 48.4 against 46.9 left to itself,
    # docs/experiments.md)
    if getattr(model.config, "section_embeddings", 0) and getattr(model.config, "summary_segment_embeddings", 0):
        params = dict(getattr(model.config, "task_specific_params", None) or {})
        params["summarization"] = {**(params.get("summarization") or {}), "one_segment_per_section": True}
        model.config.task_specific_params = params
    return val_max_target_length
