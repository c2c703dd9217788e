"""SepNorm RoBERTa: every head through the Auto classes, stock equivalence, save/load, chunking, signatures."""

import inspect

import pytest
import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForMultipleChoice,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    RobertaConfig,
    RobertaForMaskedLM,
    RobertaModel,
)

import hf_sepnorm
from hf_sepnorm import SepNormLayerNorm
from hf_sepnorm.remote_code.configuration_sepnorm_roberta import SepNormRobertaConfig
from hf_sepnorm.remote_code.modeling_sepnorm_roberta import (
    SepNormRobertaForMaskedLM,
    SepNormRobertaForMultipleChoice,
    SepNormRobertaForQuestionAnswering,
    SepNormRobertaForSequenceClassification,
    SepNormRobertaForTokenClassification,
    SepNormRobertaModel,
)

TINY_ROBERTA = dict(
    vocab_size=99,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=66,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)
HEADS = {
    AutoModel: SepNormRobertaModel,
    AutoModelForMaskedLM: SepNormRobertaForMaskedLM,
    AutoModelForSequenceClassification: SepNormRobertaForSequenceClassification,
    AutoModelForTokenClassification: SepNormRobertaForTokenClassification,
    AutoModelForQuestionAnswering: SepNormRobertaForQuestionAnswering,
    AutoModelForMultipleChoice: SepNormRobertaForMultipleChoice,
}


def roberta_inputs(batch_size: int = 4, seq_length: int = 10) -> dict[str, torch.Tensor]:
    input_ids = torch.randint(3, 99, (batch_size, seq_length))
    input_ids[:, 0] = 0  # <s>, RoBERTa's [CLS]
    input_ids[0, -3:] = 1  # <pad>
    return {"input_ids": input_ids, "attention_mask": (input_ids != 1).long()}


@pytest.mark.parametrize("auto_class, model_class", HEADS.items(), ids=lambda c: getattr(c, "__name__", ""))
def test_auto_classes_build_every_head_with_the_stock_forward(auto_class, model_class):
    config = AutoConfig.for_model("sepnorm_roberta", **TINY_ROBERTA)
    assert isinstance(config, SepNormRobertaConfig)
    model = auto_class.from_config(config)
    assert type(model) is model_class
    assert type(model.base_model) is (SepNormRobertaModel if model_class is SepNormRobertaModel else RobertaModel)
    # BERT's places: 2 layers x 2 norms; the embedding norm ([CLS] input constant over samples) stays shared
    assert sum(isinstance(module, SepNormLayerNorm) for module in model.modules()) == 4
    stock_class = next(base for base in model_class.__mro__[1:] if base.__module__.startswith("transformers.models"))
    assert inspect.signature(model_class.forward) == inspect.signature(stock_class.forward)
    inputs = roberta_inputs()
    if model_class is SepNormRobertaForMultipleChoice:
        inputs = {key: value.unsqueeze(1).repeat(1, 3, 1) for key, value in inputs.items()}
    assert torch.isfinite(model(**inputs)[0]).all()


def test_stock_checkpoint_converts_exactly(tmp_path):
    stock = RobertaForMaskedLM(RobertaConfig(**TINY_ROBERTA)).eval()
    with torch.no_grad():  # non-trivial affine parameters, so that copying them is what makes outputs equal
        for name, parameter in stock.named_parameters():
            if "LayerNorm" in name:
                parameter.uniform_(0.5, 1.5)
    stock.save_pretrained(tmp_path)
    inputs = roberta_inputs()
    shared = SepNormRobertaForMaskedLM.from_pretrained(tmp_path, cls_norm="shared").eval()
    assert torch.equal(shared(**inputs).logits, stock(**inputs).logits)
    model, info = SepNormRobertaForMaskedLM.from_pretrained(tmp_path, cls_norm="layer", output_loading_info=True)
    assert info["missing_keys"] and all(".cls_norm." in key for key in info["missing_keys"])
    assert hf_sepnorm.init_cls_norms_from_token_norms(model) == 5
    assert torch.equal(model.eval()(**inputs).logits, stock(**inputs).logits)


def test_save_and_reload_is_bit_identical_and_lists_every_head(tmp_path):
    model = SepNormRobertaForSequenceClassification(SepNormRobertaConfig(**TINY_ROBERTA)).train()
    for _ in range(2):  # move the running statistics away from their initial values
        model(**roberta_inputs(batch_size=8))
    model.eval().save_pretrained(tmp_path)
    reloaded, info = AutoModelForSequenceClassification.from_pretrained(tmp_path, output_loading_info=True)
    assert all(not info[key] for key in ("missing_keys", "unexpected_keys", "mismatched_keys"))
    inputs = roberta_inputs()
    assert torch.equal(reloaded.eval()(**inputs).logits, model(**inputs).logits)
    assert AutoConfig.from_pretrained(tmp_path).auto_map == {
        "AutoConfig": "configuration_sepnorm_roberta.SepNormRobertaConfig",
        **{auto.__name__: f"modeling_sepnorm_roberta.{cls.__name__}" for auto, cls in HEADS.items()},
    }


def test_feed_forward_chunking_and_too_long_inputs():
    model = SepNormRobertaModel(SepNormRobertaConfig(**TINY_ROBERTA, cls_norm="batch")).train()
    chunked = SepNormRobertaModel(SepNormRobertaConfig(**TINY_ROBERTA, cls_norm="batch", chunk_size_feed_forward=2))
    chunked.load_state_dict(model.state_dict())
    inputs = roberta_inputs()
    torch.testing.assert_close(chunked(**inputs).last_hidden_state, model(**inputs).last_hidden_state, rtol=0, atol=1e-6)
    # positions start after the padding index: 64 of the 66 position embeddings are usable
    with pytest.raises(ValueError, match="65 tokens exceed max_position_embeddings=66 less 2 reserved positions"):
        model(input_ids=torch.full((2, 65), 5))
