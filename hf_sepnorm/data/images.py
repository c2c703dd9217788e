"""Image data for MAE pretraining and classification: image folders, idx files (MNIST / Fashion-MNIST), transforms."""

from __future__ import annotations

import dataclasses
import gzip
import io
import logging
import os
import random
from pathlib import Path

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, Features, Image, load_dataset
from PIL import Image as PILImage
from PIL import UnidentifiedImageError
from transformers import BaseImageProcessor, ViTImageProcessorPil

from ..errors import InputError, MissingInputError
from .epochs import EpochCallback
from .splits import with_validation_split

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
IDX_SPLITS = {"train": "train", "validation": "t10k"}


def is_idx_folder(folder: str | os.PathLike) -> bool:
    return (Path(folder) / "train-images-idx3-ubyte.gz").is_file()


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load_idx_split(folder: str | os.PathLike, prefix: str, max_samples: int | None = None) -> Dataset:
    """One split (`train` or `t10k`) of an MNIST-format folder as a dataset of grey PNG images and labels."""
    folder = Path(folder)
    images = _read_idx(folder / f"{prefix}-images-idx3-ubyte.gz")[:max_samples]
    labels = _read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz")[:max_samples]
    features = Features({"image": Image(), "label": ClassLabel(names=[str(i) for i in range(int(labels.max()) + 1)])})
    return Dataset.from_dict(
        {"image": [PILImage.fromarray(image, mode="L") for image in images], "label": labels.tolist()},
        features=features,
    )


def check_image_folder(folder: str | os.PathLike, argument: str) -> None:
    """Stop at start-up, naming the folder, when it is missing or holds no image files."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingInputError(f"{argument}: {folder} is not a folder.")
    if is_idx_folder(folder):
        return
    if not any(path.suffix.lower() in IMAGE_SUFFIXES for path in folder.rglob("*") if path.is_file()):
        raise InputError(
            f"{argument}: {folder} holds no images ({', '.join(IMAGE_SUFFIXES)}). Expected the image-folder layout "
            "<folder>/<class>/<image>, or MNIST-format *-idx3-ubyte.gz files."
        )


def load_image_folders(
    train_dir: str,
    validation_dir: str | None = None,
    validation_split_percentage: int = 5,
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
    seed: int = 42,
) -> DatasetDict:
    """`train` and `validation` splits with an undecoded `image` column and a `label` column.

    A folder is either the image-folder layout (`<folder>/<class>/<image>`, labels from the class folder names) or
    MNIST-format idx files (e.g. Debian's `/usr/share/datasets/fashion-mnist`, whose `t10k` files become the
    validation split). Without a validation folder, `validation_split_percentage` % of the training images are
    held out."""
    check_image_folder(train_dir, "--train_dir")
    if validation_dir is not None:
        check_image_folder(validation_dir, "--validation_dir")
    if is_idx_folder(train_dir):
        splits = DatasetDict(
            train=load_idx_split(train_dir, IDX_SPLITS["train"], max_train_samples),
            validation=load_idx_split(validation_dir or train_dir, IDX_SPLITS["validation"], max_eval_samples),
        )
    else:
        data_files = {"train": f"{train_dir}/**"}
        if validation_dir is not None:
            data_files["validation"] = f"{validation_dir}/**"
        splits = load_dataset("imagefolder", data_files=data_files)
        splits = with_validation_split(splits, validation_split_percentage, seed=seed, stratify_by_column="label")
        splits = sampled(splits, max_train_samples, max_eval_samples, seed)
    return splits.cast_column("image", Image(decode=False))


def sampled(splits: DatasetDict, max_train_samples: int | None, max_eval_samples: int | None, seed: int) -> DatasetDict:
    """`train` and `validation` shuffled with `seed`, each cut to its limit (None: all of it)."""
    return DatasetDict(
        {
            name: splits[name].shuffle(seed=seed).select(range(min(len(splits[name]), limit or len(splits[name]))))
            for name, limit in (("train", max_train_samples), ("validation", max_eval_samples))
        }
    )


def make_image_processor(image_size: int, num_channels: int) -> BaseImageProcessor:
    """Resize to the model's size and scale pixels to [-1, 1]."""
    return ViTImageProcessorPil(
        size={"height": image_size, "width": image_size}, image_mean=[0.5] * num_channels, image_std=[0.5] * num_channels
    )


def open_image(image: dict, num_channels: int) -> PILImage.Image:
    """Decode one undecoded `image` entry into 8-bit RGB or grey (`to_8_bits`), naming the file when it cannot be
    read."""
    source = image.get("path") or "<in-memory image>"
    try:
        decoded = PILImage.open(io.BytesIO(image["bytes"]) if image.get("bytes") else image["path"])
        return to_8_bits(decoded).convert("RGB" if num_channels == 3 else "L")
    except (UnidentifiedImageError, OSError) as error:
        raise InputError(f"Cannot read image {source}: {error}") from error


# PIL modes of more than 8 bits per pixel -> the range of values each one can hold, mapped to 0..255
WIDE_MODE_RANGES = {"I;16": (0, 65535), "I;16L": (0, 65535), "I;16B": (0, 65535), "I;16N": (0, 65535),
                    "I": (-(2**31), 2**31 - 1), "F": (0.0, 1.0)}  # fmt: skip


def to_8_bits(image: PILImage.Image) -> PILImage.Image:
    """`image` in an 8-bit mode PIL converts faithfully. A 16-bit, 32-bit or float grey image is scaled by its
    mode's full range (65535 -> 255), where `convert` would clip every value above 255 to white: `I;16*` by 0..65535,
    `I` by 0..65535 when all its values fit (PIL reads 16-bit PNG and TIFF files as `I`), else by the 32-bit range,
    `F` by 0..1 (values outside clipped). Other modes are returned as they are."""
    if image.mode not in WIDE_MODE_RANGES:
        return image
    values = np.asarray(image).astype(np.float64)
    low, high = WIDE_MODE_RANGES[image.mode]
    if image.mode == "I" and values.size and values.min() >= 0 and values.max() <= 65535:
        low, high = 0, 65535
    scaled = np.clip((values - low) / (high - low), 0.0, 1.0) * 255
    return PILImage.fromarray(np.rint(scaled).astype(np.uint8))  # mode L


def unreadable_images(split: Dataset) -> dict[int, str]:
    """The images of `split` (an undecoded `image` column) that PIL cannot decode in full: missing, not an image,
    truncated. Row -> its path (or row number)."""
    unreadable = {}
    for start in range(0, len(split), 1000):
        for row, image in enumerate(split[start : start + 1000]["image"], start):
            try:
                with PILImage.open(io.BytesIO(image["bytes"]) if image.get("bytes") else image["path"]) as decoded:
                    decoded.load()
            except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
                unreadable[row] = image.get("path") or f"row {row} ({type(error).__name__}: {error})"
    return unreadable


def check_images(splits: DatasetDict, drop: bool = False) -> DatasetDict:
    """Decode every image of every split before any training step: an unreadable one stops the run in one line
    listing them (the first ten), or, with `drop`, they are left out and counted in a warning."""
    checked = {}
    for name, split in splits.items():
        rows = unreadable_images(split)
        unreadable = list(rows.values())
        if unreadable and not drop:
            shown = ", ".join(unreadable[:10]) + (f" and {len(unreadable) - 10} more" if len(unreadable) > 10 else "")
            raise InputError(f"{len(unreadable)} unreadable image(s) in the {name} split: {shown}. Remove or replace "
                             "them, or pass --drop_unreadable_images true to leave them out.")  # fmt: skip
        if unreadable:
            kept = [row for row in range(len(split)) if row not in rows]
            logger.warning("Left out %d unreadable image(s) of the %s split (--drop_unreadable_images): %s",
                           len(unreadable), name, ", ".join(unreadable[:5]))  # fmt: skip
            split = split.select(kept)
            if len(split) == 0:
                raise InputError(f"Every image of the {name} split is unreadable: {', '.join(unreadable[:5])}.")
        checked[name] = split
    return DatasetDict(checked)


def _random_resized_crop(image: PILImage.Image, scale: tuple[float, float], rng: random.Random) -> PILImage.Image:
    width, height = image.size
    area = width * height * rng.uniform(*scale)
    side = int(min(width, height, round(area**0.5)))
    left, top = rng.randint(0, width - side), rng.randint(0, height - side)
    return image.resize((width, height), PILImage.BICUBIC, box=(left, top, left + side, top + side))


class ImageTransform:
    """A `Dataset.set_transform` function giving `pixel_values` (and `labels`).

    With `augment`: a random resized crop (MAE's scale range) and a horizontal flip, drawn from a generator seeded
    by (seed, epoch, image index) rather than a global one. The data loader fetches a batch ahead of training, so
    global random state saved in a checkpoint is already past the next batch's draws: a resumed run would augment
    that batch differently and not reach the weights of an uninterrupted run. Keep `epoch` current with
    `EpochCallback`.
    """

    def __init__(self, processor: BaseImageProcessor, num_channels: int, augment: bool, seed: int = 0,
                 crop_scale: tuple[float, float] = (0.2, 1.0)):  # fmt: skip
        self.processor, self.num_channels, self.augment = processor, num_channels, augment
        self.seed, self.crop_scale, self.epoch = seed, crop_scale, 0

    def _augment(self, image: PILImage.Image, index: int) -> PILImage.Image:
        rng = random.Random(hash((self.seed, self.epoch, index)))
        image = _random_resized_crop(image, self.crop_scale, rng)
        return image.transpose(PILImage.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else image

    def __call__(self, batch: dict) -> dict:
        images = [open_image(image, self.num_channels) for image in batch["image"]]
        if self.augment:
            images = [self._augment(image, index) for image, index in zip(images, batch["index"])]
        output = {"pixel_values": self.processor(images=images, return_tensors="pt")["pixel_values"]}
        if "label" in batch:
            output["labels"] = batch["label"]
        return output


def first_image_size(dataset: Dataset, num_channels: int) -> int:
    width, height = open_image(dataset[0]["image"], num_channels).size
    if width != height:
        raise InputError(f"Images are {width}x{height}: pass --image_size to train a model on square crops.")
    return width


def load_images(data_args, seed: int = 42) -> DatasetDict:
    """The image splits an `ImageDataArguments` names (local folders, or a Hub dataset for online users), with an
    `index` column that seeds each image's augmentation."""
    splits = _load_splits(data_args, seed)
    return DatasetDict({name: split.add_column("index", list(range(len(split)))) for name, split in splits.items()})


def _load_splits(data_args, seed: int) -> DatasetDict:
    if data_args.dataset_name is None:
        return load_image_folders(
            data_args.train_dir,
            data_args.validation_dir,
            data_args.validation_split_percentage,
            data_args.max_train_samples,
            data_args.max_eval_samples,
            seed,
        )
    splits = load_dataset(data_args.dataset_name, data_args.dataset_config_name)
    splits = splits.rename_columns(
        {old: new for old, new in ((data_args.image_column, "image"), (data_args.label_column, "label")) if old != new}
    )
    used = DatasetDict({name: split for name, split in splits.items() if name in ("train", "validation")})
    splits = with_validation_split(used, data_args.validation_split_percentage, seed=seed)
    return sampled(splits, data_args.max_train_samples, data_args.max_eval_samples, seed).cast_column(
        "image", Image(decode=False)
    )


def describe_image_folders(data_args, splits: DatasetDict) -> dict[str, str] | None:
    """How a card names the images of local folders, by split: `train/` (400 images); None for a Hub data set, which
    its id names."""
    if data_args.dataset_name is not None:
        return None
    train = f"`{Path(data_args.train_dir).name}/`"
    described = {"train": f"{train} ({len(splits['train'])} images)"}
    if "validation" in splits:
        described["validation"] = (
            f"`{Path(data_args.validation_dir).name}/` ({len(splits['validation'])} images)" if data_args.validation_dir
            else f"{len(splits['validation'])} images held out of {train}"
        )
    return described


def load_or_make_image_processor(checkpoint: str | None, image_size: int, num_channels: int,
                                 hub_kwargs: dict | None = None) -> BaseImageProcessor:  # fmt: skip
    """The checkpoint's image processor when it has one (at the `revision` and from the `cache_dir` of `hub_kwargs`,
    as its weights), else a new one for this size and channel count."""
    if checkpoint is not None:
        from transformers import AutoImageProcessor
        from transformers.utils import cached_file

        hub_kwargs = hub_kwargs or {}
        if cached_file(checkpoint, "preprocessor_config.json", _raise_exceptions_for_missing_entries=False, **hub_kwargs):
            return AutoImageProcessor.from_pretrained(checkpoint, **hub_kwargs)
    return make_image_processor(image_size, num_channels)


@dataclasses.dataclass
class PreparedImages:
    """Image splits ready for the Trainer: `pixel_values` (and `labels`) come out of their transforms."""

    splits: DatasetDict
    processor: BaseImageProcessor
    image_size: int
    num_channels: int
    augmentation_callback: EpochCallback


def prepare_images(data_args, num_channels: int, checkpoint: str | None, seed: int, augment: bool,
                   hub_kwargs: dict | None = None) -> PreparedImages:  # fmt: skip
    """Load the splits an `ImageDataArguments` names and set their transforms: the training split augmented (when
    `augment`), with the checkpoint's image processor (`hub_kwargs`: its revision and cache folder) or a new one for
    the images' size."""
    splits = check_images(load_images(data_args, seed=seed), drop=data_args.drop_unreadable_images)
    image_size = data_args.image_size or first_image_size(splits["train"], num_channels)
    processor = load_or_make_image_processor(checkpoint, image_size, num_channels, hub_kwargs)
    train_transform = ImageTransform(processor, num_channels, augment=augment, seed=seed)
    splits["train"].set_transform(train_transform)
    splits["validation"].set_transform(ImageTransform(processor, num_channels, augment=False))
    return PreparedImages(splits, processor, image_size, num_channels, EpochCallback(train_transform))
