"""The SepNorm layer on its own: numerics against a plain reference, BatchNorm edge cases, dtypes, config checks."""

import copy
import dataclasses
import warnings

import pytest
import torch
from conftest import bert_inputs, tiny_bert_config
from huggingface_hub.errors import (
    StrictDataclassFieldValidationError,
)
from torch import nn

from hf_sepnorm import (
    ClsBatchNorm,
    SepNormBertConfig,
    SepNormBertForSequenceClassification,
    SepNormLayerNorm,
    SepNormViTMAEConfig,
)
from hf_sepnorm.remote_code.sepnorm import SepNormLayerNorm as LayerFromModule
from hf_sepnorm.remote_code.sepnorm import build_cls_norm

HIDDEN = 16


def reference_sepnorm(token_norm: nn.LayerNorm, cls_norm: nn.Module, hidden_states: torch.Tensor) -> torch.Tensor:
    """The paper's formulation: split, normalize each part, concatenate."""
    cls = cls_norm(hidden_states[:, 0])
    return torch.cat([cls.unsqueeze(1), token_norm(hidden_states[:, 1:])], dim=1)


def make_pair(kind: str, dtype=torch.float32):
    torch.manual_seed(1)
    sepnorm = SepNormLayerNorm(HIDDEN, build_cls_norm(kind, HIDDEN, 1e-5), eps=1e-5)
    with torch.no_grad():
        for parameter in sepnorm.parameters():
            parameter.uniform_(0.5, 1.5)
    reference_token = nn.LayerNorm(HIDDEN, eps=1e-5)
    reference_token.load_state_dict({"weight": sepnorm.weight, "bias": sepnorm.bias})
    reference_cls = build_cls_norm(kind, HIDDEN, 1e-5)
    reference_cls.load_state_dict(sepnorm.cls_norm.state_dict())
    return sepnorm.to(dtype), reference_token.to(dtype), reference_cls.to(dtype)


@pytest.mark.parametrize("kind", ["batch", "layer", "rms"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("training", [True, False])
def test_matches_reference_forward_and_gradients(kind, dtype, training):
    sepnorm, reference_token, reference_cls = make_pair(kind, dtype)
    sepnorm.train(training), reference_token.train(training), reference_cls.train(training)
    hidden = (torch.randn(6, 7, HIDDEN) * 3 + 1).to(dtype)
    hidden_ours = hidden.clone().requires_grad_()
    hidden_reference = hidden.clone().requires_grad_()
    upstream = torch.randn(6, 7, HIDDEN).to(dtype)

    ours = sepnorm(hidden_ours)
    reference = reference_sepnorm(reference_token, reference_cls, hidden_reference)
    torch.testing.assert_close(ours, reference, rtol=0, atol=0)

    (ours * upstream).sum().backward()
    (reference * upstream).sum().backward()
    torch.testing.assert_close(hidden_ours.grad, hidden_reference.grad)
    torch.testing.assert_close(sepnorm.weight.grad, reference_token.weight.grad)
    torch.testing.assert_close(sepnorm.cls_norm.weight.grad, reference_cls.weight.grad)
    if kind == "batch":
        torch.testing.assert_close(sepnorm.cls_norm.running_mean, reference_cls.running_mean)
        torch.testing.assert_close(sepnorm.cls_norm.running_var, reference_cls.running_var)


def row_write_under_autograd(layer: SepNormLayerNorm, hidden_states: torch.Tensor) -> torch.Tensor:
    """SepNormLayerNorm's general path (the row written in place under autograd), for any [CLS] norm."""
    normalized = nn.functional.layer_norm(hidden_states, layer.normalized_shape, layer.weight, layer.bias, layer.eps)
    normalized[:, 0] = layer.cls_norm(hidden_states[:, 0]).to(normalized.dtype)
    return normalized


@pytest.mark.parametrize(
    "dtype, autocast",
    [(torch.float32, False), (torch.bfloat16, False), (torch.float32, True)],
    ids=["fp32", "bf16", "autocast"],
)
def test_training_path_with_batch_statistics_is_bit_identical_to_the_row_write(dtype, autocast):
    torch.manual_seed(0)
    fused, _, _ = make_pair("batch", dtype)
    reference = copy.deepcopy(fused)
    hidden = (torch.randn(6, 7, HIDDEN) * 3 + 1).to(dtype)
    upstream = torch.randn(6, 7, HIDDEN)
    results = []
    for forward in (fused, lambda states: row_write_under_autograd(reference, states)):
        states = hidden.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            output = forward(states)
        output.backward(upstream.to(output.dtype))
        results.append((output, states.grad))
    (output, grad), (reference_output, reference_grad) = results
    assert output.grad_fn.name() == "_LayerNormWithClsBatchNormBackward"
    assert reference_output.grad_fn.name().endswith("CopySlices")
    torch.testing.assert_close(output, reference_output, rtol=0, atol=0)
    torch.testing.assert_close(grad[:, 1:], reference_grad[:, 1:], rtol=0, atol=0)
    torch.testing.assert_close(grad[:, 0], reference_grad[:, 0])
    torch.testing.assert_close(fused.weight.grad, reference.weight.grad, rtol=0, atol=0)
    torch.testing.assert_close(fused.bias.grad, reference.bias.grad, rtol=0, atol=0)
    torch.testing.assert_close(fused.cls_norm.weight.grad, reference.cls_norm.weight.grad)
    torch.testing.assert_close(fused.cls_norm.bias.grad, reference.cls_norm.bias.grad)
    torch.testing.assert_close(fused.cls_norm.running_var, reference.cls_norm.running_var, rtol=0, atol=0)
    assert fused.cls_norm.num_batches_tracked.item() == 1


def test_training_path_leaves_a_gradient_shared_with_another_branch_untouched():
    sepnorm, _, _ = make_pair("batch")
    sepnorm.weight.requires_grad_(False)  # a frozen token norm: only some gradients are asked for
    hidden = torch.randn(4, 5, HIDDEN, requires_grad=True)
    residual = torch.zeros(4, 5, HIDDEN, requires_grad=True)
    upstream = torch.randn(4, 5, HIDDEN)
    # the addition's backward hands the same gradient tensor to both branches
    (sepnorm(hidden) + residual).backward(upstream)
    torch.testing.assert_close(residual.grad, upstream, rtol=0, atol=0)
    assert sepnorm.weight.grad is None and sepnorm.bias.grad is not None
    assert hidden.grad[:, 0].abs().sum() > 0


def test_hooks_on_the_cls_norm_see_it_called_in_training():
    sepnorm, _, _ = make_pair("batch")
    without_hook = copy.deepcopy(sepnorm)
    seen = []
    sepnorm.cls_norm.register_forward_hook(lambda module, args, output: seen.append(output))
    hidden = torch.randn(4, 5, HIDDEN)
    output = sepnorm(hidden)
    assert len(seen) == 1
    torch.testing.assert_close(output[:, 0], seen[0], rtol=0, atol=0)
    torch.testing.assert_close(output, without_hook(hidden), rtol=0, atol=0)


def test_training_path_compiles_without_graph_breaks():
    sepnorm, _, _ = make_pair("batch")
    reference = copy.deepcopy(sepnorm)
    hidden = torch.randn(4, 5, HIDDEN)
    compiled = torch.compile(sepnorm, fullgraph=True, backend="aot_eager")
    states = hidden.clone().requires_grad_()
    compiled(states).sum().backward()
    reference_states = hidden.clone().requires_grad_()
    row_write_under_autograd(reference, reference_states).sum().backward()
    torch.testing.assert_close(states.grad, reference_states.grad)
    torch.testing.assert_close(sepnorm.weight.grad, reference.weight.grad)
    torch.testing.assert_close(sepnorm.cls_norm.running_mean, reference.cls_norm.running_mean)


def test_cls_row_uses_cls_norm_and_tokens_use_layer_norm():
    sepnorm = SepNormLayerNorm(HIDDEN, build_cls_norm("batch", HIDDEN, 1e-5)).train()
    hidden = torch.randn(8, 5, HIDDEN)
    out = sepnorm(hidden)
    # BatchNorm: each feature of the [CLS] rows has zero mean over the batch; LayerNorm: each token row over features
    torch.testing.assert_close(out[:, 0].mean(dim=0), torch.zeros(HIDDEN), atol=1e-5, rtol=0)
    torch.testing.assert_close(out[:, 1:].mean(dim=-1), torch.zeros(8, 4), atol=1e-5, rtol=0)
    assert out[:, 0].mean(dim=-1).abs().max() > 1e-3


def test_batch_of_one_uses_running_statistics_and_warns_once(monkeypatch):
    monkeypatch.setattr(ClsBatchNorm, "_warned_single_sample", False)
    norm = ClsBatchNorm(HIDDEN)
    with torch.no_grad():
        norm.running_mean.fill_(0.5)
        norm.running_var.fill_(4.0)
    norm.train()
    single = torch.randn(1, HIDDEN)
    with pytest.warns(UserWarning, match="batch of 1 sample"):
        out = norm(single)
    torch.testing.assert_close(out, (single - 0.5) / torch.sqrt(torch.tensor(4.0 + norm.eps)))
    assert norm.num_batches_tracked.item() == 0
    torch.testing.assert_close(norm.running_mean, torch.full((HIDDEN,), 0.5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        norm(single)  # warned once only
    out.sum().backward()
    assert norm.weight.grad is not None


def test_eval_mode_uses_running_statistics():
    norm = ClsBatchNorm(HIDDEN).train()
    for _ in range(20):
        norm(torch.randn(32, HIDDEN) * 2 + 3)
    norm.eval()
    batch = torch.randn(4, HIDDEN)
    expected = (batch - norm.running_mean) / torch.sqrt(norm.running_var + norm.eps) * norm.weight + norm.bias
    torch.testing.assert_close(norm(batch), expected)
    assert norm.num_batches_tracked.item() == 20


def test_batchnorm_stays_fp32_when_cast_and_under_autocast():
    sepnorm = SepNormLayerNorm(HIDDEN, build_cls_norm("batch", HIDDEN, 1e-5)).to(torch.bfloat16)
    assert sepnorm.weight.dtype == torch.bfloat16
    assert {t.dtype for t in sepnorm.cls_norm.parameters()} == {torch.float32}
    assert sepnorm.cls_norm.running_var.dtype == torch.float32
    assert sepnorm.cls_norm.num_batches_tracked.dtype == torch.int64
    out = sepnorm(torch.randn(4, 3, HIDDEN, dtype=torch.bfloat16))
    assert out.dtype == torch.bfloat16
    fp32_norm = SepNormLayerNorm(HIDDEN, build_cls_norm("batch", HIDDEN, 1e-5)).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = fp32_norm(torch.randn(4, 3, HIDDEN))
    assert torch.isfinite(out).all()
    assert fp32_norm.cls_norm.running_mean.dtype == torch.float32


def test_sync_batchnorm_conversion_finds_the_cls_norm():
    sepnorm = SepNormLayerNorm(HIDDEN, build_cls_norm("batch", HIDDEN, 1e-5))
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(sepnorm))
    assert isinstance(converted[0].cls_norm, nn.SyncBatchNorm)
    assert LayerFromModule is SepNormLayerNorm


@pytest.mark.parametrize("config_class", [SepNormBertConfig, SepNormViTMAEConfig])
@pytest.mark.parametrize(
    "field, value, allowed",
    [
        ("cls_norm", "group", "'batch', 'layer', 'rms', 'shared'"),
        ("sepnorm_scope", "first", "'all', 'final'"),
        ("decoder_cls_norm", "instance", "'batch', 'layer', 'rms', 'shared'"),
        ("classifier_pooling", "max", "'cls', 'mean'"),
    ],
)
def test_unknown_config_values_name_the_field_and_the_allowed_ones(config_class, field, value, allowed):
    if field not in {field.name for field in dataclasses.fields(config_class)}:
        pytest.skip(f"{config_class.__name__} has no {field}")
    message = rf"Field '{field}' expected one of \({allowed}\), got {value}"
    with pytest.raises(StrictDataclassFieldValidationError, match=message):
        config_class(**{field: value})
    config = config_class()
    with pytest.raises(StrictDataclassFieldValidationError, match=message):  # set later, too
        setattr(config, field, value)


def test_cls_norm_momentum_outside_0_1_is_named():
    with pytest.raises(StrictDataclassFieldValidationError, match=r"cls_norm_momentum=1.5 must lie in \[0, 1\]"):
        SepNormBertConfig(cls_norm_momentum=1.5)


def test_a_model_built_or_loaded_under_inference_mode_runs_in_eval_and_training(tmp_path, monkeypatch):
    """A model built there has inference tensors for buffers, which have no version counter (the never-updated check
    keys on it)."""
    monkeypatch.setattr(ClsBatchNorm, "_warned_never_updated", False)
    inputs = bert_inputs()
    SepNormBertForSequenceClassification(tiny_bert_config()).save_pretrained(tmp_path)
    with torch.inference_mode():
        built = SepNormBertForSequenceClassification(tiny_bert_config()).eval()
        loaded = SepNormBertForSequenceClassification.from_pretrained(tmp_path).eval()
        with pytest.warns(UserWarning, match="never updated"):  # the statistics are checked all the same
            built(**inputs)
        for model in (built, loaded):
            model.train()(**inputs)  # as a stock BatchNorm, training updates its statistics under inference mode
            assert model.bert.encoder.layer[0].output.LayerNorm.cls_norm.num_batches_tracked.item() == 1
            assert torch.isfinite(model.eval()(**inputs).logits).all()
