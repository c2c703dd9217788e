"""The image track: MAE pretraining from scratch (`hf-sepnorm mae`), readouts of the test images' [CLS], fine-tuning
(`hf-sepnorm image-classification`)."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import set_seed

from ...analysis import readout_summary
from ...analysis.readouts import majority_class_accuracy
from ...data.image_folders import link_image_subset, load_pixels, write_digits_folders
from ...errors import InputError
from ...remote_code.configuration_sepnorm_vit_mae import SepNormViTMAEConfig
from ...remote_code.modeling_sepnorm_vit_mae import SepNormViTMAEForImageClassification
from ..readouts import Metric, batches, prefixed, read_out, readout_metrics
from ..recipes import Arm, ImageRecipe
from ..scripts import run_script, training_flags, write_run_log
from .checkpoints import load_encoder

TRIVIAL_MAE = "MAE loss, predicting zeros"  # the baseline the learning check reads


def zero_prediction_mae_loss(pixel_values: torch.Tensor, patch_size: int, norm_pix_loss: bool = True) -> float:
    """The MAE loss of a decoder that predicts 0 for every pixel of every patch, in expectation over the random masks:
    the mean squared target over all patches. Under `norm_pix_loss` each patch's target is standardized (ViT-MAE's
    per-patch mean and unbiased variance, eps 1e-6), so 0 is the trivial solution. Without it this is the loss of
    predicting zeros, not of the trivial predictor (the mean training image), which the comparison never needs: its
    MAE recipes keep ViT-MAE's `norm_pix_loss`."""
    batch, channels, height, width = pixel_values.shape
    patches = pixel_values.reshape(batch, channels, height // patch_size, patch_size, width // patch_size, patch_size)
    patches = patches.permute(0, 2, 4, 3, 5, 1).reshape(batch, -1, patch_size * patch_size * channels).double()
    if norm_pix_loss:
        mean, var = patches.mean(dim=-1, keepdim=True), patches.var(dim=-1, keepdim=True)
        patches = (patches - mean) / (var + 1.0e-6) ** 0.5
    return float((patches**2).mean())


class ImageTrack:
    name = "image"
    published_folder = "mae"  # the model `--push_to_hub` publishes: the MAE, whose [CLS] the readouts measure
    plotted = "test [CLS] embeddings after MAE pretraining"  # what `test_cls.pt` holds, for the plots' captions
    convergence_checks: list[dict] = []  # fine-tuning here has no constant-predictor check: its accuracy vs chance

    def __init__(self, recipe: ImageRecipe, images: str | None, work_dir: Path, recalibrate: bool = True):
        self.recipe, self.recalibrate = recipe, recalibrate
        if images is None:
            self.folder, self.dataset = write_digits_folders(work_dir / "data" / "digits"), "scikit-learn digits (8x8)"
        else:
            self.folder = link_image_subset(images, work_dir / "data" / "images", recipe.max_train_images,
                                            recipe.max_test_images)  # fmt: skip
            self.dataset = images
        self.train_pixels, self.train_labels, self.classes = load_pixels(self.folder / "train")
        self.test_pixels, self.test_labels, _ = load_pixels(self.folder / "test", self.train_pixels.shape[1])
        if self.test_pixels.shape[2:] != self.train_pixels.shape[2:]:
            raise InputError(f"--images {images}: the test images are {self.test_pixels.shape[-1]}x"
                             f"{self.test_pixels.shape[-2]}, the training images {self.train_pixels.shape[-1]}x"
                             f"{self.train_pixels.shape[-2]}; resize them to one size.")  # fmt: skip
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
        batch_size = self.recipe.batch_size
        return read_out(model, train_batches=batches(train, batch_size), test_batches=batches(test, batch_size),
                        recalibration_batches=batches(train, batch_size, shuffled),
                        recalibration_count=self.recipe.recalibration_batches, recalibrate=self.recalibrate)  # fmt: skip

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
        return results, {"embeddings": test_embeddings, "labels": test_labels}
