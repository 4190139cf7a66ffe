"""The Reformer encoder-decoder: embeddings, reversible encoder and decoder stacks, LM head.

Reads top to bottom: residual steps (pre-LayerNorm sublayers), the encoder and decoder layers
that group them, the two stacks, the base model and the generation head. The attention kinds
live in attention_*.py, the reversible mechanism in reversible.py.

Each stack keeps two streams (RevNet); both start as the embeddings and their mean, after a
final LayerNorm, is the stack's output.
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from transformers import GenerationMixin, PreTrainedModel
from transformers.cache_utils import EncoderDecoderCache
from transformers.modeling_outputs import BaseModelOutput, Seq2SeqLMOutput, Seq2SeqModelOutput

from .attention_cross import ReformerZhCrossAttention
from .attention_full import ReformerZhFullSelfAttention
from .attention_local import ReformerZhLocalSelfAttention
from .attention_lsh import LSHRouting, ReformerZhLSHSelfAttention
from .cache_reformer_zh import OUTPUT_CACHE_FIELD, new_generation_cache
from .configuration_reformer_zh import ReformerZhConfig
from .copy_attention import CopyOutput, ReformerZhCopyAttention, copy_alignment_loss
from .embeddings import (
    ReformerZhAxialPositionEmbeddings,
    ReformerZhEmbeddings,
    ReformerZhSectionEmbeddings,
    ReformerZhSummarySegmentEmbeddings,
    section_index,
    summary_segment_index,
)
from .persistent_memory import PersistentMemory
from .chunked_feed_forward import ReformerZhFeedForwardStep
from .product_key_memory import ProductKeyMemory
from .reversible import StepContext, run_stack

# Imported so that the pipeline file travels with the remote code: transformers fetches the
# modules this file imports into its module cache and copies them again when saving, so a
# checkpoint loaded with trust_remote_code and saved elsewhere keeps its pipeline.
from .pipeline_reformer_zh import SummarizationPipeline  # noqa: F401

# what save_pretrained writes beside the model code: the pipeline and the module it imports
PIPELINE_FILES = ("pipeline_reformer_zh.py", "document_sections.py", "sentence_meaning.py")

SELF_ATTENTION_CLASSES = {
    "lsh": ReformerZhLSHSelfAttention,
    "local": ReformerZhLocalSelfAttention,
    "full": ReformerZhFullSelfAttention,
}


class ReformerZhSelfAttentionStep(nn.Module):
    """LayerNorm -> self-attention (lsh | local | full) -> dropout: one residual step."""

    reads_encoder = False

    def __init__(self, config: ReformerZhConfig, kind: str, layer_idx: int, is_causal: bool) -> None:
        super().__init__()
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = SELF_ATTENTION_CLASSES[kind](config, layer_idx, is_causal)
        self.dropout_p = config.hidden_dropout_prob
        self.is_lsh = kind == "lsh"

    def forward(self, hidden_states: Tensor, context: StepContext) -> Tensor:
        cache = context.cache.self_attention_cache if context.cache is not None else None
        routing = {"routing": context.lsh_routing} if self.is_lsh else {}
        output = self.attention(self.layer_norm(hidden_states), context.attention_mask, cache, **routing)
        return nn.functional.dropout(output, p=self.dropout_p, training=self.training)


class ReformerZhCrossAttentionStep(nn.Module):
    """LayerNorm -> cross-attention to the encoder output -> dropout."""

    reads_encoder = True

    def __init__(self, config: ReformerZhConfig, layer_idx: int) -> None:
        super().__init__()
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = ReformerZhCrossAttention(config, layer_idx)
        self.dropout_p = config.hidden_dropout_prob

    def forward(self, hidden_states: Tensor, context: StepContext) -> Tensor:
        output = self.attention(
            self.layer_norm(hidden_states),
            context.encoder_hidden_states,
            context.encoder_attention_mask,
            context.cache,
        )
        return nn.functional.dropout(output, p=self.dropout_p, training=self.training)


class ReformerZhEncoderLayer(nn.Module):
    """Two residual steps: Y1 = X1 + Attention(X2); Y2 = X2 + FeedForward(Y1)."""

    def __init__(self, config: ReformerZhConfig, layer_idx: int) -> None:
        super().__init__()
        self.attention = ReformerZhSelfAttentionStep(config, config.encoder_attn_layers[layer_idx], layer_idx, False)
        self.feed_forward = ReformerZhFeedForwardStep(config, with_memory=layer_idx in config.pkm_layers)

    def steps(self) -> list[nn.Module]:
        return [self.attention, self.feed_forward]


class ReformerZhDecoderLayer(nn.Module):
    """Three residual steps: causal self-attention, cross-attention, feed-forward."""

    def __init__(self, config: ReformerZhConfig, layer_idx: int) -> None:
        super().__init__()
        kind = config.decoder_attn_layers[layer_idx]
        self.self_attention = ReformerZhSelfAttentionStep(config, kind, layer_idx, True)
        self.cross_attention = ReformerZhCrossAttentionStep(config, layer_idx)
        self.feed_forward = ReformerZhFeedForwardStep(config, with_memory=layer_idx in config.decoder_pkm_layers)

    def steps(self) -> list[nn.Module]:
        return [self.self_attention, self.cross_attention, self.feed_forward]


# Arguments that `generate()` and `Trainer` pass to every seq2seq model and that change nothing here.
NEUTRAL_KWARGS = ("cache_position", "position_ids", "decoder_position_ids", "output_attentions", "output_hidden_states")


@dataclass
class ReformerZhEncoderOutput(BaseModelOutput):
    """`BaseModelOutput` plus the token ids the encoder read (`source_ids`, [b, S], None for
    `inputs_embeds`): copy attention copies them. `generate()` repeats every tensor of the
    encoder output per beam, so they stay aligned with the encoder states."""

    source_ids: torch.LongTensor | None = None


def check_extra_kwargs(kwargs: dict, accepted: str) -> None:
    """Fail on arguments we would otherwise silently ignore (a typo, or a feature we lack)."""
    for name in ("output_attentions", "output_hidden_states"):
        if kwargs.get(name):
            raise ValueError(f"`{name}=True` is not supported by ReformerZh models; leave it unset.")
    unknown = sorted(set(kwargs) - set(NEUTRAL_KWARGS))
    if unknown:
        raise TypeError(f"unexpected argument(s) {unknown}; accepted: {accepted}.")


def as_bool_mask(attention_mask: Tensor | None, expected_shape: tuple[int, int], name: str) -> Tensor | None:
    """HF masks are [batch, keys], 1 for real tokens and 0 for padding, in any integer or bool dtype."""
    if attention_mask is None:
        return None
    if tuple(attention_mask.shape) != tuple(expected_shape):
        raise ValueError(
            f"`{name}` has shape {tuple(attention_mask.shape)}, expected {tuple(expected_shape)} "
            "([batch, keys] with 1 for real tokens and 0 for padding; with a cache, keys = past + new tokens)."
        )
    return attention_mask.bool()


class ReformerZhPreTrainedModel(PreTrainedModel):
    config_class = ReformerZhConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = False  # the reversible backward already recomputes activations
    # The units a stack calls (a layer only groups its steps and is never called), so FSDP's
    # default wrapping and device maps place and shard these: see check_layers_not_sharded.
    _no_split_modules = ["ReformerZhSelfAttentionStep", "ReformerZhCrossAttentionStep", "ReformerZhFeedForwardStep"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            module.weight.normal_(mean=0.0, std=std)
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, nn.Embedding):
            # the shared token table, or the table of a plain (non-axial) position embedding
            if not self.config.scale_embedding:
                module.weight.normal_(mean=0.0, std=std)
            elif module is self.get_input_embeddings():
                module.weight.normal_(mean=0.0, std=self.config.hidden_size**-0.5)
            else:
                module.weight.normal_(mean=0.0, std=1.0)
        elif isinstance(module, nn.LayerNorm):
            module.weight.fill_(1.0)
            module.bias.zero_()
        elif isinstance(module, ReformerZhAxialPositionEmbeddings):
            position_std = 1.0 if self.config.scale_embedding else std
            module.rows.normal_(mean=0.0, std=position_std)
            module.columns.normal_(mean=0.0, std=position_std)
        elif isinstance(module, (ReformerZhSectionEmbeddings, ReformerZhSummarySegmentEmbeddings)):
            module.table.zero_()  # a fine-tune that turns sections on starts from the same outputs
        elif isinstance(module, PersistentMemory):
            # like the keys and values a projection of the (layer-normed) hidden states gives
            module.keys.normal_(mean=0.0, std=1.0)
            module.values.normal_(mean=0.0, std=1.0)
        elif isinstance(module, ProductKeyMemory):
            # the paper's initialisation: sub-keys at unit scale per coordinate of a normalised
            # query half, values at 1/sqrt(hidden) so a read of k weighted rows starts small
            module.sub_keys.normal_(mean=0.0, std=module.half_key**-0.5)
            module.values.weight.normal_(mean=0.0, std=module.values.weight.shape[1] ** -0.5)
        elif isinstance(module, nn.BatchNorm1d):
            module.reset_parameters()
        elif isinstance(module, ReformerZhCopyAttention):
            # the gate starts at p_gen = 0.5: neither path is preferred before training says which
            module.gate.bias.zero_()

    def resize_position_embeddings(self, new_num_position_embeddings: int) -> None:
        """Let both stacks read up to `new_num_position_embeddings` positions, keeping every
        trained position: a headline checkpoint fine-tuned on whole documents (issue 13). Axial
        tables gain rows of their first factor; the new rows start at the initial scale and are
        learned in fine-tuning. Shrinking would drop trained rows, so it is refused."""
        current = self.config.max_position_embeddings
        if new_num_position_embeddings < current:
            raise ValueError(f"resize_position_embeddings({new_num_position_embeddings}) would shrink the position "
                             f"table below max_position_embeddings={current}; truncate the inputs instead.")
        std = 1.0 if self.config.scale_embedding else self.config.initializer_range
        for stack in self._stack_embeddings():
            shape = stack.position_embeddings.grow(new_num_position_embeddings, std)
            stack.max_positions = new_num_position_embeddings
        if self.config.axial_pos_embds:
            self.config.axial_pos_shape = shape
        self.config.max_position_embeddings = new_num_position_embeddings

    def get_position_embeddings(self) -> tuple[nn.Module, nn.Module]:
        """The encoder's and the decoder's position embeddings (each stack has its own)."""
        return tuple(stack.position_embeddings for stack in self._stack_embeddings())

    def _stack_embeddings(self) -> list[ReformerZhEmbeddings]:
        return [module for module in self.modules() if isinstance(module, ReformerZhEmbeddings)]

    def save_pretrained(self, save_directory, *args, **kwargs) -> None:
        """Also write the summarization pipeline that `config.custom_pipelines` declares, and the
        module it imports."""
        super().save_pretrained(save_directory, *args, **kwargs)
        for name in PIPELINE_FILES:
            source = Path(__file__).with_name(name)
            if source.exists() and Path(save_directory).is_dir():
                shutil.copyfile(source, Path(save_directory) / name)

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        # `generate()` would refuse anyway (our class name contains "reformer"); the forward
        # builds its own `EncoderDecoderCache` on the first step and returns it, and `generate`
        # threads it through the following steps and reorders it for beam search.
        return False


def check_layers_not_sharded(layers: nn.ModuleList) -> None:
    """A stack runs its layers' residual steps itself and never calls a layer, so a layer's
    FSDP2 hooks (`fully_shard(layer)`) would never gather its parameters: say so instead of the
    DTensor error deep inside the first step."""
    if not torch.distributed.is_available() or not layers:
        return
    from torch.distributed.fsdp import FSDPModule

    sharded = next((layer for layer in layers if isinstance(layer, FSDPModule)), None)
    if sharded is not None:
        raise RuntimeError(
            f"`fully_shard` was applied to a {type(sharded).__name__}, which the stack never calls (it runs "
            "the layer's residual steps one by one). Shard the whole model (`fully_shard(model)`, "
            "the only choice with reversible=True), or, with reversible=False, the steps named in "
            "`model._no_split_modules` (the Trainer's default FSDP wrapping)."
        )


class ReformerZhStack(nn.Module):
    """Embeddings, residual steps over two streams, mean of the streams, final LayerNorm."""

    def __init__(self, config: ReformerZhConfig, token_embeddings: nn.Embedding, is_decoder: bool) -> None:
        super().__init__()
        self.config = config
        self.embeddings = ReformerZhEmbeddings(
            config, token_embeddings, random_offset=not is_decoder and config.encoder_position_offset_in_training,
            sections=not is_decoder and config.section_embeddings > 0,
            summary_segments=is_decoder and config.summary_segment_embeddings > 0,
        )
        layer_class = ReformerZhDecoderLayer if is_decoder else ReformerZhEncoderLayer
        num_layers = len(config.decoder_attn_layers if is_decoder else config.encoder_attn_layers)
        self.layers = nn.ModuleList(layer_class(config, index) for index in range(num_layers))
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.has_lsh = "lsh" in (config.decoder_attn_layers if is_decoder else config.encoder_attn_layers)

    def steps(self) -> list[nn.Module]:
        return [step for layer in self.layers for step in layer.steps()]

    def run(self, hidden_states: Tensor, context: StepContext) -> Tensor:
        check_layers_not_sharded(self.layers)
        if self.has_lsh and context.cache is None:  # cached decoding attends exactly: no routing
            routing = LSHRouting.build(
                context.attention_mask,
                hidden_states.shape[1],
                full_attn_threshold=self.config.full_attn_threshold,
                chunk_length=self.config.lsh_attn_chunk_length,
                num_buckets=self.config.num_buckets,
            )
            context = dataclasses.replace(context, lsh_routing=routing)
        a, b = run_stack(self.steps(), hidden_states, context, reversible=self.config.reversible)
        return self.final_layer_norm((a + b) / 2)


class ReformerZhEncoder(ReformerZhStack):
    def __init__(self, config: ReformerZhConfig, token_embeddings: nn.Embedding) -> None:
        super().__init__(config, token_embeddings, is_decoder=False)

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        return_dict: bool = True,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
    ) -> BaseModelOutput | tuple:
        # No **kwargs: generate() then passes the encoder only the arguments named here.
        check_extra_kwargs(dict(output_attentions=output_attentions, output_hidden_states=output_hidden_states), "")
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of `input_ids` and `inputs_embeds` to the encoder.")
        hidden_states = self.embeddings(input_ids=input_ids, inputs_embeds=inputs_embeds)
        mask = as_bool_mask(attention_mask, hidden_states.shape[:2], "attention_mask")
        hidden_states = self.run(hidden_states, StepContext(attention_mask=mask))
        if not return_dict:
            return (hidden_states,)
        return ReformerZhEncoderOutput(last_hidden_state=hidden_states, source_ids=input_ids)


class ReformerZhDecoder(ReformerZhStack):
    def __init__(self, config: ReformerZhConfig, token_embeddings: nn.Embedding) -> None:
        super().__init__(config, token_embeddings, is_decoder=True)

    def forward(
        self,
        input_ids: Tensor | None,
        encoder_hidden_states: Tensor,
        attention_mask: Tensor | None = None,
        encoder_attention_mask: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        cache: EncoderDecoderCache | None = None,
        segment_index: Tensor | None = None,
    ) -> Tensor:
        past_length = cache.get_seq_length() if cache is not None else 0
        hidden_states = self.embeddings(input_ids=input_ids, inputs_embeds=inputs_embeds, past_length=past_length,
                                        segment_index=segment_index)
        batch_size, seq_length = hidden_states.shape[:2]
        context = StepContext(
            attention_mask=as_bool_mask(attention_mask, (batch_size, past_length + seq_length), "decoder_attention_mask"),
            encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=as_bool_mask(
                encoder_attention_mask, encoder_hidden_states.shape[:2], "attention_mask (of the encoder input)"
            ),
            cache=cache,
        )
        return self.run(hidden_states, context)


def shift_tokens_right(labels: Tensor, pad_token_id: int, decoder_start_token_id: int) -> Tensor:
    """Teacher forcing: [start, y0, ..., y_{n-2}]; ignored labels (-100) become padding."""
    shifted = labels.new_zeros(labels.shape)
    shifted[:, 1:] = labels[:, :-1].clone()
    shifted[:, 0] = decoder_start_token_id
    return shifted.masked_fill(shifted == -100, pad_token_id)


class ReformerZhModel(ReformerZhPreTrainedModel):
    _tied_weights_keys = {
        "encoder.embeddings.token_embeddings.weight": "shared.weight",
        "decoder.embeddings.token_embeddings.weight": "shared.weight",
    }

    def __init__(self, config: ReformerZhConfig) -> None:
        super().__init__(config)
        self.shared = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.encoder = ReformerZhEncoder(config, self.shared)
        self.decoder = ReformerZhDecoder(config, self.shared)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.shared

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.shared = value
        self.encoder.embeddings.token_embeddings = value
        self.decoder.embeddings.token_embeddings = value

    def get_encoder(self, *args, **kwargs) -> ReformerZhEncoder:
        return self.encoder

    def get_decoder(self, *args, **kwargs) -> ReformerZhDecoder:
        return self.decoder

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        decoder_input_ids: Tensor | None = None,
        decoder_attention_mask: Tensor | None = None,
        encoder_outputs: BaseModelOutput | tuple | None = None,
        cache: EncoderDecoderCache | None = None,
        inputs_embeds: Tensor | None = None,
        decoder_inputs_embeds: Tensor | None = None,
        use_cache: bool | None = None,
        return_dict: bool | None = None,
        past_key_values: EncoderDecoderCache | None = None,
        decoder_segment_index: Tensor | None = None,
        **kwargs,
    ) -> Seq2SeqModelOutput | tuple:
        # A deliberate twin of ReformerZhForConditionalGeneration.forward's arguments: each class
        # takes the arguments of its BART counterpart (BartModel, BartForConditionalGeneration).
        check_extra_kwargs(kwargs, "the arguments of BartModel.forward")
        cache = cache if cache is not None else past_key_values
        if use_cache is None:
            # A training forward fills no cache: it would force the plain (activation-storing) path.
            use_cache = self.config.use_cache and not (self.training and torch.is_grad_enabled())
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if encoder_outputs is None:
            encoder_outputs = self.encoder(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds)
        elif not isinstance(encoder_outputs, BaseModelOutput):
            encoder_outputs = BaseModelOutput(last_hidden_state=encoder_outputs[0])
        if decoder_input_ids is None and decoder_inputs_embeds is None:
            raise ValueError(
                "The decoder needs `decoder_input_ids` (or `labels`, which are shifted into them); "
                "to summarize, call `generate()`."
            )
        if use_cache and cache is None:
            cache = new_generation_cache()  # a cache that is passed in is always used
        decoder_hidden_states = self.decoder(
            input_ids=decoder_input_ids,
            encoder_hidden_states=encoder_outputs.last_hidden_state,
            attention_mask=decoder_attention_mask,
            encoder_attention_mask=attention_mask,
            inputs_embeds=decoder_inputs_embeds,
            cache=cache,
            segment_index=decoder_segment_index,
        )
        output = Seq2SeqModelOutput(
            last_hidden_state=decoder_hidden_states,
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            **{OUTPUT_CACHE_FIELD: cache},
        )
        return output if return_dict else output.to_tuple()


@dataclass
class ReformerZhSeq2SeqLMOutput(Seq2SeqLMOutput):
    """`Seq2SeqLMOutput` plus `alignment_loss`: the copy pointer's guided-alignment loss, unweighted
    (config `copy_alignment_loss_weight`; None when the option is off or outside training); and,
    with `output_copy_pointer=True` (config `copy_attention` only), the copy head's `copy_pointer`
    [b, t, S] (its attention over the source positions, float32) and `copy_gate_logits` [b, t, 1]
    (the generate share is their sigmoid)."""

    alignment_loss: torch.FloatTensor | None = None
    copy_pointer: torch.FloatTensor | None = None
    copy_gate_logits: torch.FloatTensor | None = None


class ReformerZhForConditionalGeneration(ReformerZhPreTrainedModel, GenerationMixin):
    _tied_weights_keys = {"lm_head.weight": "model.shared.weight"}

    def __init__(self, config: ReformerZhConfig) -> None:
        super().__init__(config)
        self.model = ReformerZhModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.copy_attention = ReformerZhCopyAttention(config) if config.copy_attention else None
        self.post_init()

    def get_encoder(self, *args, **kwargs) -> ReformerZhEncoder:
        return self.model.encoder

    def get_decoder(self, *args, **kwargs) -> ReformerZhDecoder:
        return self.model.decoder

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.shared

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.lm_head = value

    def prepare_decoder_input_ids_from_labels(self, labels: Tensor) -> Tensor:
        return shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)

    def prepare_inputs_for_generation(self, input_ids: Tensor, *args, **kwargs) -> dict:
        """GenerationMixin's inputs, plus (with `summary_segment_embeddings`) the summary segment
        of each decoder position it passes, counted over everything written so far: with a cache
        the model sees only the newest token and could not count the separators before it."""
        model_inputs = super().prepare_inputs_for_generation(input_ids, *args, **kwargs)
        if self.config.summary_segment_embeddings and model_inputs.get("decoder_input_ids") is not None:
            index = summary_segment_index(input_ids, self.config.summary_separator_token_id,
                                          self.config.summary_segment_embeddings)
            model_inputs["decoder_segment_index"] = index[:, -model_inputs["decoder_input_ids"].shape[1]:]
        return model_inputs

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        decoder_input_ids: Tensor | None = None,
        decoder_attention_mask: Tensor | None = None,
        encoder_outputs: BaseModelOutput | tuple | None = None,
        cache: EncoderDecoderCache | None = None,
        inputs_embeds: Tensor | None = None,
        decoder_inputs_embeds: Tensor | None = None,
        labels: Tensor | None = None,
        use_cache: bool | None = None,
        return_dict: bool | None = None,
        past_key_values: EncoderDecoderCache | None = None,
        num_items_in_batch: int | Tensor | None = None,
        decoder_segment_index: Tensor | None = None,
        output_copy_pointer: bool = False,
        **kwargs,
    ) -> Seq2SeqLMOutput | tuple:
        """Args follow `BartForConditionalGeneration`. `labels` [b, t] are shifted right into
        `decoder_input_ids` when those are not given; label -100 is ignored by the loss.
        `num_items_in_batch` (passed by `Trainer` under gradient accumulation) divides the summed
        token loss instead of averaging per micro-batch. `decoder_segment_index` [b, t] (config
        `summary_segment_embeddings` only): the summary segment of each new decoder position,
        needed with a cache (`prepare_inputs_for_generation` computes it from the whole output so
        far); without one it is counted from `decoder_input_ids`. `output_copy_pointer`: also
        return the copy head's pointer and gate (ReformerZhSeq2SeqLMOutput)."""
        check_extra_kwargs(kwargs, "the arguments of BartForConditionalGeneration.forward")
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if labels is not None:
            use_cache = False
            if decoder_input_ids is None and decoder_inputs_embeds is None:
                decoder_input_ids = self.prepare_decoder_input_ids_from_labels(labels)
        cache = cache if cache is not None else past_key_values
        source_ids = input_ids if input_ids is not None else getattr(encoder_outputs, "source_ids", None)
        if self.copy_attention is not None and source_ids is None:
            raise ValueError(
                "copy attention copies source tokens, so it needs their ids: pass `input_ids` (not "
                "`inputs_embeds`), or `encoder_outputs` returned by this model's encoder (they carry `source_ids`)."
            )
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            decoder_input_ids=decoder_input_ids,
            decoder_attention_mask=decoder_attention_mask,
            encoder_outputs=encoder_outputs,
            cache=cache,
            inputs_embeds=inputs_embeds,
            decoder_inputs_embeds=decoder_inputs_embeds,
            use_cache=use_cache,
            return_dict=True,
            decoder_segment_index=decoder_segment_index,
        )
        logits = self.lm_head(outputs.last_hidden_state)
        copied = None
        if self.copy_attention is not None:  # logits become log P of the pointer-generator mixture
            copied = self.copy_mixture(outputs, logits, source_ids, attention_mask, decoder_input_ids,
                                       output_copy_pointer)
            logits = copied.log_probs
        elif output_copy_pointer:
            raise ValueError("output_copy_pointer=True: this model has no copy attention (config.copy_attention=False).")
        alignment_loss = copied.alignment_loss if copied is not None else None
        loss = None if labels is None else self.summary_loss(logits, labels, num_items_in_batch, alignment_loss)
        output = ReformerZhSeq2SeqLMOutput(
            loss=loss,
            alignment_loss=alignment_loss,
            logits=logits,
            copy_pointer=copied.pointer if copied is not None else None,
            copy_gate_logits=copied.gate_logit if copied is not None else None,
            encoder_last_hidden_state=outputs.encoder_last_hidden_state,
            **{OUTPUT_CACHE_FIELD: getattr(outputs, OUTPUT_CACHE_FIELD)},
        )
        return output if return_dict else output.to_tuple()


    def copy_mixture(self, outputs: Seq2SeqModelOutput, logits: Tensor, source_ids: Tensor,
                     attention_mask: Tensor | None, decoder_input_ids: Tensor | None, keep_pointer: bool) -> CopyOutput:
        """The copy head over the decoder's output: log P of the pointer-generator mixture, and in
        training with `copy_alignment_loss_weight` the guided-alignment loss."""
        aligning = self.config.copy_alignment_loss_weight > 0 and self.training and decoder_input_ids is not None
        source_sections = section_index(source_ids, self.config.section_break_token_id) if aligning else None
        copied = self.copy_attention(
            outputs.last_hidden_state,
            logits,
            outputs.encoder_last_hidden_state,
            source_ids.to(logits.device),
            encoder_attention_mask=attention_mask,
            cache=getattr(outputs, OUTPUT_CACHE_FIELD),
            source_sections=source_sections,
            keep_pointer=keep_pointer,
        )
        if aligning:
            segments = summary_segment_index(decoder_input_ids, self.config.summary_separator_token_id)
            copied.alignment_loss = copy_alignment_loss(copied.section_mass, segments, source_sections,
                                                        decoder_input_ids != self.config.pad_token_id)
        return copied

    def summary_loss(self, logits: Tensor, labels: Tensor, num_items_in_batch: int | Tensor | None,
                     alignment_loss: Tensor | None) -> Tensor:
        """Token cross-entropy (ignoring label -100), divided by `num_items_in_batch` when the
        Trainer passes it (gradient accumulation), plus the weighted alignment loss."""
        loss = nn.functional.cross_entropy(
            logits.float().reshape(-1, logits.shape[-1]),
            labels.to(logits.device).reshape(-1),
            ignore_index=-100,
            reduction="mean" if num_items_in_batch is None else "sum",
        )
        if num_items_in_batch is not None:
            loss = loss / num_items_in_batch
        if alignment_loss is not None:
            loss = loss + self.config.copy_alignment_loss_weight * alignment_loss
        return loss


__all__ = [
    "ReformerZhEncoderOutput",
    "ReformerZhPreTrainedModel",
    "ReformerZhModel",
    "ReformerZhForConditionalGeneration",
    "ReformerZhSeq2SeqLMOutput",
    "shift_tokens_right",
]
