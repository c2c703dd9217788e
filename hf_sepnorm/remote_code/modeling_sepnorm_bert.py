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

from .configuration_sepnorm_bert import SepNormBertConfig
from .sepnorm import SepNormPreTrainedMixin, register_family, select_sepnorm_paths


class SepNormBertPreTrainedModel(SepNormPreTrainedMixin, BertPreTrainedModel):
    config_class = SepNormBertConfig
    config: SepNormBertConfig


def check_text_inputs(config, input_ids, attention_mask, token_type_ids, inputs_embeds) -> None:
    """Shape checks that transformers leaves to broadcasting (a mask of the wrong shape is silently broadcast)."""
    shape = tuple(input_ids.shape if input_ids is not None else inputs_embeds.shape[:-1])
    if len(shape) != 2:
        raise ValueError(f"input_ids must be (batch, sequence); got shape {shape}.")
    if shape[1] == 0:
        raise ValueError("Empty sequences: SepNorm BERT needs at least the [CLS] token at position 0.")
    if shape[1] > config.max_position_embeddings:
        raise ValueError(
            f"Sequences of {shape[1]} tokens exceed max_position_embeddings={config.max_position_embeddings}: "
            "truncate them (tokenizer(..., truncation=True, max_length=...))."
        )
    for name, tensor in (("attention_mask", attention_mask), ("token_type_ids", token_type_ids)):
        if tensor is not None and tuple(tensor.shape) != shape:
            raise ValueError(f"{name} has shape {tuple(tensor.shape)} but the input ids have shape {shape}.")


class SepNormBertModel(SepNormBertPreTrainedModel, BertModel):
    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, *args, **kwargs):  # fmt: skip
        if input_ids is not None or inputs_embeds is not None:
            check_text_inputs(self.config, input_ids, attention_mask, token_type_ids, inputs_embeds)
        return super().forward(input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, *args, **kwargs)

    def sepnorm_locations(self) -> dict[str, list[str]]:
        layers = range(self.config.num_hidden_layers)
        norms = ["embeddings.LayerNorm"] + [
            f"encoder.layer.{i}.{norm}" for i in layers for norm in ("attention.output.LayerNorm", "output.LayerNorm")
        ]
        final_norm = f"encoder.layer.{layers[-1]}.output.LayerNorm"
        return {"cls_norm": select_sepnorm_paths(self.config, "cls_norm", norms, final_norm, "embeddings.LayerNorm")}


SepNormBertPreTrainedModel.sepnorm_backbone_class = SepNormBertModel


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
