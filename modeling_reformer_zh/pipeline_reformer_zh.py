"""`pipeline("summarization")` for reformer-zh checkpoints.

transformers v5 removed its built-in summarization pipeline (the task name now raises). The
supported way back is a custom pipeline declared in the checkpoint's `config.custom_pipelines`;
every checkpoint this project saves declares this class and carries this file, so

    pipeline("summarization", model=folder_or_repo_id, trust_remote_code=True)
    pipeline(model=folder_or_repo_id, trust_remote_code=True)

both return `[{"summary_text": ...}]` per input, as v4 did. Imports torch, transformers and its
siblings document_sections.py and sentence_meaning.py, which travel with it.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import logging
import re
import unicodedata
from typing import Any

import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList, Pipeline

from .document_sections import (SECTION_BREAK, DocumentSections, MeaningOf, document_sections,  # noqa: F401
                                is_news_brief, sections_of)  # (is_news_brief and sections_of re-exported)
from .sentence_meaning import SentenceMeaning

logger = logging.getLogger(__name__)

# CJK unified ideographs (the basic block and extension A) and the compatibility block: a
# document with none of them is not what this model was trained to read
CHINESE_CHARACTER = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


# Documents made of sections (issues 35 and 43): each section is summarized on its own and the
# segments joined as a rundown is ("headline；headline。"); document_sections.py finds them.
SEGMENT_JOIN = "；"
SUMMARY_END = "。"
SECTION_BATCH_SIZE = 32


@dataclasses.dataclass(frozen=True)
class Reading:
    """How the pipeline reads one document, decided once by `plan_reading` for the pipeline, the
    command's --explain and the page alike. `how`: "whole" (a document of one section, or of news
    briefs only), "by section" (a segment per kept section, joined) or "one pass" (the kept
    sections read together, separated by blank lines: `text`); `found`: its sections, the skipped
    news briefs among them and how they were found (document_sections.py)."""

    how: str
    found: DocumentSections
    text: str

    @property
    def pieces(self) -> list[str]:
        """What generate() reads: a text per kept section by section, else the one text."""
        return self.found.kept if self.how == "by section" else [self.text]


def plan_reading(document: str, config, split_sections: bool | None = None,
                 meaning_of: MeaningOf | None = None) -> Reading:
    """The one decision of how `document` is read. `split_sections` None: the checkpoint's
    default, one pass for a checkpoint trained to see sections (config `section_embeddings` > 0,
    issue 35's one-pass model), else section by section; the story-boundary model is the
    checkpoint's (`task_specific_params.summarization.story_boundaries`), and `meaning_of` what
    one that reads meaning needs (`SummarizationPipeline.plan_reading` passes the checkpoint's)."""
    if split_sections is None:
        split_sections = not getattr(config, "section_embeddings", 0)
    found = document_sections(document, summarization_defaults(config).get("story_boundaries"), meaning_of)
    if found.found_by == "whole" or not found.kept:
        return Reading("whole", found, document)
    if split_sections:
        return Reading("by section", found, document)
    # a rundown has no headline for the briefs: the one pass reads the kept sections only
    return Reading("one pass", found, SECTION_BREAK.join(found.kept))


def sections_read(input_ids: torch.Tensor, break_token_id: int) -> torch.Tensor:
    """[b, s] -> [b] the sections each row holds: one more than its blank lines (two consecutive
    `break_token_id`; the tokenizer writes at most two line breaks in a row)."""
    is_break = input_ids == break_token_id
    return (is_break[:, 1:] & is_break[:, :-1]).sum(dim=1) + 1


class OneSegmentPerSection(LogitsProcessor):
    """A summary of as many segments as its document has sections, for a model that reads a
    sectioned document in one pass. Until every section but the last has its separator, the
    summary may not end: the probability of ending (`end_token_ids`: [EOS], and "。", which closes
    a rundown) moves to the separator, so where the model would stop it starts the next segment
    instead; after that the separator is banned. The model still chooses what each segment says;
    only the count is the document's. Beams of a row share its count."""

    def __init__(self, sections: torch.Tensor, separator_token_id: int, end_token_ids: list[int]) -> None:
        self.sections, self.separator, self.ends = sections, separator_token_id, list(end_token_ids)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        wanted = self.sections.to(scores.device).repeat_interleave(scores.shape[0] // self.sections.shape[0])
        more_to_write = (input_ids == self.separator).sum(dim=1) < wanted - 1
        scores = scores.clone()
        moved = scores[:, [self.separator, *self.ends]].logsumexp(dim=-1)  # log-probabilities or logits alike
        scores[:, self.separator] = torch.where(more_to_write, moved, -float("inf"))
        scores[:, self.ends] = scores[:, self.ends].masked_fill(more_to_write[:, None], -float("inf"))
        return scores


def join_segments(segments: list[str]) -> str:
    return SEGMENT_JOIN.join(segment.strip().rstrip(SEGMENT_JOIN + SUMMARY_END) for segment in segments) + SUMMARY_END


def is_visible(character: str) -> bool:
    """Not whitespace, and not of Unicode's categories C (control, format such as the zero-width
    space, surrogate, private, unassigned) or Z (separators): the tokenizer drops all of these."""
    return not character.isspace() and unicodedata.category(character)[0] not in "CZ"


def check_documents(documents: list, warn: bool = True) -> None:
    """Refuses what has no summary and warns about what this model cannot read well, naming the
    document by its index in the call: not a string (TypeError), empty, only whitespace or no
    visible character at all ("\\x00", "\\u200b"; ValueError); no Chinese character at all (a
    warning: emoji, English or markup alone)."""
    for index, document in enumerate(documents):
        if not isinstance(document, str):
            raise TypeError(f"document {index} is a {type(document).__name__}; the summarization pipeline takes a "
                            "string or a list of strings.")
        if not document.strip():
            raise ValueError(f"document {index} is empty{' (only whitespace)' if document else ''}: there is "
                             "nothing to summarize; drop it or give its text.")
        if not any(is_visible(character) for character in document):
            raise ValueError(f"document {index} has no visible characters, only control, format or zero-width ones "
                             f"({document[:8]!r}): there is nothing to summarize; drop it or give its text.")
        if warn and not CHINESE_CHARACTER.search(document):
            logger.warning("document %d has no Chinese characters (%r): this model was trained on Chinese text and "
                           "its summary of it is unlikely to mean anything", index, document[:40])


class SummarizationPipeline(Pipeline):
    """Summarize Chinese documents with a reformer-zh encoder-decoder.

    Call (or construction) arguments: every `generate()` option (`max_new_tokens`, `num_beams`,
    `typical_p`, `repetition_penalty`, a `generation_config`, ...), handled as transformers' own
    generation pipelines do (`_pipeline_calls_generate`); `assistant_model` (and
    `assistant_tokenizer`) as a model object or, at construction, a repo id; `truncation` (default True): an input
    longer than the model's positions is cut to `max_position_embeddings` tokens with a warning,
    with `truncation=False` it raises instead; `max_input_tokens` reads at most that many tokens
    of each input, without a warning (a model trained on the first 256 tokens of its documents can
    be read as it trained; the default is the checkpoint's
    `config.task_specific_params["summarization"]["max_input_tokens"]` where it sets one);
    `one_segment_per_section=True` (a model that reads a sectioned document in one pass) writes
    as many summary segments as the document read has sections (`OneSegmentPerSection`; the
    default is the checkpoint's `task_specific_params["summarization"]["one_segment_per_section"]`,
    else off); `batch_size` batches inputs. `config.prefix` (what
    `scripts/train.py --source_prefix` trained with) is put before every input. Unless the call
    or the model's generation config sets `min_new_tokens` or `min_length`, a summary has at
    least one token.
    """

    _pipeline_calls_generate = True
    _documents_checked = False  # True while a call's string or list has been checked as a whole

    def _sanitize_parameters(self, truncation: bool | None = None, clean_up_tokenization_spaces=None,
                             max_input_tokens: int | None = None, one_segment_per_section: bool | None = None,
                             **kwargs: Any):
        preprocess_parameters = {}
        if truncation is not None:
            preprocess_parameters["truncation"] = truncation
        if max_input_tokens is not None:
            if isinstance(max_input_tokens, bool) or not isinstance(max_input_tokens, int) or max_input_tokens < 1:
                raise ValueError(f"max_input_tokens must be a positive integer, got {max_input_tokens!r}.")
            preprocess_parameters["max_input_tokens"] = max_input_tokens
        valid = generate_option_names(self.model)
        unknown = sorted(set(kwargs) - valid)
        if unknown:
            own = {"truncation", "max_input_tokens", "one_segment_per_section"}
            near = difflib.get_close_matches(unknown[0], sorted(valid | own), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else "."
            raise TypeError(f"unexpected argument {unknown[0]!r} for the summarization pipeline{hint} It takes "
                            "generate() options (GenerationConfig fields), truncation, max_input_tokens, "
                            "one_segment_per_section and batch_size.")
        forward_parameters = dict(kwargs)
        if one_segment_per_section is not None:
            forward_parameters["one_segment_per_section"] = one_segment_per_section
        return preprocess_parameters, forward_parameters, {}

    def preprocess(self, text: str, truncation: bool = True, max_input_tokens: int | None = None) -> dict:
        # __call__ has checked a string or list already, with indices; a generator or dataset is checked here
        check_documents([text], warn=not self._documents_checked)
        if max_input_tokens is None:  # the checkpoint's own choice, where it made one (the shipped model: 256)
            max_input_tokens = summarization_defaults(self.model.config).get("max_input_tokens")
        text = (self.prefix or "") + text
        # an LED baseline (benchmarks/decoding.py) names its encoder's positions apart from its decoder's
        max_tokens = getattr(self.model.config, "max_encoder_position_embeddings", None) or \
            self.model.config.max_position_embeddings
        if max_input_tokens is not None and max_input_tokens < max_tokens:  # asked for: no warning
            encoded = self.tokenizer(text, return_tensors="pt", truncation=True, max_length=max_input_tokens)
        else:
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
        encoded = dict(encoded)
        if "global_attention_mask" in inspect.signature(self.model.forward).parameters:
            # an LED: global attention on the first token, as it trained (reformer_zh/training/collator.py;
            # written again here because remote code cannot import reformer_zh)
            encoded["global_attention_mask"] = torch.zeros_like(encoded["input_ids"])
            encoded["global_attention_mask"][:, 0] = 1
        return encoded

    def _forward(self, model_inputs: dict, one_segment_per_section: bool | None = None, **generate_kwargs: Any) -> dict:
        generate_kwargs = self._prepare_generate_kwargs(generate_kwargs, **self._summary_defaults(generate_kwargs))
        if one_segment_per_section is None:  # the checkpoint's choice, where it made one
            one_segment_per_section = summarization_defaults(self.model.config).get("one_segment_per_section", False)
        if one_segment_per_section:
            generate_kwargs["logits_processor"] = LogitsProcessorList(
                [*(generate_kwargs.get("logits_processor") or []), self._segment_counter(model_inputs["input_ids"])])
        if self.assistant_model is not None:
            generate_kwargs.setdefault("assistant_model", self.assistant_model)
        if self.assistant_tokenizer is not None:
            generate_kwargs.setdefault("assistant_tokenizer", self.assistant_tokenizer)
        if "assistant_tokenizer" in generate_kwargs:
            generate_kwargs.setdefault("tokenizer", self.tokenizer)  # generate() translates between the two
        output_ids = self.model.generate(**model_inputs, **generate_kwargs)
        return {"output_ids": output_ids}

    def _segment_counter(self, input_ids: torch.Tensor) -> OneSegmentPerSection:
        config = self.model.config
        needed = {name: getattr(config, name, None) for name in
                  ("section_break_token_id", "summary_separator_token_id", "eos_token_id")}
        missing = [name for name, value in needed.items() if value is None]
        if missing:
            raise ValueError(f"one_segment_per_section needs the checkpoint's {missing[0]} (config), which it does not "
                             "set: it counts the sections read and the separators written; a checkpoint trained "
                             "with section_embeddings and summary_segment_embeddings sets both.")
        ends = [needed["eos_token_id"]]
        summary_end = self.tokenizer.convert_tokens_to_ids(SUMMARY_END)
        if summary_end is not None and summary_end != self.tokenizer.unk_token_id:
            ends.append(summary_end)
        return OneSegmentPerSection(sections_read(input_ids, needed["section_break_token_id"]),
                                    needed["summary_separator_token_id"], ends)

    def _summary_defaults(self, generate_kwargs: dict) -> dict:
        """min_new_tokens=1 where nothing bounds the length from below: an undertrained model's
        first choice is often [EOS], and an empty string is no summary."""
        already = self._get_set_generation_params({**self._generate_kwargs, **generate_kwargs})
        return {} if {"min_new_tokens", "min_length"} & already.keys() else {"min_new_tokens": 1}

    def postprocess(self, model_outputs: dict) -> list[dict[str, str]]:
        summaries = []
        for ids in model_outputs["output_ids"]:
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            if not text.strip():
                written = self.tokenizer.convert_ids_to_tokens([int(i) for i in ids])
                logger.warning("a summary decoded to the empty string: the model wrote only special tokens %s; a "
                               "model this undertrained, or an input it cannot read, writes nothing (min_new_tokens "
                               "and suppress_tokens force visible text)", written[:12])
            summaries.append({"summary_text": text})
        return summaries

    def __call__(self, inputs: str | list[str], split_sections: bool | None = None, **kwargs: Any):
        """A string -> `[{"summary_text": ...}]`; a list of strings -> one dict per input (v4's format).

        A document made of sections (blocks separated by a blank line) is summarized section by
        section, news briefs skipped, and the segments joined as "segment；segment。", every
        section of every document in one batched call; `split_sections=False` summarizes it whole,
        in one pass, with its news briefs left out (a model trained on whole documents). The
        default: split, unless the checkpoint was trained to see sections (config
        `section_embeddings` > 0, issue 35's one-pass model). Raises ValueError for an empty or
        whitespace-only document and TypeError for one that is not a string, naming its index,
        before anything is generated."""
        self._documents_checked = isinstance(inputs, (str, list, tuple))
        if self._documents_checked:  # a generator or dataset is checked item by item in preprocess
            documents = [inputs] if isinstance(inputs, str) else list(inputs)
            check_documents(documents)
            readings = [self.plan_reading(document, split_sections) for document in documents]
            warn_skipped_sections(readings)
            if any(reading.how == "by section" for reading in readings):
                try:
                    summaries = self._summarize_by_section(readings, **kwargs)
                finally:
                    self._documents_checked = False
                return summaries[0] if isinstance(inputs, str) else [summary[0] for summary in summaries]
            texts = [reading.text for reading in readings]
            inputs = texts[0] if isinstance(inputs, str) else texts
        try:
            result = super().__call__(inputs, **kwargs)
        finally:
            self._documents_checked = False
        if isinstance(inputs, list) and all(len(item) == 1 for item in result):
            return [item[0] for item in result]
        return result

    def plan_reading(self, document: str, split_sections: bool | None = None) -> Reading:
        """`plan_reading` with this checkpoint's config and its input embeddings as the meaning of
        sentences: how this pipeline reads `document` (the command's --explain and the page ask it)."""
        return plan_reading(document, self.model.config, split_sections,
                            SentenceMeaning.of_checkpoint(self.model, self.tokenizer))

    def _summarize_by_section(self, readings: list[Reading], **kwargs: Any) -> list[list[dict[str, str]]]:
        """One flat, batched call over what every document reads (a text per section, or its one
        text), regrouped; a document read by section gets its segments joined."""
        pieces, owners = [], []
        for index, reading in enumerate(readings):
            pieces += reading.pieces
            owners += [index] * len(reading.pieces)
        if kwargs.get("batch_size") is None and self._batch_size is None:
            # a document's sections go through generate() together, as a user's list would with
            # batch_size (a 14-section evening: 4.9 s one at a time, 0.9 s in one batch; issue 43)
            kwargs["batch_size"] = min(len(pieces), SECTION_BATCH_SIZE)
        outputs = super().__call__(pieces, **kwargs)
        segments: list[list[str]] = [[] for _ in readings]
        for owner, output in zip(owners, outputs):
            segments[owner].append(output[0]["summary_text"])
        return [[{"summary_text": join_segments(parts) if reading.how == "by section" else parts[0]}]
                for reading, parts in zip(readings, segments)]


def warn_skipped_sections(readings: list[Reading]) -> None:
    """Names every section that gets no segment (a news brief), so none is dropped silently."""
    for index, reading in enumerate(readings):
        found = reading.found
        if found.skipped:
            named = "; ".join(f"section {k + 1} ({found.sections[k][:20]!r}...)" for k in found.skipped)
            logger.warning("document %d: %d of its %d sections (found by %s) are news briefs, short items under "
                           "title lines, and get no segment of their own: %s", index, len(found.skipped),
                           len(found.sections), found.found_by, named)


def summarization_defaults(config) -> dict:
    """What a checkpoint asks of this pipeline, in transformers' place for task defaults:
    `config.task_specific_params["summarization"]` (for example `{"max_input_tokens": 256}`: read
    the first 256 tokens, as the model trained; `story_boundaries`: the model that finds the
    stories of a document pasted without blank lines, document_sections.py)."""
    return dict((getattr(config, "task_specific_params", None) or {}).get("summarization") or {})


def generate_option_names(model) -> set[str]:
    """What `generate()` accepts by name: the GenerationConfig fields and its own arguments
    (`assistant_model`, `streamer`, `logits_processor`, ...)."""
    fields = {key for key in vars(GenerationConfig()) if not key.startswith("_")}
    arguments = {name for name, parameter in inspect.signature(model.generate).parameters.items()
                 if parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL)}
    return fields | arguments | {"generation_config", "assistant_tokenizer"}
