"""Configuration of the Reformer encoder-decoder.

Field names follow transformers' `ReformerConfig` wherever the concept exists; what it does not
have (the per-stack layer lists, `reversible`, `full_attn_threshold`, the memory family, copy
attention, section and segment embeddings, ...) is listed with every field in the class
docstring. Every field's type and range, and every combination of fields, is checked by
`validate_reformer_zh()` with the field, the value and the fix in the message, so that a model
is never built from a config it cannot run.
"""

from __future__ import annotations

import math

from transformers import PretrainedConfig

ATTENTION_KINDS = ("lsh", "local", "full")
HEAD_COMBINE_MODES = ("concat", "mean")
PKM_MODES = ("replace", "add")
PKM_QUERY_NORMS = ("batch", "layer")
DEFAULT_ENCODER_ATTN_LAYERS = ("local", "lsh", "local", "lsh", "local", "lsh")
DEFAULT_DECODER_ATTN_LAYERS = ("full", "full", "full", "full", "full", "full")
# Every checkpoint declares our summarization pipeline (pipeline_reformer_zh.py travels with it):
# transformers v5 has no built-in one.
CUSTOM_PIPELINES = {
    "summarization": {
        "impl": "pipeline_reformer_zh.SummarizationPipeline",
        "pt": ["AutoModelForSeq2SeqLM"],
        "tf": [],
        "type": "text",
    }
}


class ReformerZhConfig(PretrainedConfig):
    r"""
    Configuration of [`ReformerZhModel`] and [`ReformerZhForConditionalGeneration`].

    Args:
        vocab_size (`int`, defaults to 32000): size of the shared token embedding and LM head.
        hidden_size (`int`, defaults to 256): width of each of the two reversible streams.
        num_attention_heads (`int`, defaults to 4): attention heads in every attention layer.
        attention_head_size (`int`, defaults to 64): width of one head; heads are concatenated
            and projected back to `hidden_size`, so it need not divide `hidden_size`.
        feed_forward_size (`int`, defaults to 1024): inner width of the feed-forward layers.
        hidden_act (`str`, defaults to `"gelu"`): feed-forward activation (a key of `ACT2FN`).
        hidden_dropout_prob (`float`, defaults to 0.1): dropout on embeddings and sublayer outputs.
        attention_probs_dropout_prob (`float`, defaults to 0.1): dropout on attention weights.
        encoder_attn_layers (`list[str]`): attention kind of each encoder layer, one of
            `"lsh"`, `"local"`, `"full"`; its length is the encoder depth.
        decoder_attn_layers (`list[str]`): the same for the decoder's causal self-attention.
            `"full"` and `"local"` cache exactly; a decoder `"lsh"` layer trains with causal LSH
            above `full_attn_threshold` but decodes with the cache by exact shared-QK attention
            over the prefix (the attention LSH approximates).
        num_hashes (`int`, defaults to 2): LSH hash rounds; rounds are combined by the
            log-sum-exp of their attention logits, a key found by several rounds counted once
            (paper, appendix A), so the result is one softmax over the union of the keys found.
        num_buckets (`int` or `list[int]`, *optional*): LSH buckets per round (even), or two even
            factors whose product is the bucket count (factorised hashing, cheaper for many
            buckets). `None` derives it from the (padded) input length: the next power of two
            >= 2 * length / `lsh_attn_chunk_length`, so a chunk holds about two buckets (paper,
            sec. 3), factorised above 128. Set it to make outputs independent of how much
            padding a batch carries.
        hash_seed (`int`, *optional*): fixes the random rotations in training too (tests);
            `None` draws fresh ones every training forward from torch's generator. In eval mode
            they are fixed either way (`attention_lsh.INFERENCE_HASH_SEED` when `None`): the
            same document, the same buckets, on every call.
        lsh_attn_chunk_length (`int`, defaults to 64), lsh_num_chunks_before (`int`, defaults to 1),
        lsh_num_chunks_after (`int`, defaults to 0): chunking of the bucket-sorted sequence.
        local_attn_chunk_length (`int`, defaults to 64), local_num_chunks_before (`int`, defaults to 1),
        local_num_chunks_after (`int`, defaults to 0): the sliding window of local attention.
            Decoder layers are causal and ignore the `*_num_chunks_after` fields.
        full_attn_threshold (`int`, defaults to 0): inputs of at most this many tokens run LSH layers
            as exact (shared-QK) full attention: hashing only pays off on long inputs.
        axial_pos_embds (`bool`, defaults to True): factorised (axial) position embeddings;
            `False` uses a learned table of `max_position_embeddings` rows.
        axial_pos_shape (`list[int]`, defaults to `[64, 64]`): factors whose product must be
            >= `max_position_embeddings`; any length up to `max_position_embeddings` works.
        axial_pos_embds_dim (`list[int]`, defaults to `[64, 192]`): widths of the two factors,
            summing to `hidden_size`.
        max_position_embeddings (`int`, defaults to 4096): longest encoder or decoder input.
        chunk_size_feed_forward (`int`, defaults to 0): run the feed-forward over sequence chunks
            of this many tokens to bound its activation memory; 0 runs it in one piece.
        cross_attn_chunk_length (`int`, defaults to 256): decoder queries per cross-attention chunk,
            so a long target never materialises one (target x source) score matrix.
        reversible (`bool`, defaults to True): reversible residual backward (activations
            recomputed, memory independent of depth). `False` is the same function with plain
            autograd: one state dict loads into both.
        num_mem_kv (`int`, defaults to 0): learned persistent memory key/value vectors per head in
            every self-attention layer (Sukhbaatar et al. 2019); every query may read them, in the
            decoder too (they are not "future"). 0 turns them off.
        head_combine (`str`, defaults to `"concat"`): how attention heads are combined before the
            output projection. `"concat"` joins the h head outputs of size d and projects h*d ->
            hidden (standard); `"mean"` averages them into one d-vector and projects d -> hidden,
            so the output projections have `attention_head_size` inputs and checkpoints of one mode
            do not load into the other.
        pkm_layers, decoder_pkm_layers (`list[int]`, default empty): encoder / decoder layers whose
            feed-forward step uses a product-key memory (Lample et al. 2019).
        pkm_mode (`str`, defaults to `"replace"`): `"replace"` the feed-forward by the memory, or
            `"add"` the memory's output to the feed-forward's.
        pkm_num_keys (`int`, defaults to 128): sub-keys per half; the memory has pkm_num_keys**2 slots.
        pkm_topk (`int`, defaults to 32), pkm_heads (`int`, defaults to 4), pkm_dim_key (`int`,
            defaults to 128): slots read per head, memory heads, query size (two halves of
            pkm_dim_key / 2).
        pkm_query_norm (`str`, defaults to `"layer"`): normalisation of the memory queries,
            `"batch"` (the paper; batch statistics make a token's output depend on its batch in
            training) or `"layer"`.
        pkm_sparse_gradients (`bool`, defaults to False): return the memory values' gradient as a
            sparse tensor (only the selected rows). Needs an optimizer that takes sparse gradients
            (SGD, Adagrad, SparseAdam); dense gradients are zero outside the selected rows anyway.
        copy_attention (`bool`, defaults to False): a pointer-generator head (copy_attention.py):
            the output distribution mixes the vocabulary softmax with an attention over the source
            positions, gated per target position, and the model's logits are its log-probabilities.
        copy_attention_head_size (`int`, *optional*): width of the copy head's queries, keys and
            values; `None` uses `attention_head_size`.
        scale_embedding (`bool`, defaults to False): multiply token embeddings by sqrt(hidden_size)
            (BART's option) and draw the shared table at std hidden_size^-0.5, position tables at
            std 1: tokens and positions enter the stacks at unit scale while the tied LM head starts
            with logits of unit scale. False draws every table at `initializer_range`.
        encoder_position_offset_in_training (`bool`, defaults to False): in training, the encoder's
            positions start at a random offset (one per batch, uniform over the offsets that stay
            inside `max_position_embeddings`) instead of 0, so that positions beyond the training
            lengths are trained too (windows of an evening, then the whole evening). Coverage is
            even in the middle of the table and falls off linearly over the first and last
            input-length positions. Evaluation and generation always start at 0.
        section_embeddings (`int`, defaults to 0): sections the encoder can see (issue 35): with N > 0
            every input position gets a learned row of its section's index (sections are separated
            by two consecutive `section_break_token_id` tokens, a blank line; indices past N - 1
            share the last row). The rows start at zero, so turning the option on for a fine-tune
            starts from the same outputs. 0: off, no weights.
        section_break_token_id (`int`, *optional*): the line-break token (`[NL]`) whose pair ends a
            section; needed when `section_embeddings` > 0 (train.py fills it from the tokenizer).
        summary_segment_embeddings (`int`, defaults to 0): the decoder's side of sections (issue 35):
            with N > 0 every decoder position gets a learned row of the index of the summary
            segment it writes, the number of `summary_separator_token_id` tokens ("；") written so far
            (indices past N - 1 share the last row), so that the k-th segment can look for the k-th
            section. Zero at the start, like `section_embeddings`. 0: off, no weights.
        summary_separator_token_id (`int`, *optional*): the token that ends a summary segment ("；");
            needed when `summary_segment_embeddings` > 0 (train.py fills it from the tokenizer).
        copy_alignment_loss_weight (`float`, defaults to 0.0): in training, with copy attention, adds
            this weight times a guided-alignment loss: each target position of the k-th summary
            segment pays -log of the copy pointer's mass on the k-th section of the document
            (`copy_attention.copy_alignment_loss`), so that a one-pass rundown copies each headline
            from its own story. Needs `section_break_token_id` and `summary_separator_token_id`.
            The loss is returned as `alignment_loss` and added to the model's loss (and, through
            the label smoother, by the project's trainer). 0: off; no weights either way.
        layer_norm_eps (`float`, defaults to 1e-12), initializer_range (`float`, defaults to 0.02).
        pad_token_id (`int`, defaults to 0), bos_token_id (`int`, defaults to 2),
        eos_token_id (`int`, defaults to 3), decoder_start_token_id (`int`, defaults to 2).
        use_cache (`bool`, defaults to True): return a generation cache from the decoder.
    """

    model_type = "reformer_zh"
    keys_to_ignore_at_inference = ["cache", "past_key_values"]

    def __init__(
        self,
        vocab_size: int = 32000,
        hidden_size: int = 256,
        num_attention_heads: int = 4,
        attention_head_size: int = 64,
        feed_forward_size: int = 1024,
        hidden_act: str = "gelu",
        hidden_dropout_prob: float = 0.1,
        attention_probs_dropout_prob: float = 0.1,
        encoder_attn_layers: list[str] | tuple[str, ...] = DEFAULT_ENCODER_ATTN_LAYERS,
        decoder_attn_layers: list[str] | tuple[str, ...] = DEFAULT_DECODER_ATTN_LAYERS,
        num_hashes: int = 2,
        num_buckets: int | list[int] | None = None,
        hash_seed: int | None = None,
        lsh_attn_chunk_length: int = 64,
        lsh_num_chunks_before: int = 1,
        lsh_num_chunks_after: int = 0,
        local_attn_chunk_length: int = 64,
        local_num_chunks_before: int = 1,
        local_num_chunks_after: int = 0,
        full_attn_threshold: int = 0,
        axial_pos_embds: bool = True,
        axial_pos_shape: list[int] | tuple[int, ...] = (64, 64),
        axial_pos_embds_dim: list[int] | tuple[int, ...] = (64, 192),
        max_position_embeddings: int = 4096,
        chunk_size_feed_forward: int = 0,
        cross_attn_chunk_length: int = 256,
        reversible: bool = True,
        num_mem_kv: int = 0,
        head_combine: str = "concat",
        pkm_layers: list[int] | tuple[int, ...] = (),
        decoder_pkm_layers: list[int] | tuple[int, ...] = (),
        pkm_mode: str = "replace",
        pkm_num_keys: int = 128,
        pkm_topk: int = 32,
        pkm_heads: int = 4,
        pkm_dim_key: int = 128,
        pkm_query_norm: str = "layer",
        pkm_sparse_gradients: bool = False,
        copy_attention: bool = False,
        copy_attention_head_size: int | None = None,
        scale_embedding: bool = False,
        encoder_position_offset_in_training: bool = False,
        section_embeddings: int = 0,
        section_break_token_id: int | None = None,
        summary_segment_embeddings: int = 0,
        summary_separator_token_id: int | None = None,
        copy_alignment_loss_weight: float = 0.0,
        layer_norm_eps: float = 1e-12,
        initializer_range: float = 0.02,
        pad_token_id: int = 0,
        bos_token_id: int = 2,
        eos_token_id: int = 3,
        decoder_start_token_id: int = 2,
        use_cache: bool = True,
        tie_word_embeddings: bool = True,
        **kwargs,
    ) -> None:
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_attention_heads = num_attention_heads
        self.attention_head_size = attention_head_size
        self.feed_forward_size = feed_forward_size
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.encoder_attn_layers = list(encoder_attn_layers)
        self.decoder_attn_layers = list(decoder_attn_layers)
        self.num_hashes = num_hashes
        self.num_buckets = num_buckets
        self.hash_seed = hash_seed
        self.lsh_attn_chunk_length = lsh_attn_chunk_length
        self.lsh_num_chunks_before = lsh_num_chunks_before
        self.lsh_num_chunks_after = lsh_num_chunks_after
        self.local_attn_chunk_length = local_attn_chunk_length
        self.local_num_chunks_before = local_num_chunks_before
        self.local_num_chunks_after = local_num_chunks_after
        self.full_attn_threshold = full_attn_threshold
        self.axial_pos_embds = axial_pos_embds
        self.axial_pos_shape = list(axial_pos_shape)
        self.axial_pos_embds_dim = list(axial_pos_embds_dim)
        self.max_position_embeddings = max_position_embeddings
        self.cross_attn_chunk_length = cross_attn_chunk_length
        self.reversible = reversible
        self.num_mem_kv = num_mem_kv
        self.head_combine = head_combine
        self.pkm_layers = list(pkm_layers)
        self.decoder_pkm_layers = list(decoder_pkm_layers)
        self.pkm_mode = pkm_mode
        self.pkm_num_keys = pkm_num_keys
        self.pkm_topk = pkm_topk
        self.pkm_heads = pkm_heads
        self.pkm_dim_key = pkm_dim_key
        self.pkm_query_norm = pkm_query_norm
        self.pkm_sparse_gradients = pkm_sparse_gradients
        self.copy_attention = copy_attention
        self.copy_attention_head_size = copy_attention_head_size
        self.scale_embedding = scale_embedding
        self.encoder_position_offset_in_training = encoder_position_offset_in_training
        self.section_embeddings = section_embeddings
        self.section_break_token_id = section_break_token_id
        self.summary_segment_embeddings = summary_segment_embeddings
        self.summary_separator_token_id = summary_separator_token_id
        self.copy_alignment_loss_weight = copy_alignment_loss_weight
        self.layer_norm_eps = layer_norm_eps
        self.initializer_range = initializer_range
        self.use_cache = use_cache
        kwargs.setdefault("is_encoder_decoder", True)
        self.custom_pipelines = kwargs.pop("custom_pipelines", None) or CUSTOM_PIPELINES
        # `chunk_size_feed_forward` is a field of v5's dataclass `PretrainedConfig`, whose
        # `__init__` writes every one of its fields (from kwargs or its default): set here, it
        # would be overwritten with 0, so it goes through the base class.
        super().__init__(
            chunk_size_feed_forward=chunk_size_feed_forward,
            pad_token_id=pad_token_id,
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
            decoder_start_token_id=decoder_start_token_id,
            tie_word_embeddings=tie_word_embeddings,
            **kwargs,
        )
        self.validate_reformer_zh()

    @property
    def num_hidden_layers(self) -> int:
        """Decoder depth: the number of layers a generation cache holds."""
        return len(self.decoder_attn_layers)

    @num_hidden_layers.setter
    def num_hidden_layers(self, value: int) -> None:
        if value != len(self.decoder_attn_layers):
            raise ValueError(
                f"`num_hidden_layers` ({value}) is derived from the layer lists; set the depth with "
                "`encoder_attn_layers` and `decoder_attn_layers` (one attention kind per layer)."
            )

    @property
    def encoder_layers(self) -> int:
        return len(self.encoder_attn_layers)

    @property
    def decoder_layers(self) -> int:
        return len(self.decoder_attn_layers)

    def validate_reformer_zh(self) -> None:
        """Fail early, naming the field, its value and the fix."""
        self.check_field_values()
        self.check_layers_and_memory()
        self.check_hashing_positions_and_tokens()

    def check_field_values(self) -> None:
        """Each scalar field has a value of its type and range."""
        for field in (
            "vocab_size",
            "hidden_size",
            "num_attention_heads",
            "attention_head_size",
            "feed_forward_size",
            "num_hashes",
            "lsh_attn_chunk_length",
            "local_attn_chunk_length",
            "max_position_embeddings",
            "cross_attn_chunk_length",
            "pkm_num_keys",
            "pkm_topk",
            "pkm_heads",
            "pkm_dim_key",
        ):
            value = getattr(self, field)
            require(
                isinstance(value, int) and value > 0,
                f"`{field}` must be a positive integer, got {value!r}.",
            )
        for field in (
            "lsh_num_chunks_before",
            "lsh_num_chunks_after",
            "local_num_chunks_before",
            "local_num_chunks_after",
            "full_attn_threshold",
            "chunk_size_feed_forward",
            "num_mem_kv",
            "section_embeddings",
            "summary_segment_embeddings",
        ):
            value = getattr(self, field)
            require(
                isinstance(value, int) and value >= 0,
                f"`{field}` must be a non-negative integer, got {value!r}.",
            )
        require(
            self.copy_attention_head_size is None
            or (isinstance(self.copy_attention_head_size, int) and self.copy_attention_head_size > 0),
            f"`copy_attention_head_size` must be a positive integer or None (use `attention_head_size`), "
            f"got {self.copy_attention_head_size!r}.",
        )
        require(
            self.hash_seed is None or (isinstance(self.hash_seed, int) and not isinstance(self.hash_seed, bool)
                                       and self.hash_seed >= 0),
            f"`hash_seed` must be a non-negative integer or None (rotations drawn afresh in training), "
            f"got {self.hash_seed!r}.",
        )
        for field in ("layer_norm_eps", "initializer_range"):
            value = getattr(self, field)
            require(
                isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1,
                f"`{field}` must be a number in (0, 1), got {value!r}.",
            )
        for field in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            value = getattr(self, field)
            require(
                isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value < 1.0,
                f"`{field}` must be a number in [0, 1), got {value!r}.",
            )
        for field in ("reversible", "axial_pos_embds", "use_cache", "pkm_sparse_gradients", "copy_attention",
                      "scale_embedding", "encoder_position_offset_in_training"):
            value = getattr(self, field)
            require(isinstance(value, bool), f"`{field}` must be True or False, got {value!r}.")
        from transformers.activations import ACT2FN

        require(
            self.hidden_act in ACT2FN,
            f"`hidden_act` {self.hidden_act!r} is not a transformers activation; use one of "
            f"{sorted(k for k in ACT2FN if isinstance(k, str))[:12]}...",
        )

    def check_layers_and_memory(self) -> None:
        """The per-layer attention kinds, the head combination and the memory family fit together."""
        for field in ("encoder_attn_layers", "decoder_attn_layers"):
            layers = getattr(self, field)
            require(
                len(layers) > 0,
                f"`{field}` is empty; give one attention kind per layer, e.g. {list(DEFAULT_ENCODER_ATTN_LAYERS[:2])}.",
            )
            unknown = [kind for kind in layers if kind not in ATTENTION_KINDS]
            require(
                not unknown,
                f"`{field}` contains {unknown}; each entry must be one of {list(ATTENTION_KINDS)}.",
            )

        require(
            self.head_combine in HEAD_COMBINE_MODES,
            f"`head_combine` must be one of {list(HEAD_COMBINE_MODES)}, got {self.head_combine!r}. 'concat' projects "
            f"the joined heads (num_attention_heads * attention_head_size = "
            f"{self.num_attention_heads * self.attention_head_size} inputs) to hidden_size; 'mean' averages the heads "
            f"and projects attention_head_size = {self.attention_head_size} inputs to hidden_size.",
        )
        for field, layers in (("pkm_layers", self.encoder_attn_layers), ("decoder_pkm_layers", self.decoder_attn_layers)):
            indices = getattr(self, field)
            require(
                all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < len(layers) for i in indices)
                and len(set(indices)) == len(indices),
                f"`{field}` {indices!r} must list distinct layer indices in [0, {len(layers)}) (the stack has "
                f"{len(layers)} layers); e.g. [{len(layers) // 2}] for the middle layer.",
            )
        require(
            self.pkm_mode in PKM_MODES,
            f"`pkm_mode` must be one of {list(PKM_MODES)}, got {self.pkm_mode!r}.",
        )
        require(
            self.pkm_query_norm in PKM_QUERY_NORMS,
            f"`pkm_query_norm` must be one of {list(PKM_QUERY_NORMS)}, got {self.pkm_query_norm!r}.",
        )
        require(
            self.pkm_topk <= self.pkm_num_keys,
            f"`pkm_topk` ({self.pkm_topk}) cannot exceed `pkm_num_keys` ({self.pkm_num_keys}): each half of the query "
            "keeps its top-k sub-keys before the product is searched.",
        )
        require(
            self.pkm_dim_key % 2 == 0,
            f"`pkm_dim_key` ({self.pkm_dim_key}) must be even: the query is split in two halves, one per sub-key table.",
        )

    def check_hashing_positions_and_tokens(self) -> None:
        """Bucket counts, axial positions and special token ids are consistent with the sizes."""
        if self.num_buckets is not None:
            factors = self.num_buckets if isinstance(self.num_buckets, (list, tuple)) else [self.num_buckets]
            require(
                0 < len(factors) <= 2 and all(isinstance(f, int) and f >= 2 and f % 2 == 0 for f in factors),
                f"`num_buckets` must be an even integer >= 2 (angular LSH takes the argmax over [xR; -xR]) or a list "
                f"of two such factors, got {self.num_buckets!r}; or set it to None to derive it from the input length.",
            )
            if isinstance(self.num_buckets, tuple):
                self.num_buckets = list(self.num_buckets)

        if self.axial_pos_embds:
            require(
                len(self.axial_pos_shape) == 2 and len(self.axial_pos_embds_dim) == 2,
                f"`axial_pos_shape` ({self.axial_pos_shape}) and `axial_pos_embds_dim` ({self.axial_pos_embds_dim}) "
                "must both have two entries.",
            )
            require(
                sum(self.axial_pos_embds_dim) == self.hidden_size,
                f"`axial_pos_embds_dim` {self.axial_pos_embds_dim} must sum to `hidden_size` ({self.hidden_size}); "
                f"e.g. [{self.hidden_size // 4}, {self.hidden_size - self.hidden_size // 4}].",
            )
            capacity = math.prod(self.axial_pos_shape)
            require(
                capacity >= self.max_position_embeddings,
                f"`axial_pos_shape` {self.axial_pos_shape} covers {capacity} positions, fewer than "
                f"`max_position_embeddings` ({self.max_position_embeddings}); use factors whose product is at least "
                f"{self.max_position_embeddings}, e.g. {suggest_axial_shape(self.max_position_embeddings)}.",
            )

        for field in ("pad_token_id", "decoder_start_token_id", "bos_token_id", "eos_token_id"):
            value = getattr(self, field)
            if value is None and field in ("bos_token_id", "eos_token_id"):
                continue
            ids = value if isinstance(value, list) else [value]
            require(
                all(isinstance(i, int) and 0 <= i < self.vocab_size for i in ids),
                f"`{field}` ({value!r}) must be a token id in [0, vocab_size={self.vocab_size}).",
            )
        if self.section_embeddings:
            require(
                isinstance(self.section_break_token_id, int) and 0 <= self.section_break_token_id < self.vocab_size,
                f"`section_embeddings` ({self.section_embeddings}) needs `section_break_token_id`, the line-break "
                f"token id whose pair separates sections (the tokenizer's [NL]); got {self.section_break_token_id!r}.",
            )
        weight = self.copy_alignment_loss_weight
        require(
            isinstance(weight, (int, float)) and not isinstance(weight, bool) and weight >= 0.0,
            f"`copy_alignment_loss_weight` must be a number >= 0 (0 turns it off), got {weight!r}.",
        )
        if weight:
            require(
                self.copy_attention and isinstance(self.section_break_token_id, int)
                and isinstance(self.summary_separator_token_id, int),
                "`copy_alignment_loss_weight` > 0 ties the copy pointer of the k-th summary segment to the k-th "
                "section: it needs `copy_attention=True`, `section_break_token_id` and `summary_separator_token_id` "
                f"(got {self.copy_attention!r}, {self.section_break_token_id!r}, {self.summary_separator_token_id!r}).",
            )
        if self.summary_segment_embeddings:
            require(
                isinstance(self.summary_separator_token_id, int) and 0 <= self.summary_separator_token_id < self.vocab_size,
                f"`summary_segment_embeddings` ({self.summary_segment_embeddings}) needs `summary_separator_token_id`, "
                f"the token id that ends a summary segment (the tokenizer's '；'); got {self.summary_separator_token_id!r}.",
            )
        require(
            self.tie_word_embeddings,
            "`tie_word_embeddings=False` is not supported: the LM head shares the token embedding.",
        )


def require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def suggest_axial_shape(max_position_embeddings: int) -> list[int]:
    """Two factors close to the square root whose product covers `max_position_embeddings`."""
    first = 2 ** math.ceil(math.log2(math.isqrt(max(max_position_embeddings - 1, 1)) + 1))
    second = math.ceil(max_position_embeddings / first)
    return [first, second]


__all__ = ["ReformerZhConfig"]
