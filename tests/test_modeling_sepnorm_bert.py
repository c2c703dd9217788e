"""SepNorm BERT: every head, Auto classes, stock equivalence, save/load, attention backends, compile."""

import pytest
import torch
from conftest import TINY_BERT, bert_inputs, tiny_bert_config
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForMultipleChoice,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
    BertModel,
)

import hf_sepnorm
from hf_sepnorm import (
    SepNormBertConfig,
    SepNormBertForMaskedLM,
    SepNormBertForMultipleChoice,
    SepNormBertForQuestionAnswering,
    SepNormBertForSequenceClassification,
    SepNormBertForTokenClassification,
    SepNormBertModel,
    SepNormLayerNorm,
)

HEADS = {
    AutoModel: SepNormBertModel,
    AutoModelForMaskedLM: SepNormBertForMaskedLM,
    AutoModelForSequenceClassification: SepNormBertForSequenceClassification,
    AutoModelForTokenClassification: SepNormBertForTokenClassification,
    AutoModelForQuestionAnswering: SepNormBertForQuestionAnswering,
    AutoModelForMultipleChoice: SepNormBertForMultipleChoice,
}


def sepnorm_paths(model) -> list[str]:
    return [name for name, module in model.named_modules() if isinstance(module, SepNormLayerNorm)]


@pytest.mark.parametrize("auto_class, model_class", HEADS.items(), ids=lambda c: getattr(c, "__name__", ""))
def test_auto_classes_build_heads_with_a_sepnorm_backbone(auto_class, model_class):
    config = AutoConfig.for_model("sepnorm_bert", **TINY_BERT)
    assert isinstance(config, SepNormBertConfig)
    model = auto_class.from_config(config)
    assert type(model) is model_class
    # a head keeps transformers' backbone class; only its norms change
    assert type(model.base_model) is (SepNormBertModel if model_class is SepNormBertModel else BertModel)
    # 2 layers x 2 norms; the embedding norm, whose [CLS] input is the same for every sample, stays shared
    assert len(sepnorm_paths(model.base_model)) == 4
    inputs = bert_inputs()
    if model_class is SepNormBertForMultipleChoice:
        inputs = {key: value.unsqueeze(1).repeat(1, 3, 1) for key, value in inputs.items()}
    output = model(**inputs)
    assert torch.isfinite(output[0]).all()


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


def test_shared_is_exactly_the_stock_model(tmp_path):
    stock = BertForSequenceClassification(BertConfig(**TINY_BERT)).eval()
    stock.save_pretrained(tmp_path)
    model, info = SepNormBertForSequenceClassification.from_pretrained(
        tmp_path, cls_norm="shared", output_loading_info=True
    )
    assert info["missing_keys"] == set() and info["unexpected_keys"] == set()
    inputs = bert_inputs()
    assert (model.eval()(**inputs).logits - stock(**inputs).logits).abs().max().item() == 0


def test_layer_cls_norm_started_from_token_norm_is_exactly_the_stock_model(tmp_path):
    stock = BertForMaskedLM(BertConfig(**TINY_BERT)).eval()
    with torch.no_grad():  # non-trivial affine parameters, so that copying them is what makes outputs equal
        for name, parameter in stock.named_parameters():
            if "LayerNorm" in name:
                parameter.uniform_(0.5, 1.5)
    stock.save_pretrained(tmp_path)
    model, info = SepNormBertForMaskedLM.from_pretrained(tmp_path, cls_norm="layer", output_loading_info=True)
    assert info["missing_keys"] and all(".cls_norm." in key for key in info["missing_keys"])
    inputs = bert_inputs()
    assert (model.eval()(**inputs).logits - stock(**inputs).logits).abs().max().item() > 0
    assert hf_sepnorm.init_cls_norms_from_token_norms(model) == 5
    assert (model(**inputs).logits - stock(**inputs).logits).abs().max().item() == 0


def test_save_and_reload_is_bit_identical_with_no_missing_keys(tmp_path):
    model = SepNormBertForMaskedLM(tiny_bert_config()).train()
    for _ in range(3):  # move the running statistics away from their initial values
        model(**bert_inputs(batch_size=8))
    model.eval()
    model.save_pretrained(tmp_path)
    assert {"model.safetensors", "config.json", "modeling_sepnorm_bert.py", "sepnorm.py"} <= {
        p.name for p in tmp_path.iterdir()
    }
    assert not list(tmp_path.glob("*.bin"))
    reloaded, info = AutoModelForMaskedLM.from_pretrained(tmp_path, output_loading_info=True)
    assert all(not info[key] for key in ("missing_keys", "unexpected_keys", "mismatched_keys"))
    assert type(reloaded) is SepNormBertForMaskedLM
    cls_norm = reloaded.bert.encoder.layer[0].output.LayerNorm.cls_norm
    assert cls_norm.num_batches_tracked.item() == 3
    inputs = bert_inputs()
    assert torch.equal(reloaded.eval()(**inputs).logits, model(**inputs).logits)
    # the MLM decoder stays tied to the input embeddings after loading
    assert reloaded.cls.predictions.decoder.weight is reloaded.bert.embeddings.word_embeddings.weight


def test_saved_config_lists_every_head_in_auto_map(tmp_path):
    SepNormBertForTokenClassification(tiny_bert_config()).save_pretrained(tmp_path)
    auto_map = AutoConfig.from_pretrained(tmp_path).auto_map
    assert auto_map == {
        "AutoConfig": "configuration_sepnorm_bert.SepNormBertConfig",
        **{auto.__name__: f"modeling_sepnorm_bert.{cls.__name__}" for auto, cls in HEADS.items()},
    }


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


@pytest.mark.parametrize("cls_norm", ["batch", "layer"])
@pytest.mark.parametrize("training", [True, False])
def test_feed_forward_chunking_normalizes_only_position_0_as_cls(cls_norm, training):
    """`chunk_size_feed_forward` runs BERT's output norm per sequence chunk: row 0 of each chunk is not [CLS]."""
    unchunked = SepNormBertForSequenceClassification(tiny_bert_config(cls_norm=cls_norm)).train(training)
    with torch.no_grad():
        for module in unchunked.modules():
            if isinstance(module, SepNormLayerNorm):
                module.cls_norm.weight.fill_(2.0)  # a [CLS] norm that visibly differs from the token norm
                if cls_norm == "batch":
                    module.cls_norm.running_mean.fill_(0.5)
    for chunk_size in (1, 5):
        config = tiny_bert_config(cls_norm=cls_norm, chunk_size_feed_forward=chunk_size)
        chunked = SepNormBertForSequenceClassification(config)
        chunked.load_state_dict(unchunked.state_dict())
        chunked.train(training)
        inputs = bert_inputs()
        expected = unchunked.bert(**inputs).last_hidden_state
        torch.testing.assert_close(chunked.bert(**inputs).last_hidden_state, expected, rtol=0, atol=1e-6)
        if training:  # and the [CLS] BatchNorm saw the [CLS] rows only: same running statistics
            torch.testing.assert_close(chunked.state_dict(), unchunked.state_dict(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("cls_norm", ["batch", "layer"])
def test_models_built_in_another_default_dtype_work(cls_norm):
    config = tiny_bert_config(cls_norm=cls_norm)
    model = AutoModel.from_config(config, dtype=torch.bfloat16)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        built_under_default = SepNormBertForMaskedLM(config)
    finally:
        torch.set_default_dtype(previous)
    for built in (model, built_under_default):
        assert built.base_model.encoder.layer[0].output.LayerNorm.weight.dtype == torch.bfloat16
        cls_norm_module = built.base_model.encoder.layer[0].output.LayerNorm.cls_norm
        expected = torch.float32 if cls_norm == "batch" else torch.bfloat16
        assert {tensor.dtype for tensor in cls_norm_module.state_dict().values() if tensor.is_floating_point()} == {
            expected
        }
        for mode in (True, False):
            output = built.train(mode)(**bert_inputs())
            assert torch.isfinite(output[0].float()).all()


@pytest.mark.parametrize("model_class", [*HEADS.values()], ids=lambda c: c.__name__)
def test_every_class_keeps_its_parents_forward_signature(model_class):
    import inspect

    stock_class = next(base for base in model_class.__mro__[1:] if base.__module__.startswith("transformers.models"))
    assert inspect.signature(model_class.forward) == inspect.signature(stock_class.forward)
    assert model_class.forward is stock_class.forward
