"""transformers' common model tests (`ModelTesterMixin`, from the installed release) on every SepNorm BERT class,
with a [CLS] BatchNorm and a [CLS] LayerNorm. The tester mirrors transformers' `BertModelTester`."""

import unittest

from text_models import SepNormTextModelTest
from upstream import ATTENTION_MATRIX_ONCE

from hf_sepnorm import (
    SepNormBertConfig,
    SepNormBertForMaskedLM,
    SepNormBertForMultipleChoice,
    SepNormBertForQuestionAnswering,
    SepNormBertForSequenceClassification,
    SepNormBertForTokenClassification,
    SepNormBertModel,
)

BERT_CLASSES = {
    "Model": SepNormBertModel,
    "ForMaskedLM": SepNormBertForMaskedLM,
    "ForSequenceClassification": SepNormBertForSequenceClassification,
    "ForTokenClassification": SepNormBertForTokenClassification,
    "ForQuestionAnswering": SepNormBertForQuestionAnswering,
    "ForMultipleChoice": SepNormBertForMultipleChoice,
}
# transformers' BERT tests also cover BertForNextSentencePrediction, BertForPreTraining and BertLMHeadModel (causal
# LM, decoder with cross-attention and cache): heads this project does not ship, so their tests are not carried over.


class SepNormBertBatchNormModelTest(SepNormTextModelTest, unittest.TestCase):
    config_class, model_classes, cls_norm = SepNormBertConfig, BERT_CLASSES, "batch"


class SepNormBertLayerNormModelTest(SepNormTextModelTest, unittest.TestCase):
    config_class, model_classes, cls_norm = SepNormBertConfig, BERT_CLASSES, "layer"
    skipped_upstream_tests = {**SepNormTextModelTest.skipped_upstream_tests, **ATTENTION_MATRIX_ONCE}
