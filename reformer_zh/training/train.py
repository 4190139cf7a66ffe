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
reformer_zh.training.train` works too but imports torch before choosing the allocator, so a re-execution
under jemalloc costs a second start-up. Without any data flag it uses the embedded sample
(reformer_zh/sample/). Bad input fails before any training starts, with a message that says what
was found and how to fix it.

This module wires the run together; each concern has its own: the command line and presets
(train_arguments.py), the data and the scores (train_data.py), the tokenizer and model
(train_model.py), the Trainer (seq2seq_trainer.py).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import transformers
from transformers.trainer_utils import has_length

import modeling_reformer_zh  # noqa: F401  (registers the Auto classes)
from reformer_zh.training.collator import ReformerZhSeq2SeqCollator
from reformer_zh.training.memory_log import MemoryLogCallback
from reformer_zh.training.sharding import check_sharding_arguments
from reformer_zh.training.training_budget import SaveEveryMinutesCallback, TimeBudgetCallback
from reformer_zh.training.train_arguments import check_hub_arguments, configure_logging, logger, parse_arguments
from reformer_zh.training.train_data import SummaryScorer, data_files, load_raw_datasets, tokenized_splits
from reformer_zh.training.train_model import (check_memory_arguments, check_model_fits, chunk_multiple, configure_generation,
                                     load_model, load_tokenizer)
from reformer_zh.training.seq2seq_trainer import ReformerZhTrainer, training_summary

# What callers have long imported from here (`train.CONFIG_PRESETS`, `train.load_model`, ...)
# stays importable from here; the tests patch `train.ReformerZhTrainer`, which main() looks up.
from transformers import AutoModelForSeq2SeqLM, HfArgumentParser, Seq2SeqTrainingArguments  # noqa: E402,F401
from modeling_reformer_zh import ReformerZhConfig  # noqa: E402,F401
from modeling_reformer_zh.product_key_memory import product_key_memories  # noqa: E402,F401
from reformer_zh.training.led_positions import LED_GROWABLE_KEY  # noqa: E402,F401
from reformer_zh.training.train_arguments import (CONFIG_PRESETS, DataArguments, ModelArguments,  # noqa: E402,F401
                                         RecipeArguments, parse_overrides)
from reformer_zh.training.train_data import generated_length, written_summaries  # noqa: E402,F401
from reformer_zh.training.train_model import FINE_TUNE_OVERRIDES, config_class_for  # noqa: E402,F401


def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    model_args, data_args, training_args, recipe_args, bf16_note = parse_arguments(argv)
    configure_logging(training_args)
    if bf16_note and training_args.do_train:
        logger.info(bf16_note)
    # --push_to_hub publishes the finished run through reformer-zh-publish (validated, with a model
    # card), the same repository content as running that command; the Trainer itself pushes nothing.
    push_to_hub, training_args.push_to_hub = training_args.push_to_hub, False
    if push_to_hub:
        check_hub_arguments(training_args, argv)

    # 1. data, tokenizer, model: every check before any training
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
    if push_to_hub and not isinstance(model.config, ReformerZhConfig):
        raise ValueError(f"--push_to_hub publishes reformer-zh checkpoints (with their pipeline and remote code); this "
                         f"is a {model.config.model_type} model, a baseline for the benchmarks: drop --push_to_hub.")
    check_memory_arguments(model, model_args, training_args)
    sharding_note = check_sharding_arguments(model, training_args, on_accelerator=training_args.device.type != "cpu")
    if sharding_note:
        logger.info(sharding_note)
    check_model_fits(model, tokenizer, data_args)
    val_max_target_length = configure_generation(model, tokenizer, data_args, training_args)

    # 2. tokenize, 3. train, evaluate, predict
    splits = tokenized_splits(raw, tokenizer, data_args, training_args, val_max_target_length)
    scorer = SummaryScorer(tokenizer, data_args.summary_column, jieba_words=data_args.jieba_rouge)
    scorer.score(splits.eval_raw)
    budget = TimeBudgetCallback(recipe_args.max_train_minutes)
    callbacks = [budget, MemoryLogCallback()]
    if recipe_args.save_every_minutes is not None:
        callbacks.append(SaveEveryMinutesCallback(recipe_args.save_every_minutes))
    trainer = ReformerZhTrainer(
        memory_learning_rate=model_args.memory_learning_rate,
        model=model,
        args=training_args,
        train_dataset=splits.train,
        eval_dataset=splits.eval,
        processing_class=tokenizer,
        data_collator=ReformerZhSeq2SeqCollator(tokenizer, model=model, pad_to_multiple_of=chunk_multiple(model.config),
                                                decoder_token_dropout=recipe_args.decoder_token_dropout),
        compute_metrics=scorer if training_args.predict_with_generate else None,
        callbacks=callbacks,
        budget=budget,
        lr_cooldown_share=recipe_args.lr_cooldown_share,
        target_length_bucket=recipe_args.target_length_bucket,
    )
    all_metrics: dict = {}
    if training_args.do_train:
        all_metrics.update(run_training(trainer, budget, splits.train, model_args, data_args, training_args,
                                        recipe_args))
    if training_args.do_eval:
        metrics = trainer.evaluate(metric_key_prefix="eval")
        metrics["eval_samples"] = len(splits.eval)
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
        all_metrics.update(metrics)
    if training_args.do_predict:
        all_metrics.update(run_prediction(trainer, scorer, splits, data_args, training_args))
    if push_to_hub and trainer.is_world_process_zero():
        publish_run(training_args, data_args, files)
    return all_metrics


def run_training(trainer, budget, train_dataset, model_args, data_args, training_args, recipe_args) -> dict:
    """Train (resumed with the minutes already spent, when asked), save the model, and record
    what the run did: steps, the precision the accelerator really used, the cool-down's start."""
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
    return metrics


def run_prediction(trainer, scorer: SummaryScorer, splits, data_args, training_args) -> dict:
    """Score the test split and write generated_predictions.jsonl: each prediction beside its
    row's id and written reference."""
    scorer.score(splits.test_raw)
    output = trainer.predict(splits.test, metric_key_prefix="predict")
    metrics = dict(output.metrics, predict_samples=len(splits.test))
    trainer.log_metrics("predict", metrics)
    trainer.save_metrics("predict", metrics)
    if trainer.is_world_process_zero() and training_args.predict_with_generate:
        decoded, _, _ = scorer.decode_pairs(output)
        path = Path(training_args.output_dir) / "generated_predictions.jsonl"
        with open(path, "w", encoding="utf-8") as handle:
            for row, prediction in zip(splits.test_raw, decoded):
                record = {"id": row.get("id"), "prediction": prediction, "reference": row[data_args.summary_column]}
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return metrics


def publish_run(training_args, data_args, files: dict[str, str]) -> None:
    """--push_to_hub: the finished run through reformer-zh-publish's checks, once."""
    from reformer_zh.release import publish

    if training_args.hub_token:  # the token whose namespace resolved a bare --hub_model_id
        os.environ["HF_TOKEN"] = training_args.hub_token
    dataset = data_args.dataset_name or Path(files.get("train", "data")).parent.name
    publish.main([training_args.output_dir, "--repo_id", training_args.hub_model_id, "--dataset", dataset]
                 + (["--private"] if training_args.hub_private_repo else [])
                 + (["--revision", training_args.hub_revision] if training_args.hub_revision else []))


if __name__ == "__main__":
    from reformer_zh.commands import train

    train()
