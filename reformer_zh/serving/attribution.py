"""Where each summary character came from: the copy attention's own account of a summary.

A copy-attention model writes every token from a mixture (modeling_reformer_zh/copy_attention.py):

    P(w) = p_t * softmax(z_t)(w) + (1 - p_t) * sum over source positions i holding w of a_t,i

so for each written token the share of its probability that came from pointing at the source,
(1 - p_t) * sum_i a_t,i / P(w), and the source position it pointed at most, argmax over the
positions holding w of a_t,i, are read off exactly from one teacher-forced pass over the summary
the model wrote. `explain()` returns them per summary character with the character span of the
source token in the document as the tokenizer normalised it (NFKC, whitespace collapsed: the
text the model read), which the page of `reformer-zh-serve` and `reformer-zh-summarize
--explain` show.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

LINE_BREAK = "[NL]"
CONTINUATION = "##"


@dataclass
class SummaryToken:
    text: str  # as it appears in the summary
    copy_share: float  # share of the token's probability that came from pointing at the source
    source_span: tuple[int, int] | None  # [start, end) in Explanation.source of the token it pointed at most


@dataclass
class Explanation:
    source: str  # the document as the tokenizer normalised it: what the model read
    summary: str
    tokens: list[SummaryToken] = field(default_factory=list)

    def copied(self, threshold: float = 0.5) -> list[SummaryToken]:
        """The tokens written mostly by copying (copy share above `threshold`)."""
        return [token for token in self.tokens if token.copy_share > threshold and token.source_span]

    def marked(self, threshold: float = 0.5) -> str:
        """The summary with each run of copied tokens in [brackets] (what `--explain` prints)."""
        return bracket_copied_runs((token.text, token.copy_share > threshold and token.source_span is not None)
                                   for token in self.tokens)


def bracket_copied_runs(pieces) -> str:
    """(text, copied) pieces joined, each run of copied ones in [brackets]."""
    out, inside = "", False
    for text, copied in pieces:
        if copied != inside:
            out += "[" if copied else "]"
            inside = copied
        out += text
    return out + ("]" if inside else "")


def token_spans(tokens: list[str], text: str) -> list[tuple[int, int] | None]:
    """The [start, end) of each token string in `text`, matched in order (the tokenizer's
    tokens are pieces of its normalised text; `##` continuations and `[NL]` line breaks are
    mapped back to what they stand for). A token not found where expected gets None."""
    spans: list[tuple[int, int] | None] = []
    cursor = 0
    for token in tokens:
        piece = "\n" if token == LINE_BREAK else token
        if piece.startswith(CONTINUATION) and len(piece) > len(CONTINUATION):
            piece = piece[len(CONTINUATION):]
        while cursor < len(text) and text[cursor] == " " and piece != " ":
            cursor += 1
        if text.startswith(piece, cursor):
            spans.append((cursor, cursor + len(piece)))
            cursor += len(piece)
        else:
            spans.append(None)
    return spans


def copy_account(model, input_ids: torch.Tensor, summary_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For one document [1, S] and the summary the model wrote [1, T] (starting with the decoder
    start token): per written token (T - 1 of them), the copy share of its probability and the
    source position it pointed at most among those holding it (-1 where none holds it)."""
    if getattr(model, "copy_attention", None) is None:
        raise ValueError("this model has no copy attention (config.copy_attention=False): its summary cannot be "
                         "traced back to source positions.")
    with torch.no_grad():
        output = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                       decoder_input_ids=summary_ids[:, :-1], output_copy_pointer=True)
    log_probs, pointer, gate_logit = output.logits.float(), output.copy_pointer, output.copy_gate_logits
    written = summary_ids[0, 1:]  # the token chosen at each step
    holds = input_ids[0][None, :] == written[:, None]  # [T - 1, S]
    pointed = pointer[0] * holds
    copy_mass = torch.sigmoid(-gate_logit[0, :, 0]) * pointed.sum(-1)
    total = log_probs[0].gather(-1, written[:, None])[:, 0].exp()
    share = (copy_mass / total.clamp_min(1e-30)).clamp(0, 1)
    position = torch.where(holds.any(-1), pointed.argmax(-1), torch.full_like(written, -1))
    return share, position


def explain(summarizer, document: str, truncation: bool = True, max_input_tokens: int | None = None,
            **generate_kwargs) -> Explanation:
    """Summarize `document` with `summarizer` (the summarization pipeline) and account for every
    summary token: its copy share and the source span it copied from (see the module docstring).
    The document is read and summarized by the pipeline's own steps (its `config.prefix`, the
    checkpoint's `max_input_tokens`, truncation, its generate defaults), so the summary is the one
    the pipeline writes."""
    model, tokenizer = summarizer.model, summarizer.tokenizer
    inputs = summarizer.preprocess(document, truncation=truncation, max_input_tokens=max_input_tokens)
    input_ids = inputs["input_ids"]
    text = (summarizer.prefix or "") + document
    source_tokens = tokenizer.tokenize(text)[: input_ids.shape[1] - 1]  # the strings of the tokens read ([EOS] last)
    summary_ids = summarizer.forward(inputs, **generate_kwargs)["output_ids"][:1]
    share, position = copy_account(model, input_ids, summary_ids)
    source = tokenizer.normalize(text)
    spans = token_spans(source_tokens, source)
    special = set(tokenizer.all_special_ids)
    tokens = []
    for step, token_id in enumerate(summary_ids[0, 1:].tolist()):
        if token_id in special:
            continue
        index = int(position[step])
        span = spans[index] if 0 <= index < len(spans) else None
        tokens.append(SummaryToken(text=tokenizer.decode([token_id]), copy_share=float(share[step]), source_span=span))
    return Explanation(source=source, summary=tokenizer.decode(summary_ids[0], skip_special_tokens=True), tokens=tokens)
