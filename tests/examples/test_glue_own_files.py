"""`hf-sepnorm glue` on a user's own CSV files, as transformers' run_glue.py / run_classification.py take them: class
names reach the config (pipelines print them), float labels make a regression, the card and a push name the files
and rows measured on and no GLUE data set; mistakes end in one line."""

import csv
import json
import random

import pytest
from conftest import TINY_BERT_OVERRIDES
from hub_server import TEST_TOKEN, TEST_USER, card_metadata, hub_server  # noqa: F401 - `hub_server` is a fixture
from test_push_from_scripts import trainer_hub  # noqa: F401 - a fixture
from transformers import pipeline

import hf_sepnorm_cli

COMMON = ["--report_to", "none", "--disable_tqdm", "true", "--per_device_train_batch_size", "8", "--seed", "3",
          "--config_overrides", TINY_BERT_OVERRIDES, "--vocab_size", "300", "--max_seq_length", "32"]  # fmt: skip
PHRASES = {
    "joy": ["a wonderful day", "I love this film", "great acting and a happy end", "what a delight", "superb"],
    "anger": ["a terrible mess", "I hated every minute", "boring and far too long", "what a waste", "awful acting"],
    "neutral": ["the film is two hours long", "it was shown on tuesday", "the cast has five actors", "it's in english"],
}


def write_csv(path, header: list[str], rows: list[list]) -> None:
    with path.open("w", newline="", encoding="utf-8") as file:
        csv.writer(file).writerows([header, *rows])


@pytest.fixture
def emotions(tmp_path):
    """train.csv (60 rows) and dev.csv (24 rows) of `text` and `sentiment` (class names); test.csv without labels."""
    rng = random.Random(0)
    for name, count in (("train.csv", 60), ("dev.csv", 24)):
        labels = [rng.choice(sorted(PHRASES)) for _ in range(count)]
        rows = [[f"{rng.choice(PHRASES[label])} {index}", label] for index, label in enumerate(labels)]
        write_csv(tmp_path / name, ["text", "sentiment"], rows)
    write_csv(tmp_path / "test.csv", ["text"], [["I love this film"], ["what a waste"], ["it is in english"]])
    return tmp_path


def hf_sepnorm(*arguments) -> None:
    """`hf-sepnorm <arguments>` as the console script runs it (in this process); a non-zero exit raises SystemExit."""
    assert hf_sepnorm_cli.main([str(argument) for argument in arguments]) == 0


def test_string_labels_reach_the_config_the_pipeline_and_the_card(emotions):
    out = emotions / "out"
    hf_sepnorm("glue", "--train_file", emotions / "train.csv", "--validation_file", emotions / "dev.csv",
               "--test_file", emotions / "test.csv", "--label_column_name", "sentiment", "--output_dir", out,
               "--do_train", "--do_eval", "--do_predict", "--max_steps", "4", *COMMON)  # fmt: skip
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "anger", "1": "joy", "2": "neutral"}
    assert config["label2id"] == {"anger": 0, "joy": 1, "neutral": 2}
    results = json.loads((out / "all_results.json").read_text())
    assert results["eval_samples"] == 24 and 0.0 <= results["eval_accuracy"] <= 1.0
    predictions = (out / "predict_results.tsv").read_text().splitlines()
    assert predictions[0] == "index\tprediction" and len(predictions) == 4
    assert {line.split("\t")[1] for line in predictions[1:]} <= {"anger", "joy", "neutral"}

    classifier = pipeline("text-classification", model=str(out), trust_remote_code=True)
    predicted = classifier(["I love this film", "what a waste"])
    assert {prediction["label"] for prediction in predicted} <= {"anger", "joy", "neutral"}, predicted

    readme = (out / "README.md").read_text()
    metadata = card_metadata(readme.encode())
    assert "datasets" not in metadata and "model-index" not in metadata  # no Hub data set to name
    assert "glue" not in readme.lower().split("## training")[1]  # the Training and Evaluation sections
    data = "Data: local files, not a Hub data set: train `train.csv` (60 rows), validation `dev.csv` (24 rows), test "
    data += "`test.csv` (3 rows)."
    assert data in readme
    assert "Measured on the local validation data, `dev.csv` (24 rows)" in readme


def test_float_labels_make_a_regression(tmp_path):
    rng = random.Random(1)
    for name, count in (("train.csv", 48), ("dev.csv", 16)):
        rows = []
        for index in range(count):
            score = round(rng.uniform(0, 5), 2)
            pair = "someone plays music" if score > 2.5 else "a cat sleeps"
            rows.append([f"a man plays a guitar {index}", pair, score])
        write_csv(tmp_path / name, ["sentence1", "sentence2", "score"], rows)
    out = tmp_path / "out"
    hf_sepnorm("glue", "--train_file", tmp_path / "train.csv", "--validation_file", tmp_path / "dev.csv",
               "--label_column_name", "score", "--output_dir", out, "--do_train", "--do_eval", "--max_steps", "3",
               "--max_eval_samples", "12", *COMMON)  # fmt: skip
    config = json.loads((out / "config.json").read_text())
    assert len(config["id2label"]) == 1 and config["problem_type"] == "regression"
    results = json.loads((out / "eval_results.json").read_text())
    assert {"eval_pearson", "eval_spearmanr"} <= results.keys() and results["eval_samples"] == 12
    scorer = pipeline("text-classification", model=str(out), trust_remote_code=True, function_to_apply="none")
    (scored,) = scorer([{"text": "a man plays a guitar", "text_pair": "someone plays music"}])
    assert isinstance(scored["score"], float)
    assert "Measured on the local validation data, `dev.csv` (12 rows of 16)" in (out / "README.md").read_text()


def test_json_lines_with_named_text_columns_and_numeric_classes(tmp_path):
    """JSON lines, a question/answer pair named with --text_column_names beside an `id` column, class ids 0, 2 and 10
    (classes in numeric order, not as text)."""
    rng = random.Random(2)
    for name, count in (("train.jsonl", 40), ("dev.jsonl", 12)):
        rows = [{"id": f"q{index}", "question": f"is item {index} good", "answer": rng.choice(["yes", "no", "maybe"]),
                 "label": rng.choice([0, 2, 10])} for index in range(count)]  # fmt: skip
        (tmp_path / name).write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    out = tmp_path / "out"
    hf_sepnorm("glue", "--train_file", tmp_path / "train.jsonl", "--validation_file", tmp_path / "dev.jsonl",
               "--text_column_names", "question,answer", "--output_dir", out, "--do_train", "--do_eval",
               "--max_steps", "2", *COMMON)  # fmt: skip
    assert json.loads((out / "config.json").read_text())["id2label"] == {"0": "0", "1": "2", "2": "10"}
    assert json.loads((out / "eval_results.json").read_text())["eval_samples"] == 12
    assert "validation `dev.jsonl` (12 rows)" in (out / "README.md").read_text()


@pytest.mark.slow
def test_a_push_names_the_files_measured_on_and_no_data_set(trainer_hub, emotions):  # noqa: F811
    repo_id = f"{TEST_USER}/emotions-sepnorm"
    hf_sepnorm("glue", "--train_file", emotions / "train.csv", "--validation_file", emotions / "dev.csv",
               "--label_column_name", "sentiment", "--output_dir", emotions / "pushed", "--do_train", "--do_eval",
               "--max_steps", "2", "--push_to_hub", "--hub_model_id", repo_id, "--hub_token", TEST_TOKEN,
               *COMMON)  # fmt: skip
    pushed = trainer_hub.files(repo_id, trainer_hub.history(repo_id)[0].oid)
    readme = pushed["README.md"].decode()
    metadata = card_metadata(pushed["README.md"])
    assert "datasets" not in metadata and "model-index" not in metadata
    assert "nyu-mll/glue" not in readme
    assert "Measured on the local validation data, `dev.csv` (24 rows)" in readme
    accuracy = json.loads((emotions / "pushed" / "eval_results.json").read_text())["eval_accuracy"]
    assert f"| accuracy | {round(accuracy, 4)} |" in readme


@pytest.mark.parametrize(
    "arguments, expected",
    [
        (["--model_name_or_path", "notamodel", "--train_file", "{train}"],
         "--model_name_or_path notamodel: neither a checkpoint folder (with config.json) nor a Hub model"),
        (["--train_file", "{train}"], "--train_file {train}: no 'label' column (columns: text, sentiment). Name the "
                                      "label column with --label_column_name."),
        (["--task_name", "sst2", "--train_file", "{train}"], "leave out --task_name to train on your files"),
        (["--train_file", "{train}", "--label_column_name", "sentiment", "--do_eval"],
         "--do_eval reads --validation_file: give it"),
        (["--train_file", "{train}", "--loging_steps", "5"],
         "unknown flag --loging_steps: did you mean --logging_steps?"),
        (["--train_file", "{train}", "--loging_dir", "logs"], "unknown flag --loging_dir: did you mean"),
    ],
    ids=["not-a-model", "no-label-column", "task-and-files", "eval-without-file", "typo", "removed-flag"],
)
def test_mistakes_end_in_one_line(emotions, arguments, expected, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    train = emotions / "train.csv"
    arguments = [argument.replace("{train}", str(train)) for argument in arguments]
    with pytest.raises(SystemExit) as exited:
        hf_sepnorm("glue", *arguments, "--output_dir", emotions / "out", "--do_train", "--report_to", "none")
    assert exited.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("hf-sepnorm glue: error: ") and expected.replace("{train}", str(train)) in lines[-1]
    assert "Traceback" not in "\n".join(lines)
    assert not (emotions / "out").exists()


def test_data_labelled_otherwise_than_a_fine_tuned_classifier_is_refused_in_one_line(emotions, capsys):
    """A fine-tuned classifier's rows are its classes (config id2label): data of other class names would relabel
    them silently, so the run stops before loading the model, naming both label sets."""
    hf_sepnorm("glue", "--train_file", emotions / "train.csv", "--validation_file", emotions / "dev.csv",
               "--label_column_name", "sentiment", "--output_dir", emotions / "out", "--do_train", "--max_steps", "2",
               *COMMON)  # fmt: skip
    renamed = {"anger": "angry", "joy": "happy", "neutral": "neutral"}  # three classes again: the head's shape fits
    rows = list(csv.reader((emotions / "dev.csv").open(encoding="utf-8")))[1:]
    write_csv(emotions / "renamed.csv", ["text", "sentiment"], [[text, renamed[label]] for text, label in rows])
    with pytest.raises(SystemExit):
        hf_sepnorm("glue", "--model_name_or_path", emotions / "out", "--validation_file", emotions / "renamed.csv",
                   "--label_column_name", "sentiment", "--output_dir", emotions / "evaluated", "--do_eval",
                   "--report_to", "none")  # fmt: skip
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("hf-sepnorm glue: error: ") and "renamed.csv" in line
    assert "['anger', 'joy', 'neutral']" in line and "['angry', 'happy', 'neutral']" in line
    assert not (emotions / "evaluated").exists()
    # the same classes as the checkpoint's are evaluated
    hf_sepnorm("glue", "--model_name_or_path", emotions / "out", "--validation_file", emotions / "dev.csv",
               "--label_column_name", "sentiment", "--output_dir", emotions / "evaluated", "--do_eval",
               "--report_to", "none")  # fmt: skip
