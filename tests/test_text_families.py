"""What every SepNorm text family (BERT, RoBERTa, ModernBERT: the `FAMILIES` entries with a tokenizer) must do, parametrized over
the registry: every head through the Auto classes with its parent's forward, exact conversion of a stock checkpoint,
bit-identical save/reload with an `auto_map` of every head, feed-forward chunking, another default dtype. What only
one family has (BERT's attention backends and scopes, RoBERTa's position offset) stays in its own file."""

import inspect

import pytest
import torch
import transformers
from family_checkpoints import TINY_CONFIGS
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForMultipleChoice,
)

import hf_sepnorm
from hf_sepnorm import SepNormLayerNorm
from hf_sepnorm.families import FAMILIES

TEXT_FAMILIES = [family for family in FAMILIES.values() if family.card_section == "text"]
VOCAB_SIZE = 99  # every family's tiny config's
CLS_TOKEN_ID = 2  # what a tiny config's tokenizer would put first: any id but the padding one (1 for RoBERTa)
ids = [family.name for family in TEXT_FAMILIES]


def text_inputs(batch_size: int = 4, seq_length: int = 10) -> dict[str, torch.Tensor]:
    input_ids = torch.randint(5, VOCAB_SIZE, (batch_size, seq_length))
    input_ids[:, 0] = CLS_TOKEN_ID
    attention_mask = torch.ones_like(input_ids)
    attention_mask[0, -3:] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def config_of(family, **overrides):
    return family.config_class(**{**TINY_CONFIGS[family.model_type], **overrides})


def stock_parent(model_class) -> type:
    return next(base for base in model_class.__mro__[1:] if base.__module__.startswith("transformers.models"))


def cls_norms_of(model) -> list:
    return [module.cls_norm for module in model.modules() if isinstance(module, SepNormLayerNorm)]


@pytest.mark.parametrize("family", TEXT_FAMILIES, ids=ids)
def test_auto_classes_build_every_head_with_a_sepnorm_backbone_and_the_stock_forward(family):
    config = AutoConfig.for_model(family.model_type, **TINY_CONFIGS[family.model_type])
    assert type(config) is family.config_class
    for auto_name, model_class in family.heads.items():
        model = getattr(transformers, auto_name).from_config(config)
        assert type(model) is model_class
        # a head keeps transformers' backbone class; only its norms change
        assert type(model.base_model) is (family.backbone if model_class is family.backbone else stock_parent(family.backbone))
        # 2 layers x 2 norms (ModernBERT: layer 0's attention has none, the final norm); the embedding norm, whose
        # [CLS] input is the same for every sample, stays shared
        assert len(cls_norms_of(model.base_model)) == 4
        assert inspect.signature(model_class.forward) == inspect.signature(stock_parent(model_class).forward)
        inputs = text_inputs()
        if auto_name == AutoModelForMultipleChoice.__name__:
            inputs = {key: value.unsqueeze(1).repeat(1, 3, 1) for key, value in inputs.items()}
        assert torch.isfinite(model(**inputs)[0]).all()


@pytest.mark.parametrize("family", TEXT_FAMILIES, ids=ids)
def test_a_stock_checkpoint_converts_exactly_as_shared_and_as_a_layer_norm_started_from_the_token_norms(family, tmp_path):
    stock_config = AutoConfig.for_model(family.stock_model_types[0], **TINY_CONFIGS[family.model_type])
    stock = AutoModelForMaskedLM.from_config(stock_config).eval()
    with torch.no_grad():  # non-trivial affine parameters, so that copying them is what makes outputs equal
        for norm in (module for module in stock.modules() if isinstance(module, torch.nn.LayerNorm)):
            for parameter in norm.parameters():
                parameter.uniform_(0.5, 1.5)
    stock.save_pretrained(tmp_path)
    inputs = text_inputs()
    masked_lm = family.heads[AutoModelForMaskedLM.__name__]
    shared, info = masked_lm.from_pretrained(tmp_path, cls_norm="shared", output_loading_info=True)
    assert info["missing_keys"] == set() and info["unexpected_keys"] == set()
    assert torch.equal(shared.eval()(**inputs).logits, stock(**inputs).logits)
    model, info = masked_lm.from_pretrained(tmp_path, cls_norm="layer", output_loading_info=True)
    assert info["missing_keys"] and all(".cls_norm." in key for key in info["missing_keys"])
    assert not torch.equal(model.eval()(**inputs).logits, stock(**inputs).logits)
    assert hf_sepnorm.init_cls_norms_from_token_norms(model) == 5
    assert torch.equal(model(**inputs).logits, stock(**inputs).logits)
    # a bias-free stock norm (ModernBERT's) gives a bias-free SepNorm and [CLS] LayerNorm
    for sepnorm in (module for module in model.modules() if isinstance(module, SepNormLayerNorm)):
        assert (sepnorm.bias is None) == (sepnorm.cls_norm.bias is None) == (not stock_config.to_dict().get("norm_bias", True))


@pytest.mark.parametrize("family", TEXT_FAMILIES, ids=ids)
def test_save_and_reload_is_bit_identical_and_the_config_lists_every_head(family, tmp_path):
    model = family.heads[AutoModelForMaskedLM.__name__](config_of(family)).train()
    for _ in range(3):  # move the running statistics away from their initial values
        model(**text_inputs(batch_size=8))
    model.eval().save_pretrained(tmp_path)
    saved = {path.name for path in tmp_path.iterdir()}
    assert {"model.safetensors", "config.json", f"modeling_{family.model_type}.py", "sepnorm.py"} <= saved
    assert not list(tmp_path.glob("*.bin"))
    reloaded, info = AutoModelForMaskedLM.from_pretrained(tmp_path, output_loading_info=True)
    assert all(not info[key] for key in ("missing_keys", "unexpected_keys", "mismatched_keys"))
    assert type(reloaded) is type(model)
    assert [norm.num_batches_tracked.item() for norm in cls_norms_of(reloaded)] == [3] * 4
    inputs = text_inputs()
    assert torch.equal(reloaded.eval()(**inputs).logits, model(**inputs).logits)
    # the MLM decoder stays tied to the input embeddings after loading
    assert reloaded.get_output_embeddings().weight is reloaded.get_input_embeddings().weight
    assert AutoConfig.from_pretrained(tmp_path).auto_map == family.expected_auto_map()
    assert set(family.expected_auto_map()) == {"AutoConfig", *family.heads} and len(family.heads) == 6


@pytest.mark.parametrize("family", TEXT_FAMILIES, ids=ids)
@pytest.mark.parametrize("cls_norm", ["batch", "layer"])
@pytest.mark.parametrize("training", [True, False])
def test_feed_forward_chunking_normalizes_only_position_0_as_cls(family, cls_norm, training):
    """`chunk_size_feed_forward` runs the output norm per sequence chunk: row 0 of each chunk is not [CLS]."""
    head = family.heads["AutoModelForSequenceClassification"]
    unchunked = head(config_of(family, cls_norm=cls_norm)).train(training)
    with torch.no_grad():
        for norm in cls_norms_of(unchunked):
            norm.weight.fill_(2.0)  # a [CLS] norm that visibly differs from the token norm
            if cls_norm == "batch":
                norm.running_mean.fill_(0.5)
    for chunk_size in (1, 5):
        chunked = head(config_of(family, cls_norm=cls_norm, chunk_size_feed_forward=chunk_size))
        chunked.load_state_dict(unchunked.state_dict())
        chunked.train(training)
        inputs = text_inputs()
        expected = unchunked.base_model(**inputs).last_hidden_state
        torch.testing.assert_close(chunked.base_model(**inputs).last_hidden_state, expected, rtol=0, atol=1e-6)
        if training:  # and the [CLS] BatchNorm saw the [CLS] rows only: same running statistics
            torch.testing.assert_close(chunked.state_dict(), unchunked.state_dict(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("family", TEXT_FAMILIES, ids=ids)
@pytest.mark.parametrize("reentrant", [False, True])
def test_feed_forward_chunking_under_activation_checkpointing_gives_the_same_gradients(family, reentrant):
    """The backward's recomputation of a checkpointed layer must defer its output norm to the whole output as the
    forward did (transformers 5.25 checkpoints the layer's `forward`, without its hooks; 5.10.1 its `__call__`)."""
    head = family.heads["AutoModelForSequenceClassification"]
    config = config_of(family, cls_norm="batch", sepnorm_scope="all", chunk_size_feed_forward=5)
    plain, checkpointed = head(config).train(), head(config).train()
    checkpointed.load_state_dict(plain.state_dict())
    checkpointed.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": reentrant})
    inputs = {**text_inputs(), "labels": torch.tensor([0, 1, 0, 1])}
    for model in (plain, checkpointed):
        model(**inputs).loss.backward()
    gradients = [{name: p.grad for name, p in model.named_parameters() if p.grad is not None} for model in (plain, checkpointed)]
    assert len(gradients[0]) > 10
    torch.testing.assert_close(gradients[1], gradients[0], rtol=0, atol=1e-6)
    # and the [CLS] BatchNorms' running statistics were updated once, from the [CLS] rows
    torch.testing.assert_close(checkpointed.state_dict(), plain.state_dict(), rtol=0, atol=0)


@pytest.mark.parametrize("family", TEXT_FAMILIES, ids=ids)
def test_a_prepared_4d_attention_mask_works_as_in_the_stock_model(family):
    # 5 tokens: within the tiny ModernBERT's sliding window (4 each side), which a 4D mask replaces too
    inputs = text_inputs(seq_length=5)
    # the additive (batch, 1, 1, keys) mask the 2D one stands for, as transformers' models accept it
    prepared = (1.0 - inputs["attention_mask"][:, None, None, :].float()) * torch.finfo(torch.float32).min
    sepnorm = family.backbone(config_of(family, cls_norm="batch")).train()  # dropout 0: deterministic
    stock = stock_parent(family.backbone)(config_of(family, cls_norm="shared")).train()
    for model in (sepnorm, stock):
        expected = model(**inputs).last_hidden_state
        actual = model(input_ids=inputs["input_ids"], attention_mask=prepared).last_hidden_state
        torch.testing.assert_close(actual, expected)
        assert not torch.equal(actual, model(input_ids=inputs["input_ids"]).last_hidden_state)  # the mask matters


@pytest.mark.parametrize("family", TEXT_FAMILIES, ids=ids)
@pytest.mark.parametrize("cls_norm", ["batch", "layer"])
def test_models_built_in_another_default_dtype_work(family, cls_norm):
    config = config_of(family, cls_norm=cls_norm)
    model = AutoModel.from_config(config, dtype=torch.bfloat16)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        built_under_default = family.heads[AutoModelForMaskedLM.__name__](config)
    finally:
        torch.set_default_dtype(previous)
    expected = torch.float32 if cls_norm == "batch" else torch.bfloat16  # BatchNorm statistics stay in fp32
    for built in (model, built_under_default):
        layer_norm = next(module for module in built.base_model.modules() if isinstance(module, SepNormLayerNorm))
        assert layer_norm.weight.dtype == torch.bfloat16
        assert {t.dtype for t in layer_norm.cls_norm.state_dict().values() if t.is_floating_point()} == {expected}
        for mode in (True, False):
            assert torch.isfinite(built.train(mode)(**text_inputs())[0].float()).all()


@pytest.mark.parametrize("family", TEXT_FAMILIES, ids=ids)
def test_every_head_is_its_parent_with_norms_only(family):
    for model_class in family.heads.values():
        assert model_class.forward is stock_parent(model_class).forward
