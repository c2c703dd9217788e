"""Convert a stock checkpoint (BERT, RoBERTa, ViT-MAE: see `families.py`) into a SepNorm one."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from transformers import AutoConfig, PreTrainedModel
from transformers.utils import cached_file

from .cls_norms import init_cls_norms_from_token_norms
from .errors import InputError
from .families import FAMILIES, STOCK_MODEL_TYPES, SepNormFamily
from .recalibration import cls_statistics_never_updated
from .remote_code.sepnorm import SepNormLayerNorm

logger = logging.getLogger(__name__)

# transformers' loggers that report, as warnings, what a conversion expects: the config's model type changing
# (configuration_utils) and the new [CLS] norms missing from the checkpoint (modeling_utils' load report)
TRANSFORMERS_LOAD_LOGGERS = ("transformers.configuration_utils", "transformers.modeling_utils")


def sepnorm_class_for(stock_config) -> type[PreTrainedModel]:
    """The SepNorm class matching a stock config's architecture, e.g. `BertForMaskedLM` -> `SepNormBertForMaskedLM`
    (the family's base model when the architecture has no SepNorm counterpart)."""
    family = STOCK_MODEL_TYPES.get(stock_config.model_type)
    if family is None:
        raise InputError(
            f"Cannot convert a {stock_config.model_type!r} checkpoint: SepNorm supports {sorted(STOCK_MODEL_TYPES)}."
        )
    return family.class_for_stock_architectures(stock_config.architectures)


def check_nothing_left_random(
    model: PreTrainedModel, loading_info: dict, checkpoint, allow_new_head: bool = False
) -> None:
    """Raise if loading `checkpoint` left weights randomly initialized, other than the new [CLS] norms and, with
    `allow_new_head`, the task head: weights outside the backbone, and BERT's pooler (MLM checkpoints have none)."""
    backbone_prefix = "" if model.base_model is model else model.base_model_prefix + "."

    def is_head(key: str) -> bool:
        return not key.startswith(backbone_prefix) or key.startswith(backbone_prefix + "pooler.")

    random_weights = [
        key
        for key in sorted(loading_info["missing_keys"])
        if not is_cls_norm_key(key) and not (allow_new_head and is_head(key))
    ]
    if random_weights:
        raise InputError(
            f"Loading {checkpoint} into {type(model).__name__} left these weights randomly initialized: "
            f"{random_weights}. Use the SepNorm class matching the checkpoint's architecture and size."
        )


def is_cls_norm_key(key: str) -> bool:
    return ".cls_norm." in key


class _ExpectedLoadWarnings(logging.Filter):
    """Drops transformers' warning that a stock `model_type` instantiates a SepNorm config, and holds back its load
    report (`held`), which `from_pretrained` logs before the caller can see what it lists."""

    def __init__(self, family: SepNormFamily):
        super().__init__()
        self.type_change = re.compile(
            rf"You are using a model of type `({'|'.join(map(re.escape, family.stock_model_types))})` to instantiate "
            rf"a model of type `{re.escape(family.model_type)}`\."
        )
        self.held: list[logging.LogRecord] = []

    def release(self) -> None:
        """Log the held-back report after all, as transformers would have."""
        for record in self.held:
            logging.getLogger(record.name).handle(record)
        self.held.clear()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.type_change.match(message):
            return False
        if " LOAD REPORT" in message:
            self.held.append(record)
            return False
        return True


@contextlib.contextmanager
def expected_load_warnings_silenced(family: SepNormFamily) -> Iterator[_ExpectedLoadWarnings]:
    """Within the block, transformers' warnings that are expected when a stock checkpoint loads into its SepNorm
    class are not shown: the model type change, and a load report (held in the yielded filter: `release` it when it
    lists more than expected; it is released anyway if the block raises). Other warnings pass."""
    expected = _ExpectedLoadWarnings(family)
    loggers = [logging.getLogger(name) for name in TRANSFORMERS_LOAD_LOGGERS]
    for load_logger in loggers:
        load_logger.addFilter(expected)
    raised = True
    try:
        yield expected
        raised = False
    finally:
        for load_logger in loggers:
            load_logger.removeFilter(expected)
        if raised:
            expected.release()  # the report may explain the error (e.g. mismatched sizes)


def only_cls_norms_missing(loading_info: dict) -> bool:
    return all(is_cls_norm_key(key) for key in loading_info["missing_keys"]) and not any(
        loading_info.get(kind) for kind in ("unexpected_keys", "mismatched_keys", "error_msgs")
    )


def new_cls_norms_summary(model: PreTrainedModel, initialized_from_token_norms: bool) -> str:
    """What a conversion added to the stock model, and why (a few lines, for people)."""
    sepnorms = [name for name, module in model.named_modules() if isinstance(module, SepNormLayerNorm)]
    if not sepnorms:
        return f"{type(model).__name__}: every weight comes from the stock checkpoint; nothing is new (ShareNorm)."
    # BERT-base has 24 of them: name each place once, with {i} for the layer index
    places = list(dict.fromkeys(re.sub(r"\.\d+\.", ".{i}.", name) for name in sepnorms))
    kinds = sorted({type(model.get_submodule(name).cls_norm).__name__ for name in sepnorms})
    lines = [
        f"New in {type(model).__name__}: {len(sepnorms)} [CLS] norms ({', '.join(kinds)}) inside "
        f"{', '.join(places)}.",
        "Why: SepNorm gives the [CLS] token a norm of its own, which a stock checkpoint does not have. Every stock "
        "weight was loaded.",
    ]
    if initialized_from_token_norms:
        lines.append("Start: each [CLS] norm copies the weight and bias of the LayerNorm it sits in.")
    else:
        lines.append("Start: the [CLS] norms keep their default initialization (--fresh_cls_norm).")
    if initialized_from_token_norms and kinds == ["LayerNorm"]:
        lines.append("So the converted model computes exactly what the stock model computes, until it is trained.")
    if "ClsBatchNorm" in kinds and cls_statistics_never_updated(model):
        lines.append(
            "The [CLS] BatchNorms' running statistics start at mean 0 and variance 1: train, or re-estimate them on "
            "your data (hf_sepnorm.recalibration.recalibrate_cls_batchnorm), before evaluating."
        )
    return "\n".join(lines)


def convert_stock_checkpoint(
    stock_checkpoint: str | os.PathLike,
    output_dir: str | os.PathLike | None = None,
    model_class: type[PreTrainedModel] | None = None,
    init_cls_norm_from_token_norm: bool = True,
    allow_new_head: bool = False,
    **config_overrides,
) -> PreTrainedModel:
    """Load a stock BERT / RoBERTa / ViT-MAE checkpoint (folder or Hub id) into its SepNorm class.

    Every stock weight is loaded; only the new [CLS] norms are missing, and they start from the LayerNorm they sit
    in (`init_cls_norm_from_token_norm`, the default) or from the default init. `config_overrides` set SepNorm fields
    such as `cls_norm="batch"`. Raises if any other weight is missing, except, with `allow_new_head`, the task head's
    (fine-tuning a pretrained backbone). Saves to `output_dir` when given, with the tokenizer or image processor found
    next to the checkpoint.

    transformers' warnings that such a load expects (the model type changes; the [CLS] norms are missing) are not
    shown; its load report is, when it lists anything else. What is new is logged instead (`new_cls_norms_summary`).
    """
    stock_config = AutoConfig.from_pretrained(stock_checkpoint)
    model_class = model_class or sepnorm_class_for(stock_config)
    family = FAMILIES[model_class.config_class.model_type]
    with expected_load_warnings_silenced(family) as expected:
        model, loading_info = model_class.from_pretrained(
            stock_checkpoint, output_loading_info=True, **config_overrides
        )
    if not only_cls_norms_missing(loading_info):
        expected.release()  # the report lists more than the [CLS] norms: the user should see it
    check_nothing_left_random(model, loading_info, stock_checkpoint, allow_new_head=allow_new_head)
    if init_cls_norm_from_token_norm:
        init_cls_norms_from_token_norms(model)
    logger.info(new_cls_norms_summary(model, init_cls_norm_from_token_norm))
    if output_dir is not None:
        save_converted(model, stock_checkpoint, output_dir)
    else:
        # its name still says the stock checkpoint, which loads without the [CLS] norms (see `apply_peft`)
        model.sepnorm_converted_in_memory_from = str(stock_checkpoint)
    return model


def save_converted(
    model: PreTrainedModel,
    stock_checkpoint: str | os.PathLike,
    output_dir: str | os.PathLike,
    sentence_pooling: str = "source",
) -> None:
    """Save a converted model with the tokenizer or image processor found next to its stock checkpoint, and, when the
    checkpoint is a sentence-transformers model, its modules (`keep_sentence_transformers_modules`); it is then named
    by `output_dir` (what an adapter trained on it names as its base)."""
    family = FAMILIES[model.config_class.model_type]
    model.save_pretrained(output_dir)
    # transformers builds an empty tokenizer when asked for one a checkpoint does not have
    if cached_file(stock_checkpoint, family.preprocessor.config_file, _raise_exceptions_for_missing_entries=False):
        family.preprocessor.auto_class.from_pretrained(stock_checkpoint).save_pretrained(output_dir)
    keep_sentence_transformers_modules(stock_checkpoint, output_dir, sentence_pooling)
    model.name_or_path = str(output_dir)
    model.sepnorm_converted_in_memory_from = None


# A sentence-transformers model's files besides the transformers ones; each module of modules.json has its folder
SENTENCE_TRANSFORMERS_FILES = ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json")
SENTENCE_POOLINGS = ("source", "cls")


def keep_sentence_transformers_modules(
    stock_checkpoint: str | os.PathLike, output_dir: str | os.PathLike, pooling: str = "source"
) -> bool:
    """Copy the sentence-transformers modules of `stock_checkpoint` (its modules.json, configs and module folders:
    pooling, normalization, dense layers) next to the converted model, so that `SentenceTransformer(output_dir,
    trust_remote_code=True)` embeds with the SepNorm model as the source did with the stock one. `pooling="cls"`
    sets the Pooling module to the [CLS] token, whose norm SepNorm changes; "source" keeps the source's (mean
    pooling for all-MiniLM-L6-v2). Returns False, copying nothing, when the checkpoint is no sentence-transformers
    model."""
    if pooling not in SENTENCE_POOLINGS:
        raise ValueError(f"sentence pooling {pooling!r}: expected one of {', '.join(SENTENCE_POOLINGS)}.")
    modules_file = cached_file(stock_checkpoint, "modules.json", _raise_exceptions_for_missing_entries=False)
    if modules_file is None:
        return False
    modules = json.loads(Path(modules_file).read_text(encoding="utf-8"))
    folders = [module["path"] for module in modules if module.get("path")]
    source = Path(stock_checkpoint)
    if not source.is_dir():  # a Hub id: its module folders, which from_pretrained did not need
        from huggingface_hub import snapshot_download

        patterns = [*SENTENCE_TRANSFORMERS_FILES, *(f"{folder}/*" for folder in folders)]
        source = Path(snapshot_download(str(stock_checkpoint), allow_patterns=patterns))
    output_dir = Path(output_dir)
    for name in SENTENCE_TRANSFORMERS_FILES:
        if (source / name).is_file():
            shutil.copyfile(source / name, output_dir / name)
    for folder in folders:
        if (source / folder).is_dir():
            shutil.copytree(source / folder, output_dir / folder, dirs_exist_ok=True)
    if pooling == "cls":
        from .hub.cards import cls_pooling

        for module in modules:
            config = output_dir / module.get("path", "") / "config.json"
            if module["type"].endswith(".Pooling") and config.is_file():
                config.write_text(json.dumps(cls_pooling(json.loads(config.read_text(encoding="utf-8"))), indent=2))
    return True


# What a folder holding a saved model has: its weights (a model, sharded or not, or an adapter)
MODEL_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                      "adapter_model.safetensors")  # fmt: skip
# What describes the model of a folder besides its weights: replaced along with them
MODEL_DESCRIPTION_FILES = ("README.md", "all_results.json", "eval_results.json", "train_results.json",
                           "trainer_state.json", "config.json", "adapter_config.json")  # fmt: skip


def saved_model_files(folder: str | os.PathLike) -> list[str]:
    """The weight files of a model saved in `folder` (none when it is new or holds no model)."""
    folder = Path(folder)
    return [name for name in MODEL_WEIGHT_FILES if (folder / name).is_file()] + sorted(
        path.name for path in folder.glob("model-*-of-*.safetensors")
    ) if folder.is_dir() else []


def clear_output_dir(folder: str | os.PathLike) -> list[str]:
    """Remove the model saved in `folder`: its weights and the files that describe it (card, metrics, state), so
    that nothing left describes the model saved there next. Returns the names removed."""
    folder = Path(folder)
    removed = saved_model_files(folder) + [name for name in MODEL_DESCRIPTION_FILES if (folder / name).is_file()]
    for name in removed:
        (folder / name).unlink()
    return removed


def calibrate_on_images(model: PreTrainedModel, processor_source: str | os.PathLike, files: list[str],
                        max_batches: int = 50, batch_size: int = 32) -> int:  # fmt: skip
    """Estimate the [CLS] BatchNorm statistics of an image model on `files` (image files, or folders searched for
    them), in batches of `batch_size` images, with no patch masked: the statistics of the inputs its features and
    classifiers see (a ViT-MAE masks `config.mask_ratio` of the patches otherwise, in eval too). Returns the number
    of batches used."""
    from transformers import AutoImageProcessor

    from .data.images import open_image
    from .recalibration import recalibrate_cls_batchnorm

    paths = calibration_images(files)[: max_batches * batch_size]
    processor = AutoImageProcessor.from_pretrained(processor_source)

    def batches():
        for start in range(0, len(paths), batch_size):
            images = [open_image({"path": str(path)}, model.config.num_channels)
                      for path in paths[start : start + batch_size]]  # fmt: skip
            yield {"pixel_values": processor(images, return_tensors="pt")["pixel_values"]}

    mask_ratio, model.config.mask_ratio = model.config.mask_ratio, 0.0
    try:
        return recalibrate_cls_batchnorm(model, batches(), max_batches=max_batches)
    finally:
        model.config.mask_ratio = mask_ratio


def calibrate_on_text(model: PreTrainedModel, tokenizer_source: str | os.PathLike, files: list[str],
                      max_batches: int = 50, batch_size: int = 32, max_length: int = 128,
                      encoding: str = "utf-8") -> int:  # fmt: skip
    """Estimate the [CLS] BatchNorm statistics of a text model on the non-blank lines of `files` (text in `encoding`;
    PreciseBN, `recalibrate_cls_batchnorm`), in batches of `batch_size` lines. Returns the number of batches used."""
    from transformers import AutoTokenizer

    from .recalibration import recalibrate_cls_batchnorm

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    lines = calibration_lines(files, encoding)[: max_batches * batch_size]
    batches = (dict(tokenizer(lines[start : start + batch_size], padding=True, truncation=True, max_length=max_length,
                              return_tensors="pt")) for start in range(0, len(lines), batch_size))  # fmt: skip
    return recalibrate_cls_batchnorm(model, batches, max_batches=max_batches)


# Inputs a calibration needs at least: one batch of 2 or more (a batch of 1 has no variance)
MIN_CALIBRATION_INPUTS = 2


def calibration_lines(files: list[str], encoding: str = "utf-8") -> list[str]:
    """The non-blank lines of text calibration files; an `InputError` naming them when they are too few."""
    lines = [line.strip() for file in files for line in Path(file).read_text(encoding=encoding).splitlines()]
    lines = [line for line in lines if line]
    check_calibration_size(len(lines), files, "non-blank lines")
    return lines


def calibration_images(files: list[str]) -> list[Path]:
    """The image files of image calibration files or folders; an `InputError` naming them when they are too few."""
    from .data.images import IMAGE_SUFFIXES

    paths = []
    for path in map(Path, files):
        found = sorted(image for image in path.rglob("*") if image.suffix.lower() in IMAGE_SUFFIXES)
        paths += found if path.is_dir() else [path]
    check_calibration_size(len(paths), files, "images")
    return paths


def check_calibration_size(count: int, files: list[str], what: str) -> None:
    """Refuse, naming the files, calibration data too small to estimate statistics from."""
    if count < MIN_CALIBRATION_INPUTS:
        raise InputError(
            f"--calibration_file {', '.join(map(str, files))}: {what}: {count}, too few to estimate the [CLS] "
            f"BatchNorm statistics from: give at least {MIN_CALIBRATION_INPUTS}, better a few hundred like those the "
            "model will embed."
        )
