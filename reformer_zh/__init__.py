"""reformer-zh's tools around the model, grouped by what they are for:

- `training/`: training, pre-training, the tokenizer builder, the general model's data mixture
  and the story-boundary model;
- `evaluation/`: Chinese ROUGE, the extractive rules, section metrics, the dev_test ledger;
- `serving/`: summarizing from the command line, the page and its server, explanations;
- `release/`: the shipped model (its folder is `reference_model/`), remote code, publishing.

Beside them: `commands.py` lists the console scripts, `cli.py` turns a command's bad input into
one `error:` line, `hardware.py` says what the CPU can do, `allocator.py` chooses the memory
allocator before torch loads, and `sample/` holds the embedded demo data. The model itself is
`modeling_reformer_zh`, kept apart so that it is the self-contained remote-code folder a
published checkpoint carries."""
