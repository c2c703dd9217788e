"""The held-out validation split of the text and image loaders (`hf_sepnorm.data.splits`)."""

from __future__ import annotations

from collections import Counter

from PIL import Image

from hf_sepnorm.data.images import load_image_folders
from hf_sepnorm.data.text import load_text_corpus


def test_text_corpus_holds_out_its_last_lines(tmp_path):
    corpus_file = tmp_path / "corpus.txt"
    corpus_file.write_text("".join(f"line {i}\n\n" for i in range(20)), encoding="utf-8")  # blank lines dropped
    corpus = load_text_corpus([str(corpus_file)], validation_split_percentage=10)
    assert corpus["train"]["text"] == [f"line {i}" for i in range(18)]
    assert corpus["validation"]["text"] == ["line 18", "line 19"]


def test_text_validation_files_are_kept_as_given(tmp_path):
    train_file, validation_file = tmp_path / "train.txt", tmp_path / "valid.txt"
    train_file.write_text("a\nb\nc\n", encoding="utf-8")
    validation_file.write_text("d\n", encoding="utf-8")
    corpus = load_text_corpus([str(train_file)], [str(validation_file)], validation_split_percentage=50)
    assert (corpus["train"]["text"], corpus["validation"]["text"]) == (["a", "b", "c"], ["d"])


def test_image_folder_holds_out_a_stratified_share(tmp_path):
    for label, count in (("cat", 24), ("dog", 8)):
        (tmp_path / label).mkdir()
        for index in range(count):
            Image.new("RGB", (4, 4), (index, 0, 0)).save(tmp_path / label / f"{index}.png")
    splits = load_image_folders(str(tmp_path), validation_split_percentage=25, seed=0)
    names = splits["train"].features["label"].names
    paths = {split: [image["path"] for image in splits[split]["image"]] for split in splits}
    assert Counter(names[label] for label in splits["validation"]["label"]) == {"cat": 6, "dog": 2}
    assert len(paths["train"]) == 24 and not set(paths["train"]) & set(paths["validation"])
