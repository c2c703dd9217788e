"""SepNorm BERT beyond what every text family does (tests/test_text_families.py): where each scope puts [CLS]
norms, attention backends, the stock config refused, a bf16 load, `torch.compile`."""

import pytest
import torch
from conftest import TINY_BERT, bert_inputs, tiny_bert_config
from transformers import BertConfig

from hf_sepnorm import (
    SepNormBertForSequenceClassification,
    SepNormBertModel,
    SepNormLayerNorm,
)


def sepnorm_paths(model) -> list[str]:
    return [name for name, module in model.named_modules() if isinstance(module, SepNormLayerNorm)]


@pytest.mark.parametrize(
    "cls_norm, scope, expected",
    [
        ("batch", "all", 4),
        ("layer", "all", 5),
        ("rms", "all", 5),
        ("batch", "final", 1),
        ("layer", "final", 1),
        ("shared", "all", 0),
    ],
)
def test_scope_decides_which_norms_are_separated(cls_norm, scope, expected):
    model = SepNormBertModel(tiny_bert_config(cls_norm=cls_norm, sepnorm_scope=scope))
    paths = sepnorm_paths(model)
    assert len(paths) == expected
    if scope == "final":
        assert paths == ["encoder.layer.1.output.LayerNorm"]


def test_sdpa_and_eager_agree_and_outputs_can_be_recorded():
    config = tiny_bert_config()
    sdpa = SepNormBertModel(config).eval()
    assert sdpa.config._attn_implementation == "sdpa"
    eager = SepNormBertModel(tiny_bert_config(attn_implementation="eager")).eval()
    assert eager.config._attn_implementation == "eager"
    eager.load_state_dict(sdpa.state_dict())
    inputs = bert_inputs()
    out_sdpa = sdpa(**inputs, output_hidden_states=True)
    out_eager = eager(**inputs, output_hidden_states=True, output_attentions=True)
    torch.testing.assert_close(out_sdpa.last_hidden_state, out_eager.last_hidden_state, atol=1e-5, rtol=1e-5)
    assert len(out_sdpa.hidden_states) == len(out_eager.hidden_states) == 3
    assert len(out_eager.attentions) == 2 and out_eager.attentions[0].shape == (4, 2, 10, 10)


def test_stock_config_is_rejected_with_the_fix():
    with pytest.raises(TypeError, match=r"needs a SepNorm config, got BertConfig.*SepNormBertConfig\(\*\*config"):
        SepNormBertModel(BertConfig(**TINY_BERT))


def test_bf16_load_keeps_cls_batchnorm_in_fp32(tmp_path):
    SepNormBertForSequenceClassification(tiny_bert_config()).save_pretrained(tmp_path)
    model = SepNormBertForSequenceClassification.from_pretrained(tmp_path, dtype=torch.bfloat16)
    cls_state = {key: value for key, value in model.state_dict().items() if ".cls_norm." in key}
    assert {v.dtype for k, v in cls_state.items() if not k.endswith("num_batches_tracked")} == {torch.float32}
    assert {v.dtype for k, v in cls_state.items() if k.endswith("num_batches_tracked")} == {torch.int64}
    assert model.bert.encoder.layer[0].output.LayerNorm.weight.dtype == torch.bfloat16
    logits = model.train()(**bert_inputs(), labels=torch.tensor([0, 1, 0, 1])).logits
    assert logits.dtype == torch.bfloat16 and torch.isfinite(logits).all()


@pytest.mark.slow
def test_torch_compile_fullgraph_forward_and_backward():
    model = SepNormBertForSequenceClassification(tiny_bert_config()).train()
    reference = SepNormBertForSequenceClassification(tiny_bert_config()).train()
    reference.load_state_dict(model.state_dict())
    inputs = {**bert_inputs(), "labels": torch.tensor([0, 1, 0, 1])}
    compiled = torch.compile(model, fullgraph=True)
    loss = compiled(**inputs).loss
    loss.backward()
    reference_loss = reference(**inputs).loss
    reference_loss.backward()
    torch.testing.assert_close(loss, reference_loss)
    cls_norm = model.bert.encoder.layer[1].output.LayerNorm.cls_norm
    reference_cls_norm = reference.bert.encoder.layer[1].output.LayerNorm.cls_norm
    torch.testing.assert_close(cls_norm.weight.grad, reference_cls_norm.weight.grad)
    torch.testing.assert_close(cls_norm.running_mean, reference_cls_norm.running_mean)
    assert cls_norm.num_batches_tracked.item() == 1


