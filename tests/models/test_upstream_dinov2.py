"""transformers' common model tests (`ModelTesterMixin`, `BackboneTesterMixin`, from the installed release) on every
SepNorm DINOv2 class, with registers: a [CLS]-and-registers BatchNorm and a [CLS] LayerNorm. The tester mirrors
transformers' `Dinov2WithRegistersModelTester` (with 36 patches of 2x2 pixels rather than its 225, to keep the
suite's time)."""

import unittest

import torch
from upstream import ATTENTION_MATRIX_ONCE, KEY_NAME_DEVIATION, SepNormModelTestMixin, import_upstream

from hf_sepnorm import (
    SepNormDinov2Backbone,
    SepNormDinov2Config,
    SepNormDinov2ForImageClassification,
    SepNormDinov2Model,
)

common = import_upstream("test_modeling_common")
backbone_common = import_upstream("test_backbone_common")
floats_tensor, ids_tensor, torch_device = common.floats_tensor, common.ids_tensor, common.torch_device


class SepNormDinov2ModelTester:
    """A tiny DINOv2 with registers and its inputs, as transformers' `Dinov2WithRegistersModelTester` builds them."""

    def __init__(self, parent, cls_norm="batch", cls_norm_tokens="cls", batch_size=13, image_size=12, patch_size=2,
                 num_channels=3, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                 type_sequence_label_size=10, num_register_tokens=2):  # fmt: skip
        self.parent, self.cls_norm, self.cls_norm_tokens = parent, cls_norm, cls_norm_tokens
        self.batch_size, self.image_size, self.patch_size = batch_size, image_size, patch_size
        self.num_channels, self.hidden_size, self.num_hidden_layers = num_channels, hidden_size, num_hidden_layers
        self.num_attention_heads, self.intermediate_size = num_attention_heads, intermediate_size
        self.type_sequence_label_size, self.num_register_tokens = type_sequence_label_size, num_register_tokens
        self.is_training = True
        self.seq_length = (image_size // patch_size) ** 2 + 1 + num_register_tokens
        # what the common tests of masked inputs read (`bool_masked_pos`)
        self.mask_ratio, self.num_masks = 0.5, int(0.5 * self.seq_length)
        self.mask_length = (image_size // patch_size) ** 2
        # what BackboneTesterMixin reads
        self.out_features, self.out_indices, self.stage_names = None, None, None

    def get_config(self):
        return SepNormDinov2Config(
            cls_norm=self.cls_norm,
            cls_norm_tokens=self.cls_norm_tokens,
            image_size=self.image_size,
            patch_size=self.patch_size,
            num_channels=self.num_channels,
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            intermediate_size=self.intermediate_size,
            hidden_act="gelu",
            hidden_dropout_prob=0.1,
            attention_probs_dropout_prob=0.1,
            initializer_range=0.02,
            num_register_tokens=self.num_register_tokens,
        )

    def prepare_config_and_inputs(self):
        pixel_values = floats_tensor([self.batch_size, self.num_channels, self.image_size, self.image_size])
        labels = ids_tensor([self.batch_size], self.type_sequence_label_size)
        return self.get_config(), pixel_values, labels

    def prepare_config_and_inputs_for_common(self):
        config, pixel_values, _ = self.prepare_config_and_inputs()
        return config, {"pixel_values": pixel_values}


class SepNormDinov2ModelTest(SepNormModelTestMixin, common.ModelTesterMixin):
    """transformers' DINOv2-with-registers model test for the SepNorm DINOv2 classes."""

    all_model_classes = (SepNormDinov2Model, SepNormDinov2ForImageClassification, SepNormDinov2Backbone)
    family_auto_classes = SepNormDinov2Model.sepnorm_auto_classes
    test_resize_embeddings = False
    cls_norm, cls_norm_tokens = None, None
    skipped_upstream_tests = {
        "test_inputs_embeds": "DINOv2 has no inputs_embeds",
        "test_feed_forward_chunking": "DINOv2 has no feed-forward chunking (as transformers' test skips it)",
        "test_reverse_loading_mapping": KEY_NAME_DEVIATION,
        **dict.fromkeys(
            ("test_training_gradient_checkpointing", "test_training_gradient_checkpointing_use_reentrant",
             "test_training_gradient_checkpointing_use_reentrant_true",
             "test_training_gradient_checkpointing_use_reentrant_false"),
            "the mask token is used only with bool_masked_pos, so it gets no gradient (transformers' DINOv2 test "
            "skips these); activation checkpointing with a [CLS] BatchNorm is tested in tests/test_families.py",
        ),  # fmt: skip
    }

    def setUp(self):
        self.model_tester = SepNormDinov2ModelTester(self, self.cls_norm, self.cls_norm_tokens)

    def test_model_get_set_embeddings(self):
        config, _ = self.model_tester.prepare_config_and_inputs_for_common()
        for model_class in self.all_model_classes:
            model = model_class(config)
            self.assertIsInstance(model.get_input_embeddings(), torch.nn.Module)
            output_embeddings = model.get_output_embeddings()
            self.assertTrue(output_embeddings is None or isinstance(output_embeddings, torch.nn.Linear))

    def test_model(self):
        config, pixel_values, _ = self.model_tester.prepare_config_and_inputs()
        result = SepNormDinov2Model(config).to(torch_device).eval()(pixel_values)
        tester = self.model_tester
        self.assertEqual(result.last_hidden_state.shape, (tester.batch_size, tester.seq_length, tester.hidden_size))

    def test_backbone(self):
        config, pixel_values, _ = self.model_tester.prepare_config_and_inputs()
        tester = self.model_tester
        expected_size = tester.image_size // config.patch_size
        for out_features in (config.out_features, None):
            config.out_features = out_features
            model = SepNormDinov2Backbone(config).to(torch_device).eval()
            result = model(pixel_values)
            self.assertEqual(len(result.feature_maps), len(config.out_features))
            self.assertEqual(list(result.feature_maps[0].shape),
                             [tester.batch_size, model.channels[0], expected_size, expected_size])  # fmt: skip
        config.apply_layernorm, config.reshape_hidden_states = False, False
        result = SepNormDinov2Backbone(config).to(torch_device).eval()(pixel_values)
        self.assertEqual(list(result.feature_maps[0].shape), [tester.batch_size, tester.seq_length, tester.hidden_size])

    def test_for_image_classification(self):
        config, pixel_values, labels = self.model_tester.prepare_config_and_inputs()
        tester = self.model_tester
        config.num_labels = tester.type_sequence_label_size
        model = SepNormDinov2ForImageClassification(config).to(torch_device).eval()
        result = model(pixel_values, labels=labels)
        self.assertEqual(result.logits.shape, (tester.batch_size, tester.type_sequence_label_size))
        config.num_channels = 1  # and greyscale images
        model = SepNormDinov2ForImageClassification(config).to(torch_device).eval()
        result = model(floats_tensor([tester.batch_size, 1, tester.image_size, tester.image_size]))
        self.assertEqual(result.logits.shape, (tester.batch_size, tester.type_sequence_label_size))


class SepNormDinov2BatchNormModelTest(SepNormDinov2ModelTest, unittest.TestCase):
    cls_norm, cls_norm_tokens = "batch", "cls_and_registers"


class SepNormDinov2LayerNormModelTest(SepNormDinov2ModelTest, unittest.TestCase):
    cls_norm, cls_norm_tokens = "layer", "cls"
    skipped_upstream_tests = {**SepNormDinov2ModelTest.skipped_upstream_tests, **ATTENTION_MATRIX_ONCE}


class SepNormDinov2BackboneTest(SepNormModelTestMixin, unittest.TestCase, backbone_common.BackboneTesterMixin):
    """transformers' backbone tests for SepNormDinov2Backbone, with a [CLS]-and-registers BatchNorm."""

    all_model_classes = (SepNormDinov2Backbone,)
    family_auto_classes = SepNormDinov2Model.sepnorm_auto_classes
    config_class = SepNormDinov2Config
    has_attentions = False

    def setUp(self):
        self.model_tester = SepNormDinov2ModelTester(self, "batch", "cls_and_registers")
