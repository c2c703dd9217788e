"""Model cards for SepNorm checkpoints: huggingface_hub's `ModelCard` rendered from the Jinja template
`model_cards/sepnorm.md` (one template; the family's section and names come from `hf_sepnorm.families`), with the
metadata the Hub indexes (pipeline tag, tags, data sets, base model, license, `model-index` evaluation results).

`render_model_card` is the one place that decides what goes into the metadata: every path that writes a card (a push
of a folder, the Trainer's `create_model_card`) passes the run's raw metrics and data set name through it.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.resources
import os
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.errors import HFValidationError
from huggingface_hub.repocard import metadata_load
from huggingface_hub.utils import validate_repo_id
from packaging.requirements import Requirement
from transformers import PreTrainedConfig, PreTrainedModel

from ..families import family_of

# The repository's model_cards/ folder is installed as the package hf_sepnorm.model_cards (package_dir in setup.cfg),
# so the template is found the same way in an editable install and in a wheel.
TEMPLATE = importlib.resources.files("hf_sepnorm.model_cards") / "sepnorm.md"

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

# Trainer metrics that describe the run rather than the model (transformers' own cards leave them out too):
# eval_runtime, eval_samples_per_second, eval_steps_per_second, epoch, eval_samples, ...
RUN_STATISTICS = ("runtime", "samples_per_second", "steps_per_second", "epoch", "step", "samples", "total_flos")
# sizes of what was evaluated (`stsb_dev_pairs`), not measurements of the model
COUNTS = ("samples", "pairs", "examples", "count")
# what the model-index leaves out, beside a task metric, although the card's table shows it: a loss is the training
# objective (transformers' own cards leave it out too); a pretraining run's eval loss, its only measurement, stays
NOT_IN_MODEL_INDEX = ("loss",)
DIGITS = 4  # metrics are rounded to this many decimals
# Trainer prefixes of metrics that are not an evaluation of the model on held-out data, or not this one's
OTHER_SPLITS = ("train_", "test_", "predict_")


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
    language: str | list[str] | None = None,
) -> ModelCard:
    """The model card of a SepNorm checkpoint published as `repo_id`.

    model_or_config: the model, or its config (whose `architectures`, as `save_pretrained` writes it, names the
        head; a config without one is described as the family's backbone).
    eval_results: the evaluation metrics, as the Trainer returns or saves them (`trainer.evaluate()`,
        eval_results.json, all_results.json) or already named without prefix ({"accuracy": 0.91}). Only metrics
        reach the card: the "eval_" prefix is dropped, and so are run statistics (runtime, samples or steps per
        second, epoch, sample counts), train_/test_/predict_ entries and non-numbers.
    dataset_name: the data trained and evaluated on. The metadata (`datasets`, `model-index`) names it only if it is a
        Hub data set id ("nyu-mll/glue", "cifar10"); a description ("image folder"), a local path or a `datasets`
        builder name ("imagefolder", "csv") is shown in the card's text only, and then the `model-index`, which the
        Hub rejects without a data set, is left out (the metrics stay in the card's table).
    task_name: the data set's configuration (e.g. GLUE's "sst2"); in the metadata only along with a Hub data set id.
    base_model: the checkpoint this one was converted or fine-tuned from.
    training_summary: how it was trained (steps, hyper-parameters, ...), shown as a table.
    comparison: rows of a ShareNorm-vs-SepNorm table, e.g. [{"norm": "ShareNorm", "accuracy": 0.89}, ...].
    revision: what the usage snippet pins; pass a commit sha when you know it (a commit cannot name its own sha).
    language: the language(s) of the data, as ISO 639-1 codes ("en"), for the metadata.
    """
    config = model_or_config.config if isinstance(model_or_config, PreTrainedModel) else model_or_config
    family = family_of(config.model_type)
    if isinstance(model_or_config, PreTrainedModel):
        architecture = type(model_or_config).__name__
    else:
        architecture = (config.architectures or [None])[0]
    auto_class = family.auto_class_of(architecture)
    pipeline_tag = family.pipeline_tag_of(auto_class)
    model_name = repo_id.split("/")[-1]
    metrics = evaluation_metrics(eval_results or {})
    dataset_id = hub_dataset_id(dataset_name)
    columns = table_columns(comparison or [])
    card_data = ModelCardData(
        library_name="transformers",
        pipeline_tag=pipeline_tag,
        tags=["sepnorm", "custom_code", *family.stock_model_types],
        datasets=[dataset_id] if dataset_id else None,
        base_model=base_model,
        language=language,
        license=license,
        model_name=model_name if metrics and dataset_id else None,  # only the model-index uses it
        eval_results=model_index_results(metrics, pipeline_tag, dataset_id, task_name),
    )
    return ModelCard.from_template(
        card_data,
        template_path=str(template_path()),
        repo_id=repo_id,
        title=model_name,
        revision=revision,
        family=family,
        auto_class=auto_class,
        architecture=architecture or family.backbone.__name__,
        config=config,
        config_summary={field: getattr(config, field) for field in SUMMARIZED_CONFIG_FIELDS if hasattr(config, field)},
        supported_transformers=supported_transformers(),
        dataset_name=dataset_name,
        task_name=task_name,
        base_model=base_model,
        results=metrics,
        training_summary=training_summary or {},
        comparison_columns=columns,
        comparison_rows=[[row.get(column, "") for column in columns] for row in comparison or []],
    )


def hub_base_model(source: str | os.PathLike | None) -> str | None:
    """The Hub checkpoint a model was trained from, for `base_model`: `source` itself when it is a Hub id, else what
    the SepNorm card of the local folder `source` names as its base (a folder this package converted or trained from
    a Hub checkpoint), so that the lineage survives convert -> train -> push. None when no Hub checkpoint is known
    (another card's `base_model` is its source's parent, not its source)."""
    if not source:
        return None
    folder = Path(source).expanduser()
    if not folder.exists():
        return str(source)
    readme = folder / "README.md"
    metadata = (metadata_load(readme) or {}) if readme.is_file() else {}
    if "sepnorm" not in (metadata.get("tags") or []):
        return None
    base_model = metadata.get("base_model")
    return base_model[0] if isinstance(base_model, list) and base_model else base_model or None


def template_path() -> Path:
    if not TEMPLATE.is_file():
        raise FileNotFoundError(
            f"The SepNorm model card template {TEMPLATE} is missing: reinstall hf_sepnorm (`pip install -e .` from its "
            "source tree, or a wheel, which packages model_cards/ as hf_sepnorm.model_cards)."
        )
    return TEMPLATE


@functools.cache
def supported_transformers() -> str:
    """The transformers versions hf_sepnorm declares (setup.cfg), e.g. ">=5.24,<6": those the code is tested with."""
    for line in importlib.metadata.requires("hf_sepnorm") or ():
        requirement = Requirement(line)
        if requirement.name == "transformers" and requirement.marker is None:
            return ",".join(sorted(map(str, requirement.specifier), key=lambda spec: not spec.startswith(">")))
    raise RuntimeError("hf_sepnorm's metadata declares no transformers requirement: reinstall hf_sepnorm.")


def evaluation_metrics(results: dict) -> dict[str, float]:
    """The metrics among a Trainer's results, named without their "eval_" prefix and rounded: {"eval_accuracy":
    0.91234, "eval_runtime": 1.2, "epoch": 3.0, "train_loss": 0.1, "eval_stsb_dev_pairs": 100} -> {"accuracy":
    0.9123}."""
    metrics = {}
    for key, value in results.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or key.startswith(OTHER_SPLITS):
            continue
        name = key.removeprefix("eval_")
        if name not in RUN_STATISTICS and not name.endswith(tuple(f"_{word}" for word in (*COUNTS, *RUN_STATISTICS))):
            metrics[name] = round(value, DIGITS)
    return metrics


def hub_dataset_id(dataset_name: str | None) -> str | None:
    """`dataset_name` if it can name a data set on the Hub; None for a description, a local path or a builder name."""
    from datasets.packaged_modules import _PACKAGED_DATASETS_MODULES

    if not dataset_name or os.path.exists(dataset_name) or dataset_name in _PACKAGED_DATASETS_MODULES:
        return None
    try:
        validate_repo_id(dataset_name)
    except HFValidationError:
        return None
    return dataset_name


def model_index_results(
    metrics: dict[str, float], pipeline_tag: str, dataset_id: str | None, dataset_config: str | None
) -> list[EvalResult] | None:
    if not metrics or dataset_id is None:
        return None
    task_metrics = {metric: value for metric, value in metrics.items() if not metric.endswith(NOT_IN_MODEL_INDEX)}
    return [
        EvalResult(
            task_type=pipeline_tag,
            dataset_type=dataset_id,
            dataset_name=f"{dataset_id} ({dataset_config})" if dataset_config else dataset_id,
            dataset_config=dataset_config,
            metric_type=metric,
            metric_value=value,
        )
        for metric, value in (task_metrics or metrics).items()
    ]


def table_columns(rows: list[dict]) -> list[str]:
    """Every key of `rows`, in order of first appearance."""
    return list(dict.fromkeys(key for row in rows for key in row))


__all__ = ["evaluation_metrics", "hub_dataset_id", "render_model_card"]
