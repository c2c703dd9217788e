"""Image folders as they come: every image of every split the run reads is decoded before the first step (an
unreadable one stops the run in one line, or `--drop_unreadable_images` leaves it out and counts it), and images of
more than 8 bits are scaled by their mode's full range, not clipped."""

import json

import numpy as np
import pytest
from conftest import TINY_VIT_OVERRIDES
from PIL import Image

import hf_sepnorm_cli
from hf_sepnorm.data.images import ImageTransform, make_image_processor, open_image, to_8_bits

COMMON = ["--report_to", "none", "--disable_tqdm", "true", "--per_device_train_batch_size", "4", "--seed", "3",
          "--max_steps", "2", "--image_size", "16",
          "--config_overrides", f"patch_size=8,{TINY_VIT_OVERRIDES}"]  # fmt: skip


def sixteen_bit_png(path, values: np.ndarray) -> None:
    """A real 16-bit grey PNG (PIL mode I;16) holding `values` (uint16)."""
    Image.fromarray(values.astype(np.uint16)).save(path)
    assert Image.open(path).mode == "I;16"


@pytest.fixture
def folders(tmp_path):
    """train/ and val/ image folders of two classes, 16-bit PNGs and 8-bit JPEGs, 16x16."""
    rng = np.random.default_rng(0)
    for split, count in (("train", 6), ("val", 3)):
        for label in ("dark", "bright"):
            folder = tmp_path / split / label
            folder.mkdir(parents=True)
            for index in range(count):
                base = 10_000 if label == "dark" else 50_000
                sixteen_bit_png(folder / f"{index}.png", rng.integers(base, base + 10_000, (16, 16)))
                Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / f"{index}.jpg")
    return tmp_path


def truncated_jpeg(path) -> None:
    Image.fromarray(np.full((64, 64, 3), 128, dtype=np.uint8)).save(path, quality=95)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_sixteen_bit_and_float_images_are_scaled_by_their_full_range(tmp_path):
    values = np.arange(0, 65536, 257, dtype=np.uint16).reshape(16, 16)  # 0, 257, ..., 65535: 0 .. 255 in 8 bits
    sixteen_bit_png(tmp_path / "deep.png", values)
    grey = np.asarray(open_image({"path": str(tmp_path / "deep.png")}, num_channels=1))
    assert np.array_equal(grey, np.arange(256, dtype=np.uint8).reshape(16, 16))  # convert("L") clipped 99 % to 255
    rgb = np.asarray(open_image({"path": str(tmp_path / "deep.png")}, num_channels=3))
    assert rgb.shape == (16, 16, 3) and np.array_equal(rgb[..., 0], grey)
    floats = Image.fromarray(np.linspace(0, 1, 256, dtype=np.float32).reshape(16, 16))
    assert np.array_equal(np.asarray(to_8_bits(floats)), np.arange(256, dtype=np.uint8).reshape(16, 16))
    wide = Image.fromarray(values.astype(np.int32))  # PIL's reading of some 16-bit files
    assert np.array_equal(np.asarray(to_8_bits(wide)), grey)

    # what the model gets from the 16-bit file equals what it gets from the same image saved in 8 bits
    Image.fromarray(grey).save(tmp_path / "eight.png")
    transform = ImageTransform(make_image_processor(16, 3), num_channels=3, augment=False)
    images = [{"path": str(tmp_path / name)} for name in ("deep.png", "eight.png")]
    pixels = transform({"image": images, "index": [0, 1]})
    assert np.array_equal(pixels["pixel_values"][0].numpy(), pixels["pixel_values"][1].numpy())


def test_unreadable_images_stop_the_run_before_training_or_are_dropped(folders, tmp_path, capsys, caplog):
    truncated_jpeg(folders / "val" / "dark" / "broken.jpg")
    (folders / "train" / "bright" / "notes.png").write_text("not an image")
    arguments = ["image-classification", "--train_dir", str(folders / "train"), "--validation_dir",
                 str(folders / "val"), "--do_train", "--do_eval", *COMMON]  # fmt: skip
    with pytest.raises(SystemExit) as exited:
        hf_sepnorm_cli.main([*arguments, "--output_dir", str(tmp_path / "refused")])
    assert exited.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("hf-sepnorm image-classification: error: 1 unreadable image(s) in the train split: ")
    assert str(folders / "train" / "bright" / "notes.png") in last and "--drop_unreadable_images true" in last
    assert not (tmp_path / "refused").exists()  # nothing trained, nothing written

    (folders / "train" / "bright" / "notes.png").unlink()  # the validation split is checked before training too
    with pytest.raises(SystemExit):
        hf_sepnorm_cli.main([*arguments, "--output_dir", str(tmp_path / "refused")])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"1 unreadable image(s) in the validation split: {folders / 'val' / 'dark' / 'broken.jpg'}" in last
    assert not (tmp_path / "refused").exists()

    assert hf_sepnorm_cli.main([*arguments, "--output_dir", str(tmp_path / "kept"), "--drop_unreadable_images",
                                "true"]) == 0  # fmt: skip
    assert "Left out 1 unreadable image(s) of the validation split" in caplog.text
    results = json.loads((tmp_path / "kept" / "all_results.json").read_text())
    assert results["eval_samples"] == 12 and "eval_accuracy" in results  # 12 readable images of 13
    card = (tmp_path / "kept" / "README.md").read_text()  # the folders by name and the images used, no data set
    assert "Data: local files, not a Hub data set: train `train/` (24 images), validation `val/` (12 images)." in card
    assert "Measured on the local validation data, `val/` (12 images)" in card and "datasets:" not in card


@pytest.fixture
def local_image_dataset(tmp_path):
    """A data set `datasets.load_dataset` reads by path, offline: `train/`, `validation/` and `test/` image folders
    (imagefolder's split names); the unused test split holds an unreadable image."""
    for split, count in (("train", 8), ("validation", 6), ("test", 2)):
        for index in range(count):
            path = tmp_path / "dataset" / split / f"class{index % 2}" / f"{index}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((16, 16, 3), index * 20, dtype=np.uint8)).save(path)
    (tmp_path / "dataset" / "test" / "class0" / "0.png").write_bytes(b"not a png")
    return tmp_path / "dataset"


def test_a_dataset_keeps_the_sample_limits_and_only_the_splits_used(local_image_dataset):
    from hf_sepnorm.data.images import check_images, load_images
    from hf_sepnorm.training import ImageDataArguments

    data = ImageDataArguments(dataset_name=str(local_image_dataset), max_train_samples=3, max_eval_samples=2)
    splits = check_images(load_images(data, seed=3))  # the unused test split's unreadable image is not decoded
    assert sorted(splits) == ["train", "validation"]
    assert (len(splits["train"]), len(splits["validation"])) == (3, 2)
    # the same images as the folder branch keeps: a shuffle with the run's seed, then the first rows
    folders = load_images(ImageDataArguments(train_dir=str(local_image_dataset / "train"),
                                             validation_dir=str(local_image_dataset / "validation"),
                                             max_train_samples=3, max_eval_samples=2), seed=3)  # fmt: skip
    for split in ("train", "validation"):
        names = lambda rows: [image["path"].split("/")[-2:] for image in rows["image"]]  # noqa: E731
        assert names(splits[split]) == names(folders[split])


def test_a_dataset_and_image_folders_together_are_refused(local_image_dataset):
    from hf_sepnorm.errors import InputError
    from hf_sepnorm.training import ImageDataArguments

    with pytest.raises(InputError, match="--dataset_name.*--train_dir"):
        ImageDataArguments(dataset_name=str(local_image_dataset), train_dir=str(local_image_dataset / "train"))
    with pytest.raises(InputError, match="--dataset_name.*--validation_dir"):
        ImageDataArguments(dataset_name=str(local_image_dataset), validation_dir=str(local_image_dataset / "test"))
