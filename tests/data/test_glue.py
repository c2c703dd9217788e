"""GLUE from the official TSV files: the real files, every task's layout, the Hub's rows and labels, submissions.

The reference is the reading that built the Hub's ``nyu-mll/glue`` (its loading script): ``csv.DictReader`` with
``QUOTE_NONE``, extra fields ignored, rows missing their label dropped, ``idx`` = the row's number in its file.
"""

from __future__ import annotations

import csv
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import datasets
import huggingface_hub
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hf_sepnorm.data import GLUE_TASKS, load_glue, write_glue_predictions


# The official layouts, written out independently of the loader's table (from the GLUE download), and the
# Hub's columns and label names (from nyu-mll/glue's features).
@dataclass
class Layout:
    folder: str
    headers: dict[str, list[str] | None]  # file -> header row; None: no header (CoLA train/dev)
    text_columns: dict[str, str]  # Hub column -> file column
    label_column: str
    label_values: list[str]  # as the files spell them
    hub_label_names: list[str] | None  # None: a float score (STS-B)


def standard(train_and_dev: list[str] | None, test: list[str]) -> dict[str, list[str] | None]:
    return {"train.tsv": train_and_dev, "dev.tsv": train_and_dev, "test.tsv": test}


HUB_SPLITS = {"train.tsv": "train", "dev.tsv": "validation", "test.tsv": "test",
              "dev_matched.tsv": "validation_matched", "dev_mismatched.tsv": "validation_mismatched",
              "test_matched.tsv": "test_matched", "test_mismatched.tsv": "test_mismatched"}  # fmt: skip
MRPC = ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"]
STSB = ["index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2"]
MNLI = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
        "sentence1_parse", "sentence2_parse", "sentence1", "sentence2"]  # fmt: skip
MNLI_DEV = [*MNLI, "label1", "label2", "label3", "label4", "label5", "gold_label"]
PAIR = ["index", "sentence1", "sentence2"]
SENTENCE, SENTENCE_PAIR = {"sentence": "sentence"}, {"sentence1": "sentence1", "sentence2": "sentence2"}
ENTAILMENT = ["entailment", "not_entailment"]
LAYOUTS = {
    "cola": Layout("CoLA", standard(None, ["index", "sentence"]), SENTENCE, "label", ["0", "1"],
                   ["unacceptable", "acceptable"]),
    "sst2": Layout("SST-2", standard(["sentence", "label"], ["index", "sentence"]), SENTENCE, "label", ["0", "1"],
                   ["negative", "positive"]),
    "mrpc": Layout("MRPC", standard(MRPC, ["index", *MRPC[1:]]), {"sentence1": "#1 String", "sentence2": "#2 String"},
                   "Quality", ["0", "1"], ["not_equivalent", "equivalent"]),
    "stsb": Layout("STS-B", standard([*STSB, "score"], STSB), SENTENCE_PAIR, "score",
                   ["0.000", "2.400", "5.000", "3.8"], None),
    "qqp": Layout("QQP", standard(["id", "qid1", "qid2", "question1", "question2", "is_duplicate"],
                                 ["id", "question1", "question2"]),
                  {"question1": "question1", "question2": "question2"}, "is_duplicate", ["0", "1"],
                  ["not_duplicate", "duplicate"]),
    "mnli": Layout("MNLI", {"train.tsv": [*MNLI, "label1", "gold_label"], "dev_matched.tsv": MNLI_DEV,
                            "dev_mismatched.tsv": MNLI_DEV, "test_matched.tsv": MNLI, "test_mismatched.tsv": MNLI},
                   {"premise": "sentence1", "hypothesis": "sentence2"}, "gold_label",
                   ["entailment", "neutral", "contradiction"], ["entailment", "neutral", "contradiction"]),
    "qnli": Layout("QNLI", standard(["index", "question", "sentence", "label"], ["index", "question", "sentence"]),
                   {"question": "question", "sentence": "sentence"}, "label", ENTAILMENT, ENTAILMENT),
    "rte": Layout("RTE", standard([*PAIR, "label"], PAIR), SENTENCE_PAIR, "label", ENTAILMENT, ENTAILMENT),
    "wnli": Layout("WNLI", standard([*PAIR, "label"], PAIR), SENTENCE_PAIR, "label", ["0", "1"],
                   ["not_entailment", "entailment"]),
}  # fmt: skip
COLA_COLUMNS = ["source", "label", "original_label", "sentence"]
# Texts a TSV reader can get wrong: unbalanced quotes, words pandas would take for missing values, non-ASCII.
TRICKY_TEXTS = ['"an open quote', "NA", 'a "quoted" word', "null", "naïve — «ok» 😀", "", "nan", "it's"]


def hub_rows(path: Path, task: str, split: str) -> list[dict]:
    """What the Hub's copy holds for an official file, read as its loading script read it."""
    layout = LAYOUTS[task]
    text_columns, label_column, label_names = layout.text_columns, layout.label_column, layout.hub_label_names
    with path.open(encoding="utf-8-sig") as file:
        fieldnames = COLA_COLUMNS if layout.headers[path.name] is None else None
        records = list(csv.DictReader(file, fieldnames, delimiter="\t", quoting=csv.QUOTE_NONE))
    rows = []
    for number, record in enumerate(records):
        row = {column: record[file_column] for column, file_column in text_columns.items()}
        label = -1 if split.startswith("test") else record[label_column]
        if label in ("", None) or None in row.values():
            continue  # "Filter out corrupted rows"
        if task == "stsb":
            row["label"] = pytest.approx(float(label), abs=1e-6)
        elif label != -1:
            row["label"] = label_names.index(label) if label in label_names else int(label)
        else:
            row["label"] = -1
        rows.append({**row, "idx": number})
    return rows


def expected_features(task: str) -> datasets.Features:
    layout = LAYOUTS[task]
    names = layout.hub_label_names
    label = datasets.Value("float32") if names is None else datasets.ClassLabel(names=names)
    return datasets.Features({**dict.fromkeys(layout.text_columns, datasets.Value("string")), "label": label,
                              "idx": datasets.Value("int32")})  # fmt: skip


def write_official_task(root: Path, task: str, rows: int = 4) -> Path:
    """Small files in the task's official layout; the first row has an extra empty field (RTE train has one), the
    third an extra non-empty one; MRPC train/dev start with a byte-order mark, as the official ones do."""
    layout = LAYOUTS[task]
    task_dir = root / layout.folder
    task_dir.mkdir(parents=True)
    for name, header in layout.headers.items():
        columns = header or COLA_COLUMNS
        lines = [] if header is None else ["\t".join(header)]
        for row in range(rows):
            values = [
                layout.label_values[row % len(layout.label_values)] if column == layout.label_column
                else TRICKY_TEXTS[(2 * row + position) % len(TRICKY_TEXTS)] if column in layout.text_columns.values()
                else f"{column}-{row}"
                for position, column in enumerate(columns)
            ]  # fmt: skip
            lines.append("\t".join(values) + {0: "\t", 2: "\tstray"}.get(row, ""))
        bom = "\ufeff" if task == "mrpc" and name != "test.tsv" else ""
        (task_dir / name).write_bytes((bom + "".join(line + "\n" for line in lines)).encode("utf-8"))
    return task_dir


# ---- every task's layout ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("task", list(LAYOUTS))
def test_every_task_layout_loads_the_hub_rows_and_labels(tmp_path, task):
    task_dir = write_official_task(tmp_path, task)
    loaded = load_glue(task, tmp_path)
    files = LAYOUTS[task].headers
    assert list(loaded) == [HUB_SPLITS[name] for name in files]
    for name in files:
        split = HUB_SPLITS[name]
        assert loaded[split].features == expected_features(task), split
        assert loaded[split].to_list() == hub_rows(task_dir / name, task, split), split
    assert GLUE_TASKS[task].num_labels == (1 if task == "stsb" else len(LAYOUTS[task].hub_label_names))


def test_data_dir_may_be_the_task_folder_itself(tmp_path):
    task_dir = write_official_task(tmp_path, "rte")
    assert load_glue("rte", task_dir)["train"].to_list() == load_glue("rte", tmp_path)["train"].to_list()


def test_rows_without_a_label_are_dropped_as_in_the_hub(tmp_path, caplog):
    task_dir = write_official_task(tmp_path, "rte")
    with (task_dir / "train.tsv").open("a", encoding="utf-8") as file:
        file.write("7\tno label\tin this row\n8\tan empty\tlabel\t\n9\tthe last\trow\tentailment\n")
    train = load_glue("rte", tmp_path)["train"]
    assert train.to_list() == hub_rows(task_dir / "train.tsv", "rte", "train")
    assert train["idx"][-1] == 6 and len(train) == 5
    assert "train.tsv: 2 row(s) without a label dropped" in caplog.text


@pytest.mark.parametrize(
    ("task", "bad_label", "names"),
    [
        ("sst2", "2", "negative, positive"),
        ("mnli", "maybe", "entailment, neutral, contradiction"),
        ("stsb", "high", "a float score"),
    ],
)
def test_unknown_label_names_the_file_and_the_task_labels(tmp_path, task, bad_label, names):
    task_dir = write_official_task(tmp_path, task)
    train = task_dir / "train.tsv"
    train.write_text(
        train.read_text(encoding="utf-8").replace(LAYOUTS[task].label_values[1], bad_label, 1), encoding="utf-8"
    )
    with pytest.raises(ValueError, match=rf"{train}: .*{bad_label}.*\(GLUE {task} labels are {names}\)"):
        load_glue(task, tmp_path)


def test_missing_file_lists_the_files_expected(tmp_path):
    (write_official_task(tmp_path, "mnli") / "dev_mismatched.tsv").unlink()
    with pytest.raises(
        FileNotFoundError,
        match=r"missing dev_mismatched\.tsv in .*Expected the official files "
        r"train\.tsv, dev_matched\.tsv, dev_mismatched\.tsv, test_matched\.tsv, test_mismatched\.tsv",
    ):
        load_glue("mnli", tmp_path)


def test_unknown_task_lists_the_valid_ones(tmp_path):
    with pytest.raises(ValueError, match="valid tasks: cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli"):
        load_glue("sst-2", tmp_path)


# Texts without the line and field separators: whatever the characters (NUL, byte-order mark, quotes, other line
# breaks), the row is the Hub's.
fuzzed_text = st.text(
    st.one_of(
        st.sampled_from('\x00\ufeff\x0b\x0c\x1c\x85\u2028"# '),
        st.characters(codec="utf-8", exclude_characters="\t\n\r"),
    ),
    max_size=12,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(fuzzed_text, fuzzed_text, st.booleans()), min_size=1, max_size=4))
def test_fuzzed_texts_load_as_the_hub_rows(tmp_path_factory, rows):
    root = tmp_path_factory.mktemp("fuzz")
    task_dir = write_official_task(root, "qnli")
    lines = [
        f"{i}\t{question}\t{sentence}\t{'entailment' if entails else 'not_entailment'}"
        for i, (question, sentence, entails) in enumerate(rows)
    ]
    (task_dir / "dev.tsv").write_text("\n".join(["index\tquestion\tsentence\tlabel", *lines]) + "\n", encoding="utf-8")
    assert load_glue("qnli", root)["validation"].to_list() == hub_rows(task_dir / "dev.tsv", "qnli", "validation")


# ---- the real official files ($SEPNORM_DATA_DIR/glue) ----------------------------------------------------------
REAL_ROW_COUNTS = {  # from the shared data's README
    "cola": {"train": 8551, "validation": 1043, "test": 1063},
    "sst2": {"train": 67349, "validation": 872, "test": 1821},
    "mrpc": {"train": 3668, "validation": 408, "test": 1725},
    "stsb": {"train": 5749, "validation": 1500, "test": 1379},
}


@pytest.mark.parametrize("task", REAL_ROW_COUNTS)
def test_real_files_load_the_hub_rows_and_labels(data_dir, task):
    glue_dir = data_dir / "glue"
    if not glue_dir.is_dir():
        pytest.skip(f"{glue_dir} is absent: the official GLUE files are needed")
    loaded = load_glue(task, glue_dir)
    assert {split: len(dataset) for split, dataset in loaded.items()} == REAL_ROW_COUNTS[task]
    for name in LAYOUTS[task].headers:
        split = HUB_SPLITS[name]
        assert loaded[split].features == expected_features(task)
        assert loaded[split].to_list() == hub_rows(glue_dir / LAYOUTS[task].folder / name, task, split), split
        labels = np.asarray(loaded[split]["label"])
        if split == "test":
            assert set(labels) == {-1}
        elif task == "stsb":
            assert labels.min() >= 0.0 and labels.max() <= 5.0 and labels.std() > 0.5
        else:
            assert set(labels) == {0, 1}


# ---- without data_dir and without the Hub ----------------------------------------------------------------------
def test_offline_without_data_dir_the_error_says_to_pass_data_dir_at_once(monkeypatch, tmp_path):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # what HF_HUB_OFFLINE=1 sets at import
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    start = time.monotonic()
    with pytest.raises(
        ConnectionError,
        match=r"pass --data_dir .* official GLUE TSV files: SST-2/ holding "
        r"train\.tsv, dev\.tsv, test\.tsv",
    ):
        load_glue("sst2", cache_dir=tmp_path)  # an empty cache: nothing to fall back on
    assert time.monotonic() - start < 10


def test_no_connection_without_data_dir_the_error_says_to_pass_data_dir_at_once(monkeypatch, tmp_path):
    with socket.socket() as probe:  # a port nobody listens on: connections are refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    start = time.monotonic()
    with pytest.raises(ConnectionError, match=r"nyu-mll/glue cannot be loaded \(ConnectError.*pass --data_dir"):
        load_glue("mnli", cache_dir=tmp_path)
    assert time.monotonic() - start < 10  # datasets alone retries for ~25 s


# ---- submission files ------------------------------------------------------------------------------------------
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


def test_write_glue_predictions_uses_the_given_indices(tmp_path):
    path = write_glue_predictions("rte", [1, 0], tmp_path, indices=[7, 3])
    assert path.read_text(encoding="utf-8") == "index\tprediction\n7\tnot_entailment\n3\tentailment\n"


@pytest.mark.parametrize(
    ("task", "predictions", "split", "indices", "problem"),
    [
        (
            "mnli",
            [0],
            "test",
            None,
            r"no submission file for split 'test'; choose one of test_matched, test_mismatched",
        ),
        ("cola", [0], "validation", None, r"no submission file for split 'validation'"),
        ("sst2", [0.0, 1.0], "test", None, r"must be integer class ids"),
        ("rte", [2], "test", None, r"class id 2 is not in \[0, 1\]"),
        ("mnli", [np.array([0.1, 0.9, 0.0])], "test_matched", None, r"must be integer class ids"),
        ("rte", [0, 1], "test", [5], r"2 predictions but 1 indices"),
    ],
)
def test_write_glue_predictions_rejects_bad_input(tmp_path, task, predictions, split, indices, problem):
    with pytest.raises(ValueError, match=problem):
        write_glue_predictions(task, predictions, tmp_path, split=split, indices=indices)
    assert not list(tmp_path.iterdir())
