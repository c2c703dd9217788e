"""transformers' common model tests (`ModelTesterMixin`, from the installed release) on every SepNorm ViT-MAE class,
with a [CLS] BatchNorm and a [CLS] LayerNorm. The tester mirrors transformers' `ViTMAEModelTester`, and the test
classes carry over what transformers' ViT-MAE test changes in the common tests (its random masking)."""

import math
import tempfile
import unittest

import torch
from upstream import (
    ATTENTION_MATRIX_ONCE,
    KEY_NAME_DEVIATION,
    SepNormModelTestMixin,
    import_upstream,
)

from hf_sepnorm import (
    SepNormViTMAEConfig,
    SepNormViTMAEForImageClassification,
    SepNormViTMAEForPreTraining,
    SepNormViTMAEModel,
)

common = import_upstream("test_modeling_common")
floats_tensor, ids_tensor, torch_device = common.floats_tensor, common.ids_tensor, common.torch_device

RANDOM_MASK = "ViT-MAE draws a random mask in every forward pass (as transformers' ViT-MAE test skips it)"


class SepNormViTMAEModelTester:
    """A tiny ViT-MAE and its inputs, as transformers' `ViTMAEModelTester` builds them (with 36 patches of 2x2 pixels
    rather than its 225, to keep the suite's time)."""

    def __init__(self, parent, cls_norm, mask_ratio=0.5, batch_size=13, image_size=12, patch_size=2, num_channels=3,
                 hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, num_labels=3):  # fmt: skip
        self.parent, self.cls_norm, self.mask_ratio = parent, cls_norm, mask_ratio
        self.batch_size, self.image_size, self.patch_size = batch_size, image_size, patch_size
        self.num_channels, self.hidden_size, self.num_hidden_layers = num_channels, hidden_size, num_hidden_layers
        self.num_attention_heads, self.intermediate_size = num_attention_heads, intermediate_size
        self.num_labels, self.type_sequence_label_size = num_labels, num_labels
        self.is_training = True
        # the encoder sees the kept patches and [CLS]
        num_patches = (image_size // patch_size) ** 2
        self.seq_length = int(math.ceil((1 - mask_ratio) * (num_patches + 1)))
        self.num_masks = int(mask_ratio * self.seq_length)
        self.mask_length = num_patches

    def get_config(self):
        return SepNormViTMAEConfig(
            cls_norm=self.cls_norm,
            image_size=self.image_size,
            patch_size=self.patch_size,
            num_channels=self.num_channels,
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            intermediate_size=self.intermediate_size,
            decoder_hidden_size=self.hidden_size,
            decoder_num_hidden_layers=self.num_hidden_layers,
            decoder_num_attention_heads=self.num_attention_heads,
            decoder_intermediate_size=self.intermediate_size,
            hidden_act="gelu",
            hidden_dropout_prob=0.1,
            attention_probs_dropout_prob=0.1,
            initializer_range=0.02,
            mask_ratio=self.mask_ratio,
            num_labels=self.num_labels,
        )

    def prepare_config_and_inputs(self):
        pixel_values = floats_tensor([self.batch_size, self.num_channels, self.image_size, self.image_size])
        labels = ids_tensor([self.batch_size], self.type_sequence_label_size)
        return self.get_config(), pixel_values, labels

    def prepare_config_and_inputs_for_common(self):
        config, pixel_values, _ = self.prepare_config_and_inputs()
        return config, {"pixel_values": pixel_values}


class ViTMAETestChanges(SepNormModelTestMixin):
    """What transformers' ViT-MAE test changes in the common tests for every ViT-MAE class."""

    test_resize_embeddings = False
    family_auto_classes = SepNormViTMAEModel.sepnorm_auto_classes

    def test_model_get_set_embeddings(self):
        config, _ = self.model_tester.prepare_config_and_inputs_for_common()
        for model_class in self.all_model_classes:
            model = model_class(config)
            self.assertIsInstance(model.get_input_embeddings(), torch.nn.Module)
            output_embeddings = model.get_output_embeddings()
            self.assertTrue(output_embeddings is None or isinstance(output_embeddings, torch.nn.Linear))


class SepNormViTMAEModelTest(ViTMAETestChanges, common.ModelTesterMixin):
    """transformers' ViT-MAE model test for SepNormViTMAEModel and SepNormViTMAEForPreTraining."""

    all_model_classes = (SepNormViTMAEModel, SepNormViTMAEForPreTraining)
    cls_norm = None
    skipped_upstream_tests = {
        "test_inputs_embeds": "ViT-MAE has no inputs_embeds",
        "test_determinism": RANDOM_MASK,
        "test_model_outputs_equivalence": RANDOM_MASK,
        "test_batching_equivalence": RANDOM_MASK,
        "test_reverse_loading_mapping": KEY_NAME_DEVIATION,
    }

    def setUp(self):
        self.model_tester = SepNormViTMAEModelTester(self, self.cls_norm)

    def test_model(self):
        config, pixel_values, _ = self.model_tester.prepare_config_and_inputs()
        model = SepNormViTMAEModel(config).to(torch_device).eval()
        result = model(pixel_values)
        tester = self.model_tester
        self.assertEqual(result.last_hidden_state.shape, (tester.batch_size, tester.seq_length, tester.hidden_size))

    def test_for_pretraining(self):
        config, pixel_values, _ = self.model_tester.prepare_config_and_inputs()
        tester = self.model_tester
        num_patches = (tester.image_size // tester.patch_size) ** 2
        for num_channels in (tester.num_channels, 1):  # and greyscale images
            config.num_channels = num_channels
            model = SepNormViTMAEForPreTraining(config).to(torch_device).eval()
            images = floats_tensor([tester.batch_size, num_channels, tester.image_size, tester.image_size])
            result = model(images)
            expected = (tester.batch_size, num_patches, tester.patch_size**2 * num_channels)
            self.assertEqual(result.logits.shape, expected)

    def test_save_load(self):
        # transformers' ViT-MAE test: the same random mask before and after the round trip
        config, inputs_dict = self.model_tester.prepare_config_and_inputs_for_common()
        for model_class in self.all_model_classes:
            model = model_class(config).to(torch_device).eval()
            torch.manual_seed(2)
            with torch.no_grad():
                before = model(**self._prepare_for_class(inputs_dict, model_class))[0]
            with tempfile.TemporaryDirectory() as folder:
                model.save_pretrained(folder)
                reloaded = model_class.from_pretrained(folder).to(torch_device).eval()
            torch.manual_seed(2)
            with torch.no_grad():
                after = reloaded(**self._prepare_for_class(inputs_dict, model_class))[0]
            torch.testing.assert_close(after, before, rtol=0, atol=1e-5)


class SepNormViTMAEBatchNormModelTest(SepNormViTMAEModelTest, unittest.TestCase):
    cls_norm = "batch"


class SepNormViTMAELayerNormModelTest(SepNormViTMAEModelTest, unittest.TestCase):
    cls_norm = "layer"
    skipped_upstream_tests = {**SepNormViTMAEModelTest.skipped_upstream_tests, **ATTENTION_MATRIX_ONCE}


class SepNormViTMAEClassifierTest(ViTMAETestChanges, common.ModelTesterMixin):
    """The common tests for SepNormViTMAEForImageClassification, which sees every patch (no mask): a test class of its
    own, since the common tests expect one sequence length for all classes of a test."""

    all_model_classes = (SepNormViTMAEForImageClassification,)
    cls_norm = None
    skipped_upstream_tests = {
        "test_inputs_embeds": "ViT-MAE has no inputs_embeds",
        "test_reverse_loading_mapping": KEY_NAME_DEVIATION,
    }

    def setUp(self):
        self.model_tester = SepNormViTMAEModelTester(self, self.cls_norm, mask_ratio=0.0)

    def test_for_image_classification(self):
        config, pixel_values, labels = self.model_tester.prepare_config_and_inputs()
        model = SepNormViTMAEForImageClassification(config).to(torch_device).eval()
        result = model(pixel_values, labels=labels)
        self.assertEqual(result.logits.shape, (self.model_tester.batch_size, self.model_tester.num_labels))
        loss, logits = model(pixel_values, labels=labels, return_dict=False)
        torch.testing.assert_close(logits, result.logits)


class SepNormViTMAEBatchNormClassifierTest(SepNormViTMAEClassifierTest, unittest.TestCase):
    cls_norm = "batch"


class SepNormViTMAELayerNormClassifierTest(SepNormViTMAEClassifierTest, unittest.TestCase):
    cls_norm = "layer"
    skipped_upstream_tests = {**SepNormViTMAEClassifierTest.skipped_upstream_tests, **ATTENTION_MATRIX_ONCE}
