"""Model cards for SepNorm checkpoints: huggingface_hub's `ModelCard` rendered from the Jinja templates of
`model_cards/` (`sepnorm.md` for every family's models, whose section and names come from `hf_sepnorm.families`;
`sepnorm_adapter.md` for their LoRA adapters), with the metadata the Hub indexes (pipeline tag, tags, data sets, base
model and its relation, license, `model-index` evaluation results naming their split).

`render_model_card` is the one place that decides what goes into a model's metadata: every path that writes a card
(`convert`, the Trainer's `create_model_card`, a push of a folder without a SepNorm card) passes the run's raw
metrics and data set name through it. A folder's own SepNorm card is pushed as it is (`retarget_card` only points
its snippets at the repo), and its metrics must describe the folder's weights (`measured_weights`).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.resources
import json
import logging
import os
import re
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData, constants
from huggingface_hub.errors import HFValidationError
from huggingface_hub.repocard import metadata_load
from huggingface_hub.utils import validate_repo_id
from packaging.requirements import Requirement
from transformers import PreTrainedConfig, PreTrainedModel

from ..families import family_of
from .checks import code_summary, package_code_files, package_version

logger = logging.getLogger(__name__)

# The repository's model_cards/ folder is installed as the package hf_sepnorm.model_cards (package_dir in setup.cfg),
# so the template is found the same way in an editable install and in a wheel.
TEMPLATE = importlib.resources.files("hf_sepnorm.model_cards") / "sepnorm.md"
ADAPTER_TEMPLATE = importlib.resources.files("hf_sepnorm.model_cards") / "sepnorm_adapter.md"

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
# how the card names the weights its metrics were measured on (the template writes it, `push` reads it back)
MEASURED_WEIGHTS = re.compile(r"`(?P<file>[^`]+\.safetensors)` \(sha256 `(?P<sha256>[0-9a-f]{64})`\)")
# sentence-transformers' pooling flags of its configs before version 6, by the mode each one names
LEGACY_POOLING_FLAGS = {"pooling_mode_cls_token": "cls", "pooling_mode_mean_tokens": "mean",
                        "pooling_mode_max_tokens": "max", "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
                        "pooling_mode_weightedmean_tokens": "weightedmean", "pooling_mode_lasttoken": "lasttoken"}  # fmt: skip
# the usage snippets' variables, which `retarget_card` points at the repo a folder is pushed to
SNIPPET_REPO_ID = re.compile(r'^repo_id = "(?P<repo_id>[^"]*)"', flags=re.MULTILINE)
SNIPPET_REVISION = re.compile(r'^revision = "[^"]*"', flags=re.MULTILINE)


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
    eval_split: str | None = None,
    weights: dict[str, str] | None = None,
    base_model_relation: str | None = None,
    sentence_pooling: str | None = None,
    code: dict[str, dict] | None = None,
    code_modified: list[str] | None = None,
    data_files: dict[str, str] | None = None,
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
    eval_split: the split the metrics were measured on ("validation"), named in the card and the model-index.
    weights: the sha256 of each weights file the metrics were measured on (`weights_sha256(folder)`): the card says
        which weights its numbers describe, and `hf-sepnorm push` refuses a card whose weights were since replaced.
    base_model_relation: how the model derives from `base_model`, as the Hub defines it ("finetune", "adapter",
        "merge", "quantized"); left out, the Hub infers it.
    data_files: the user's own data, by split ("train", "validation", "test" -> "`train.csv` (440 rows)"), when it
        is no Hub data set: the card's text names it, the metadata names no data set (so no `model-index`).
    sentence_pooling: the pooling of a folder that is also a sentence-transformers model (`sentence_pooling(folder)`:
        "cls", "mean", ...): the card is then a sentence-transformers card, with its snippet.
    code: the modeling code files the card describes (`checks.code_summary`), default: the installed package's;
    code_modified: those of them the uploader changed (the card says so).
    """
    config = model_or_config.config if isinstance(model_or_config, PreTrainedModel) else model_or_config
    family = family_of(config.model_type)
    if isinstance(model_or_config, PreTrainedModel):
        architecture = type(model_or_config).__name__
    else:
        architecture = (config.architectures or [None])[0]
    auto_class = family.auto_class_of(architecture)
    pipeline_tag = family.pipeline_tag_of(auto_class)
    tags = ["sepnorm", "custom_code", *family.stock_model_types]
    if sentence_pooling:
        pipeline_tag = "sentence-similarity"
        tags += ["sentence-transformers", "sentence-similarity"]
    model_name = repo_id.split("/")[-1]
    metrics = evaluation_metrics(eval_results or {})
    dataset_id = None if data_files else hub_dataset_id(dataset_name)
    columns = table_columns(comparison or [])
    card_data = ModelCardData(
        library_name="sentence-transformers" if sentence_pooling else "transformers",
        pipeline_tag=pipeline_tag,
        tags=tags,
        datasets=[dataset_id] if dataset_id else None,
        base_model=base_model,
        **({"base_model_relation": base_model_relation} if base_model and base_model_relation else {}),
        language=language,
        license=license,
        model_name=model_name if metrics and dataset_id else None,  # only the model-index uses it
        eval_results=model_index_results(metrics, pipeline_tag, dataset_id, task_name, eval_split),
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
        code_section=code_section(code or code_summary(package_code_files(family)), code_modified),
        dataset_name=dataset_name,
        task_name=task_name,
        base_model=base_model,
        results=metrics,
        eval_split=eval_split,
        data_files=data_files or {},
        weights=weights or {},
        sentence_pooling=sentence_pooling,
        training_summary=training_summary or {},
        comparison_columns=columns,
        comparison_rows=[[row.get(column, "") for column in columns] for row in comparison or []],
    )


def first_value(value: str | list[str] | None) -> str | None:
    """The first entry of a card field that holds one value or a list of them."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


# the card's code section, between these markers: `hf-sepnorm push` replaces it by the files it pushes
CODE_SECTION_START = "<!-- hf_sepnorm code files: the files pushed, as `hf-sepnorm push` lists them -->"
CODE_SECTION_END = "<!-- /hf_sepnorm code files -->"
CODE_SECTION = re.compile(re.escape(CODE_SECTION_START) + ".*?" + re.escape(CODE_SECTION_END), flags=re.DOTALL)
# the code sentence of cards written before the section had markers
LEGACY_CODE_SENTENCE = re.compile(r" It is\s+\d+ files, \d+ lines; read `sepnorm\.py` first:\s+(`[^`]+` \(\d+\)(, |\.))+")
CODE_ROW = re.compile(r"^\| `(?P<file>[^`]+\.py)` \| \d+ \| `(?P<sha256>[0-9a-f]{64})` \|$", flags=re.MULTILINE)


def code_section(code: dict[str, dict], modified: list[str] | None = None) -> str:
    """The card's section on the modeling code: each file (`checks.code_summary`) with its length and sha256, so
    that a reviewer can check that the revision they pin holds the code they read, and which files, if any, the
    uploader changed from hf_sepnorm's."""
    lines = [
        CODE_SECTION_START,
        f"It is {len(code)} files, {sum(file['lines'] for file in code.values())} lines; read `sepnorm.py` first. "
        "The sha256 of each file lets you check that the revision you pin holds the code you read:",
        "",
        "| file | lines | sha256 |",
        "|---|---|---|",
        *(f"| `{name}` | {file['lines']} | `{file['sha256']}` |" for name, file in code.items()),
    ]
    if modified:
        lines += ["", f"**Modified code**: {', '.join(f'`{name}`' for name in modified)} differ from the code of "
                      f"hf_sepnorm {package_version()}: the uploader changed them. Review them before loading."]
    return "\n".join([*lines, CODE_SECTION_END])


def with_code_section(card: ModelCard, section: str) -> ModelCard:
    """`card` with its code section replaced by `section` (cards of older releases: their code sentence)."""
    text = str(card)
    if CODE_SECTION.search(text):
        return ModelCard(CODE_SECTION.sub(lambda _: section, text, count=1))
    if LEGACY_CODE_SENTENCE.search(text):
        return ModelCard(LEGACY_CODE_SENTENCE.sub(lambda _: f"\n\n{section}\n", text, count=1))
    return ModelCard(text.replace("\n## Usage\n", f"\n## Usage\n\n{section}\n", 1))


def card_code_sha256(card: ModelCard) -> dict[str, str]:
    """The sha256 of each code file a SepNorm card's code section lists."""
    match = CODE_SECTION.search(card.text)
    return {row["file"]: row["sha256"] for row in CODE_ROW.finditer(match.group())} if match else {}


def hub_base_model(source: str | os.PathLike | None) -> str | None:
    """The Hub checkpoint a model was trained or converted from, for `base_model`: `source` itself when it is a Hub
    id; for a local folder, the repo it is a download of (a snapshot of the Hub cache, `models--org--name`), else
    what the folder's own SepNorm card names as its base (a folder this package converted or trained from a Hub
    checkpoint), so that the lineage survives convert -> train -> push. None when no Hub checkpoint is known, and
    then a warning says that the card leaves `base_model` out (another card's `base_model` is its source's parent, not
    its source; a local path means nothing on the Hub)."""
    if not source:
        return None
    folder = Path(source).expanduser()
    if not folder.exists():
        return hub_repo_id(source)
    cached = hub_cache_repo(folder)
    if cached:
        return cached[0]
    readme = folder / "README.md"
    metadata = (metadata_load(readme) or {}) if readme.is_file() else {}
    if "sepnorm" in (metadata.get("tags") or []) and first_value(metadata.get("base_model")):
        return first_value(metadata.get("base_model"))
    logger.warning(
        "The model card leaves base_model out: nothing in %s names the Hub checkpoint it came from. If it came from "
        "the Hub, add `base_model: <repo id>` to the card's metadata before pushing.",
        source_name(source),
    )
    return None


# the Hub cache's folder of a model repo: models--{namespace}--{name}/snapshots/{commit}
HUB_CACHE_SNAPSHOT = re.compile(r"models--(?P<repo>[^/]+)/snapshots/(?P<commit>[0-9a-f]{40})(/|$)")


def hub_cache_repo(folder: str | os.PathLike) -> tuple[str, str] | None:
    """(repo id, commit) when `folder` is a snapshot of the Hub cache (what `snapshot_download` returns)."""
    match = HUB_CACHE_SNAPSHOT.search(Path(folder).resolve().as_posix())
    return (match["repo"].replace("--", "/"), match["commit"]) if match else None


def source_name(source: str | os.PathLike) -> str:
    """How a card names where a model came from: a Hub id as it is, a local folder by its name only (an absolute
    path of the machine that wrote the card means nothing to its readers and shows that machine's layout)."""
    folder = Path(source).expanduser()
    if not folder.exists():
        return str(source)
    cached = hub_cache_repo(folder)
    return cached[0] if cached else f"the local folder `{folder.resolve().name}`"


def template_path(template=TEMPLATE) -> Path:
    if not template.is_file():
        raise FileNotFoundError(
            f"The SepNorm model card template {template} is missing: reinstall hf_sepnorm (`pip install -e .` from its "
            "source tree, or a wheel, which packages model_cards/ as hf_sepnorm.model_cards)."
        )
    return template


def render_adapter_card(
    model,
    *,
    repo_id: str,
    base_model: str | None = None,
    revision: str = "main",
    eval_results: dict[str, float] | None = None,
    card: ModelCard | None = None,
    dataset_name: str | None = None,
    task_name: str | None = None,
    eval_split: str | None = None,
) -> ModelCard:
    """The card of `model`'s LoRA adapter (a `peft.PeftModel` of a SepNorm model) published as `repo_id`: what it
    carries (the LoRA matrices, and the [CLS] norms with their statistics and any new head, saved whole) and how to
    load it on its base (`trust_remote_code=True`). `base_model` is the base's repo id or folder (default: the one the
    adapter names); the metadata starts from `card` (peft's, as `save_pretrained` writes it) and links the base as
    `base_model` with `base_model_relation: adapter` when it is a Hub id; a local base is named by its folder's name
    only (the snippet then shows a placeholder). The evaluation metrics (`eval_results`, measured on `dataset_name`,
    `task_name`, `eval_split` as in `render_model_card`) go into the card and its `model-index`."""
    lora = model.peft_config[model.active_adapter]
    base = model.get_base_model()
    family = family_of(base.config.model_type)
    base_model = base_model or lora.base_model_name_or_path
    hub_base = hub_repo_id(base_model)
    data = card.data if card is not None else ModelCardData(library_name="peft")
    # the Trainer's and peft's metadata name the base as it was loaded, a local path included
    data.tags = [tag for tag in dict.fromkeys([*(data.tags or []), "sepnorm", "lora"]) if not tag.startswith("base_model:")]
    data.base_model, data.base_model_relation = (hub_base, "adapter") if hub_base else (None, None)
    metrics = evaluation_metrics(eval_results or {})
    auto_class = family.auto_class_of(type(base).__name__)
    dataset_id = hub_dataset_id(dataset_name)
    data.eval_results = model_index_results(metrics, family.pipeline_tag_of(auto_class), dataset_id, task_name,
                                            eval_split)  # fmt: skip
    data.model_name = repo_id.split("/")[-1] if data.eval_results else None
    return ModelCard.from_template(
        data,
        template_path=str(template_path(ADAPTER_TEMPLATE)),
        title=repo_id.split("/")[-1],
        repo_id=repo_id,
        revision=revision,
        base_model=hub_base or "<your-namespace>/<base-repo>",
        base_folder=None if hub_base else source_name(base_model) if base_model else "unknown",
        base_revision=lora.revision,
        base_class=type(base).__name__,
        auto_class=auto_class,
        family=family,
        config=base.config,
        lora=lora,
        results=metrics,
        dataset_name=dataset_name,
        eval_split=eval_split,
    )


@functools.cache
def supported_transformers() -> str:
    """The transformers versions hf_sepnorm declares (setup.cfg), e.g. ">=5.10.1,<6": those the code is tested with."""
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

    return None if dataset_name in _PACKAGED_DATASETS_MODULES else hub_repo_id(dataset_name)


def hub_repo_id(name: str | os.PathLike | None) -> str | None:
    """`name` if it can name a Hub repo; None for a local path or what no repo id can be."""
    if not name or os.path.exists(name):
        return None
    try:
        validate_repo_id(str(name))
    except HFValidationError:
        return None
    return str(name)


def model_index_results(
    metrics: dict[str, float], pipeline_tag: str, dataset_id: str | None, dataset_config: str | None,
    dataset_split: str | None,
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
            dataset_split=dataset_split,
            metric_type=metric,
            metric_value=value,
        )
        for metric, value in (task_metrics or metrics).items()
    ]


def weights_sha256(folder: str | os.PathLike) -> dict[str, str]:
    """The sha256 of each safetensors weights file of the model saved in `folder` (the Hub shows the same digest for
    each stored file); empty when none is saved there."""
    folder = Path(folder)
    index = folder / constants.SAFETENSORS_INDEX_FILE
    if index.is_file():
        files = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
    else:
        files = [constants.SAFETENSORS_SINGLE_FILE] if (folder / constants.SAFETENSORS_SINGLE_FILE).is_file() else []
    return {name: file_sha256(folder / name) for name in files}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def measured_weights(card: ModelCard) -> dict[str, str]:
    """The weights files a SepNorm card says its metrics were measured on, with their sha256."""
    return {match["file"]: match["sha256"] for match in MEASURED_WEIGHTS.finditer(card.text)}


def sentence_pooling(folder: str | os.PathLike) -> str | None:
    """The pooling ("cls", "mean", ...) of the sentence-transformers model saved in `folder`; None when the folder
    is none (no modules.json, or no Pooling module in it)."""
    folder = Path(folder)
    modules = folder / "modules.json"
    if not modules.is_file():
        return None
    for module in json.loads(modules.read_text(encoding="utf-8")):
        config = folder / module.get("path", "") / "config.json"
        if module.get("type", "").endswith(".Pooling") and config.is_file():
            pooling = json.loads(config.read_text(encoding="utf-8"))
            modes = pooling.get("pooling_mode") or [  # sentence-transformers < 6 wrote one flag per mode
                LEGACY_POOLING_FLAGS.get(key, key) for key, on in pooling.items() if key.startswith("pooling_mode_") and on
            ]  # fmt: skip
            return "+".join([modes] if isinstance(modes, str) else modes) or None
    return None


def cls_pooling(pooling_config: dict) -> dict:
    """A sentence-transformers Pooling config set to pool the [CLS] token, in the config's own format (a
    `pooling_mode`, or one flag per mode before sentence-transformers 6)."""
    if "pooling_mode" in pooling_config:
        return {**pooling_config, "pooling_mode": "cls"}
    flags = {key: key == "pooling_mode_cls_token" for key in pooling_config if key.startswith("pooling_mode_")}
    return {**pooling_config, **flags, "pooling_mode_cls_token": True}


def retarget_card(card: ModelCard, repo_id: str, revision: str) -> ModelCard:
    """A folder's own SepNorm card, as pushed to `repo_id` at `revision`: its usage snippets name that repo and
    revision (they named a placeholder or another repo), the rest is kept as the folder has it, edits included."""
    text = str(card)
    named = SNIPPET_REPO_ID.search(card.text)
    if named:
        text = text.replace(f'"{named["repo_id"]}"', f'"{repo_id}"')
        old_title, title = (f"\n# {name.split('/')[-1]}\n" for name in (named["repo_id"], repo_id))
        text = text.replace(old_title, title, 1)
    text = SNIPPET_REVISION.sub(f'revision = "{revision}"', text)
    retargeted = ModelCard(text)
    if retargeted.data.eval_results:
        retargeted.data.model_name = repo_id.split("/")[-1]
    return retargeted


def table_columns(rows: list[dict]) -> list[str]:
    """Every key of `rows`, in order of first appearance."""
    return list(dict.fromkeys(key for row in rows for key in row))


__all__ = [
    "evaluation_metrics",
    "hub_dataset_id",
    "measured_weights",
    "render_adapter_card",
    "render_model_card",
    "retarget_card",
    "sentence_pooling",
    "weights_sha256",
]
