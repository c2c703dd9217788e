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


class SepNormBertModel(SepNormBertPreTrainedModel, BertModel):
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
