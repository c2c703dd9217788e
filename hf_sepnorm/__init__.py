"""hf_sepnorm: SepNorm (separate [CLS] normalization) for Hugging Face Transformers.

Importing the package registers the SepNorm configs and models with transformers' Auto classes.
"""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForImageClassification,
    AutoModelForMaskedLM,
    AutoModelForMultipleChoice,
    AutoModelForPreTraining,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
)

from .configuration_sepnorm_bert import SepNormBertConfig
from .configuration_sepnorm_vit_mae import SepNormViTMAEConfig
from .conversion import convert_stock_checkpoint
from .modeling_sepnorm_bert import (
    SepNormBertForMaskedLM,
    SepNormBertForMultipleChoice,
    SepNormBertForQuestionAnswering,
    SepNormBertForSequenceClassification,
    SepNormBertForTokenClassification,
    SepNormBertModel,
    SepNormBertPreTrainedModel,
)
from .modeling_sepnorm_vit_mae import (
    SepNormViTMAEForImageClassification,
    SepNormViTMAEForPreTraining,
    SepNormViTMAEModel,
    SepNormViTMAEPreTrainedModel,
)
from .sepnorm import (
    CLS_NORM_KINDS,
    SEPNORM_SCOPES,
    ClsBatchNorm,
    SepNormLayerNorm,
    init_cls_norms_from_token_norms,
)

__version__ = "0.1.0"

_AUTO_FACTORIES = {
    "AutoModel": AutoModel,
    "AutoModelForMaskedLM": AutoModelForMaskedLM,
    "AutoModelForSequenceClassification": AutoModelForSequenceClassification,
    "AutoModelForTokenClassification": AutoModelForTokenClassification,
    "AutoModelForQuestionAnswering": AutoModelForQuestionAnswering,
    "AutoModelForMultipleChoice": AutoModelForMultipleChoice,
    "AutoModelForPreTraining": AutoModelForPreTraining,
    "AutoModelForImageClassification": AutoModelForImageClassification,
}

for _config_class, _backbone in ((SepNormBertConfig, SepNormBertModel), (SepNormViTMAEConfig, SepNormViTMAEModel)):
    AutoConfig.register(_config_class.model_type, _config_class, exist_ok=True)
    for _auto_name, _model_class in _backbone.sepnorm_auto_classes.items():
        _AUTO_FACTORIES[_auto_name].register(_config_class, _model_class, exist_ok=True)

__all__ = [
    "CLS_NORM_KINDS",
    "SEPNORM_SCOPES",
    "ClsBatchNorm",
    "SepNormLayerNorm",
    "init_cls_norms_from_token_norms",
    "convert_stock_checkpoint",
    "SepNormBertConfig",
    "SepNormBertPreTrainedModel",
    "SepNormBertModel",
    "SepNormBertForMaskedLM",
    "SepNormBertForSequenceClassification",
    "SepNormBertForTokenClassification",
    "SepNormBertForQuestionAnswering",
    "SepNormBertForMultipleChoice",
    "SepNormViTMAEConfig",
    "SepNormViTMAEPreTrainedModel",
    "SepNormViTMAEModel",
    "SepNormViTMAEForPreTraining",
    "SepNormViTMAEForImageClassification",
]
