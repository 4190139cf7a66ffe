"""reformer-zh's command-line tools: training, pre-training, summarizing, publishing, the
tokenizer builder, Chinese ROUGE and the extractive baselines (`reformer_zh.commands` lists
the console scripts). The model itself is `modeling_reformer_zh`, kept apart so that it is
the self-contained remote-code folder a published checkpoint carries."""
