"""Image folders (`<split>/<class>/<image>`) read and written as whole tensors: the data of `hf-sepnorm compare`'s
image track, which decodes every image once for its readouts and baselines (the scripts read the same folders through
`datasets`' `imagefolder`, `data.images`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image as PILImage

from ..errors import InputError, MissingInputError
from .images import IMAGE_SUFFIXES, open_image


def image_files(folder: Path) -> list[tuple[Path, str]]:
    """Every image of an image folder and its class (its parent folder's name), in sorted order."""
    return sorted(
        (path, path.parent.name)
        for path in Path(folder).glob("*/*")
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
    )


def write_digits_folders(folder: Path) -> Path:
    """scikit-learn's bundled 8x8 digits (1,797 images, 10 classes) as PNG image folders `train/` and `test/`, split
    80/20 by class with a fixed seed: the data of the default, download-free comparison."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if (folder / "test").is_dir():
        return folder
    digits = load_digits()
    images = (digits.images * (255 / 16)).round().astype(np.uint8)
    indices = np.arange(len(images))
    train, test = train_test_split(indices, test_size=0.2, random_state=0, stratify=digits.target)
    for split, chosen in (("train", train), ("test", test)):
        for index in chosen:
            path = folder / split / str(digits.target[index]) / f"{index:04d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            PILImage.fromarray(images[index], mode="L").save(path)
    return folder


def check_split_folders(images_dir: str | Path) -> None:
    """Stop, naming `--images` and what is missing, unless `images_dir` holds the image folders `train/` and `test/`."""
    source = Path(images_dir)
    for split in ("train", "test"):
        if not (source / split).is_dir():
            raise MissingInputError(
                f"--images {images_dir}: expected the image folders {source / 'train'} and {source / 'test'} "
                "(<split>/<class>/<image>); " + (f"{source / split} is missing." if source.is_dir() else "no such folder.")
            )


def link_image_subset(images_dir: str, folder: Path, max_train: int | None, max_test: int | None) -> Path:
    """`images_dir/train` and `images_dir/test` as given, or a fixed random subset (seed 0) of them linked into
    `folder`: every arm and seed trains and is measured on the same images. A subset is reused only when its record
    (written last) names the same source and limits: another `--images`, other limits or an interrupted linking
    rebuild it."""
    check_split_folders(images_dir)
    source = Path(images_dir)
    if max_train is None and max_test is None:
        return source
    record = {"images": str(source.resolve()), "max_train_images": max_train, "max_test_images": max_test}
    record_file = folder / "subset.json"
    if record_file.is_file() and json.loads(record_file.read_text()) == record:
        return folder
    record_file.unlink(missing_ok=True)  # no record of the old subset stays valid for a half-rebuilt one
    for split in ("train", "test"):  # links this function made, never the images they point to
        shutil.rmtree(folder / split, ignore_errors=True)
    for split, limit in (("train", max_train), ("test", max_test)):
        target = folder / split
        files = image_files(source / split)
        if not files:
            raise InputError(f"--images {images_dir}: {source / split} holds no images in <class>/<image> folders.")
        chosen = np.random.default_rng(0).permutation(len(files))[: limit or len(files)]
        for index in sorted(chosen):
            path, label = files[index]
            link = target / label / path.name
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(path.resolve())
    record_file.write_text(json.dumps(record))
    return folder


GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16L", "I;16B", "I;16N", "F")


def load_pixels(folder: Path, num_channels: int | None = None) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Every image of an image folder, decoded once as the scripts decode it (`open_image`: 8-bit grey or RGB, palettes
    as their colours, alpha dropped): uint8 (N, C, H, W), labels (class folders in sorted order, as the scripts'
    `imagefolder` loading numbers them) and the class names. `num_channels` defaults to 1 when every image is grey,
    else 3."""
    files = image_files(folder)
    if num_channels is None:
        modes = set()
        for path, _ in files:
            with PILImage.open(path) as image:  # reads the header only
                modes.add(image.mode)
        num_channels = 1 if modes <= set(GREY_MODES) else 3
    classes = sorted({label for _, label in files})
    arrays = []
    for path, _ in files:
        array = np.asarray(open_image({"path": str(path)}, num_channels))
        if arrays and array.shape != arrays[0].shape:
            raise InputError(
                f"--images: {path} is {array.shape[1]}x{array.shape[0]}, {files[0][0]} is "
                f"{arrays[0].shape[1]}x{arrays[0].shape[0]}: the comparison reads images of one size; resize them to one."
            )
        arrays.append(array)
    pixels = torch.from_numpy(np.stack(arrays))
    pixels = pixels.unsqueeze(1) if pixels.ndim == 3 else pixels.permute(0, 3, 1, 2)
    labels = torch.tensor([classes.index(label) for _, label in files])
    return pixels.contiguous(), labels, classes
