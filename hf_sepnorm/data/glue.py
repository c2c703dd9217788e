"""GLUE: the nine tasks, read from the official TSV files or from the Hub's ``nyu-mll/glue``, and submission files.

`datasets`' csv builder reads the official files. What it cannot know is added here: each task's columns (a short
table like ``task_to_keys`` in transformers' ``run_glue.py``), CoLA's headerless train/dev files, MNLI's matched and
mismatched splits, rows with extra fields, and the Hub dataset's column names and label names, so that both sources
give the same ``DatasetDict``: the same splits, columns, features, rows and labels.
"""

from __future__ import annotations

import csv
import logging
import operator
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
from huggingface_hub import HfApi
from huggingface_hub.errors import OfflineModeIsEnabled

from ..errors import InputError, MissingInputError
from ..hub.http_client import hub_http_client

logger = logging.getLogger(__name__)

HUB_DATASET_ID = "nyu-mll/glue"
# CoLA's train and dev files have no header row; their columns, as the GLUE download describes them.
_COLA_COLUMNS = ["source", "label", "original_label", "sentence"]


@dataclass(frozen=True)
class GlueTask:
    """What loading, evaluating and submitting need to know about one GLUE task.

    Attributes:
        name: the Hub configuration name (``"cola"``, ``"mnli"``, ...).
        directory: the task's folder in the official download (``"CoLA"``, ``"SST-2"``, ...).
        text_columns: the Hub's text columns (one or two), each mapped to its column in the official files.
        label_column: the label's column in the official files.
        label_list: the Hub's class names, index = class id; empty for STS-B, whose label is a float score.
        labels_are_names: the files and the leaderboard spell labels as names (``entailment``), not as ids.
        main_metric: the key of the GLUE metric's result that the leaderboard ranks the task by.
    """

    name: str
    directory: str
    text_columns: dict[str, str]
    label_column: str = "label"
    label_list: tuple[str, ...] = ()
    labels_are_names: bool = False
    main_metric: str = "accuracy"

    @property
    def output_text_columns(self) -> tuple[str, ...]:
        """The text columns of the loaded datasets, in order: what the tokenizer gets."""
        return tuple(self.text_columns)

    @property
    def is_regression(self) -> bool:
        return not self.label_list

    @property
    def num_labels(self) -> int:
        """Size of the model's output: 1 for regression, else the number of classes."""
        return 1 if self.is_regression else len(self.label_list)

    @property
    def features(self) -> datasets.Features:
        """The Hub dataset's features: text columns, ``label`` (class id, or float score for STS-B), ``idx``."""
        label = datasets.Value("float32") if self.is_regression else datasets.ClassLabel(names=list(self.label_list))
        return datasets.Features(
            {**{column: datasets.Value("string") for column in self.text_columns}, "label": label,
             "idx": datasets.Value("int32")}
        )  # fmt: skip

    @property
    def split_files(self) -> dict[str, str]:
        """Hub split name -> official file name."""
        if self.name == "mnli":
            return {"train": "train.tsv", "validation_matched": "dev_matched.tsv",
                    "validation_mismatched": "dev_mismatched.tsv", "test_matched": "test_matched.tsv",
                    "test_mismatched": "test_mismatched.tsv"}  # fmt: skip
        return {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}

    @property
    def submission_files(self) -> dict[str, str]:
        """Test split name -> the file name the GLUE leaderboard expects."""
        if self.name == "mnli":
            return {"test_matched": "MNLI-m.tsv", "test_mismatched": "MNLI-mm.tsv"}
        return {"test": f"{self.directory}.tsv"}


_SENTENCE_PAIR = {"sentence1": "sentence1", "sentence2": "sentence2"}
_ENTAILMENT = ("entailment", "not_entailment")
GLUE_TASKS: dict[str, GlueTask] = {
    task.name: task
    for task in (
        GlueTask("cola", "CoLA", {"sentence": "sentence"}, label_list=("unacceptable", "acceptable"),
                 main_metric="matthews_correlation"),
        GlueTask("sst2", "SST-2", {"sentence": "sentence"}, label_list=("negative", "positive")),
        GlueTask("mrpc", "MRPC", {"sentence1": "#1 String", "sentence2": "#2 String"}, "Quality",
                 ("not_equivalent", "equivalent"), main_metric="f1"),
        GlueTask("stsb", "STS-B", _SENTENCE_PAIR, "score", main_metric="pearson"),
        GlueTask("qqp", "QQP", {"question1": "question1", "question2": "question2"}, "is_duplicate",
                 ("not_duplicate", "duplicate"), main_metric="f1"),
        GlueTask("mnli", "MNLI", {"premise": "sentence1", "hypothesis": "sentence2"}, "gold_label",
                 ("entailment", "neutral", "contradiction"), labels_are_names=True),
        GlueTask("qnli", "QNLI", {"question": "question", "sentence": "sentence"}, label_list=_ENTAILMENT,
                 labels_are_names=True),
        GlueTask("rte", "RTE", _SENTENCE_PAIR, label_list=_ENTAILMENT, labels_are_names=True),
        # The WNLI files spell labels 0/1, and the Hub orders its names so that 1 = entailment.
        GlueTask("wnli", "WNLI", _SENTENCE_PAIR, label_list=("not_entailment", "entailment")),
    )
}  # fmt: skip


def get_glue_task(task_name: str) -> GlueTask:
    """The description of a GLUE task; a ``ValueError`` listing the valid names if unknown."""
    try:
        return GLUE_TASKS[task_name]
    except KeyError:
        raise InputError(f"Unknown GLUE task {task_name!r}; valid tasks: {', '.join(GLUE_TASKS)}") from None


def glue_task_folder(glue_dir: os.PathLike | str, task_name: str, argument: str = "--glue_dir") -> Path:
    """`task_name`'s folder in `glue_dir`, a folder of GLUE task folders named as the official download names them
    (``SST-2/``, ``STS-B/``, ...); a one-line error naming `argument` when it is missing."""
    folder = Path(glue_dir) / get_glue_task(task_name).directory
    if not folder.is_dir():
        raise MissingInputError(f"{argument} {glue_dir}: no {folder.name}/ task folder in it (needed for {task_name}).")
    return folder


def load_glue(
    task_name: str,
    data_dir: os.PathLike | str | None = None,
    cache_dir: os.PathLike | str | None = None,
    splits: Iterable[str] | None = None,
) -> datasets.DatasetDict:
    """A GLUE task from the official TSV files in ``data_dir``, or from the Hub's ``nyu-mll/glue`` without it.

    Args:
        task_name: one of :data:`GLUE_TASKS` (``"cola"``, ``"sst2"``, ...).
        data_dir: the task's folder of the official download (``glue_data/SST-2``), or the folder holding it
            (``glue_data``).
        cache_dir: the ``datasets`` cache.
        splits: only these splits (``"train"``, ``"validation"``, ``"test"``; for MNLI ``"validation"`` and
            ``"test"`` name both the matched and mismatched ones); only their files must exist. Default: all.

    Returns:
        Both sources give the Hub's splits (``train``, ``validation``, ``test``; MNLI: ``validation_matched``,
        ``validation_mismatched``, ``test_matched``, ``test_mismatched``) and features (:attr:`GlueTask.features`).
        Test splits have no labels (-1), as the official test files. ``idx`` is a row's number in its file, as in
        the Hub's copy (whose MRPC train/validation rows are numbered in the original MSR file instead).

    Raises:
        FileNotFoundError: a split file is missing from ``data_dir``.
        ValueError: a label is not one of the task's.
        ConnectionError: without ``data_dir``, the Hub cannot be reached (offline mode, no connection).
    """
    task = get_glue_task(task_name)
    cache_dir = None if cache_dir is None else str(cache_dir)
    if data_dir is None:
        hub = _load_from_hub(task, cache_dir)
        return hub if splits is None else datasets.DatasetDict({k: v for k, v in hub.items() if _wanted(k, splits)})
    files = _split_files(task, Path(data_dir), splits)
    labelled = {split: path for split, path in files.items() if not split.startswith("test")}
    unlabelled = {split: path for split, path in files.items() if split.startswith("test")}
    splits = {}
    for group, has_labels in ((labelled, True), (unlabelled, False)):
        if group:
            splits.update(_read_tsv_files(task, group, has_labels, cache_dir))
    return datasets.DatasetDict({split: splits[split] for split in files})


def training_rows(dataset: datasets.Dataset, count: int | None, seed: int | None = None) -> datasets.Dataset:
    """`count` training rows: the first ones (seed None), or drawn at random with `seed`, kept in file order. The
    official files are ordered (STS-B's train.tsv starts with captions, its dev set mixes genres), so a prefix is a
    biased sample; the same seed gives the same rows to every run."""
    if count is None or count >= len(dataset):
        return dataset
    if seed is None:
        return dataset.select(range(count))
    return dataset.select(sorted(np.random.default_rng(seed).choice(len(dataset), size=count, replace=False).tolist()))


def _wanted(split: str, splits: Iterable[str] | None) -> bool:
    return splits is None or split.split("_")[0] in set(splits)


def available_glue_splits(task_name: str, data_dir: os.PathLike | str) -> list[str]:
    """The splits (``train``, ``validation``, ``test``) whose official files are all in ``data_dir``."""
    task = get_glue_task(task_name)
    task_dir = _task_dir(task, Path(data_dir))
    names = dict.fromkeys(split.split("_")[0] for split in task.split_files)
    return [name for name in names if all((task_dir / file).is_file() for split, file in task.split_files.items()
                                          if split.split("_")[0] == name)]  # fmt: skip


def _task_dir(task: GlueTask, data_dir: Path) -> Path:
    return data_dir / task.directory if (data_dir / task.directory).is_dir() else data_dir


def _split_files(task: GlueTask, data_dir: Path, splits: Iterable[str] | None = None) -> dict[str, Path]:
    task_dir = _task_dir(task, data_dir)
    wanted = {split: name for split, name in task.split_files.items() if _wanted(split, splits)}
    missing = [name for name in wanted.values() if not (task_dir / name).is_file()]
    if missing:
        raise MissingInputError(
            f"GLUE {task.name}: missing {', '.join(missing)} in {task_dir}. Expected the official files "
            f"{', '.join(wanted.values())} in that folder or in its subfolder {task.directory}/."
        )
    return {split: task_dir / name for split, name in wanted.items()}


def _read_tsv_files(task: GlueTask, files: dict[str, Path], labelled: bool, cache_dir: str | None) -> dict:
    """Read files of the same layout (train and dev, or the test files) into the Hub's columns and features."""
    columns = {file_column: column for column, file_column in task.text_columns.items()}
    if labelled:
        columns[task.label_column] = "label"
    try:
        raw = _read_csv(task, files, columns, labelled, cache_dir)
    except Exception as error:  # datasets wraps pandas' reason in a long chain: name the files and the cause
        cause = error
        while cause.__cause__ is not None or cause.__context__ is not None:
            cause = cause.__cause__ or cause.__context__
        raise InputError(
            f"GLUE {task.name}: cannot read {', '.join(str(path) for path in files.values())}: {cause}. Expected the "
            f"official layout (tab-separated, columns {', '.join(columns)}{' without a header' if task.name == 'cola' and labelled else ''})."
        ) from None
    return {split: _hub_layout(task, raw[split].rename_columns(columns), files[split]) for split in raw}


def _read_csv(task: GlueTask, files: dict[str, Path], columns: dict[str, str], labelled: bool, cache_dir: str | None):
    return datasets.load_dataset(
        "csv",
        data_files={split: str(path) for split, path in files.items()},
        sep="\t",
        quoting=csv.QUOTE_NONE,  # quotes are literal characters in GLUE files, often unbalanced
        keep_default_na=False,  # "NA", "null", "nan" are words of a sentence, not missing values
        encoding="utf-8-sig",  # MRPC train/dev start with a byte-order mark
        column_names=_COLA_COLUMNS if task.name == "cola" and labelled else None,
        # Reading only the named columns also ignores extra fields at a row's end (RTE train has a stray empty
        # one), as the Hub's builder (csv.DictReader) did; index_col=False stops pandas from taking an extra
        # field in the first row as a sign that the first column is an index, which would shift every column.
        usecols=list(columns),
        index_col=False,
        features=datasets.Features({column: datasets.Value("string") for column in columns}),
        cache_dir=cache_dir,
    )


def _hub_layout(task: GlueTask, dataset: datasets.Dataset, path: Path) -> datasets.Dataset:
    dataset = dataset.add_column("idx", list(range(len(dataset))))
    if "label" not in dataset.column_names:
        dataset = dataset.add_column("label", [-1] * len(dataset))
    elif unlabelled := dataset["label"].count(""):
        # The Hub's builder dropped rows whose label is missing or empty, keeping the others' idx.
        logger.warning("%s: %d row(s) without a label dropped, as in the Hub's %s", path, unlabelled, HUB_DATASET_ID)
        dataset = dataset.filter(lambda labels: [label != "" for label in labels], input_columns="label", batched=True)
    try:
        return dataset.cast(task.features)  # class ids from names or ids, as the Hub's ClassLabel; the Hub's order
    except ValueError as error:
        expected = ", ".join(task.label_list) if task.label_list else "a float score"
        raise InputError(f"{path}: {error} (GLUE {task.name} labels are {expected})") from error


def _load_from_hub(task: GlueTask, cache_dir: str | None) -> datasets.DatasetDict:
    def unreachable(error: Exception) -> ConnectionError:
        return ConnectionError(
            f"GLUE {task.name}: the Hub dataset {HUB_DATASET_ID} cannot be loaded ({type(error).__name__}: {error}). "
            f"Without network, pass --data_dir (load_glue's data_dir) with a folder of the official GLUE TSV files: "
            f"{task.directory}/ holding {', '.join(task.split_files.values())}."
        )

    if not datasets.config.HF_HUB_OFFLINE:  # offline, datasets answers from its cache at once
        try:  # one request, without the retries datasets makes over a dead connection
            HfApi().dataset_info(HUB_DATASET_ID, timeout=10)
        except (OfflineModeIsEnabled, hub_http_client().TransportError) as error:
            raise unreachable(error) from error
    try:
        return datasets.load_dataset(HUB_DATASET_ID, task.name, cache_dir=cache_dir)
    except ConnectionError as error:
        raise unreachable(error) from error


def write_glue_predictions(
    task_name: str,
    predictions: Iterable[int | float],
    output_dir: os.PathLike | str,
    split: str = "test",
    *,
    indices: Iterable[int] | None = None,
) -> Path:
    """Write predictions as a GLUE leaderboard submission file (``index<TAB>prediction``).

    Args:
        task_name: one of :data:`GLUE_TASKS`.
        predictions: one per test row: class ids (e.g. the argmax of the logits), or STS-B scores. MNLI, QNLI and
            RTE are written as label names, the others as ids, STS-B with three decimals, as the leaderboard expects.
        output_dir: folder for the file; created if needed.
        split: ``"test"``, or ``"test_matched"``/``"test_mismatched"`` for MNLI.
        indices: the rows' ``idx`` (default 0, 1, ...: predictions in file order).

    Returns:
        The written file, named as the leaderboard requires (``CoLA.tsv``, ``MNLI-m.tsv``, ...).
    """
    task = get_glue_task(task_name)
    if split not in task.submission_files:
        choices = ", ".join(task.submission_files)
        raise InputError(f"GLUE {task.name}: no submission file for split {split!r}; choose one of {choices}")
    values = [_format_prediction(task, prediction) for prediction in predictions]
    row_indices = list(range(len(values)) if indices is None else indices)
    if len(row_indices) != len(values):
        raise ValueError(f"{len(values)} predictions but {len(row_indices)} indices")
    path = Path(output_dir) / task.submission_files[split]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as file:
        file.write("index\tprediction\n")
        file.writelines(f"{index}\t{value}\n" for index, value in zip(row_indices, values, strict=True))
    return path


def _format_prediction(task: GlueTask, prediction: int | float) -> str:
    if task.is_regression:
        return f"{float(prediction):.3f}"
    try:
        class_id = operator.index(prediction)  # ints of any kind (numpy, torch), but not floats or arrays
    except TypeError:
        raise ValueError(
            f"GLUE {task.name} predictions must be integer class ids (the argmax of the logits); got {prediction!r}"
        ) from None
    if not 0 <= class_id < task.num_labels:
        raise ValueError(f"GLUE {task.name}: class id {class_id} is not in [0, {task.num_labels - 1}]")
    return task.label_list[class_id] if task.labels_are_names else str(class_id)
