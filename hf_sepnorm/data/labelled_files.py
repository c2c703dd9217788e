"""A user's own labelled texts for sequence classification or regression: CSV or JSON-lines files, read by `datasets`
as transformers' `run_glue.py` / `run_classification.py` read them (--train_file, --validation_file, --test_file).

The text columns are `sentence1` (and `sentence2`) when there, the ones `--text_column_names` names, or else the columns
besides the label. The label column (`label`, or `--label_column_name`) holds class names or ids, mapped to ids in
sorted order (the names reach the model's `id2label`, so pipelines print them), or floats, which mean regression.
Every file is checked before any work: its format, encoding, columns and labels, each mistake named in one line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import datasets

from ..errors import InputError, MissingInputError
from .text import check_text_files

# file suffix -> the `datasets` builder that reads it
BUILDERS = {".csv": "csv", ".json": "json", ".jsonl": "json"}
FLAGS = {"train": "--train_file", "validation": "--validation_file", "test": "--test_file"}


@dataclass
class LabelledFiles:
    """The splits read from the user's files: the text columns, `label` (class id, -1 where a test file has none; or
    a float for regression) and `idx` (the row's number in its file)."""

    splits: datasets.DatasetDict
    text_columns: list[str]
    label_list: list[str]  # class names, index = class id; empty for regression
    files: dict[str, Path]

    @property
    def is_regression(self) -> bool:
        return not self.label_list

    def describe(self, split: str, rows: int | None = None) -> str:
        """How a card names a split's data: the file's name and the rows used, `train.csv` (440 rows)."""
        total = self.splits[split].num_rows
        used = total if rows is None or rows >= total else rows
        return f"`{self.files[split].name}` ({used} rows{'' if used == total else f' of {total}'})"


def load_labelled_files(
    files: dict[str, str],
    text_column_names: str | None = None,
    label_column_name: str | None = None,
    encoding: str = "utf-8",
    cache_dir: str | None = None,
) -> LabelledFiles:
    """Read `files` (split -> CSV or JSON-lines path; splits `train`, `validation`, `test`). The labels of the
    training and validation files make the classes (sorted; numbers in numeric order); float labels make it a
    regression. A test file may leave out the label column."""
    label_column = label_column_name or "label"
    paths = {split: Path(path) for split, path in files.items()}
    builders = set()
    for split, path in paths.items():
        if path.suffix.lower() not in BUILDERS:
            raise InputError(f"{FLAGS[split]} {path}: expected a .csv, .json or .jsonl file (JSON lines: one object "
                             "per line).")  # fmt: skip
        if not path.is_file():
            raise MissingInputError(f"{FLAGS[split]} {path}: no such file.")
        builders.add(BUILDERS[path.suffix.lower()])
        check_text_files([str(path)], FLAGS[split], encoding)
    if len(builders) > 1:
        named = ", ".join(map(str, paths.values()))
        raise InputError(f"{named}: give every file in the same format, CSV or JSON lines.")
    builder = builders.pop()
    raw = {split: read_file(builder, split, path, encoding, cache_dir) for split, path in paths.items()}

    for split, dataset in raw.items():
        if label_column not in dataset.column_names and split != "test":
            raise InputError(
                f"{FLAGS[split]} {paths[split]}: no {label_column!r} column (columns: "
                f"{', '.join(dataset.column_names)}). Name the label column with --label_column_name."
            )
    text_columns = choose_text_columns(raw, paths, label_column, text_column_names)
    labelled = [dataset for split, dataset in raw.items() if label_column in dataset.column_names and split != "test"]
    if not labelled:  # the classes (and whether it is a regression) come from labelled files
        raise InputError(f"{FLAGS['test']} alone does not say which labels there are: give --train_file or "
                         "--validation_file too (the files the model was trained and evaluated on).")  # fmt: skip
    # float labels mean scores (an integer column beside them is scores too: "3" in a file of "2.5"s)
    dtypes = {dataset.features[label_column].dtype for dataset in labelled}
    is_regression = bool(dtypes & {"float32", "float64"}) and dtypes <= {"float32", "float64", "int32", "int64"}
    label_list = [] if is_regression else class_names(labelled, label_column)
    splits = {}
    for split, dataset in raw.items():
        labels = [label_column] if label_column in dataset.column_names else []
        dataset = dataset.select_columns([*text_columns, *labels])
        if label_column != "label" and label_column in dataset.column_names:
            dataset = dataset.rename_column(label_column, "label")
        splits[split] = to_label_ids(dataset, label_list, is_regression, split, paths[split])
    return LabelledFiles(datasets.DatasetDict(splits), text_columns, label_list, paths)


def read_file(builder: str, split: str, path: Path, encoding: str, cache_dir: str | None) -> datasets.Dataset:
    options = {"keep_default_na": False} if builder == "csv" else {}  # "NA", "null", "nan" are words of a sentence
    try:
        return datasets.load_dataset(builder, data_files={split: str(path)}, encoding=encoding, cache_dir=cache_dir,
                                     **options)[split]  # fmt: skip
    except Exception as error:  # datasets wraps pandas' or json's reason in a long chain: name the file and the cause
        cause = error
        while cause.__cause__ is not None or cause.__context__ is not None:
            cause = cause.__cause__ or cause.__context__
        layout = "CSV with a header row" if builder == "csv" else "JSON lines, one object per line"
        raise InputError(f"{FLAGS[split]} {path}: cannot read it as {layout}: {str(cause).splitlines()[0]}") from None


def choose_text_columns(raw: dict, paths: dict[str, Path], label_column: str, names: str | None) -> list[str]:
    first_split = next(iter(raw))
    columns = raw[first_split].column_names
    if names:
        chosen = [name.strip() for name in names.split(",") if name.strip()]
    elif "sentence1" in columns:
        chosen = ["sentence1", *(["sentence2"] if "sentence2" in columns else [])]
    else:
        chosen = [column for column in columns if column != label_column]
    if not 1 <= len(chosen) <= 2:
        raise InputError(
            f"{FLAGS[first_split]} {paths[first_split]}: {len(chosen)} text columns ({', '.join(chosen) or 'none'}); a "
            "model reads one text or a pair: name them with --text_column_names (e.g. --text_column_names "
            "question,answer)."
        )
    for split, dataset in raw.items():
        missing = [column for column in chosen if column not in dataset.column_names]
        if missing:
            raise InputError(
                f"{FLAGS[split]} {paths[split]}: no {', '.join(map(repr, missing))} column (columns: "
                f"{', '.join(dataset.column_names)}); name the text columns with --text_column_names."
            )
    return chosen


def class_names(labelled: list[datasets.Dataset], label_column: str) -> list[str]:
    """The classes of the labelled splits, sorted: numbers in numeric order, else as text."""
    values = {value for dataset in labelled for value in dataset[label_column] if value is not None and value != ""}
    if all(isinstance(value, int) or (isinstance(value, str) and value.lstrip("-").isdigit()) for value in values):
        return [str(value) for value in sorted(values, key=int)]
    return sorted(map(str, values))


def to_label_ids(dataset: datasets.Dataset, label_list: list[str], is_regression: bool, split: str,
                 path: Path) -> datasets.Dataset:  # fmt: skip
    """`label` as class ids of `label_list` (-1 in a test file without labels) or floats, and `idx`."""
    dataset = dataset.add_column("idx", list(range(len(dataset))))
    values = dataset["label"] if "label" in dataset.column_names else [None] * len(dataset)
    if "label" in dataset.column_names:
        dataset = dataset.remove_columns("label")
    if missing := [row for row, value in enumerate(values) if value is None or value == ""]:
        if split != "test" or len(missing) != len(values):
            raise InputError(f"{FLAGS[split]} {path}: row {missing[0] + 1} has no label ({len(missing)} rows have "
                             "none); give every training and validation row a label.")  # fmt: skip
        values = [None] * len(values)
    if is_regression:
        scores = [-1.0 if value is None else float(value) for value in values]
        dataset = dataset.add_column("label", scores)
        return dataset.cast_column("label", datasets.Value("float32"))
    label2id = {name: index for index, name in enumerate(label_list)}
    unknown = sorted({str(value) for value in values if value is not None and str(value) not in label2id})
    if unknown:
        raise InputError(f"{FLAGS[split]} {path}: labels {', '.join(unknown[:5])} are in neither the training nor the "
                         f"validation file ({', '.join(label_list)}).")  # fmt: skip
    ids = [-1 if value is None else label2id[str(value)] for value in values]
    dataset = dataset.add_column("label", ids)
    return dataset.cast_column("label", datasets.Value("int64"))


def own_files(train_file: str | None, validation_file: str | None, test_file: str | None) -> dict[str, str]:
    """The files given, by split."""
    given = {"train": train_file, "validation": validation_file, "test": test_file}
    return {split: os.fspath(path) for split, path in given.items() if path}
