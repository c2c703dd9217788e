"""Bad model inputs and configs: a clear error or a correct output, never a crash deep inside torch."""

import warnings

import pytest
import torch
from conftest import bert_inputs, tiny_bert_config, tiny_vit_mae_config
from hub_server import TEST_USER, hub_server  # noqa: F401 - `hub_server` is a fixture
from huggingface_hub.errors import StrictDataclassFieldValidationError
from transformers import BertConfig

from hf_sepnorm import (
    ClsBatchNorm,
    SepNormBertConfig,
    SepNormBertForSequenceClassification,
    SepNormBertModel,
    SepNormViTMAEForImageClassification,
    SepNormViTMAEModel,
)
from hf_sepnorm.cls_norms import cls_batchnorms, nonfinite_cls_batches


@pytest.fixture
def classifier():
    return SepNormBertForSequenceClassification(tiny_bert_config()).eval()


def test_only_cls_and_all_padding_rows_give_finite_outputs(classifier):
    ids = torch.randint(5, 99, (3, 6))
    assert torch.isfinite(classifier(input_ids=ids[:, :1]).logits).all()
    mask = torch.tensor([[1] * 6, [0] * 6, [1, 1, 0, 0, 0, 0]])
    assert torch.isfinite(classifier(input_ids=ids, attention_mask=mask).logits).all()


@pytest.mark.parametrize(
    "inputs, message",
    [
        ({"input_ids": torch.ones(3, 0, dtype=torch.long)}, "needs at least the \\[CLS\\] token"),
        ({"input_ids": torch.ones(3, 6, dtype=torch.long), "attention_mask": torch.ones(3, 5, dtype=torch.long)},
         r"attention_mask has shape \(3, 5\) but the input ids have shape \(3, 6\)"),
        ({"input_ids": torch.ones(3, 6, dtype=torch.long), "attention_mask": torch.ones(2, 6, dtype=torch.long)},
         r"attention_mask has shape \(2, 6\)"),
        ({"input_ids": torch.ones(3, 6, dtype=torch.long), "token_type_ids": torch.zeros(3, 7, dtype=torch.long)},
         r"token_type_ids has shape \(3, 7\)"),
        ({"input_ids": torch.ones(2, 80, dtype=torch.long)}, "exceed max_position_embeddings=64: truncate"),
        ({"input_ids": torch.ones(6, dtype=torch.long)}, r"must be \(batch, sequence\); got shape \(6,\)"),
    ],
)  # fmt: skip
def test_bad_text_inputs_are_named(classifier, inputs, message):
    with pytest.raises(ValueError, match=message):
        classifier(**inputs)


@pytest.mark.parametrize(
    "pixel_values, message",
    [
        (torch.randn(2, 3, 28, 28), r"Input image size \(28\*28\) doesn't match model \(32\*32\)"),
        (torch.randn(2, 1, 32, 32), "channel dimension of the pixel values .* Expected 3 but got 1"),
        (torch.randn(3, 32, 32), r"pixel_values must be \(batch, channels, height, width\); got \(3, 32, 32\)"),
    ],
)
def test_bad_pixel_values_are_named(pixel_values, message):
    with pytest.raises(ValueError, match=message):
        SepNormViTMAEForImageClassification(tiny_vit_mae_config(num_labels=2))(pixel_values=pixel_values)


def test_a_nonfinite_batch_does_not_poison_the_running_statistics():
    model = SepNormBertModel(tiny_bert_config()).train()
    model(**bert_inputs(batch_size=8))
    before = {id(norm): (norm.running_mean.clone(), norm.running_var.clone()) for norm in cls_batchnorms(model)}
    poisoned = model.embeddings.word_embeddings.weight.detach().clone()
    with torch.no_grad():
        model.embeddings.word_embeddings.weight[7] = float("nan")
    inputs = bert_inputs(batch_size=8)
    inputs["input_ids"][3, 2] = 7
    model(**inputs)
    assert nonfinite_cls_batches(model) > 0
    for norm in cls_batchnorms(model):
        assert torch.isfinite(norm.running_mean).all() and torch.isfinite(norm.running_var).all()
        if norm.nonfinite_batches.item():
            assert torch.equal(norm.running_mean, before[id(norm)][0])
            assert norm.num_batches_tracked.item() == 1
    with torch.no_grad():
        model.embeddings.word_embeddings.weight.copy_(poisoned)
    model(**bert_inputs(batch_size=8))  # a good batch afterwards updates them again
    assert all(norm.num_batches_tracked.item() == 2 for norm in cls_batchnorms(model))


def test_nonfinite_counter_is_initialized_after_loading(tmp_path):
    SepNormViTMAEModel(tiny_vit_mae_config()).save_pretrained(tmp_path)
    for dtype in (None, torch.bfloat16):
        loaded = SepNormViTMAEModel.from_pretrained(tmp_path, dtype=dtype)
        assert [norm.nonfinite_batches.item() for norm in cls_batchnorms(loaded)] == [0] * 4


def test_stock_config_unknown_value_and_other_family_are_named(tmp_path):
    with pytest.raises(TypeError, match="needs a SepNorm config, got BertConfig"):
        SepNormBertModel(BertConfig(hidden_size=32, num_attention_heads=2))
    with pytest.raises(StrictDataclassFieldValidationError, match=r"Field 'cls_norm' expected one of .*got instance"):
        SepNormBertConfig(cls_norm="instance")
    SepNormViTMAEModel(tiny_vit_mae_config()).save_pretrained(tmp_path / "vit")
    with pytest.raises(ValueError, match="A 'sepnorm_vit_mae' config cannot become a SepNormBertConfig"):
        SepNormBertModel.from_pretrained(tmp_path / "vit")


def test_hidden_size_the_checkpoint_does_not_have_is_named(tmp_path):
    SepNormBertModel(tiny_bert_config()).save_pretrained(tmp_path)
    with pytest.raises(RuntimeError, match=r"do not fit .*: hidden_size=64 \(checkpoint: 32\).*ignore_mismatched"):
        SepNormBertModel.from_pretrained(tmp_path, hidden_size=64, num_attention_heads=2)


def test_the_named_cause_reads_the_checkpoint_at_the_revision_asked_for(hub_server):  # noqa: F811
    repo_id = f"{TEST_USER}/tiny-sepnorm-bert-revisions"
    first = SepNormBertModel(tiny_bert_config()).push_to_hub(repo_id).oid  # hidden_size 32
    SepNormBertModel(tiny_bert_config(hidden_size=48)).push_to_hub(repo_id)  # main moves on
    with pytest.raises(RuntimeError, match=r"do not fit .*: hidden_size=64 \(checkpoint: 32\)"):
        SepNormBertModel.from_pretrained(repo_id, revision=first, hidden_size=64, num_attention_heads=2)


def test_batch_of_one_in_training_warns_instead_of_crashing(monkeypatch):
    monkeypatch.setattr(ClsBatchNorm, "_warned_single_sample", False)
    model = SepNormBertForSequenceClassification(tiny_bert_config()).train()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loss = model(**bert_inputs(batch_size=1), labels=torch.tensor([1])).loss
    loss.backward()
    assert any("batch of 1 sample" in str(w.message) for w in caught)


# ---- config values are checked wherever they enter (issue 32) ----

MOMENTUM_ERROR = r"cls_norm_momentum=-1.0 must lie in \[0, 1\]"


@pytest.fixture
def saved_bert(tmp_path):
    SepNormBertForSequenceClassification(tiny_bert_config()).save_pretrained(tmp_path)
    return tmp_path


def constructor_error() -> str:
    with pytest.raises(StrictDataclassFieldValidationError) as error:
        SepNormBertConfig(cls_norm_momentum=-1.0)
    return str(error.value)


def test_a_keyword_override_of_from_pretrained_is_checked_as_the_constructor_checks(saved_bert):
    from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

    for load in (AutoModel.from_pretrained, AutoModelForSequenceClassification.from_pretrained,
                 AutoConfig.from_pretrained, SepNormBertForSequenceClassification.from_pretrained):  # fmt: skip
        with pytest.raises(StrictDataclassFieldValidationError, match=MOMENTUM_ERROR) as error:
            load(saved_bert, cls_norm_momentum=-1.0)
        assert str(error.value) == constructor_error()


def test_an_assignment_before_training_and_from_config_are_checked(saved_bert):
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(saved_bert)
    with pytest.raises(StrictDataclassFieldValidationError, match=MOMENTUM_ERROR) as error:
        config.cls_norm_momentum = -1.0
    assert str(error.value) == constructor_error()
    with pytest.raises(StrictDataclassFieldValidationError, match=MOMENTUM_ERROR):
        config.update({"cls_norm_momentum": -1.0})
    with pytest.raises(StrictDataclassFieldValidationError, match=MOMENTUM_ERROR):
        SepNormBertConfig.from_dict({**config.to_dict(), "cls_norm_momentum": -1.0})
    model = SepNormBertModel(tiny_bert_config())
    with pytest.raises(StrictDataclassFieldValidationError, match=MOMENTUM_ERROR):
        model.config.cls_norm_momentum = -1.0
    assert config.cls_norm_momentum == 0.1 and AutoModel.from_config(config).config.cls_norm_momentum == 0.1
