"""GLUE loading from the official TSV files: real files, every task's layout, malformed input, fuzzing."""

from __future__ import annotations

import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hf_sepnorm.data import (
    GLUE_TASKS,
    GlueFormatError,
    glue_features,
    load_glue,
    load_glue_from_dir,
    write_glue_predictions,
)

BOM = "\ufeff"

# ---------------------------------------------------------------------------------------------------------
# The official layouts, written out independently of the loader's own tables (from the GLUE download).
# ---------------------------------------------------------------------------------------------------------
STANDARD_SPLITS = {"train.tsv": "train", "dev.tsv": "validation", "test.tsv": "test"}
MNLI_SPLITS = {
    "train.tsv": "train",
    "dev_matched.tsv": "validation_matched",
    "dev_mismatched.tsv": "validation_mismatched",
    "test_matched.tsv": "test_matched",
    "test_mismatched.tsv": "test_mismatched",
}
COLA_HEADERLESS = ["source", "label", "original_label", "sentence"]
MRPC_HEADER = ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"]
STSB_HEADER = ["index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2"]
QQP_HEADER = ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"]
MNLI_HEADER = [
    "index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
    "sentence1_parse", "sentence2_parse", "sentence1", "sentence2",
]  # fmt: skip
PAIR_HEADER = ["index", "sentence1", "sentence2"]


@dataclass
class OfficialLayout:
    """One task as laid out in the official download."""

    directory: str
    splits: dict[str, str]  # file name -> hub split name
    headers: dict[str, list[str] | None]  # file name -> header row; None: no header row (CoLA train/dev)
    text_columns: dict[str, str]  # hub column -> file column
    label_column: str
    label_values: list[str]  # as spelled in the files; position = class id (STS-B: example scores)
    index_column: str = "index"
    headerless_columns: list[str] = field(default_factory=list)
    bom_files: tuple[str, ...] = ()


def _standard_headers(train_dev: list[str] | None, test: list[str]) -> dict[str, list[str] | None]:
    return {"train.tsv": train_dev, "dev.tsv": train_dev, "test.tsv": test}


LAYOUTS = {
    "cola": OfficialLayout(
        "CoLA", STANDARD_SPLITS, _standard_headers(None, ["index", "sentence"]), {"sentence": "sentence"},
        "label", ["0", "1"], headerless_columns=COLA_HEADERLESS,
    ),
    "sst2": OfficialLayout(
        "SST-2", STANDARD_SPLITS, _standard_headers(["sentence", "label"], ["index", "sentence"]),
        {"sentence": "sentence"}, "label", ["0", "1"],
    ),
    "mrpc": OfficialLayout(
        "MRPC", STANDARD_SPLITS, _standard_headers(MRPC_HEADER, ["index", *MRPC_HEADER[1:]]),
        {"sentence1": "#1 String", "sentence2": "#2 String"}, "Quality", ["0", "1"],
        bom_files=("train.tsv", "dev.tsv"),
    ),
    "stsb": OfficialLayout(
        "STS-B", STANDARD_SPLITS, _standard_headers([*STSB_HEADER, "score"], STSB_HEADER),
        {"sentence1": "sentence1", "sentence2": "sentence2"}, "score", ["0.000", "2.400", "5.000"],
    ),
    "qqp": OfficialLayout(
        "QQP", STANDARD_SPLITS, _standard_headers(QQP_HEADER, ["id", "question1", "question2"]),
        {"question1": "question1", "question2": "question2"}, "is_duplicate", ["0", "1"], index_column="id",
    ),
    "mnli": OfficialLayout(
        "MNLI", MNLI_SPLITS,
        {
            "train.tsv": [*MNLI_HEADER, "label1", "gold_label"],
            "dev_matched.tsv": [*MNLI_HEADER, "label1", "label2", "label3", "label4", "label5", "gold_label"],
            "dev_mismatched.tsv": [*MNLI_HEADER, "label1", "label2", "label3", "label4", "label5", "gold_label"],
            "test_matched.tsv": MNLI_HEADER,
            "test_mismatched.tsv": MNLI_HEADER,
        },
        {"premise": "sentence1", "hypothesis": "sentence2"}, "gold_label",
        ["entailment", "neutral", "contradiction"],
    ),
    "qnli": OfficialLayout(
        "QNLI", STANDARD_SPLITS,
        _standard_headers(["index", "question", "sentence", "label"], ["index", "question", "sentence"]),
        {"question": "question", "sentence": "sentence"}, "label", ["entailment", "not_entailment"],
    ),
    "rte": OfficialLayout(
        "RTE", STANDARD_SPLITS, _standard_headers([*PAIR_HEADER, "label"], PAIR_HEADER),
        {"sentence1": "sentence1", "sentence2": "sentence2"}, "label", ["entailment", "not_entailment"],
    ),
    "wnli": OfficialLayout(
        "WNLI", STANDARD_SPLITS, _standard_headers([*PAIR_HEADER, "label"], PAIR_HEADER),
        {"sentence1": "sentence1", "sentence2": "sentence2"}, "label", ["0", "1"],
    ),
}  # fmt: skip
ROWS_PER_FILE = 4


def synthetic_value(task: str, column: str, row: int) -> str:
    """The value of one cell, with unbalanced quotes and non-ASCII text to catch quote handling."""
    layout = LAYOUTS[task]
    if column == layout.label_column:
        return layout.label_values[row % len(layout.label_values)]
    if column == layout.index_column:
        return str(100 + row)
    if column in layout.text_columns.values():
        return f'"{task} {column} {row}, naïve — «ok»'
    return f"{column}-{row}"


def write_lines(path: Path, lines: list[str], bom: bool = False) -> None:
    path.write_bytes(((BOM if bom else "") + "".join(line + "\n" for line in lines)).encode("utf-8"))


def write_official_task(root: Path, task: str) -> Path:
    """Write ROWS_PER_FILE rows per split file of ``task`` in its official layout under ``root``."""
    layout = LAYOUTS[task]
    task_dir = root / layout.directory
    task_dir.mkdir(parents=True)
    for file_name, header in layout.headers.items():
        columns = header or layout.headerless_columns
        rows = ["\t".join(synthetic_value(task, column, row) for column in columns) for row in range(ROWS_PER_FILE)]
        header_lines = [] if header is None else ["\t".join(header)]
        write_lines(task_dir / file_name, header_lines + rows, bom=file_name in layout.bom_files)
    return task_dir


def expected_row(task: str, columns: list[str], fields: list[str], row_number: int, is_test: bool) -> dict:
    """What the loader must return for one data row, from the official layout."""
    layout = LAYOUTS[task]
    record = dict(zip(columns, fields, strict=True))
    row = {hub_column: record[file_column] for hub_column, file_column in layout.text_columns.items()}
    if is_test:
        row["label"] = -1.0 if task == "stsb" else -1
    elif task == "stsb":
        row["label"] = pytest.approx(float(record["score"]), abs=1e-6)
    else:
        row["label"] = layout.label_values.index(record[layout.label_column])
    row["idx"] = int(record[layout.index_column]) if layout.index_column in record else row_number
    return row


def replace_line(path: Path, line_number: int, new_line: str | bytes) -> None:
    lines = path.read_bytes().split(b"\n")
    lines[line_number - 1] = new_line.encode("utf-8") if isinstance(new_line, str) else new_line
    path.write_bytes(b"\n".join(lines))


# ---------------------------------------------------------------------------------------------------------
# The task table
# ---------------------------------------------------------------------------------------------------------
def test_glue_tasks_describe_every_task_with_hub_names():
    assert set(GLUE_TASKS) == set(LAYOUTS)
    for name, task in GLUE_TASKS.items():
        assert task.output_text_columns == tuple(LAYOUTS[name].text_columns), name
        assert set(task.split_files.values()) == set(LAYOUTS[name].splits), name
        assert list(task.split_files) == list(LAYOUTS[name].splits.values()), name
    assert GLUE_TASKS["mnli"].label_list == ("entailment", "neutral", "contradiction")
    assert GLUE_TASKS["rte"].label_list == GLUE_TASKS["qnli"].label_list == ("entailment", "not_entailment")
    assert GLUE_TASKS["stsb"].is_regression and GLUE_TASKS["stsb"].num_labels == 1
    assert not any(task.is_regression for name, task in GLUE_TASKS.items() if name != "stsb")
    assert GLUE_TASKS["cola"].metrics == ("matthews_correlation",)
    assert GLUE_TASKS["mrpc"].metrics == GLUE_TASKS["qqp"].metrics == ("accuracy", "f1")
    assert GLUE_TASKS["stsb"].metrics == ("pearson", "spearmanr")


def test_unknown_task_lists_valid_ones(tmp_path):
    for load in (load_glue_from_dir, load_glue):
        with pytest.raises(ValueError, match="valid tasks: cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli"):
            load("sst-2", tmp_path)


# ---------------------------------------------------------------------------------------------------------
# Real official files ($SEPNORM_DATA_DIR/glue)
# ---------------------------------------------------------------------------------------------------------
REAL_ROW_COUNTS = {
    "cola": {"train": 8551, "validation": 1043, "test": 1063},
    "sst2": {"train": 67349, "validation": 872, "test": 1821},
    "mrpc": {"train": 3668, "validation": 408, "test": 1725},
    "stsb": {"train": 5749, "validation": 1500, "test": 1379},
}


@pytest.fixture(scope="module")
def official_glue_dir() -> Path:
    root = os.environ.get("SEPNORM_DATA_DIR")
    if not root:
        pytest.skip("SEPNORM_DATA_DIR is not set: it must point to the shared data holding glue/{CoLA,SST-2,...}")
    glue_dir = Path(root) / "glue"
    if not glue_dir.is_dir():
        pytest.skip(f"{glue_dir} is absent: the official GLUE files are needed")
    return glue_dir


@pytest.fixture(scope="module")
def real_glue(official_glue_dir):
    """Load each real task once for the module (SST-2 train alone has 67k rows)."""
    loaded = {}

    def load(task: str):
        if task not in loaded:
            loaded[task] = load_glue_from_dir(task, official_glue_dir)
        return loaded[task]

    return load


@pytest.mark.parametrize("task", REAL_ROW_COUNTS)
def test_real_files_have_the_official_row_counts(real_glue, task):
    dataset = real_glue(task)
    assert {split: len(dataset[split]) for split in dataset} == REAL_ROW_COUNTS[task]
    for split in dataset:
        assert dataset[split].features == glue_features(task)
        assert dataset[split].column_names == [*LAYOUTS[task].text_columns, "label", "idx"]


@pytest.mark.parametrize("task", REAL_ROW_COUNTS)
def test_real_files_first_and_last_rows_match_the_file(real_glue, official_glue_dir, task):
    layout = LAYOUTS[task]
    for file_name, split in layout.splits.items():
        # Read the file independently: plain str.split, no csv module, BOM stripped by utf-8-sig.
        lines = (official_glue_dir / layout.directory / file_name).read_text(encoding="utf-8-sig").split("\n")
        if lines[-1] == "":  # CoLA dev.tsv has no final newline, the other files do
            lines.pop()
        header = layout.headers[file_name]
        data_lines = lines if header is None else lines[1:]
        columns = header or layout.headerless_columns
        assert header is None or lines[0].split("\t")[: len(header)] == header
        for row_number in (0, len(data_lines) - 1):
            fields = data_lines[row_number].split("\t")
            expected = expected_row(task, columns, fields, row_number, split == "test")
            assert real_glue(task)[split][row_number] == expected, (file_name, row_number)


@pytest.mark.parametrize("task", REAL_ROW_COUNTS)
def test_real_labels_are_in_range(real_glue, task):
    dataset = real_glue(task)
    for split in ("train", "validation"):
        labels = np.asarray(dataset[split]["label"])
        if task == "stsb":
            assert labels.min() >= 0.0 and labels.max() <= 5.0 and labels.std() > 0.5
        else:
            assert set(labels.tolist()) == {0, 1}
    assert set(dataset["test"]["label"]) == {-1}
    assert dataset["test"]["idx"] == list(range(len(dataset["test"])))


def test_real_mrpc_byte_order_mark_is_removed(real_glue, official_glue_dir):
    raw = (official_glue_dir / "MRPC" / "train.tsv").read_bytes()
    assert raw.startswith(BOM.encode("utf-8") + b"Quality\t")
    # "Quality" is found by name only once the BOM is stripped; its first value is the first label.
    first_quality = int(raw.split(b"\n")[1].split(b"\t")[0])
    train = real_glue("mrpc")["train"]
    assert train[0]["label"] == first_quality
    assert not any(text.startswith(BOM) for text in train["sentence1"])


# ---------------------------------------------------------------------------------------------------------
# Every task's layout, in small files
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("task", list(LAYOUTS))
def test_every_task_layout_loads_like_the_hub(tmp_path, task):
    write_official_task(tmp_path, task)
    layout = LAYOUTS[task]
    dataset = load_glue_from_dir(task, tmp_path)

    assert list(dataset) == list(layout.splits.values())
    for file_name, split in layout.splits.items():
        assert dataset[split].features == glue_features(task)
        columns = layout.headers[file_name] or layout.headerless_columns
        expected = [
            expected_row(task, columns, [synthetic_value(task, c, row) for c in columns], row, split.startswith("test"))
            for row in range(ROWS_PER_FILE)
        ]
        assert dataset[split].to_list() == expected, split
        assert "skipped 0 malformed row(s)" in dataset[split].info.description


def test_data_dir_may_be_the_task_folder_itself(tmp_path):
    task_dir = write_official_task(tmp_path, "rte")
    assert (
        load_glue_from_dir("rte", task_dir)["train"].to_list() == load_glue_from_dir("rte", tmp_path)["train"].to_list()
    )


def test_load_glue_reads_data_dir(tmp_path):
    write_official_task(tmp_path, "wnli")
    assert (
        load_glue("wnli", tmp_path)["validation"].to_list()
        == load_glue_from_dir("wnli", tmp_path)["validation"].to_list()
    )


def test_quotes_are_literal_characters(tmp_path):
    task_dir = write_official_task(tmp_path, "sst2")
    write_lines(task_dir / "train.tsv", ["sentence\tlabel", '"an open quote\t1', 'a "quoted" word\t0', 'closing"\t1'])
    train = load_glue_from_dir("sst2", tmp_path)["train"]
    assert train["sentence"] == ['"an open quote', 'a "quoted" word', 'closing"']
    assert train["label"] == [1, 0, 1]


def test_rte_row_with_an_extra_empty_trailing_field_is_accepted(tmp_path):
    task_dir = write_official_task(tmp_path, "rte")
    train_file = task_dir / "train.tsv"
    second_row = train_file.read_text(encoding="utf-8").split("\n")[2]
    replace_line(train_file, 3, second_row + "\t")
    assert load_glue_from_dir("rte", tmp_path)["train"][1] == expected_row(
        "rte", [*PAIR_HEADER, "label"], second_row.split("\t"), 1, is_test=False
    )


def test_extra_empty_field_after_a_text_column_is_rejected(tmp_path):
    # In CoLA the sentence is the last column: the tab may belong to it, so it must not be dropped silently.
    task_dir = write_official_task(tmp_path, "cola")
    replace_line(task_dir / "train.tsv", 2, "gj04\t1\t\tA sentence.\t")
    with pytest.raises(GlueFormatError, match=r"train\.tsv, line 2: expected 4 tab-separated fields .* found 5"):
        load_glue_from_dir("cola", tmp_path)


# ---------------------------------------------------------------------------------------------------------
# Malformed input
# ---------------------------------------------------------------------------------------------------------
MALFORMED_ROWS = [
    (
        "rte",
        "train.tsv",
        3,
        "1\tonly two fields",
        r"expected 4 tab-separated fields \(index, sentence1, sentence2, label\), found 2",
    ),
    (
        "mnli",
        "dev_matched.tsv",
        2,
        "\t".join(["0"] * 15 + ["maybe"]),
        r"unknown label 'maybe' in column 'gold_label'; expected one of entailment, neutral, contradiction",
    ),
    ("sst2", "train.tsv", 4, "a sentence\t2", r"unknown label '2' in column 'label'; expected one of 0, 1"),
    ("cola", "dev.tsv", 1, "gj04\tyes\t\tA sentence.", r"unknown label 'yes'"),
    (
        "stsb",
        "train.tsv",
        2,
        "\t".join(["0"] * 9 + ["high"]),
        r"score 'high' in column 'score' is not a number between 0 and 5",
    ),
    (
        "stsb",
        "dev.tsv",
        5,
        "\t".join(["0"] * 9 + ["5.5"]),
        r"score '5.5' in column 'score' is not a number between 0 and 5",
    ),
    ("qnli", "test.tsv", 3, "x7\tq?\ts.", r"index 'x7' in column 'index' is not an integer"),
    (
        "qnli",
        "train.tsv",
        4,
        "9" * 5000 + "\tq?\ts.\tentailment",
        r"index '9{5000}' in column 'index' is not an integer",
    ),
    ("wnli", "train.tsv", 2, b"0\t\xff\xfe bad bytes\ts\t1", r"not valid UTF-8"),
    ("qqp", "train.tsv", 2, "0\t1\t2\tq1\r\tq2\t1", r"carriage return"),
]


@pytest.mark.parametrize(("task", "file_name", "line_number", "bad_line", "problem"), MALFORMED_ROWS)
def test_malformed_row_names_file_and_line(tmp_path, task, file_name, line_number, bad_line, problem):
    task_dir = write_official_task(tmp_path, task)
    replace_line(task_dir / file_name, line_number, bad_line)
    with pytest.raises(GlueFormatError, match=problem) as caught:
        load_glue_from_dir(task, tmp_path)
    assert str(caught.value).startswith(f"{task_dir / file_name}, line {line_number}: ")
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(("task", "file_name", "line_number", "bad_line", "problem"), MALFORMED_ROWS)
def test_skip_malformed_skips_the_row_and_reports_it(tmp_path, caplog, task, file_name, line_number, bad_line, problem):
    task_dir = write_official_task(tmp_path, task)
    replace_line(task_dir / file_name, line_number, bad_line)
    split = LAYOUTS[task].splits[file_name]
    with caplog.at_level(logging.WARNING, logger="hf_sepnorm.data.glue"):
        dataset = load_glue_from_dir(task, tmp_path, skip_malformed=True)[split]
    assert len(dataset) == ROWS_PER_FILE - 1
    assert dataset.info.description.endswith(f"skipped 1 malformed row(s) at line(s) {line_number}")
    assert f"{task_dir / file_name}: skipped 1 malformed row(s) at line(s) {line_number}" in caplog.text


def test_skip_malformed_keeps_the_other_rows_and_their_idx(tmp_path, caplog):
    task_dir = write_official_task(tmp_path, "sst2")  # no index column in train: idx is the row number
    write_lines(task_dir / "train.tsv", ["sentence\tlabel", "a\t0", "b\tbad", "c\t1", "d", "e\t0"])
    with caplog.at_level(logging.WARNING, logger="hf_sepnorm.data.glue"):
        train = load_glue_from_dir("sst2", tmp_path, skip_malformed=True)["train"]
    assert train.to_list() == [
        {"sentence": "a", "label": 0, "idx": 0},
        {"sentence": "c", "label": 1, "idx": 2},
        {"sentence": "e", "label": 0, "idx": 4},
    ]
    assert "skipped 2 malformed row(s) at line(s) 3, 5" in train.info.description
    assert "skipped 2 malformed row(s) at line(s) 3, 5" in caplog.text


def test_missing_header_column_is_an_error_even_when_skipping(tmp_path):
    task_dir = write_official_task(tmp_path, "qnli")
    replace_line(task_dir / "dev.tsv", 1, "index\tquery\tsentence\tlabel")
    with pytest.raises(GlueFormatError, match=r"dev\.tsv, line 1: missing required column\(s\) 'question' in header"):
        load_glue_from_dir("qnli", tmp_path, skip_malformed=True)


def test_train_file_without_label_column_is_an_error(tmp_path):
    task_dir = write_official_task(tmp_path, "mnli")
    header = "\t".join(LAYOUTS["mnli"].headers["train.tsv"])
    replace_line(task_dir / "train.tsv", 1, header.replace("gold_label", "gold"))
    with pytest.raises(GlueFormatError, match=r"train\.tsv, line 1: missing required column\(s\) 'gold_label'"):
        load_glue_from_dir("mnli", tmp_path)


@pytest.mark.parametrize("content", [b"", BOM.encode("utf-8")], ids=["empty", "only-bom"])
def test_empty_file_is_an_error(tmp_path, content):
    task_dir = write_official_task(tmp_path, "mrpc")
    (task_dir / "test.tsv").write_bytes(content)
    with pytest.raises(GlueFormatError, match=r"test\.tsv: empty file"):
        load_glue_from_dir("mrpc", tmp_path, skip_malformed=True)


def test_missing_file_lists_the_files_expected(tmp_path):
    task_dir = write_official_task(tmp_path, "mnli")
    (task_dir / "dev_mismatched.tsv").unlink()
    expected_files = "train.tsv, dev_matched.tsv, dev_mismatched.tsv, test_matched.tsv, test_mismatched.tsv"
    with pytest.raises(
        FileNotFoundError, match=rf"missing dev_mismatched\.tsv in .*Expected the official files {expected_files}"
    ):
        load_glue_from_dir("mnli", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"missing train\.tsv, dev\.tsv, test\.tsv"):
        load_glue_from_dir("cola", tmp_path)


# ---------------------------------------------------------------------------------------------------------
# Fuzzing the TSV reader
# ---------------------------------------------------------------------------------------------------------
FIELD_BREAKERS = "\t\n\r"
# Characters that stress a TSV reader, mixed into otherwise arbitrary (encodable) unicode text.
tricky_text = st.text(
    st.one_of(
        st.sampled_from([*FIELD_BREAKERS, '"', "'", BOM, "\x00", "\u2028", "\x0b", "é", "😀"]),
        st.characters(codec="utf-8"),
    ),
    max_size=12,
)
FUZZ_SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def fuzz_task_dir(root: Path, task: str, train_bytes: bytes) -> Path:
    write_official_task(root, task)
    (root / LAYOUTS[task].directory / "train.tsv").write_bytes(train_bytes)
    return root


@FUZZ_SETTINGS
@given(
    rows=st.lists(st.tuples(tricky_text, tricky_text, st.sampled_from(["entailment", "not_entailment"])), max_size=5)
)
def test_fuzz_pair_rows_parse_exactly_or_fail_clearly(rows):
    """RTE layout (texts inside the row): a row is read as written, or the load fails with a located error."""
    lines = ["\t".join([str(i), sentence1, sentence2, label]) for i, (sentence1, sentence2, label) in enumerate(rows)]
    content = "\n".join(["index\tsentence1\tsentence2\tlabel", *lines]) + "\n"
    physical_lines = content.split("\n")[1:-1]
    with tempfile.TemporaryDirectory() as tmp:
        root = fuzz_task_dir(Path(tmp), "rte", content.encode("utf-8"))
        try:
            train = load_glue_from_dir("rte", root)["train"]
        except GlueFormatError as error:
            assert str(error).startswith(f"{root / 'RTE' / 'train.tsv'}, line ")
            assert 2 <= error.line_number <= len(physical_lines) + 1
            assert any(breaker in text for row in rows for text in row[:2] for breaker in FIELD_BREAKERS)
            return
    if not any(breaker in text for row in rows for text in row[:2] for breaker in FIELD_BREAKERS):
        assert train.to_list() == [
            {"sentence1": s1, "sentence2": s2, "label": ["entailment", "not_entailment"].index(label), "idx": i}
            for i, (s1, s2, label) in enumerate(rows)
        ]
    # Whatever the content, each loaded row is exactly one physical line: no field ever moved.
    assert len(train) == len(physical_lines)
    for row, line in zip(train.to_list(), physical_lines, strict=True):
        label_name = ["entailment", "not_entailment"][row["label"]]
        rebuilt = "\t".join([str(row["idx"]), row["sentence1"], row["sentence2"], label_name])
        assert line in (rebuilt, rebuilt + "\t")


@FUZZ_SETTINGS
@given(
    sentences=st.lists(tricky_text.filter(lambda text: "\n" not in text), min_size=1, max_size=5),
    with_bom=st.booleans(),
)
def test_fuzz_headerless_cola_rows_parse_exactly_or_fail_at_the_bad_line(sentences, with_bom):
    """CoLA layout (no header, sentence last): a tab or CR in a sentence is an error on that very line."""
    content = BOM * with_bom + "".join(f"gj04\t{i % 2}\t\t{sentence}\n" for i, sentence in enumerate(sentences))
    bad_rows = [i for i, sentence in enumerate(sentences) if "\t" in sentence or "\r" in sentence]
    with tempfile.TemporaryDirectory() as tmp:
        root = fuzz_task_dir(Path(tmp), "cola", content.encode("utf-8"))
        if bad_rows:
            with pytest.raises(GlueFormatError) as caught:
                load_glue_from_dir("cola", root)
            assert caught.value.line_number == bad_rows[0] + 1
            assert str(caught.value).startswith(f"{root / 'CoLA' / 'train.tsv'}, line {bad_rows[0] + 1}: ")
        else:
            train = load_glue_from_dir("cola", root)["train"]
            assert train.to_list() == [{"sentence": s, "label": i % 2, "idx": i} for i, s in enumerate(sentences)]


@FUZZ_SETTINGS
@given(
    lines=st.lists(
        st.one_of(st.binary(max_size=30), tricky_text.map(lambda text: f"3\t{text}\t{text}\tentailment".encode())),
        max_size=4,
    ),
    skip_malformed=st.booleans(),
)
def test_fuzz_arbitrary_bytes_never_crash_with_another_error(lines, skip_malformed):
    """Whatever the bytes, the result is a dataset (every line kept or counted as skipped) or a GlueFormatError."""
    content = b"index\tquestion\tsentence\tlabel\n" + b"\n".join(lines)
    data_lines = content.removesuffix(b"\n").split(b"\n")[1:]
    with tempfile.TemporaryDirectory() as tmp:
        root = fuzz_task_dir(Path(tmp), "qnli", content)
        try:
            train = load_glue_from_dir("qnli", root, skip_malformed=skip_malformed)["train"]
        except GlueFormatError as error:
            assert not skip_malformed
            assert error.path == root / "QNLI" / "train.tsv" and 2 <= error.line_number <= len(data_lines) + 1
            return
    kept, skipped = map(int, re.search(r"(\d+) rows; skipped (\d+) malformed", train.info.description).groups())
    assert kept == len(train) and kept + skipped == len(data_lines)
    assert skip_malformed or skipped == 0
    assert set(train["label"]) <= {0, 1}


# ---------------------------------------------------------------------------------------------------------
# Submission files
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("task", "split", "predictions", "file_name", "values"),
    [
        ("cola", "test", [1, 0, 1], "CoLA.tsv", ["1", "0", "1"]),
        ("sst2", "test", np.array([0, 1, 1]), "SST-2.tsv", ["0", "1", "1"]),
        ("mrpc", "test", [1, 1, 0], "MRPC.tsv", ["1", "1", "0"]),
        ("stsb", "test", np.array([4.25, 0.1, 3.0], dtype=np.float32), "STS-B.tsv", ["4.250", "0.100", "3.000"]),
        ("qqp", "test", [0, 0, 1], "QQP.tsv", ["0", "0", "1"]),
        ("mnli", "test_matched", [0, 1, 2], "MNLI-m.tsv", ["entailment", "neutral", "contradiction"]),
        (
            "mnli",
            "test_mismatched",
            np.array([2, 2, 0]),
            "MNLI-mm.tsv",
            ["contradiction", "contradiction", "entailment"],
        ),
        ("qnli", "test", [1, 0, 0], "QNLI.tsv", ["not_entailment", "entailment", "entailment"]),
        ("rte", "test", [0, 1, 1], "RTE.tsv", ["entailment", "not_entailment", "not_entailment"]),
        ("wnli", "test", [1, 0, 1], "WNLI.tsv", ["1", "0", "1"]),
    ],
)
def test_write_glue_predictions_official_names_and_contents(tmp_path, task, split, predictions, file_name, values):
    path = write_glue_predictions(task, predictions, tmp_path / "submission", split=split)
    assert path == tmp_path / "submission" / file_name
    expected = "index\tprediction\n" + "".join(f"{i}\t{value}\n" for i, value in enumerate(values))
    assert path.read_bytes() == expected.encode("utf-8")


def test_write_glue_predictions_uses_given_indices(tmp_path):
    path = write_glue_predictions("rte", [1, 0], tmp_path, indices=[7, 3])
    assert path.read_text(encoding="utf-8") == "index\tprediction\n7\tnot_entailment\n3\tentailment\n"


@pytest.mark.parametrize(
    ("task", "predictions", "split", "problem"),
    [
        ("mnli", [0], "test", r"no submission file for split 'test'; choose one of test_matched, test_mismatched"),
        ("cola", [0], "validation", r"no submission file for split 'validation'"),
        ("sst2", [0.0, 1.0], "test", r"must be integer class ids"),
        ("rte", [2], "test", r"class id 2 is not in \[0, 1\]"),
        ("mnli", [np.array([0.1, 0.9, 0.0])], "test_matched", r"must be integer class ids"),
    ],
)
def test_write_glue_predictions_rejects_bad_input(tmp_path, task, predictions, split, problem):
    with pytest.raises(ValueError, match=problem):
        write_glue_predictions(task, predictions, tmp_path, split=split)
    assert not list(tmp_path.iterdir())
