"""SepNorm RoBERTa: transformers' RoBERTa classes with separate [CLS] normalization (RoBERTa's [CLS] is `<s>`, at
position 0). RoBERTa's layers are BERT's, so are the places of its SepNorms; see `sepnorm.py`."""

from transformers import (
    RobertaForMaskedLM,
    RobertaForMultipleChoice,
    RobertaForQuestionAnswering,
    RobertaForSequenceClassification,
    RobertaForTokenClassification,
    RobertaModel,
    RobertaPreTrainedModel,
)

from .auto_registration import register_family
from .configuration_sepnorm_roberta import SepNormRobertaConfig
from .modeling_sepnorm_bert import (
    bert_sepnorm_locations,
    bert_sepnorms_in_chunked_feed_forward,
    check_text_inputs,
)
from .sepnorm import SepNormPreTrainedMixin


class SepNormRobertaPreTrainedModel(SepNormPreTrainedMixin, RobertaPreTrainedModel):
    config_class = SepNormRobertaConfig
    config: SepNormRobertaConfig

    def sepnorm_locations(self) -> dict[str, list[str]]:
        return bert_sepnorm_locations(self.config)

    def sepnorms_in_chunked_feed_forward(self) -> dict[str, str]:
        return bert_sepnorms_in_chunked_feed_forward(self.config)

    @staticmethod
    def check_base_model_inputs(config, inputs: dict) -> None:
        # RoBERTa numbers positions from pad_token_id + 1
        check_text_inputs(inputs, config.max_position_embeddings, reserved_positions=config.pad_token_id + 1)


class SepNormRobertaModel(SepNormRobertaPreTrainedModel, RobertaModel):
    pass


class SepNormRobertaForMaskedLM(SepNormRobertaPreTrainedModel, RobertaForMaskedLM):
    pass


class SepNormRobertaForSequenceClassification(SepNormRobertaPreTrainedModel, RobertaForSequenceClassification):
    pass


class SepNormRobertaForTokenClassification(SepNormRobertaPreTrainedModel, RobertaForTokenClassification):
    pass


class SepNormRobertaForQuestionAnswering(SepNormRobertaPreTrainedModel, RobertaForQuestionAnswering):
    pass


class SepNormRobertaForMultipleChoice(SepNormRobertaPreTrainedModel, RobertaForMultipleChoice):
    pass


register_family(
    SepNormRobertaConfig,
    {
        "AutoModel": SepNormRobertaModel,
        "AutoModelForMaskedLM": SepNormRobertaForMaskedLM,
        "AutoModelForSequenceClassification": SepNormRobertaForSequenceClassification,
        "AutoModelForTokenClassification": SepNormRobertaForTokenClassification,
        "AutoModelForQuestionAnswering": SepNormRobertaForQuestionAnswering,
        "AutoModelForMultipleChoice": SepNormRobertaForMultipleChoice,
    },
)

__all__ = [
    "SepNormRobertaPreTrainedModel",
    "SepNormRobertaModel",
    "SepNormRobertaForMaskedLM",
    "SepNormRobertaForSequenceClassification",
    "SepNormRobertaForTokenClassification",
    "SepNormRobertaForQuestionAnswering",
    "SepNormRobertaForMultipleChoice",
]
