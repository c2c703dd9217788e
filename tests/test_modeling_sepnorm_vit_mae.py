"""SepNorm ViT-MAE: heads, Auto classes, legacy checkpoint keys, stock equivalence, the image classifier."""

import pytest
import torch
from conftest import TINY_VIT_MAE, image_inputs, tiny_vit_mae_config
from safetensors.torch import load_file
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForImageClassification,
    AutoModelForPreTraining,
    ViTMAEConfig,
    ViTMAEForPreTraining,
    ViTMAEModel,
)

import hf_sepnorm
from hf_sepnorm import (
    SepNormLayerNorm,
    SepNormViTMAEForImageClassification,
    SepNormViTMAEForPreTraining,
    SepNormViTMAEModel,
)

HEADS = {
    AutoModel: SepNormViTMAEModel,
    AutoModelForPreTraining: SepNormViTMAEForPreTraining,
    AutoModelForImageClassification: SepNormViTMAEForImageClassification,
}
NUM_PATCHES = 16


def sepnorm_paths(model) -> list[str]:
    return [name for name, module in model.named_modules() if isinstance(module, SepNormLayerNorm)]


def fixed_noise(batch_size: int = 4) -> torch.Tensor:
    return torch.rand(batch_size, NUM_PATCHES, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("auto_class, model_class", HEADS.items(), ids=lambda c: getattr(c, "__name__", ""))
def test_auto_classes_build_heads_with_a_sepnorm_backbone(auto_class, model_class):
    config = AutoConfig.for_model("sepnorm_vit_mae", **TINY_VIT_MAE, num_labels=5)
    model = auto_class.from_config(config)
    assert type(model) is model_class
    # a head keeps transformers' backbone class; only its norms change
    assert type(model.base_model) is (SepNormViTMAEModel if model_class is SepNormViTMAEModel else ViTMAEModel)
    # 2 layers x 2 norms + the final norm, less layer 0's first norm (its [CLS] input is the same for every image)
    assert sepnorm_paths(model.base_model) == [
        "layers.0.layernorm_after",
        "layers.1.layernorm_before",
        "layers.1.layernorm_after",
        "layernorm",
    ]
    output = model(**image_inputs())
    assert torch.isfinite(output[0]).all()


def test_decoder_norms_follow_decoder_cls_norm_and_scope():
    model = SepNormViTMAEForPreTraining(tiny_vit_mae_config(decoder_cls_norm="layer"))
    assert [p for p in sepnorm_paths(model) if p.startswith("decoder")] == [
        "decoder.decoder_layers.0.layernorm_before",
        "decoder.decoder_layers.0.layernorm_after",
        "decoder.decoder_norm",
    ]
    final = SepNormViTMAEForPreTraining(tiny_vit_mae_config(decoder_cls_norm="batch", sepnorm_scope="final"))
    assert sepnorm_paths(final) == ["vit.layernorm", "decoder.decoder_norm"]
    assert not [p for p in sepnorm_paths(SepNormViTMAEForPreTraining(tiny_vit_mae_config())) if "decoder" in p]


@pytest.fixture
def stock_pretraining_checkpoint(tmp_path):
    stock = ViTMAEForPreTraining(ViTMAEConfig(**TINY_VIT_MAE)).eval()
    with torch.no_grad():
        for name, parameter in stock.named_parameters():
            if "layernorm" in name or "decoder_norm" in name:
                parameter.uniform_(0.5, 1.5)
    stock.save_pretrained(tmp_path / "stock")
    return stock, tmp_path / "stock"


def test_stock_checkpoint_uses_legacy_keys_and_loads_into_every_sepnorm_class(stock_pretraining_checkpoint):
    _, folder = stock_pretraining_checkpoint
    saved_keys = load_file(folder / "model.safetensors")
    assert any(key.startswith("vit.encoder.layer.0.") for key in saved_keys)  # legacy names on disk
    for model_class in (SepNormViTMAEForPreTraining, SepNormViTMAEModel, SepNormViTMAEForImageClassification):
        _, info = model_class.from_pretrained(folder, output_loading_info=True)
        not_cls_norm = {key for key in info["missing_keys"] if ".cls_norm." not in key}
        is_classifier = model_class is SepNormViTMAEForImageClassification
        assert not_cls_norm == ({"classifier.weight", "classifier.bias"} if is_classifier else set())
        assert all(not key.startswith("vit.") for key in info["unexpected_keys"])


@pytest.mark.parametrize("cls_norm", ["shared", "layer"])
def test_converted_checkpoint_computes_exactly_what_stock_does(stock_pretraining_checkpoint, cls_norm):
    stock, folder = stock_pretraining_checkpoint
    model = hf_sepnorm.convert_stock_checkpoint(folder, cls_norm=cls_norm, decoder_cls_norm=cls_norm).eval()
    assert type(model) is SepNormViTMAEForPreTraining
    inputs = {**image_inputs(), "noise": fixed_noise()}
    assert (model(**inputs).logits - stock(**inputs).logits).abs().max().item() == 0


def test_save_and_reload_is_bit_identical(tmp_path):
    model = SepNormViTMAEForPreTraining(tiny_vit_mae_config(decoder_cls_norm="batch")).train()
    for _ in range(2):
        model(**image_inputs(batch_size=8))
    model.eval().save_pretrained(tmp_path)
    assert {"modeling_sepnorm_vit_mae.py", "configuration_sepnorm_vit_mae.py", "sepnorm.py"} <= {
        p.name for p in tmp_path.iterdir()
    }
    reloaded, info = AutoModelForPreTraining.from_pretrained(tmp_path, output_loading_info=True)
    assert all(not info[key] for key in ("missing_keys", "unexpected_keys", "mismatched_keys"))
    inputs = {**image_inputs(), "noise": fixed_noise()}
    assert torch.equal(reloaded.eval()(**inputs).logits, model(**inputs).logits)
    assert set(AutoConfig.from_pretrained(tmp_path).auto_map) == {
        "AutoConfig",
        "AutoModel",
        "AutoModelForPreTraining",
        "AutoModelForImageClassification",
    }


def test_classifier_neither_masks_nor_shuffles():
    config = tiny_vit_mae_config(num_labels=3, mask_ratio=0.75)
    classifier = SepNormViTMAEForImageClassification(config).eval()
    assert classifier.config.mask_ratio == 0.75  # the saved config keeps what pretraining used
    pixels = image_inputs()["pixel_values"]
    outputs = classifier(pixel_values=pixels, output_hidden_states=True)
    assert outputs.hidden_states[-1].shape[1] == NUM_PATCHES + 1
    # same as the encoder run on all patches in their order
    in_order = torch.arange(NUM_PATCHES).expand(4, -1)
    encoder = SepNormViTMAEModel(tiny_vit_mae_config(mask_ratio=0.0)).eval()
    encoder.load_state_dict(classifier.vit.state_dict())
    cls_state = encoder(pixel_values=pixels, noise=in_order).last_hidden_state[:, 0]
    torch.testing.assert_close(outputs.logits, classifier.classifier(cls_state), rtol=0, atol=0)
    assert torch.equal(classifier(pixel_values=pixels).logits, outputs.logits)  # deterministic


def test_classifier_mean_pooling_and_loss():
    classifier = SepNormViTMAEForImageClassification(tiny_vit_mae_config(num_labels=3, classifier_pooling="mean"))
    pixels = image_inputs()["pixel_values"]
    outputs = classifier.eval()(pixel_values=pixels, labels=torch.tensor([0, 1, 2, 0]))
    features = classifier.vit(pixel_values=pixels, noise=torch.arange(NUM_PATCHES).expand(4, -1)).last_hidden_state
    assert features.shape[1] == NUM_PATCHES + 1
    expected = classifier.classifier(features[:, 1:].mean(dim=1))
    torch.testing.assert_close(outputs.logits, expected, rtol=0, atol=0)
    expected_loss = torch.nn.functional.cross_entropy(expected, torch.tensor([0, 1, 2, 0]))
    torch.testing.assert_close(outputs.loss, expected_loss)


def test_grey_images_and_other_sizes():
    config = tiny_vit_mae_config(image_size=28, patch_size=7, num_channels=1, num_labels=10)
    for model_class in (SepNormViTMAEForPreTraining, SepNormViTMAEForImageClassification):
        output = model_class(config)(pixel_values=torch.randn(4, 1, 28, 28))
        assert torch.isfinite(output[0]).all()


def test_shared_vit_mae_model_is_exactly_stock(tmp_path):
    stock = ViTMAEModel(ViTMAEConfig(**TINY_VIT_MAE)).eval()
    stock.save_pretrained(tmp_path)
    model = SepNormViTMAEModel.from_pretrained(tmp_path, cls_norm="shared").eval()
    inputs = {**image_inputs(), "noise": fixed_noise()}
    assert torch.equal(model(**inputs).last_hidden_state, stock(**inputs).last_hidden_state)


@pytest.mark.slow
def test_torch_compile_fullgraph_pretraining_step():
    model = SepNormViTMAEForPreTraining(tiny_vit_mae_config(decoder_cls_norm="batch")).train()
    compiled = torch.compile(model, fullgraph=True)
    inputs = {**image_inputs(), "noise": fixed_noise()}
    loss = compiled(**inputs).loss
    loss.backward()
    assert torch.isfinite(loss)
    assert model.vit.layernorm.cls_norm.weight.grad is not None
    assert model.decoder.decoder_norm.cls_norm.num_batches_tracked.item() == 1


@pytest.mark.parametrize(
    "model_class, stock_class",
    [(SepNormViTMAEModel, ViTMAEModel), (SepNormViTMAEForPreTraining, ViTMAEForPreTraining)],
)
def test_models_keep_their_parents_forward_signature(model_class, stock_class):
    import inspect

    assert inspect.signature(model_class.forward) == inspect.signature(stock_class.forward)
    assert "noise" in inspect.signature(model_class.forward).parameters


def test_classifier_returns_a_tuple_when_asked():
    model = SepNormViTMAEForImageClassification(tiny_vit_mae_config(num_labels=3)).eval()
    inputs = image_inputs()
    labels = torch.tensor([0, 1, 2, 0])
    expected = model(**inputs, labels=labels)
    as_tuple = model(**inputs, labels=labels, return_dict=False)
    assert isinstance(as_tuple, tuple)
    torch.testing.assert_close(as_tuple[0], expected.loss)
    torch.testing.assert_close(as_tuple[1], expected.logits)
    model.config.return_dict = False
    loss, logits = model(**inputs, labels=labels)
    torch.testing.assert_close(logits, expected.logits)
