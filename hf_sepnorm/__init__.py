"""hf_sepnorm: SepNorm (separate [CLS] normalization) for Hugging Face Transformers.

Importing the package registers the SepNorm configs and models with transformers' Auto classes.
"""

from .cls_norms import init_cls_norms_from_token_norms
from .conversion import convert_stock_checkpoint
from .families import FAMILIES, SepNormFamily, family_of, register_auto_classes
from .recalibration import cls_statistics_never_updated, recalibrate_cls_batchnorm
from .remote_code.configuration_sepnorm import CLS_NORM_KINDS, SEPNORM_SCOPES
from .remote_code.configuration_sepnorm_bert import SepNormBertConfig
from .remote_code.configuration_sepnorm_dinov2 import SepNormDinov2Config
from .remote_code.configuration_sepnorm_modernbert import SepNormModernBertConfig
from .remote_code.configuration_sepnorm_roberta import SepNormRobertaConfig
from .remote_code.configuration_sepnorm_vit_mae import SepNormViTMAEConfig
from .remote_code.modeling_sepnorm_bert import (
    SepNormBertForMaskedLM,
    SepNormBertForMultipleChoice,
    SepNormBertForQuestionAnswering,
    SepNormBertForSequenceClassification,
    SepNormBertForTokenClassification,
    SepNormBertModel,
    SepNormBertPreTrainedModel,
)
from .remote_code.modeling_sepnorm_dinov2 import (
    SepNormDinov2Backbone,
    SepNormDinov2ForImageClassification,
    SepNormDinov2Model,
    SepNormDinov2PreTrainedModel,
)
from .remote_code.modeling_sepnorm_modernbert import (
    SepNormModernBertForMaskedLM,
    SepNormModernBertForMultipleChoice,
    SepNormModernBertForQuestionAnswering,
    SepNormModernBertForSequenceClassification,
    SepNormModernBertForTokenClassification,
    SepNormModernBertModel,
    SepNormModernBertPreTrainedModel,
)
from .remote_code.modeling_sepnorm_roberta import (
    SepNormRobertaForMaskedLM,
    SepNormRobertaForMultipleChoice,
    SepNormRobertaForQuestionAnswering,
    SepNormRobertaForSequenceClassification,
    SepNormRobertaForTokenClassification,
    SepNormRobertaModel,
    SepNormRobertaPreTrainedModel,
)
from .remote_code.modeling_sepnorm_vit_mae import (
    SepNormViTMAEForImageClassification,
    SepNormViTMAEForPreTraining,
    SepNormViTMAEModel,
    SepNormViTMAEPreTrainedModel,
)
from .remote_code.sepnorm import ClsBatchNorm, SepNormLayerNorm

__version__ = "0.1.0"

register_auto_classes()

__all__ = [
    "CLS_NORM_KINDS",
    "SEPNORM_SCOPES",
    "ClsBatchNorm",
    "SepNormLayerNorm",
    "init_cls_norms_from_token_norms",
    "convert_stock_checkpoint",
    "recalibrate_cls_batchnorm",
    "cls_statistics_never_updated",
    "FAMILIES",
    "SepNormFamily",
    "family_of",
    "SepNormBertConfig",
    "SepNormBertPreTrainedModel",
    "SepNormBertModel",
    "SepNormBertForMaskedLM",
    "SepNormBertForSequenceClassification",
    "SepNormBertForTokenClassification",
    "SepNormBertForQuestionAnswering",
    "SepNormBertForMultipleChoice",
    "SepNormRobertaConfig",
    "SepNormRobertaPreTrainedModel",
    "SepNormRobertaModel",
    "SepNormRobertaForMaskedLM",
    "SepNormRobertaForSequenceClassification",
    "SepNormRobertaForTokenClassification",
    "SepNormRobertaForQuestionAnswering",
    "SepNormRobertaForMultipleChoice",
    "SepNormViTMAEConfig",
    "SepNormViTMAEPreTrainedModel",
    "SepNormViTMAEModel",
    "SepNormViTMAEForPreTraining",
    "SepNormViTMAEForImageClassification",
    "SepNormModernBertConfig",
    "SepNormModernBertPreTrainedModel",
    "SepNormModernBertModel",
    "SepNormModernBertForMaskedLM",
    "SepNormModernBertForSequenceClassification",
    "SepNormModernBertForTokenClassification",
    "SepNormModernBertForQuestionAnswering",
    "SepNormModernBertForMultipleChoice",
    "SepNormDinov2Config",
    "SepNormDinov2PreTrainedModel",
    "SepNormDinov2Model",
    "SepNormDinov2ForImageClassification",
    "SepNormDinov2Backbone",
]
