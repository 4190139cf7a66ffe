"""reformer-zh: a Hugging Face-native Reformer encoder-decoder for long Chinese documents.

Importing the package registers the config and models with transformers' Auto classes.
"""

from transformers import AutoConfig, AutoModel, AutoModelForSeq2SeqLM, AutoTokenizer

from .configuration_reformer_zh import ReformerZhConfig
from .modeling_reformer_zh import (
    ReformerZhForConditionalGeneration,
    ReformerZhModel,
    ReformerZhPreTrainedModel,
)
from .product_key_memory import memory_parameter_groups, memory_usage

AutoConfig.register(ReformerZhConfig.model_type, ReformerZhConfig, exist_ok=True)
AutoModel.register(ReformerZhConfig, ReformerZhModel, exist_ok=True)
AutoModelForSeq2SeqLM.register(ReformerZhConfig, ReformerZhForConditionalGeneration, exist_ok=True)

try:  # the tokenizer needs jieba, which the model itself does not
    from tokenization.tokenization_reformer_zh import ReformerZhTokenizer
except ImportError:  # pragma: no cover - a model-only install
    ReformerZhTokenizer = None
else:
    AutoTokenizer.register(ReformerZhConfig, slow_tokenizer_class=ReformerZhTokenizer, exist_ok=True)

# A saved checkpoint carries `auto_map` and these files, so it loads with trust_remote_code=True
# where this package is not installed.
ReformerZhConfig.register_for_auto_class()
ReformerZhModel.register_for_auto_class("AutoModel")
ReformerZhForConditionalGeneration.register_for_auto_class("AutoModelForSeq2SeqLM")

from .pipeline_reformer_zh import SummarizationPipeline  # noqa: E402

__all__ = [
    "SummarizationPipeline",
    "ReformerZhConfig",
    "ReformerZhPreTrainedModel",
    "ReformerZhModel",
    "ReformerZhForConditionalGeneration",
    "memory_parameter_groups",
    "memory_usage",
]
