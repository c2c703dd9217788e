"""What only the DINOv2 family has: stock `dinov2` checkpoints held as a model without registers (exact at every image
size, classifiers' `dinov2.` keys), and a [CLS] norm over [CLS] and the registers together (`cls_norm_tokens`)."""

import pytest
import torch
from family_checkpoints import TINY_DINOV2, sepnorm_config
from transformers import Dinov2Config, Dinov2ForImageClassification

from hf_sepnorm import (
    ClsBatchNorm,
    SepNormDinov2Backbone,
    SepNormDinov2ForImageClassification,
    SepNormDinov2Model,
    SepNormLayerNorm,
)
from hf_sepnorm.conversion import convert_stock_checkpoint
from hf_sepnorm.remote_code.sepnorm import build_cls_norm

TINY_STOCK_DINOV2 = {key: value for key, value in TINY_DINOV2.items() if key != "num_register_tokens"}


def test_a_stock_dinov2_classifier_converts_exactly_at_another_image_size(tmp_path):
    """No registers, DINOv2's own position interpolation (no antialiasing) and its `dinov2.` key prefix."""
    stock = Dinov2ForImageClassification(Dinov2Config(**TINY_STOCK_DINOV2, num_labels=3)).eval()
    with torch.no_grad():
        for norm in (module for module in stock.modules() if isinstance(module, torch.nn.LayerNorm)):
            norm.weight.normal_(1.0, 0.3), norm.bias.normal_(0.0, 0.3)
    stock.save_pretrained(tmp_path)
    converted = convert_stock_checkpoint(tmp_path, cls_norm="layer").eval()
    assert type(converted) is SepNormDinov2ForImageClassification and converted.config.num_register_tokens == 0
    for height, width in ((32, 32), (40, 56)):  # the native size, and one the position embeddings are resized to
        pixel_values = torch.randn(2, 3, height, width)
        with torch.no_grad():
            assert (converted(pixel_values).logits - stock(pixel_values).logits).abs().max().item() == 0.0


def test_cls_and_registers_are_normalized_as_one_set_of_rows_by_both_training_paths():
    """The one-node training path and the general one (taken when `cls_norm` has hooks) give the batch statistics of
    the batch x (1 + registers) leading rows, the same outputs, gradients and running statistics."""
    torch.manual_seed(0)
    leading, hidden = 3, 8
    states = torch.randn(4, 10, hidden, dtype=torch.float64).float()
    results = []
    for hooked in (False, True):
        norm = SepNormLayerNorm(hidden, build_cls_norm("batch", hidden, 1e-5), leading_tokens=leading).train()
        if hooked:
            norm.cls_norm.register_forward_hook(lambda *args: None)
        inputs = states.clone().requires_grad_()
        output = norm(inputs)
        (output * torch.linspace(-1, 1, hidden)).sum().backward()
        results.append((output.detach(), inputs.grad, norm.cls_norm.running_mean.clone()))
    rows = states[:, :leading].reshape(-1, hidden)
    expected = torch.nn.functional.batch_norm(rows, None, None, training=True).view(4, leading, hidden)
    for output, grad, running_mean in results:
        torch.testing.assert_close(output[:, :leading], expected)
        torch.testing.assert_close(output[:, leading:], torch.nn.functional.layer_norm(states, (hidden,))[:, leading:])
    torch.testing.assert_close(results[0][1], results[1][1])
    torch.testing.assert_close(results[0][2], 0.1 * rows.mean(0))
    torch.testing.assert_close(results[1][2], results[0][2])


@pytest.mark.parametrize("cls_norm_tokens", ["cls", "cls_and_registers"])
def test_one_image_checkpointed_activations_and_bf16_keep_the_statistics_right(cls_norm_tokens):
    config = sepnorm_config("sepnorm_dinov2", cls_norm="batch", cls_norm_tokens=cls_norm_tokens)
    model = SepNormDinov2Model(config).train()
    leading = {module.leading_tokens for module in model.modules() if isinstance(module, SepNormLayerNorm)}
    assert leading == {1 if cls_norm_tokens == "cls" else 1 + config.num_register_tokens}
    batch_norms = [module for module in model.modules() if isinstance(module, ClsBatchNorm)]
    model(torch.randn(1, 3, 32, 32))  # one image: running statistics used, not updated (warned once per process)
    assert all(norm.num_batches_tracked.item() == 0 for norm in batch_norms)
    model.gradient_checkpointing_enable()
    model(torch.randn(4, 3, 32, 32)).last_hidden_state.sum().backward()
    assert all(norm.num_batches_tracked.item() == 1 for norm in batch_norms)  # once, not again when recomputed
    model.to(torch.bfloat16)
    assert {norm.running_mean.dtype for norm in batch_norms} == {torch.float32}
    output = model(torch.randn(4, 3, 32, 32, dtype=torch.bfloat16)).last_hidden_state
    assert output.dtype == torch.bfloat16 and torch.isfinite(output.float()).all()


@pytest.mark.parametrize("out_features", [["stage1", "stage2"], ["stage2"], ["stage1"]])
def test_a_backbone_updates_the_final_cls_statistics_from_the_last_stage_only(out_features):
    """One `layernorm` normalizes every output stage: its [CLS] running statistics follow the last stage, the one the
    Model normalizes, so that a trained backbone's checkpoint loads as a Model with statistics of its own stage."""
    config = sepnorm_config("sepnorm_dinov2", cls_norm="batch", out_features=out_features, reshape_hidden_states=False)
    backbone = SepNormDinov2Backbone(config).train()
    model = SepNormDinov2Model(config).train()
    model.load_state_dict(backbone.state_dict())
    images = torch.randn(4, 3, 32, 32)
    feature_maps = backbone(images).feature_maps
    model(images)
    final, expected = backbone.layernorm.cls_norm, model.layernorm.cls_norm
    if "stage2" in out_features:  # the last of the 2 layers
        assert final.num_batches_tracked.item() == 1
        torch.testing.assert_close(final.running_mean, expected.running_mean, rtol=0, atol=0)
        torch.testing.assert_close(final.running_var, expected.running_var, rtol=0, atol=0)
    else:
        assert final.num_batches_tracked.item() == 0 and (final.running_mean == 0).all()
    # every stage is still normalized with its own batch statistics in training
    for stage, feature_map in zip(out_features, feature_maps):
        batch = feature_map[:, 0]
        torch.testing.assert_close(batch.mean(0), final.bias.detach().expand_as(batch[0]), rtol=0, atol=1e-5)
