"""`pipeline("summarization")` for reformer-zh checkpoints.

transformers v5 removed its built-in summarization pipeline (the task name now raises). The
supported way back is a custom pipeline declared in the checkpoint's `config.custom_pipelines`;
every checkpoint this project saves declares this class and carries this file, so

    pipeline("summarization", model=folder_or_repo_id, trust_remote_code=True)
    pipeline(model=folder_or_repo_id, trust_remote_code=True)

both return `[{"summary_text": ...}]` per input, as v4 did. Imports only transformers.
"""

from __future__ import annotations

import logging
from typing import Any

from transformers import Pipeline

logger = logging.getLogger(__name__)

GENERATE_ARGUMENTS = ("max_new_tokens", "num_beams", "min_length", "min_new_tokens", "do_sample", "top_k", "top_p",
                      "temperature", "length_penalty", "no_repeat_ngram_size", "repetition_penalty", "early_stopping",
                      "max_length", "num_return_sequences", "generation_config", "suppress_tokens",
                      "begin_suppress_tokens", "bad_words_ids", "use_cache", "max_time")


class SummarizationPipeline(Pipeline):
    """Summarize Chinese documents with a reformer-zh encoder-decoder.

    Call arguments: `max_new_tokens`, `num_beams`, `min_length` and the other `generate()` options;
    `truncation` (default True): an input longer than the model's positions is cut to
    `max_position_embeddings` tokens with a warning; with `truncation=False` it raises instead.
    `batch_size` batches inputs as in every transformers pipeline.
    """

    def _sanitize_parameters(self, truncation: bool | None = None, clean_up_tokenization_spaces=None, **kwargs: Any):
        preprocess_parameters = {}
        if truncation is not None:
            preprocess_parameters["truncation"] = truncation
        unknown = sorted(set(kwargs) - set(GENERATE_ARGUMENTS))
        if unknown:
            raise TypeError(f"unexpected argument(s) {unknown} for the summarization pipeline; generate options: "
                            f"{list(GENERATE_ARGUMENTS)}, plus truncation and batch_size.")
        return preprocess_parameters, dict(kwargs), {}

    def preprocess(self, text: str, truncation: bool = True) -> dict:
        if not isinstance(text, str):
            raise TypeError(f"the summarization pipeline takes a string or a list of strings, got {type(text).__name__}")
        max_tokens = self.model.config.max_position_embeddings
        encoded = self.tokenizer(text, return_tensors="pt")
        length = encoded["input_ids"].shape[1]
        if length > max_tokens:
            if not truncation:
                raise ValueError(
                    f"the input is {length} tokens, more than the model's {max_tokens} positions "
                    "(`max_position_embeddings`); pass truncation=True to keep its first tokens."
                )
            logger.warning("input of %d tokens truncated to the model's %d positions", length, max_tokens)
            encoded = self.tokenizer(text, return_tensors="pt", truncation=True, max_length=max_tokens)
        return dict(encoded)

    def _forward(self, model_inputs: dict, **generate_kwargs: Any) -> dict:
        output_ids = self.model.generate(**model_inputs, **generate_kwargs)
        return {"output_ids": output_ids}

    def postprocess(self, model_outputs: dict) -> list[dict[str, str]]:
        return [
            {"summary_text": self.tokenizer.decode(ids, skip_special_tokens=True)}
            for ids in model_outputs["output_ids"]
        ]

    def __call__(self, inputs: str | list[str], **kwargs: Any):
        """A string -> `[{"summary_text": ...}]`; a list of strings -> one dict per input (v4's format)."""
        result = super().__call__(inputs, **kwargs)
        if isinstance(inputs, list) and all(len(item) == 1 for item in result):
            return [item[0] for item in result]
        return result
