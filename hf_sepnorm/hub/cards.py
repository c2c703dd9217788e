"""Model cards for SepNorm checkpoints: huggingface_hub's `ModelCard` rendered from the Jinja templates in
`model_cards/` (one per model family), with the metadata the Hub indexes (pipeline tag, tags, data sets, base model,
license, `model-index` evaluation results)."""

from __future__ import annotations

import dataclasses
import importlib.resources
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from transformers import PreTrainedConfig, PreTrainedModel

from ..remote_code.modeling_sepnorm_bert import SepNormBertModel
from ..remote_code.modeling_sepnorm_vit_mae import SepNormViTMAEModel

# The templates live at the root of the source tree (see the report on packaging them for non-editable installs).
# the repository's model_cards/ folder, installed as the package hf_sepnorm.model_cards (see setup.cfg)
TEMPLATES_FOLDER = importlib.resources.files("hf_sepnorm.model_cards")

SUPPORTED_TRANSFORMERS = ">=5,<6"

# The Hub pipeline tag of each task head; backbones and the MAE pretraining head get their family's feature tag.
PIPELINE_TAG_BY_AUTO_CLASS = {
    "AutoModelForMaskedLM": "fill-mask",
    "AutoModelForSequenceClassification": "text-classification",
    "AutoModelForTokenClassification": "token-classification",
    "AutoModelForQuestionAnswering": "question-answering",
    "AutoModelForMultipleChoice": "multiple-choice",
    "AutoModelForImageClassification": "image-classification",
}

# Fields worth a line in the card's configuration summary, when the config has them.
SUMMARIZED_CONFIG_FIELDS = (
    "cls_norm",
    "sepnorm_scope",
    "cls_norm_momentum",
    "decoder_cls_norm",
    "classifier_pooling",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "vocab_size",
    "max_position_embeddings",
    "image_size",
    "patch_size",
    "mask_ratio",
    "num_labels",
)


@dataclasses.dataclass(frozen=True)
class CardFamily:
    tag: str  # the Hub tag of the stock architecture
    template: str  # file name in TEMPLATES_FOLDER
    backbone: type[PreTrainedModel]  # its `sepnorm_auto_classes` maps every Auto class to the family's head
    feature_pipeline_tag: str

    def auto_class_of(self, architecture: str | None) -> str:
        """The Auto class that loads `architecture` (a class name of this family); the backbone's without one."""
        if architecture is None:
            return "AutoModel"
        for auto_class, model_class in self.backbone.sepnorm_auto_classes.items():
            if model_class.__name__ == architecture:
                return auto_class
        raise ValueError(f"{architecture!r} is not a model class of the {self.tag} SepNorm family.")

    def pipeline_tag_of(self, auto_class: str) -> str:
        return PIPELINE_TAG_BY_AUTO_CLASS.get(auto_class, self.feature_pipeline_tag)


CARD_FAMILIES = {
    "sepnorm_bert": CardFamily("bert", "sepnorm_bert.md", SepNormBertModel, "feature-extraction"),
    "sepnorm_vit_mae": CardFamily("vit_mae", "sepnorm_vit_mae.md", SepNormViTMAEModel, "image-feature-extraction"),
}


def card_family(config: PreTrainedConfig) -> CardFamily:
    try:
        return CARD_FAMILIES[config.model_type]
    except KeyError:
        raise ValueError(
            f"No SepNorm model card for model_type={config.model_type!r}: expected one of {', '.join(CARD_FAMILIES)}."
        ) from None


def render_model_card(
    model_or_config: PreTrainedModel | PreTrainedConfig,
    *,
    repo_id: str,
    eval_results: dict[str, float] | None = None,
    dataset_name: str | None = None,
    task_name: str | None = None,
    base_model: str | None = None,
    training_summary: dict | None = None,
    comparison: list[dict] | None = None,
    license: str = "apache-2.0",
    revision: str = "main",
) -> ModelCard:
    """The model card of a SepNorm checkpoint published as `repo_id`.

    model_or_config: the model, or its config (whose `architectures`, as `save_pretrained` writes it, names the
        head; a config without one is described as the family's backbone).
    eval_results: metric name -> value, e.g. {"accuracy": 0.91}, put in the `model-index` and the results table.
    dataset_name: the Hub id of the data set trained and evaluated on (e.g. "nyu-mll/glue"); `task_name` its
        configuration or sub-task (e.g. "sst2"). The `model-index` names the data set "unspecified" without one.
    base_model: the checkpoint this one was converted or fine-tuned from.
    training_summary: how it was trained (steps, hyper-parameters, ...), shown as a table.
    comparison: rows of a ShareNorm-vs-SepNorm table, e.g. [{"norm": "ShareNorm", "accuracy": 0.89}, ...].
    revision: what the usage snippet pins; pass a commit sha when you know it (a commit cannot name its own sha).
    """
    config = model_or_config.config if isinstance(model_or_config, PreTrainedModel) else model_or_config
    family = card_family(config)
    if isinstance(model_or_config, PreTrainedModel):
        architecture = type(model_or_config).__name__
    else:
        architecture = (config.architectures or [None])[0]
    auto_class = family.auto_class_of(architecture)
    pipeline_tag = family.pipeline_tag_of(auto_class)
    model_name = repo_id.split("/")[-1]
    columns = table_columns(comparison or [])
    card_data = ModelCardData(
        library_name="transformers",
        pipeline_tag=pipeline_tag,
        tags=["sepnorm", "custom_code", family.tag],
        datasets=[dataset_name] if dataset_name else None,
        base_model=base_model,
        license=license,
        model_name=model_name if eval_results else None,  # only the model-index uses it
        eval_results=model_index_results(eval_results, pipeline_tag, dataset_name, task_name),
    )
    return ModelCard.from_template(
        card_data,
        template_path=str(template_path(family)),
        repo_id=repo_id,
        title=model_name,
        revision=revision,
        auto_class=auto_class,
        architecture=architecture or family.backbone.__name__,
        config=config,
        config_summary={field: getattr(config, field) for field in SUMMARIZED_CONFIG_FIELDS if hasattr(config, field)},
        supported_transformers=SUPPORTED_TRANSFORMERS,
        dataset_name=dataset_name,
        task_name=task_name,
        base_model=base_model,
        results=eval_results or {},
        training_summary=training_summary or {},
        comparison_columns=columns,
        comparison_rows=[[row.get(column, "") for column in columns] for row in comparison or []],
    )


def template_path(family: CardFamily) -> Path:
    path = TEMPLATES_FOLDER / family.template
    if not path.is_file():
        raise FileNotFoundError(
            f"The SepNorm model card template {path} is missing: hf_sepnorm must be installed from its source tree "
            "(`pip install -e .`) or with the templates packaged."
        )
    return path


def model_index_results(
    eval_results: dict[str, float] | None, pipeline_tag: str, dataset_name: str | None, task_name: str | None
) -> list[EvalResult] | None:
    if not eval_results:
        return None
    dataset_type = dataset_name or "unspecified"
    return [
        EvalResult(
            task_type=pipeline_tag,
            dataset_type=dataset_type,
            dataset_name=f"{dataset_type} ({task_name})" if task_name else dataset_type,
            dataset_config=task_name,
            metric_type=metric,
            metric_value=value,
        )
        for metric, value in eval_results.items()
    ]


def table_columns(rows: list[dict]) -> list[str]:
    """Every key of `rows`, in order of first appearance."""
    return list(dict.fromkeys(key for row in rows for key in row))
