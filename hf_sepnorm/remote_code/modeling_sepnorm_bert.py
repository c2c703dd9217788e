"""SepNorm BERT: transformers' BERT classes with separate [CLS] normalization.

Each class inherits the transformers class and only says where the SepNorms go; see `sepnorm.py`.
"""

from transformers import (
    BertForMaskedLM,
    BertForMultipleChoice,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
    BertPreTrainedModel,
)

from .auto_registration import register_family
from .configuration_sepnorm_bert import SepNormBertConfig
from .sepnorm import SepNormPreTrainedMixin, select_sepnorm_paths


def bert_sepnorm_locations(config) -> dict[str, list[str]]:
    """BERT's post-norm layers (RoBERTa's too): the embedding norm, then each layer's attention and output norms."""
    layers = range(config.num_hidden_layers)
    norms = ["embeddings.LayerNorm"] + [
        f"encoder.layer.{i}.{norm}" for i in layers for norm in ("attention.output.LayerNorm", "output.LayerNorm")
    ]
    final_norm = f"encoder.layer.{layers[-1]}.output.LayerNorm"
    return {"cls_norm": select_sepnorm_paths(config, "cls_norm", norms, final_norm, "embeddings.LayerNorm")}


def bert_sepnorms_in_chunked_feed_forward(config) -> dict[str, str]:
    """`BertLayer.feed_forward_chunk` ends with `output.LayerNorm`."""
    return {f"encoder.layer.{i}": "output.LayerNorm" for i in range(config.num_hidden_layers)}


def check_text_inputs(inputs: dict, max_position_embeddings: int | None, reserved_positions: int = 0) -> None:
    """Shape checks that transformers leaves to broadcasting (a mask of the wrong shape is silently broadcast).
    `max_position_embeddings=None`: no length limit (rotary positions, ModernBERT's)."""
    input_ids, inputs_embeds = inputs.get("input_ids"), inputs.get("inputs_embeds")
    if input_ids is None and inputs_embeds is None:
        return  # transformers says that one of them is needed
    shape = tuple(input_ids.shape if input_ids is not None else inputs_embeds.shape[:-1])
    if len(shape) != 2:
        raise ValueError(f"input_ids must be (batch, sequence); got shape {shape}.")
    if shape[1] == 0:
        raise ValueError("Empty sequences: a SepNorm model needs at least the [CLS] token at position 0.")
    if max_position_embeddings is not None and shape[1] > max_position_embeddings - reserved_positions:
        reserved = f" less {reserved_positions} reserved positions" if reserved_positions else ""
        raise ValueError(
            f"Sequences of {shape[1]} tokens exceed max_position_embeddings={max_position_embeddings}{reserved}: "
            "truncate them (tokenizer(..., truncation=True, max_length=...))."
        )
    for name in ("attention_mask", "token_type_ids"):
        tensor = inputs.get(name)
        if tensor is None or (name == "attention_mask" and tensor.dim() == 4):
            continue  # a 4D mask comes prepared, (batch, heads, queries, keys), as transformers takes it
        if tuple(tensor.shape) != shape:
            raise ValueError(f"{name} has shape {tuple(tensor.shape)} but the input ids have shape {shape}.")


class SepNormBertPreTrainedModel(SepNormPreTrainedMixin, BertPreTrainedModel):
    config_class = SepNormBertConfig
    config: SepNormBertConfig

    def sepnorm_locations(self) -> dict[str, list[str]]:
        return bert_sepnorm_locations(self.config)

    def sepnorms_in_chunked_feed_forward(self) -> dict[str, str]:
        return bert_sepnorms_in_chunked_feed_forward(self.config)

    @staticmethod
    def check_base_model_inputs(config, inputs: dict) -> None:
        check_text_inputs(inputs, config.max_position_embeddings)


class SepNormBertModel(SepNormBertPreTrainedModel, BertModel):
    pass


class SepNormBertForMaskedLM(SepNormBertPreTrainedModel, BertForMaskedLM):
    pass


class SepNormBertForSequenceClassification(SepNormBertPreTrainedModel, BertForSequenceClassification):
    pass


class SepNormBertForTokenClassification(SepNormBertPreTrainedModel, BertForTokenClassification):
    pass


class SepNormBertForQuestionAnswering(SepNormBertPreTrainedModel, BertForQuestionAnswering):
    pass


class SepNormBertForMultipleChoice(SepNormBertPreTrainedModel, BertForMultipleChoice):
    pass


register_family(
    SepNormBertConfig,
    {
        "AutoModel": SepNormBertModel,
        "AutoModelForMaskedLM": SepNormBertForMaskedLM,
        "AutoModelForSequenceClassification": SepNormBertForSequenceClassification,
        "AutoModelForTokenClassification": SepNormBertForTokenClassification,
        "AutoModelForQuestionAnswering": SepNormBertForQuestionAnswering,
        "AutoModelForMultipleChoice": SepNormBertForMultipleChoice,
    },
)

__all__ = [
    "SepNormBertPreTrainedModel",
    "SepNormBertModel",
    "SepNormBertForMaskedLM",
    "SepNormBertForSequenceClassification",
    "SepNormBertForTokenClassification",
    "SepNormBertForQuestionAnswering",
    "SepNormBertForMultipleChoice",
]
