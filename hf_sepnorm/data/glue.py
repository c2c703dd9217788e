"""GLUE benchmark data: task descriptions, an offline loader for the official TSV files, submission files.

The loader reads the files of the official GLUE download (``glue_data/CoLA/train.tsv``, ...) and returns
the same columns, label ids and features as the Hugging Face Hub dataset ``nyu-mll/glue``, so that code
written for one works unchanged with the other.

Format rules of the official files, all enforced here:

* tab-separated, one record per physical line (``\\n``); quotes are literal characters (``csv.QUOTE_NONE``),
  so a field may contain ``"`` without any escaping and a record never spans lines;
* UTF-8, with an optional byte-order mark at the start of the file (MRPC train/dev have one);
* carriage returns are rejected: the official files have none, and a ``\\r`` could either be a Windows
  line ending or part of a sentence, so guessing would risk silently changing the text
  (convert Windows files with ``dos2unix`` first);
* a header row gives the column names, matched by name, except in CoLA train/dev which have no header;
* a row may carry one extra, empty trailing field (RTE train has one), but only when the last column is
  not a text column: there, the tab could belong to the sentence and dropping it would alter the text.

A malformed row raises :class:`GlueFormatError` naming the file and its 1-based line number. With
``skip_malformed=True`` such rows are skipped instead; the skipped line numbers are logged as a warning and
recorded in each split's ``Dataset.info.description``. Problems with the file as a whole (missing file,
empty file, missing header column) always raise.
"""

from __future__ import annotations

import codecs
import csv
import logging
import math
import operator
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import datasets

logger = logging.getLogger(__name__)

HUB_DATASET_ID = "nyu-mll/glue"

# Read-only: every task but MNLI shares it.
_STANDARD_SPLIT_FILES = MappingProxyType({"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"})
# Column names for the files that have no header row (CoLA train/dev), from the GLUE paper's description.
_COLA_HEADERLESS_COLUMNS = ("source", "label", "original_label", "sentence")
# The hub's ``idx`` feature is int32; larger file indices could not be stored, so they are rejected early.
_MAX_INDEX = 2**31 - 1


@dataclass(frozen=True)
class GlueTask:
    """What the loader, the metric and the submission writer need to know about one GLUE task.

    Attributes:
        name: the hub configuration name (``"cola"``, ``"mnli"``, ...).
        directory: the task's folder name in the official download (``"CoLA"``, ``"SST-2"``, ...).
        text_columns: output (hub) names of the one or two text columns; the second is ``None`` for
            single-sentence tasks.
        file_text_columns: the same columns' names in the TSV header.
        label_column: the label column's name in the TSV header (``"gold_label"`` for MNLI).
        label_list: class names, index = class id, as in the hub's ``ClassLabel``; empty for regression.
        labels_are_names: whether the files (and submissions) spell labels as names (``"entailment"``)
            rather than class ids (``"0"``/``"1"``).
        is_regression: ``True`` for STS-B, whose label is a float similarity score in [0, 5].
        metrics: the official metric(s), as named by the GLUE ``evaluate`` metric.
        split_files: hub split name -> official file name.
        submission_files: test split name -> file name expected by the GLUE leaderboard.
        index_column: the header column holding the row id, when a file has one.
        headerless_columns: split -> column names, for the files that have no header row.
    """

    name: str
    directory: str
    text_columns: tuple[str, str | None]
    file_text_columns: tuple[str, str | None]
    label_column: str
    label_list: tuple[str, ...]
    labels_are_names: bool
    is_regression: bool
    metrics: tuple[str, ...]
    split_files: Mapping[str, str]
    submission_files: Mapping[str, str]
    index_column: str = "index"
    headerless_columns: Mapping[str, tuple[str, ...]] | None = None

    @property
    def num_labels(self) -> int:
        """Size of the model's output: 1 for regression, else the number of classes."""
        return 1 if self.is_regression else len(self.label_list)

    @property
    def output_text_columns(self) -> tuple[str, ...]:
        """The text columns present in this task's datasets (one or two)."""
        return tuple(column for column in self.text_columns if column is not None)


def _task(
    name: str,
    directory: str,
    text_columns: tuple[str, str | None],
    label_list: tuple[str, ...],
    metrics: tuple[str, ...],
    *,
    file_text_columns: tuple[str, str | None] | None = None,
    label_column: str = "label",
    labels_are_names: bool = False,
    index_column: str = "index",
    headerless_columns: Mapping[str, tuple[str, ...]] | None = None,
) -> GlueTask:
    """Describe a task with the conventions shared by most GLUE tasks as defaults."""
    return GlueTask(
        name=name,
        directory=directory,
        text_columns=text_columns,
        file_text_columns=file_text_columns or text_columns,
        label_column=label_column,
        label_list=label_list,
        labels_are_names=labels_are_names,
        is_regression=not label_list,
        metrics=metrics,
        split_files=_STANDARD_SPLIT_FILES,
        submission_files={"test": f"{directory}.tsv"},
        index_column=index_column,
        headerless_columns=headerless_columns,
    )


_MNLI = GlueTask(
    name="mnli",
    directory="MNLI",
    text_columns=("premise", "hypothesis"),
    file_text_columns=("sentence1", "sentence2"),
    label_column="gold_label",
    label_list=("entailment", "neutral", "contradiction"),
    labels_are_names=True,
    is_regression=False,
    metrics=("accuracy",),
    split_files={
        "train": "train.tsv",
        "validation_matched": "dev_matched.tsv",
        "validation_mismatched": "dev_mismatched.tsv",
        "test_matched": "test_matched.tsv",
        "test_mismatched": "test_mismatched.tsv",
    },
    submission_files={"test_matched": "MNLI-m.tsv", "test_mismatched": "MNLI-mm.tsv"},
)

GLUE_TASKS: dict[str, GlueTask] = {
    "cola": _task(
        "cola",
        "CoLA",
        ("sentence", None),
        ("unacceptable", "acceptable"),
        ("matthews_correlation",),
        headerless_columns={"train": _COLA_HEADERLESS_COLUMNS, "validation": _COLA_HEADERLESS_COLUMNS},
    ),
    "sst2": _task("sst2", "SST-2", ("sentence", None), ("negative", "positive"), ("accuracy",)),
    "mrpc": _task(
        "mrpc",
        "MRPC",
        ("sentence1", "sentence2"),
        ("not_equivalent", "equivalent"),
        ("accuracy", "f1"),
        file_text_columns=("#1 String", "#2 String"),
        label_column="Quality",
    ),
    "stsb": _task("stsb", "STS-B", ("sentence1", "sentence2"), (), ("pearson", "spearmanr"), label_column="score"),
    "qqp": _task(
        "qqp",
        "QQP",
        ("question1", "question2"),
        ("not_duplicate", "duplicate"),
        ("accuracy", "f1"),
        label_column="is_duplicate",
        index_column="id",
    ),
    "mnli": _MNLI,
    "qnli": _task(
        "qnli",
        "QNLI",
        ("question", "sentence"),
        ("entailment", "not_entailment"),
        ("accuracy",),
        labels_are_names=True,
    ),
    "rte": _task(
        "rte",
        "RTE",
        ("sentence1", "sentence2"),
        ("entailment", "not_entailment"),
        ("accuracy",),
        labels_are_names=True,
    ),
    # WNLI files spell labels as 0/1, and the hub orders its names so that 1 = entailment.
    "wnli": _task("wnli", "WNLI", ("sentence1", "sentence2"), ("not_entailment", "entailment"), ("accuracy",)),
}


class GlueFormatError(ValueError):
    """A GLUE TSV file does not have the official layout; the message names the file and line."""

    def __init__(self, path: os.PathLike | str, line_number: int | None, problem: str) -> None:
        self.path = Path(path)
        self.line_number = line_number
        self.problem = problem
        location = str(self.path) if line_number is None else f"{self.path}, line {line_number}"
        super().__init__(f"{location}: {problem}")


def get_glue_task(task_name: str) -> GlueTask:
    """Return the description of a GLUE task; raise ``ValueError`` listing the valid names if unknown."""
    try:
        return GLUE_TASKS[task_name]
    except KeyError:
        raise ValueError(f"Unknown GLUE task {task_name!r}; valid tasks: {', '.join(GLUE_TASKS)}") from None


def glue_features(task_name: str) -> datasets.Features:
    """The features of the hub's ``nyu-mll/glue`` dataset for this task (text columns, label, idx)."""
    task = get_glue_task(task_name)
    features = {column: datasets.Value("string") for column in task.output_text_columns}
    features["label"] = (
        datasets.Value("float32") if task.is_regression else datasets.ClassLabel(names=list(task.label_list))
    )
    features["idx"] = datasets.Value("int32")
    return datasets.Features(features)


def load_glue(
    task_name: str, data_dir: os.PathLike | str | None = None, cache_dir: os.PathLike | str | None = None
) -> datasets.DatasetDict:
    """Load a GLUE task from the official TSV files in ``data_dir``, or from the Hub if ``data_dir`` is None.

    Args:
        task_name: one of :data:`GLUE_TASKS` (``"cola"``, ``"sst2"``, ...).
        data_dir: the task folder of the official download, or the GLUE folder containing it
            (see :func:`load_glue_from_dir`). Without it the data come from the Hub dataset ``nyu-mll/glue``.
        cache_dir: the ``datasets`` cache, used only for the Hub.

    Both sources give the same split names, columns and features.
    """
    get_glue_task(task_name)
    if data_dir is not None:
        return load_glue_from_dir(task_name, data_dir)
    return datasets.load_dataset(HUB_DATASET_ID, task_name, cache_dir=None if cache_dir is None else str(cache_dir))


def load_glue_from_dir(
    task_name: str, data_dir: os.PathLike | str, skip_malformed: bool = False
) -> datasets.DatasetDict:
    """Read a GLUE task's official TSV files into a ``DatasetDict`` shaped like the Hub's ``nyu-mll/glue``.

    Args:
        task_name: one of :data:`GLUE_TASKS`.
        data_dir: the task's folder (holding ``train.tsv``, ``dev.tsv``, ``test.tsv``, or MNLI's
            ``dev_matched.tsv`` etc.), or the GLUE folder that holds it under its official name (``CoLA/``).
        skip_malformed: skip malformed rows instead of raising. The skipped rows' line numbers are
            logged as a warning and stated in each split's ``Dataset.info.description``.

    Returns:
        One dataset per split (``train``, ``validation``, ``test``; MNLI: ``validation_matched``,
        ``validation_mismatched``, ``test_matched``, ``test_mismatched``), with the hub's text columns,
        ``label`` (class id, or float score for STS-B; -1 in test splits, which have no labels) and ``idx``
        (the file's index column, or the 0-based data-row number in files without one).

    Raises:
        FileNotFoundError: a split file is missing (the message lists the files expected).
        GlueFormatError: (a ``ValueError``) the content does not follow the official layout.
    """
    task = get_glue_task(task_name)
    task_dir = _find_task_dir(task, Path(data_dir))
    return datasets.DatasetDict(
        {
            split: _read_split_file(task, split, task_dir / file_name, skip_malformed)
            for split, file_name in task.split_files.items()
        }
    )


def _find_task_dir(task: GlueTask, data_dir: Path) -> Path:
    """Accept both ``glue_data/`` and ``glue_data/CoLA/``, and check every split file is there."""
    task_dir = data_dir / task.directory if (data_dir / task.directory).is_dir() else data_dir
    missing = [name for name in task.split_files.values() if not (task_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"GLUE task {task.name!r}: missing {', '.join(missing)} in {task_dir}. "
            f"Expected the official files {', '.join(task.split_files.values())} "
            f"in that folder or in its subfolder {task.directory}/."
        )
    return task_dir


def _read_split_file(task: GlueTask, split: str, path: Path, skip_malformed: bool) -> datasets.Dataset:
    """Read one split file; malformed rows raise, or are skipped and reported if ``skip_malformed``."""
    lines = _physical_lines(path)
    is_test = split.startswith("test")
    headerless_columns = (task.headerless_columns or {}).get(split)
    if headerless_columns is None:
        columns = _parse_header(path, lines[0])
        data_lines = enumerate(lines[1:], start=2)
    else:
        columns = headerless_columns
        data_lines = enumerate(lines, start=1)
    reader = _RowReader(task, path, columns, is_test)

    rows: dict[str, list] = {name: [] for name in glue_features(task.name)}
    skipped_lines: list[int] = []
    for row_number, (line_number, raw_line) in enumerate(data_lines):
        try:
            row = reader.read(line_number, raw_line, row_number)
        except GlueFormatError as error:
            if not skip_malformed:
                raise
            logger.debug("Skipping malformed row: %s", error)
            skipped_lines.append(line_number)
            continue
        for name, value in row.items():
            rows[name].append(value)

    if skipped_lines:
        logger.warning(
            "%s: skipped %d malformed row(s) at line(s) %s", path, len(skipped_lines), _format_lines(skipped_lines)
        )
    description = (
        f"GLUE {task.name} {split!r} split read from {path}: {len(rows['idx'])} rows; "
        f"skipped {len(skipped_lines)} malformed row(s)"
        + (f" at line(s) {_format_lines(skipped_lines)}" if skipped_lines else "")
    )
    features = glue_features(task.name)
    info = datasets.DatasetInfo(description=description, features=features)
    return datasets.Dataset.from_dict(rows, features=features, info=info, split=split)


def _format_lines(line_numbers: Sequence[int]) -> str:
    return ", ".join(map(str, line_numbers))


def _physical_lines(path: Path) -> list[bytes]:
    """The file's lines, split on ``\\n`` only, without the BOM; an empty file is an error.

    Splitting the bytes ourselves (rather than letting ``open``/``csv`` do it) keeps line numbers equal to
    what editors and ``wc -l`` show, and lets a bad UTF-8 sequence be reported for its own line.
    """
    content = path.read_bytes().removeprefix(codecs.BOM_UTF8)
    if not content:
        raise GlueFormatError(path, None, "empty file (expected a GLUE TSV file with at least one line)")
    lines = content.split(b"\n")
    if lines[-1] == b"":  # the newline ending the last line does not start another one
        lines.pop()
    return lines


def _split_fields(path: Path, line_number: int, raw_line: bytes) -> list[str]:
    """Decode one line and split it on tabs, quotes being ordinary characters."""
    try:
        text = raw_line.decode("utf-8")
    except UnicodeDecodeError as error:
        raise GlueFormatError(path, line_number, f"not valid UTF-8 ({error.reason} at byte {error.start})") from None
    if "\r" in text:
        raise GlueFormatError(
            path,
            line_number,
            "carriage return (\\r) found; GLUE files use \\n line endings (convert Windows files with dos2unix)",
        )
    # QUOTE_NONE: the official files contain unbalanced quotes; quote processing would merge lines or fields.
    try:
        return next(csv.reader([text], delimiter="\t", quoting=csv.QUOTE_NONE, strict=True))
    except csv.Error as error:  # e.g. a field longer than csv.field_size_limit()
        raise GlueFormatError(path, line_number, f"cannot split into fields: {error}") from None


def _parse_header(path: Path, raw_header: bytes) -> list[str]:
    header = _split_fields(path, 1, raw_header)
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise GlueFormatError(path, 1, f"duplicate header column(s): {', '.join(duplicates)}")
    return header


class _RowReader:
    """Turns the fields of one data row of one file into an output row (text columns, label, idx)."""

    def __init__(self, task: GlueTask, path: Path, columns: Sequence[str], is_test: bool) -> None:
        self.task = task
        self.path = path
        self.columns = list(columns)
        self.is_test = is_test
        required = [column for column in task.file_text_columns if column is not None]
        if not is_test:
            required.append(task.label_column)
        missing = [column for column in required if column not in self.columns]
        if missing:
            raise GlueFormatError(
                path,
                1,
                f"missing required column(s) {', '.join(map(repr, missing))} in header "
                f"{self.columns!r} (GLUE {task.name} layout)",
            )
        self.position = {name: position for position, name in enumerate(self.columns)}
        # A stray empty field can only be dropped safely after a non-text column (e.g. RTE train's label).
        self.trailing_empty_field_ok = self.columns[-1] not in task.file_text_columns
        self.label_ids = {
            (name if task.labels_are_names else str(class_id)): class_id
            for class_id, name in enumerate(task.label_list)
        }

    def read(self, line_number: int, raw_line: bytes, row_number: int) -> dict[str, str | int | float]:
        """The output row for one line; ``row_number`` (0-based) is the ``idx`` of files without index."""
        fields = self._fields(line_number, raw_line)
        row: dict[str, str | int | float] = {
            output: fields[self.position[file_column]]
            for output, file_column in zip(self.task.text_columns, self.task.file_text_columns, strict=True)
            if output is not None
        }
        row["label"] = self._no_label() if self.is_test else self._label(line_number, fields)
        row["idx"] = (
            self._index(line_number, fields[self.position[self.task.index_column]])
            if self.task.index_column in self.position
            else row_number
        )
        return row

    def _fields(self, line_number: int, raw_line: bytes) -> list[str]:
        fields = _split_fields(self.path, line_number, raw_line)
        expected = len(self.columns)
        if len(fields) == expected + 1 and fields[-1] == "" and self.trailing_empty_field_ok:
            return fields[:-1]
        if len(fields) != expected:
            raise GlueFormatError(
                self.path,
                line_number,
                f"expected {expected} tab-separated fields ({', '.join(self.columns)}), found {len(fields)}",
            )
        return fields

    def _no_label(self) -> int | float:
        return -1.0 if self.task.is_regression else -1

    def _label(self, line_number: int, fields: Sequence[str]) -> int | float:
        value = fields[self.position[self.task.label_column]]
        if self.task.is_regression:
            return self._score(line_number, value)
        try:
            return self.label_ids[value]
        except KeyError:
            raise GlueFormatError(
                self.path,
                line_number,
                f"unknown label {value!r} in column {self.task.label_column!r}; "
                f"expected one of {', '.join(self.label_ids)}",
            ) from None

    def _score(self, line_number: int, value: str) -> float:
        try:
            score = float(value)
        except ValueError:
            score = math.nan
        if not 0.0 <= score <= 5.0:  # also rejects nan and inf
            raise GlueFormatError(
                self.path,
                line_number,
                f"score {value!r} in column {self.task.label_column!r} is not a number between 0 and 5",
            )
        return score

    def _index(self, line_number: int, value: str) -> int:
        # isdigit() alone would accept non-ASCII digits such as "²", which int() rejects; the length test
        # comes before int(), which refuses strings of more than 4300 digits with its own ValueError.
        if not (value.isascii() and value.isdigit() and len(value) <= 10 and int(value) <= _MAX_INDEX):
            raise GlueFormatError(
                self.path,
                line_number,
                f"index {value!r} in column {self.task.index_column!r} is not an integer in [0, {_MAX_INDEX}]",
            )
        return int(value)


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
        predictions: one per test row, in file order: class ids (ints, e.g. the argmax of the logits), or
            scores for STS-B. MNLI, QNLI and RTE are written as label names, the others as 0/1, STS-B as
            floats with three decimals, as the leaderboard expects.
        output_dir: folder for the file; created if needed.
        split: the test split predicted: ``"test"``, or ``"test_matched"``/``"test_mismatched"`` for MNLI.
        indices: the rows' ``idx`` values if the predictions are not in file order (default 0, 1, ...).

    Returns:
        The path of the written file, named as the leaderboard requires (``CoLA.tsv``, ``MNLI-m.tsv``, ...).
    """
    task = get_glue_task(task_name)
    if split not in task.submission_files:
        raise ValueError(
            f"GLUE {task.name}: no submission file for split {split!r}; "
            f"choose one of {', '.join(task.submission_files)}"
        )
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
            f"GLUE {task.name} predictions must be integer class ids (take the argmax of the logits); "
            f"got {prediction!r}"
        ) from None
    if not 0 <= class_id < task.num_labels:
        raise ValueError(f"GLUE {task.name}: class id {class_id} is not in [0, {task.num_labels - 1}]")
    return task.label_list[class_id] if task.labels_are_names else str(class_id)
