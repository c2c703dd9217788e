"""The model tester and test class of the SepNorm text families (BERT, RoBERTa), mirroring transformers' own
`BertModelTester` / `BertModelTest` on the common tests of the installed release."""

import unittest

import torch
from upstream import SepNormModelTestMixin, import_upstream

common = import_upstream("test_modeling_common")
ids_tensor, random_attention_mask = common.ids_tensor, common.random_attention_mask


class SepNormTextModelTester:
    """A tiny text model and its inputs, as transformers' `BertModelTester` builds them."""

    def __init__(self, parent, config_class, model_classes, cls_norm, batch_size=13, seq_length=7, vocab_size=99,
                 hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, type_vocab_size=16,
                 num_labels=3, num_choices=4, type_sequence_label_size=2, **config_overrides):  # fmt: skip
        self.parent, self.config_class, self.model_classes = parent, config_class, model_classes
        self.cls_norm = cls_norm
        self.batch_size, self.seq_length, self.vocab_size = batch_size, seq_length, vocab_size
        self.hidden_size, self.num_hidden_layers = hidden_size, num_hidden_layers
        self.num_attention_heads, self.intermediate_size = num_attention_heads, intermediate_size
        self.type_vocab_size, self.type_sequence_label_size = type_vocab_size, type_sequence_label_size
        self.num_labels, self.num_choices = num_labels, num_choices
        self.config_overrides = config_overrides
        self.pad_token_id = config_class().pad_token_id
        self.is_training = True

    def get_config(self):
        return self.config_class(
            cls_norm=self.cls_norm,
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            intermediate_size=self.intermediate_size,
            hidden_act="gelu",
            hidden_dropout_prob=0.1,
            attention_probs_dropout_prob=0.1,
            max_position_embeddings=512,
            type_vocab_size=self.type_vocab_size,
            is_decoder=False,
            initializer_range=0.02,
            **self.config_overrides,
        )

    def prepare_config_and_inputs(self):
        # no padding token inside the sequences: RoBERTa numbers the positions of the other tokens only
        input_ids = ids_tensor([self.batch_size, self.seq_length], self.vocab_size).clamp(min=self.pad_token_id + 1)
        input_mask = random_attention_mask([self.batch_size, self.seq_length])
        token_type_ids = ids_tensor([self.batch_size, self.seq_length], self.type_vocab_size)
        sequence_labels = ids_tensor([self.batch_size], self.type_sequence_label_size)
        token_labels = ids_tensor([self.batch_size, self.seq_length], self.num_labels)
        choice_labels = ids_tensor([self.batch_size], self.num_choices)
        return self.get_config(), input_ids, token_type_ids, input_mask, sequence_labels, token_labels, choice_labels

    def prepare_config_and_inputs_for_common(self):
        config, input_ids, token_type_ids, input_mask, *_ = self.prepare_config_and_inputs()
        return config, {"input_ids": input_ids, "token_type_ids": token_type_ids, "attention_mask": input_mask}

    def build(self, head: str, config):
        return self.model_classes[head](config).to(common.torch_device).eval()

    def create_and_check_model(self, config, input_ids, token_type_ids, input_mask, *labels):
        model = self.build("Model", config)
        model(input_ids, attention_mask=input_mask, token_type_ids=token_type_ids)
        model(input_ids, token_type_ids=token_type_ids)
        result = model(input_ids)
        self.parent.assertEqual(result.last_hidden_state.shape, (self.batch_size, self.seq_length, self.hidden_size))
        self.parent.assertEqual(result.pooler_output.shape, (self.batch_size, self.hidden_size))

    def create_and_check_for_masked_lm(self, config, input_ids, token_type_ids, input_mask, _, token_labels, __):
        model = self.build("ForMaskedLM", config)
        result = model(input_ids, attention_mask=input_mask, token_type_ids=token_type_ids, labels=token_labels)
        self.parent.assertEqual(result.logits.shape, (self.batch_size, self.seq_length, self.vocab_size))

    def create_and_check_for_question_answering(self, config, input_ids, token_type_ids, input_mask, labels, *_):
        model = self.build("ForQuestionAnswering", config)
        result = model(input_ids, attention_mask=input_mask, token_type_ids=token_type_ids, start_positions=labels,
                       end_positions=labels)  # fmt: skip
        self.parent.assertEqual(result.start_logits.shape, (self.batch_size, self.seq_length))
        self.parent.assertEqual(result.end_logits.shape, (self.batch_size, self.seq_length))

    def create_and_check_for_sequence_classification(self, config, input_ids, token_type_ids, input_mask, labels, *_):
        config.num_labels = self.num_labels
        model = self.build("ForSequenceClassification", config)
        result = model(input_ids, attention_mask=input_mask, token_type_ids=token_type_ids, labels=labels)
        self.parent.assertEqual(result.logits.shape, (self.batch_size, self.num_labels))

    def create_and_check_for_token_classification(self, config, input_ids, token_type_ids, input_mask, _, labels, __):
        config.num_labels = self.num_labels
        model = self.build("ForTokenClassification", config)
        result = model(input_ids, attention_mask=input_mask, token_type_ids=token_type_ids, labels=labels)
        self.parent.assertEqual(result.logits.shape, (self.batch_size, self.seq_length, self.num_labels))

    def create_and_check_for_multiple_choice(self, config, input_ids, token_type_ids, input_mask, _, __, labels):
        model = self.build("ForMultipleChoice", config)
        per_choice = [t.unsqueeze(1).expand(-1, self.num_choices, -1).contiguous()
                      for t in (input_ids, input_mask, token_type_ids)]  # fmt: skip
        result = model(per_choice[0], attention_mask=per_choice[1], token_type_ids=per_choice[2], labels=labels)
        self.parent.assertEqual(result.logits.shape, (self.batch_size, self.num_choices))


class SepNormTextModelTest(SepNormModelTestMixin, common.ModelTesterMixin):
    """transformers' BERT model test, for a SepNorm text family (`config_class`, `model_classes` by head name)."""

    config_class = None
    model_classes: dict = {}
    cls_norm = None
    skipped_upstream_tests = {}  # BERT and RoBERTa have no legacy key names: every common test applies

    @classmethod
    def setUpClass(cls):
        cls.all_model_classes = tuple(cls.model_classes.values())
        cls.family_auto_classes = cls.all_model_classes[0].sepnorm_auto_classes

    def setUp(self):
        self.model_tester = SepNormTextModelTester(self, self.config_class, self.model_classes, self.cls_norm)

    def test_model(self):
        self.model_tester.create_and_check_model(*self.model_tester.prepare_config_and_inputs())

    def test_for_masked_lm(self):
        self.model_tester.create_and_check_for_masked_lm(*self.model_tester.prepare_config_and_inputs())

    def test_for_question_answering(self):
        self.model_tester.create_and_check_for_question_answering(*self.model_tester.prepare_config_and_inputs())

    def test_for_sequence_classification(self):
        self.model_tester.create_and_check_for_sequence_classification(*self.model_tester.prepare_config_and_inputs())

    def test_for_token_classification(self):
        self.model_tester.create_and_check_for_token_classification(*self.model_tester.prepare_config_and_inputs())

    def test_for_multiple_choice(self):
        self.model_tester.create_and_check_for_multiple_choice(*self.model_tester.prepare_config_and_inputs())

    def test_model_with_absolute_position_embeddings_and_inputs_embeds(self):
        # as transformers' BERT test: inputs_embeds instead of input_ids
        config, input_ids, token_type_ids, input_mask, *_ = self.model_tester.prepare_config_and_inputs()
        model = self.model_tester.build("Model", config)
        embeds = model.get_input_embeddings()(input_ids)
        with torch.no_grad():
            from_ids = model(input_ids, attention_mask=input_mask, token_type_ids=token_type_ids).last_hidden_state
            from_embeds = model(inputs_embeds=embeds, attention_mask=input_mask, token_type_ids=token_type_ids)
        torch.testing.assert_close(from_embeds.last_hidden_state, from_ids)


# Tests of transformers' BERT/RoBERTa model tests for heads this project does not ship: skipped, with the reason.
NOT_SHIPPED = "this project ships no SepNorm {} (no causal LM, decoder, cache or next-sentence head)"
for _test, _head in {
    "test_for_pretraining": "ForPreTraining (MLM + next-sentence prediction)",
    "test_for_next_sequence_prediction": "ForNextSentencePrediction",
    "test_for_causal_lm": "LMHeadModel / ForCausalLM",
    "test_for_causal_lm_decoder": "LMHeadModel / ForCausalLM with cross-attention",
    "test_model_as_decoder": "decoder (is_decoder=True with cross-attention)",
    "test_model_as_decoder_with_default_input_mask": "decoder (is_decoder=True with cross-attention)",
    "test_decoder_model_past_with_large_inputs": "decoder with a cache",
}.items():
    setattr(SepNormTextModelTest, _test, unittest.skip(NOT_SHIPPED.format(_head))(lambda self: None))
