"""The model a run starts from: a checkpoint's config stands against the scripts' defaults for new models."""

import pytest
from conftest import tiny_bert_config

from hf_sepnorm import SepNormBertForMaskedLM, SepNormBertForSequenceClassification
from hf_sepnorm.training import SepNormModelArguments, load_or_build_model


@pytest.fixture
def checkpoint(tmp_path):
    SepNormBertForMaskedLM(tiny_bert_config(cls_norm="layer")).save_pretrained(tmp_path / "mlm")
    return str(tmp_path / "mlm")


def test_new_model_defaults_apply_to_new_models_only(checkpoint):
    defaults = {"max_position_embeddings": 512, "vocab_size": 120}
    new = load_or_build_model(SepNormBertForMaskedLM, SepNormModelArguments(), new_model_fields=defaults)
    assert (new.config.max_position_embeddings, new.config.vocab_size, new.config.cls_norm) == (512, 120, "batch")

    arguments = SepNormModelArguments(model_name_or_path=checkpoint)
    loaded = load_or_build_model(
        SepNormBertForSequenceClassification, arguments, new_model_fields=defaults, num_labels=3
    )
    config = loaded.config
    assert (config.max_position_embeddings, config.vocab_size, config.cls_norm) == (64, 99, "layer")
    assert loaded.config.num_labels == 3  # task fields apply to every model

    arguments = SepNormModelArguments(model_name_or_path=checkpoint, cls_norm="rms")
    changed = load_or_build_model(SepNormBertForMaskedLM, arguments)
    assert changed.config.cls_norm == "rms"  # a flag given explicitly


def test_config_overrides_with_a_checkpoint_is_an_error_not_ignored(checkpoint):
    arguments = SepNormModelArguments(model_name_or_path=checkpoint, config_overrides="hidden_size=16")
    with pytest.raises(ValueError, match="--config_overrides applies to a model built from scratch"):
        load_or_build_model(SepNormBertForMaskedLM, arguments)


@pytest.mark.parametrize("stock_type", ["bert", "roberta", "modernbert"])
def test_a_script_trains_the_head_of_the_checkpoints_own_family(stock_type, tmp_path):
    """The GLUE script names BERT's sequence classifier; a RoBERTa or ModernBERT checkpoint, stock or converted, gets
    its own family's, and a new model BERT's."""
    from family_checkpoints import save_stock_checkpoint

    from hf_sepnorm import FAMILIES, SepNormBertForSequenceClassification
    from hf_sepnorm.training import SepNormModelArguments, model_class_for_checkpoint

    folder = save_stock_checkpoint(stock_type, tmp_path / "stock")
    expected = FAMILIES[f"sepnorm_{stock_type}"].heads["AutoModelForSequenceClassification"]
    default = SepNormBertForSequenceClassification
    assert model_class_for_checkpoint(default, SepNormModelArguments(model_name_or_path=str(folder))) is expected
    assert model_class_for_checkpoint(default, SepNormModelArguments()) is default
