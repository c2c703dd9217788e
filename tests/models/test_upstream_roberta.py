"""transformers' common model tests (`ModelTesterMixin`, from the installed release) on every SepNorm RoBERTa
class, with a [CLS] BatchNorm and a [CLS] LayerNorm. The tester mirrors transformers' `RobertaModelTester`."""

import unittest

from text_models import SepNormTextModelTest
from upstream import ATTENTION_MATRIX_ONCE

from hf_sepnorm.remote_code.configuration_sepnorm_roberta import SepNormRobertaConfig
from hf_sepnorm.remote_code.modeling_sepnorm_roberta import (
    SepNormRobertaForMaskedLM,
    SepNormRobertaForMultipleChoice,
    SepNormRobertaForQuestionAnswering,
    SepNormRobertaForSequenceClassification,
    SepNormRobertaForTokenClassification,
    SepNormRobertaModel,
)

ROBERTA_CLASSES = {
    "Model": SepNormRobertaModel,
    "ForMaskedLM": SepNormRobertaForMaskedLM,
    "ForSequenceClassification": SepNormRobertaForSequenceClassification,
    "ForTokenClassification": SepNormRobertaForTokenClassification,
    "ForQuestionAnswering": SepNormRobertaForQuestionAnswering,
    "ForMultipleChoice": SepNormRobertaForMultipleChoice,
}


class SepNormRobertaBatchNormModelTest(SepNormTextModelTest, unittest.TestCase):
    config_class, model_classes, cls_norm = SepNormRobertaConfig, ROBERTA_CLASSES, "batch"


class SepNormRobertaLayerNormModelTest(SepNormTextModelTest, unittest.TestCase):
    config_class, model_classes, cls_norm = SepNormRobertaConfig, ROBERTA_CLASSES, "layer"
    skipped_upstream_tests = {**SepNormTextModelTest.skipped_upstream_tests, **ATTENTION_MATRIX_ONCE}
