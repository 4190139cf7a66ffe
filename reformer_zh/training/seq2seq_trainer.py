"""`Seq2SeqTrainer` as reformer-zh-train uses it: the memory values' own learning rate, the
learning rate's cool-down over a clock budget, label smoothing of log-probabilities for copy
models, evaluation in dataset order; and the summary of a run that the model card is filled from."""

from __future__ import annotations

import contextlib
import platform
from pathlib import Path

import datasets
import torch
import transformers
from transformers import Seq2SeqTrainer
from transformers.trainer_pt_utils import LengthGroupedSampler
from transformers.trainer_utils import has_length

from modeling_reformer_zh.product_key_memory import memory_usage, product_key_memories
from reformer_zh.training.label_smoothing import LogProbabilityLabelSmoother
from reformer_zh.training.length_grouping import batch_shape_keys, list_lengths
from reformer_zh.training.training_budget import TimeBudgetCallback, add_cooldown


class ReformerZhTrainer(Seq2SeqTrainer):
    """`Seq2SeqTrainer` plus what the product-key memory needs: the memory values in their own
    optimizer group (`--memory_learning_rate`, no weight decay), and the share of memory slots
    read since the last log reported beside the loss (`pkm_usage/<layer>`); `group_by_length`
    batches grouped by summary length too (`target_length_bucket`, reformer_zh/training/length_grouping.py)."""

    def __init__(self, *args, memory_learning_rate: float | None = None, budget: TimeBudgetCallback | None = None,
                 lr_cooldown_share: float = 0.0, target_length_bucket: int = 0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.memory_learning_rate = memory_learning_rate
        self.target_length_bucket = target_length_bucket
        self.budget = budget or TimeBudgetCallback(None)
        self.lr_cooldown_share = lr_cooldown_share
        if self.label_smoother is not None and getattr(self.model.config, "copy_attention", False):
            # copy attention returns log P already: no second log_softmax over the vocabulary
            self.label_smoother = LogProbabilityLabelSmoother(epsilon=self.label_smoother.epsilon)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The Trainer's loss, plus the copy pointer's guided-alignment loss (config
        `copy_alignment_loss_weight`) where the label smoother took the labels: the model then
        computed no loss of its own and could not add it there."""
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        alignment = outputs.get("alignment_loss") if isinstance(outputs, dict) else None
        if alignment is not None and self.label_smoother is not None:
            if num_items_in_batch is not None and self.model_accepts_loss_kwargs:
                # the token loss is then a share of the whole accumulated batch's, and the Trainer
                # no longer divides by the micro-batches: this mean must be divided here
                alignment = alignment / getattr(self, "current_gradient_accumulation_steps",
                                                self.args.gradient_accumulation_steps)
            loss = loss + self.model.config.copy_alignment_loss_weight * alignment
        return (loss, outputs) if return_outputs else loss

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

    def _get_train_sampler(self, train_dataset=None):
        """With `group_by_length` and `target_length_bucket` > 0: transformers' length-grouped
        sampler over keys of summary bucket, then document length. transformers v5 cannot be told
        this through a `length` column: it drops the columns the model does not take before its
        sampler reads them. A `length` column the user made (`--length_column_name`) still wins."""
        dataset = self.train_dataset if train_dataset is None else train_dataset
        if (self.target_length_bucket > 0 and self.args.train_sampling_strategy == "group_by_length"
                and isinstance(dataset, datasets.Dataset) and "labels" in dataset.column_names
                and self.args.length_column_name not in dataset.column_names):
            keys = batch_shape_keys(list_lengths(dataset, "input_ids"), list_lengths(dataset, "labels"),
                                    self.target_length_bucket)
            return LengthGroupedSampler(self.args.train_batch_size * self.args.gradient_accumulation_steps,
                                        lengths=keys)
        return super()._get_train_sampler(train_dataset)

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


# The hyperparameters a model card lists (the Trainer's own card lists the same ones); they go to
# training_summary.json as JSON, since training_args.bin is a pickle that publishing never loads.
CARD_HYPERPARAMETERS = ("learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps", "seed",
                        "optim", "lr_scheduler_type", "warmup_steps", "weight_decay", "adam_beta1", "adam_beta2",
                        "max_grad_norm", "label_smoothing_factor", "max_steps", "num_train_epochs", "bf16", "fp16")


def training_summary(model_args, data_args, training_args, recipe_args) -> dict:
    """What reformer-zh-publish writes into the model card: where the weights started, the
    data, the hyperparameters and the library versions that trained them."""
    hyperparameters = {}
    for name in CARD_HYPERPARAMETERS:
        value = getattr(training_args, name)
        hyperparameters[name] = getattr(value, "value", value)
    hyperparameters.update(world_size=training_args.world_size, max_source_length=data_args.max_source_length,
                           max_target_length=data_args.max_target_length,
                           max_train_minutes=recipe_args.max_train_minutes,
                           target_length_bucket=recipe_args.target_length_bucket)
    return {
        "base_model": model_args.model_name_or_path,
        "dataset": data_args.dataset_name,
        "train_file": Path(data_args.train_file).name if data_args.train_file else None,  # no local path
        "hyperparameters": hyperparameters,
        "framework_versions": {"transformers": transformers.__version__, "torch": torch.__version__,
                               "datasets": datasets.__version__, "python": platform.python_version()},
    }
