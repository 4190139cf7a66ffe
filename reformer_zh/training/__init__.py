"""Training: the `reformer-zh-train` / `-pretrain` / `-build-tokenizer` commands, their arguments, data, collator,
loss, Trainer, sharding and time budget, the general model's mixture and the story-boundary model."""
