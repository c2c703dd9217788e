"""The SepNorm model families: one declarative table of what the package knows about each family.

Everything that differs between families outside their model code is read from `FAMILIES`: the Auto class
registration (`hf_sepnorm/__init__.py`), converting stock checkpoints (`conversion.py`), model cards and Hub pushes
(`hub/`), the example scripts' model factory (`training/models.py`) and the LoRA defaults (`adapters/`). Adding a
family is one config file, one modeling file (in `remote_code/`) and one entry here.

The heads of a family (Auto class -> model class) are declared once, in its modeling file's `register_family` call:
that file travels with the weights and writes the checkpoint's `auto_map` where this package is not installed.
`SepNormFamily.heads` reads them from there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import transformers
from transformers import AutoConfig, AutoImageProcessor, AutoTokenizer, PreTrainedConfig, PreTrainedModel

from .remote_code.configuration_sepnorm_bert import SepNormBertConfig
from .remote_code.configuration_sepnorm_dinov2 import SepNormDinov2Config
from .remote_code.configuration_sepnorm_modernbert import SepNormModernBertConfig
from .remote_code.configuration_sepnorm_roberta import SepNormRobertaConfig
from .remote_code.configuration_sepnorm_vit_mae import SepNormViTMAEConfig
from .remote_code.modeling_sepnorm_bert import SepNormBertModel
from .remote_code.modeling_sepnorm_dinov2 import SepNormDinov2Model
from .remote_code.modeling_sepnorm_modernbert import SepNormModernBertModel
from .remote_code.modeling_sepnorm_roberta import SepNormRobertaModel
from .remote_code.modeling_sepnorm_vit_mae import SepNormViTMAEModel


@dataclasses.dataclass(frozen=True)
class Preprocessor:
    """How a family's inputs are prepared: the Auto class that loads it and the file that marks it in a folder."""

    kind: str  # "tokenizer" or "image_processor": also the variable name in the card's usage snippet
    auto_class: type
    config_file: str


TOKENIZER = Preprocessor("tokenizer", AutoTokenizer, "tokenizer_config.json")
IMAGE_PROCESSOR = Preprocessor("image_processor", AutoImageProcessor, "preprocessor_config.json")

# The Hub pipeline tag of each head, by the Auto class that loads it.
TEXT_PIPELINE_TAGS = {
    "AutoModel": "feature-extraction",
    "AutoModelForMaskedLM": "fill-mask",
    "AutoModelForSequenceClassification": "text-classification",
    "AutoModelForTokenClassification": "token-classification",
    "AutoModelForQuestionAnswering": "question-answering",
    "AutoModelForMultipleChoice": "multiple-choice",
}
IMAGE_PIPELINE_TAGS = {
    "AutoModel": "image-feature-extraction",
    "AutoModelForPreTraining": "image-feature-extraction",  # MAE reconstruction has no pipeline; its use is features
    "AutoModelForImageClassification": "image-classification",
}
DINOV2_PIPELINE_TAGS = {
    "AutoModel": "image-feature-extraction",
    "AutoModelForImageClassification": "image-classification",
    "AutoBackbone": "image-feature-extraction",  # feature maps for dense tasks: no pipeline of their own
}


@dataclasses.dataclass(frozen=True)
class SepNormFamily:
    name: str  # as users write it: "BERT"
    config_class: type[PreTrainedConfig]
    backbone: type[PreTrainedModel]
    stock_model_types: tuple[str, ...]  # the transformers `model_type`s whose checkpoints convert into this family
    preprocessor: Preprocessor
    pipeline_tags: Mapping[str, str]  # Auto class -> Hub pipeline tag, for every head
    card_section: str  # the family-specific section of model_cards/sepnorm.md: "text" or "image"
    lora_target_modules: tuple[str, ...]  # the attention projections LoRA adapts by default (peft's choice for BERT)

    @property
    def model_type(self) -> str:
        return self.config_class.model_type

    @property
    def heads(self) -> dict[str, type[PreTrainedModel]]:
        """Auto class name -> SepNorm model class, as the modeling file registered them (backbone included)."""
        return dict(self.backbone.sepnorm_auto_classes)

    def auto_class_of(self, architecture: str | None) -> str:
        """The Auto class that loads `architecture` (a class name of this family); the backbone's without one."""
        if architecture is None:
            return "AutoModel"
        for auto_class, model_class in self.heads.items():
            if model_class.__name__ == architecture:
                return auto_class
        raise ValueError(
            f"{architecture!r} is not a SepNorm {self.name} class: expected one of "
            f"{', '.join(model_class.__name__ for model_class in self.heads.values())}."
        )

    def pipeline_tag_of(self, auto_class: str) -> str:
        return self.pipeline_tags[auto_class]

    def class_for_stock_architectures(self, architectures: list[str] | None) -> type[PreTrainedModel]:
        """The SepNorm head of a stock architecture (`BertForMaskedLM` -> `SepNormBertForMaskedLM`); the backbone
        when the checkpoint names none this family has."""
        by_name = {model_class.__name__: model_class for model_class in self.heads.values()}
        for architecture in architectures or ():
            if f"SepNorm{architecture}" in by_name:
                return by_name[f"SepNorm{architecture}"]
            # a stock type whose class names are not ours with a prefix (`Dinov2WithRegistersForImageClassification`
            # -> `SepNormDinov2ForImageClassification`): the head of the Auto class that loads the stock one
            for auto_class, model_class in self.heads.items():
                stock_names = getattr(transformers, auto_class)._model_mapping._model_mapping.values()
                if any(architecture == names or architecture in names for names in stock_names if names):
                    return model_class
        return self.backbone

    def expected_auto_map(self) -> dict[str, str]:
        """The `auto_map` entries `save_pretrained` writes for the family, as "module.Class"."""
        classes = {"AutoConfig": self.config_class, **self.heads}
        return {auto: f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}" for auto, cls in classes.items()}


FAMILIES: dict[str, SepNormFamily] = {
    family.model_type: family
    for family in (
        SepNormFamily(
            name="BERT",
            config_class=SepNormBertConfig,
            backbone=SepNormBertModel,
            stock_model_types=("bert",),
            preprocessor=TOKENIZER,
            pipeline_tags=TEXT_PIPELINE_TAGS,
            card_section="text",
            lora_target_modules=("query", "value"),
        ),
        SepNormFamily(
            name="RoBERTa",
            config_class=SepNormRobertaConfig,
            backbone=SepNormRobertaModel,
            stock_model_types=("roberta",),
            preprocessor=TOKENIZER,
            pipeline_tags=TEXT_PIPELINE_TAGS,
            card_section="text",
            lora_target_modules=("query", "value"),
        ),
        SepNormFamily(
            name="ViT-MAE",
            config_class=SepNormViTMAEConfig,
            backbone=SepNormViTMAEModel,
            stock_model_types=("vit_mae",),
            preprocessor=IMAGE_PROCESSOR,
            pipeline_tags=IMAGE_PIPELINE_TAGS,
            card_section="image",
            lora_target_modules=("q_proj", "v_proj"),  # transformers 5's ViT-MAE attention, decoder's included
        ),
        SepNormFamily(
            name="ModernBERT",
            config_class=SepNormModernBertConfig,
            backbone=SepNormModernBertModel,
            stock_model_types=("modernbert",),
            preprocessor=TOKENIZER,
            pipeline_tags=TEXT_PIPELINE_TAGS,
            card_section="text",
            lora_target_modules=("Wqkv",),  # one fused query/key/value projection per layer
        ),
        SepNormFamily(
            name="DINOv2",
            config_class=SepNormDinov2Config,
            backbone=SepNormDinov2Model,
            stock_model_types=("dinov2", "dinov2_with_registers"),
            preprocessor=IMAGE_PROCESSOR,
            pipeline_tags=DINOV2_PIPELINE_TAGS,
            card_section="image",
            lora_target_modules=("q_proj", "v_proj"),  # transformers 5's DINOv2 attention
        ),
    )
}

STOCK_MODEL_TYPES: dict[str, SepNormFamily] = {
    stock_type: family for family in FAMILIES.values() for stock_type in family.stock_model_types
}


def family_of(model_type: str) -> SepNormFamily:
    """The family of a SepNorm `model_type` ("sepnorm_bert") or of the stock one it converts from ("bert")."""
    family = FAMILIES.get(model_type) or STOCK_MODEL_TYPES.get(model_type)
    if family is None:
        raise ValueError(
            f"model_type={model_type!r} is not a SepNorm family: SepNorm supports {', '.join(FAMILIES)} (converted "
            f"from the stock {', '.join(STOCK_MODEL_TYPES)})."
        )
    return family


def register_auto_classes() -> None:
    """Register every family's config and heads with transformers' Auto classes (importing hf_sepnorm does it)."""
    for family in FAMILIES.values():
        AutoConfig.register(family.model_type, family.config_class, exist_ok=True)
        for auto_class, model_class in family.heads.items():
            getattr(transformers, auto_class).register(family.config_class, model_class, exist_ok=True)
