"""The family registry: its entries agree with the model code, the Auto classes, peft and the stock models."""

import pytest
import transformers
from family_checkpoints import sepnorm_config
from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from transformers import AutoConfig, AutoModel

from hf_sepnorm import FAMILIES, family_of
from hf_sepnorm.families import STOCK_MODEL_TYPES

FAMILY_IDS = list(FAMILIES)


@pytest.mark.parametrize("model_type", FAMILY_IDS)
def test_every_head_has_a_pipeline_tag_and_is_registered_with_its_auto_class(model_type):
    family = FAMILIES[model_type]
    assert family.heads["AutoModel"] is family.backbone
    assert set(family.pipeline_tags) == set(family.heads)
    config = sepnorm_config(model_type)
    assert type(AutoConfig.for_model(model_type)) is family.config_class
    for auto_class, model_class in family.heads.items():
        assert type(getattr(transformers, auto_class).from_config(config)) is model_class
        assert family.auto_class_of(model_class.__name__) == auto_class


@pytest.mark.parametrize("model_type", FAMILY_IDS)
def test_saved_auto_map_is_the_expected_one(model_type, tmp_path):
    family = FAMILIES[model_type]
    AutoModel.from_config(sepnorm_config(model_type)).save_pretrained(tmp_path)
    assert AutoConfig.from_pretrained(tmp_path).auto_map == family.expected_auto_map()


@pytest.mark.parametrize("model_type", FAMILY_IDS)
def test_stock_model_types_are_transformers_families_whose_configs_load(model_type):
    family = FAMILIES[model_type]
    for stock_type in family.stock_model_types:
        stock_config = AutoConfig.for_model(stock_type)
        family.config_class(**stock_config.to_dict())  # a stock config.json reads into the SepNorm config
        assert family_of(stock_type) is family and STOCK_MODEL_TYPES[stock_type] is family
    assert family_of(model_type) is family


@pytest.mark.parametrize("model_type", FAMILY_IDS)
def test_lora_target_modules_exist_and_agree_with_peft(model_type):
    family = FAMILIES[model_type]
    model = AutoModel.from_config(sepnorm_config(model_type))
    leaf_names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    assert set(family.lora_target_modules) <= leaf_names
    for stock_type in family.stock_model_types:  # peft's own defaults, for the stock families it knows
        peft_default = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING.get(stock_type)
        assert peft_default is None or list(family.lora_target_modules) == peft_default


@pytest.mark.parametrize("model_type", FAMILY_IDS)
def test_preprocessor_matches_the_stock_family(model_type):
    family = FAMILIES[model_type]
    from transformers.models.auto.image_processing_auto import IMAGE_PROCESSOR_MAPPING_NAMES
    from transformers.models.auto.tokenization_auto import TOKENIZER_MAPPING_NAMES

    known = TOKENIZER_MAPPING_NAMES if family.preprocessor.kind == "tokenizer" else IMAGE_PROCESSOR_MAPPING_NAMES
    # `dinov2_with_registers` checkpoints name their processor (DINOv2's) in their files: transformers maps no
    # processor to that type
    assert any(stock_type in known for stock_type in family.stock_model_types)


def test_unknown_model_type_names_the_families():
    with pytest.raises(ValueError, match=r"model_type='gpt2' is not a SepNorm family: SepNorm supports sepnorm_bert"):
        family_of("gpt2")
