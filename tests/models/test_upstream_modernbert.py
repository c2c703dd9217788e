"""transformers' common model tests (`ModelTesterMixin`, from the installed release) on every SepNorm ModernBERT class,
with a [CLS] BatchNorm and a [CLS] LayerNorm. The tester mirrors transformers' `ModernBertModelTester`, with right
padding: a SepNorm model refuses masks that are 0 at position 0 (see `check_modernbert_inputs`)."""

import unittest

import torch
from upstream import ATTENTION_MATRIX_ONCE, SepNormModelTestMixin, import_upstream

from hf_sepnorm import (
    SepNormModernBertConfig,
    SepNormModernBertForMaskedLM,
    SepNormModernBertForMultipleChoice,
    SepNormModernBertForQuestionAnswering,
    SepNormModernBertForSequenceClassification,
    SepNormModernBertForTokenClassification,
    SepNormModernBertModel,
)

common = import_upstream("test_modeling_common")
ids_tensor, torch_device = common.ids_tensor, common.torch_device


def right_padded_attention_mask(shape) -> torch.Tensor:
    """A random mask as `random_attention_mask` draws it, turned into right padding: [CLS] at position 0 attended."""
    lengths = ids_tensor([shape[0]], shape[1] - 1) + 2
    return (torch.arange(shape[1], device=lengths.device) < lengths[:, None].clamp(max=shape[1])).long()


class SepNormModernBertModelTester:
    """A tiny ModernBERT and its inputs, as transformers' `ModernBertModelTester` builds them."""

    def __init__(self, parent, cls_norm, batch_size=13, seq_length=7, vocab_size=99, hidden_size=32,
                 num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, num_labels=3, num_choices=4,
                 type_sequence_label_size=2):  # fmt: skip
        self.parent, self.cls_norm = parent, cls_norm
        self.batch_size, self.seq_length, self.vocab_size = batch_size, seq_length, vocab_size
        self.hidden_size, self.num_hidden_layers = hidden_size, num_hidden_layers
        self.num_attention_heads, self.intermediate_size = num_attention_heads, intermediate_size
        self.num_labels, self.num_choices, self.type_sequence_label_size = num_labels, num_choices, type_sequence_label_size
        self.is_training = True

    def get_config(self):
        return SepNormModernBertConfig(
            cls_norm=self.cls_norm,
            vocab_size=self.vocab_size,
            pad_token_id=0,
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            intermediate_size=self.intermediate_size,
            hidden_activation="gelu",
            max_position_embeddings=512,
            initializer_range=0.02,
        )

    def prepare_config_and_inputs(self):
        input_ids = ids_tensor([self.batch_size, self.seq_length], self.vocab_size)
        input_mask = right_padded_attention_mask([self.batch_size, self.seq_length])
        sequence_labels = ids_tensor([self.batch_size], self.type_sequence_label_size)
        token_labels = ids_tensor([self.batch_size, self.seq_length], self.num_labels)
        choice_labels = ids_tensor([self.batch_size], self.num_choices)
        return self.get_config(), input_ids, input_mask, sequence_labels, token_labels, choice_labels

    def prepare_config_and_inputs_for_common(self):
        config, input_ids, input_mask, *_ = self.prepare_config_and_inputs()
        return config, {"input_ids": input_ids, "attention_mask": input_mask}


MODERNBERT_CLASSES = (
    SepNormModernBertModel,
    SepNormModernBertForMaskedLM,
    SepNormModernBertForSequenceClassification,
    SepNormModernBertForTokenClassification,
    SepNormModernBertForQuestionAnswering,
    SepNormModernBertForMultipleChoice,
)


class SepNormModernBertModelTest(SepNormModelTestMixin, common.ModelTesterMixin):
    """transformers' ModernBERT model test for the SepNorm ModernBERT classes."""

    all_model_classes = MODERNBERT_CLASSES
    family_auto_classes = SepNormModernBertModel.sepnorm_auto_classes
    cls_norm = None
    skipped_upstream_tests = {
        # as transformers' ModernBERT test skips it
        "test_sdpa_can_dispatch_non_composite_models": "ModernBERT uses an attention function, not SDPA classes",
        # the matrix's left-padded cases: refused by design, as the test above checks
        r"test_eager_matches_sdpa_inference_\d+_\w*pad_left\w*": "SepNorm refuses left padding: [CLS] must be at 0",
    }

    def setUp(self):
        self.model_tester = SepNormModernBertModelTester(self, self.cls_norm)

    def build(self, model_class, config):
        return model_class(config).to(torch_device).eval()

    def test_model(self):
        config, input_ids, input_mask, *_ = self.model_tester.prepare_config_and_inputs()
        model = self.build(SepNormModernBertModel, config)
        model(input_ids, attention_mask=input_mask)
        result = model(input_ids)
        tester = self.model_tester
        self.assertEqual(result.last_hidden_state.shape, (tester.batch_size, tester.seq_length, tester.hidden_size))

    def test_for_masked_lm(self):
        config, input_ids, input_mask, _, token_labels, _ = self.model_tester.prepare_config_and_inputs()
        result = self.build(SepNormModernBertForMaskedLM, config)(input_ids, attention_mask=input_mask, labels=token_labels)
        tester = self.model_tester
        self.assertEqual(result.logits.shape, (tester.batch_size, tester.seq_length, tester.vocab_size))

    def test_for_sequence_classification(self):
        config, input_ids, input_mask, labels, *_ = self.model_tester.prepare_config_and_inputs()
        config.num_labels = self.model_tester.num_labels
        model = self.build(SepNormModernBertForSequenceClassification, config)
        result = model(input_ids, attention_mask=input_mask, labels=labels)
        self.assertEqual(result.logits.shape, (self.model_tester.batch_size, self.model_tester.num_labels))

    def test_for_token_classification(self):
        config, input_ids, input_mask, _, token_labels, _ = self.model_tester.prepare_config_and_inputs()
        config.num_labels = self.model_tester.num_labels
        model = self.build(SepNormModernBertForTokenClassification, config)
        result = model(input_ids, attention_mask=input_mask, labels=token_labels)
        tester = self.model_tester
        self.assertEqual(result.logits.shape, (tester.batch_size, tester.seq_length, tester.num_labels))

    def test_for_question_answering(self):
        config, input_ids, input_mask, labels, *_ = self.model_tester.prepare_config_and_inputs()
        model = self.build(SepNormModernBertForQuestionAnswering, config)
        result = model(input_ids, attention_mask=input_mask, start_positions=labels, end_positions=labels)
        self.assertEqual(result.start_logits.shape, (self.model_tester.batch_size, self.model_tester.seq_length))

    def test_for_multiple_choice(self):
        config, input_ids, input_mask, _, _, choice_labels = self.model_tester.prepare_config_and_inputs()
        tester = self.model_tester
        model = self.build(SepNormModernBertForMultipleChoice, config)
        per_choice = [t.unsqueeze(1).expand(-1, tester.num_choices, -1).contiguous() for t in (input_ids, input_mask)]
        result = model(per_choice[0], attention_mask=per_choice[1], labels=choice_labels)
        self.assertEqual(result.logits.shape, (tester.batch_size, tester.num_choices))

    def test_refuses_what_puts_cls_elsewhere(self):
        # SepNorm's own addition: left padding and packed sequences are refused before any work
        config, input_ids, input_mask, *_ = self.model_tester.prepare_config_and_inputs()
        model = self.build(SepNormModernBertModel, config)
        with self.assertRaisesRegex(ValueError, "left padding"):
            model(input_ids, attention_mask=input_mask.flip(-1))
        packed = torch.cat([torch.arange(3), torch.arange(4)]).expand(input_ids.shape[0], -1).to(torch_device)
        with self.assertRaisesRegex(ValueError, "Packed sequences"):
            model(input_ids, position_ids=packed)


class SepNormModernBertBatchNormModelTest(SepNormModernBertModelTest, unittest.TestCase):
    cls_norm = "batch"


class SepNormModernBertLayerNormModelTest(SepNormModernBertModelTest, unittest.TestCase):
    cls_norm = "layer"
    skipped_upstream_tests = {**SepNormModernBertModelTest.skipped_upstream_tests, **ATTENTION_MATRIX_ONCE}
