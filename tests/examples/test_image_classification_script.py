"""run_image_classification.py end to end on real images: fine-tuning and linear probing from an MAE checkpoint."""

import json
from pathlib import Path

import pytest
import torch
from conftest import TINY_VIT_OVERRIDES
from safetensors.torch import load_file

from hf_sepnorm import SepNormViTMAEForImageClassification
from hf_sepnorm.cls_norms import cls_batchnorms
from hf_sepnorm.scripts import image_classification as run_image_classification
from hf_sepnorm.scripts import mae as run_mae
from hf_sepnorm.training import ImageDataArguments, SepNormModelArguments, prepare_model_images

COMMON = ["--report_to", "none", "--disable_tqdm", "true", "--per_device_train_batch_size", "8", "--seed", "3"]


@pytest.fixture(scope="module")
def cifar_mae_checkpoint(cifar10_dir, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("mae")
    run_mae.main(
        ["--train_dir", str(cifar10_dir / "train"), "--output_dir", str(output_dir), "--do_train", "--max_steps", "4",
         "--config_overrides", f"patch_size=8,{TINY_VIT_OVERRIDES}", *COMMON]
    )  # fmt: skip
    return output_dir


def classify(checkpoint, data: list[str], output_dir: Path, *extra: str) -> dict:
    run_image_classification.main(
        ["--model_name_or_path", str(checkpoint), *data, "--output_dir", str(output_dir), "--do_train", "--do_eval",
         "--max_steps", "3", *COMMON, *extra]
    )  # fmt: skip
    return json.loads((output_dir / "all_results.json").read_text())


def test_fine_tuning_on_cifar10_reports_top1_and_top5(cifar_mae_checkpoint, cifar10_dir, tmp_path):
    data = ["--train_dir", str(cifar10_dir / "train"), "--validation_dir", str(cifar10_dir / "test")]
    results = classify(cifar_mae_checkpoint, data, tmp_path / "ft")
    assert results["eval_samples"] == 100
    assert 0 <= results["eval_accuracy"] <= results["eval_top5_accuracy"] <= 1
    config = json.loads((tmp_path / "ft" / "config.json").read_text())
    assert len(config["id2label"]) == 10 and config["id2label"]["0"] == "airplane"
    weights = load_file(tmp_path / "ft" / "model.safetensors")
    assert weights["classifier.weight"].shape == (10, 32)
    assert not any(key.startswith("decoder.") for key in weights)


def batch_statistics_of_final_cls_norm(checkpoint: Path, train_dir: Path, validation_dir: Path):
    """The mean and (unbiased) variance of what the final [CLS] BatchNorm sees over all training images in one batch,
    as re-estimation runs the model: in eval mode, its [CLS] BatchNorms normalizing with batch statistics."""
    model = SepNormViTMAEForImageClassification.from_pretrained(checkpoint, num_labels=10).eval()
    for norm in cls_batchnorms(model):
        norm.train()
    data = ImageDataArguments(train_dir=str(train_dir), validation_dir=str(validation_dir))
    images = prepare_model_images(SepNormModelArguments(model_name_or_path=str(checkpoint)), data, None, seed=3,
                                  augment=False)  # fmt: skip
    pixel_values = torch.stack([row["pixel_values"] for row in images.splits["train"]])
    seen = []
    model.vit.layernorm.cls_norm.register_forward_hook(lambda module, args, output: seen.append(args[0]))
    with torch.no_grad():
        model(pixel_values=pixel_values)
    return seen[0].mean(0), seen[0].var(0)


def test_linear_probe_trains_only_the_head(cifar_mae_checkpoint, cifar10_dir, tmp_path):
    data = ["--train_dir", str(cifar10_dir / "train"), "--validation_dir", str(cifar10_dir / "test")]
    # one batch of all 400 training images: the re-estimated statistics are those of the whole training set
    classify(cifar_mae_checkpoint, data, tmp_path / "probe", "--linear_probe", "--recalibrate_cls_norm", "true",
             "--recalibration_batches", "1", "--per_device_train_batch_size", "400")  # fmt: skip
    pretrained = load_file(cifar_mae_checkpoint / "model.safetensors")
    probed = load_file(tmp_path / "probe" / "model.safetensors")
    encoder_weights = [key for key in probed if key.startswith("vit.") and "running_" not in key and "num_batches" not in key]
    assert encoder_weights and all(torch.equal(probed[key], pretrained[key]) for key in encoder_weights)
    # the [CLS] statistics were re-estimated on unmasked images, then left alone by the probe's training steps
    true_mean, true_var = batch_statistics_of_final_cls_norm(cifar_mae_checkpoint, cifar10_dir / "train",
                                                             cifar10_dir / "test")  # fmt: skip
    assert (true_var - 1).abs().min() > 0.5  # far from the variance 1 of statistics that measured nothing
    torch.testing.assert_close(probed["vit.layernorm.cls_norm.running_mean"], true_mean, rtol=1e-3, atol=1e-6)
    torch.testing.assert_close(probed["vit.layernorm.cls_norm.running_var"], true_var, rtol=1e-3, atol=1e-8)
    tracked = "vit.layernorm.cls_norm.num_batches_tracked"
    assert torch.equal(probed[tracked], pretrained[tracked])
    assert not torch.equal(probed["classifier.weight"], torch.zeros_like(probed["classifier.weight"]))


def test_idx_files_with_mean_pooling(digits_idx_dir, tmp_path):
    mae_dir = tmp_path / "mae"
    data = ["--train_dir", str(digits_idx_dir), "--num_channels", "1", "--max_train_samples", "120",
            "--max_eval_samples", "40"]  # fmt: skip
    run_mae.main(
        [*data, "--output_dir", str(mae_dir), "--do_train", "--max_steps", "2",
         "--config_overrides", f"patch_size=7,{TINY_VIT_OVERRIDES}", *COMMON]
    )  # fmt: skip
    results = classify(mae_dir, data, tmp_path / "ft", "--classifier_pooling", "mean")
    assert results["eval_samples"] == 40 and 0 <= results["eval_accuracy"] <= 1
    config = json.loads((tmp_path / "ft" / "config.json").read_text())
    assert config["classifier_pooling"] == "mean" and config["num_channels"] == 1


def test_unreadable_image_is_named(cifar10_dir, tmp_path):
    for label in ("cat", "dog"):
        (tmp_path / "images" / label).mkdir(parents=True)
        for index, source in enumerate(sorted((cifar10_dir / "train" / label).iterdir())[:4]):
            (tmp_path / "images" / label / f"{index}.jpg").write_bytes(source.read_bytes())
    (tmp_path / "images" / "cat" / "broken.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(ValueError, match=r"1 unreadable image\(s\) in the train split: .*broken\.jpg"):
        run_image_classification.main(
            ["--train_dir", str(tmp_path / "images"), "--validation_dir", str(tmp_path / "images"),
             "--output_dir", str(tmp_path / "out"), "--do_train", "--max_steps", "2", "--image_size", "32",
             "--config_overrides", f"patch_size=8,{TINY_VIT_OVERRIDES}", *COMMON]
        )  # fmt: skip


def test_linear_probe_with_lora_is_refused_before_any_work(tmp_path):
    """LoRA's weights train inside the encoder, so `--linear_probe --use_peft` would be no linear probe: refused in one
    line, before the images are read or anything is written."""
    import numpy as np
    from PIL import Image

    from hf_sepnorm.errors import InputError

    for index in range(8):
        path = tmp_path / "images" / f"class{index % 2}" / f"{index}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((32, 32, 3), index * 30, dtype=np.uint8)).save(path)
    checkpoint = Path(__file__).resolve().parents[1] / "fixtures" / "sepnorm_vit_mae_v0.1"
    with pytest.raises(InputError, match="--linear_probe.*--use_peft"):
        run_image_classification.main(
            ["--model_name_or_path", str(checkpoint), "--train_dir", str(tmp_path / "images"), "--output_dir",
             str(tmp_path / "out"), "--validation_split_percentage", "50", "--do_train", "--max_steps", "1",
             "--linear_probe", "--use_peft", *COMMON]
        )  # fmt: skip
    assert not (tmp_path / "out").exists()
