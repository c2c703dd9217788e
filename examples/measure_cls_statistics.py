#!/usr/bin/env python
"""How far apart are a SepNorm model's [CLS] outputs in train mode (batch statistics) and eval mode (running
statistics), before and after re-estimating the statistics, and what does that do to a linear probe?

    python examples/measure_cls_statistics.py --output docs/results/cls_statistics.json

A tiny ViT-MAE (4 layers, 64 hidden) is MAE-pretrained for 300 steps on scikit-learn's digits (AdamW 1.5e-3,
batch 64) once per arm; then, on the same 256 test images, the mean relative difference of the final [CLS] hidden
state between train and eval mode is measured with masking as in pretraining (mask ratio 0.75) and without (as in
every downstream use), before and after `recalibrate_cls_batchnorm` on unmasked training images. The arm
"batch, first norm too" also separates the first norm, whose [CLS] input is the same for every image.
"""

import argparse
import contextlib
import json
from pathlib import Path

import torch
from transformers import set_seed

from hf_sepnorm import SepNormViTMAEConfig, SepNormViTMAEForImageClassification, SepNormViTMAEForPreTraining
from hf_sepnorm.analysis import linear_probe_accuracy
from hf_sepnorm.compare.tracks import batches, digits_images, stack_images, train
from hf_sepnorm.data.images import ImageTransform, make_image_processor
from hf_sepnorm.recalibration import recalibrate_cls_batchnorm
from hf_sepnorm.remote_code.sepnorm import cls_batchnorms, install_sepnorm

ARMS = {"batch": "batch", "batch, first norm too": "batch", "layer": "layer", "shared": "shared"}
MODEL = dict(
    image_size=8, patch_size=2, num_channels=1, hidden_size=64, num_hidden_layers=4, num_attention_heads=4,
    intermediate_size=128, decoder_hidden_size=32, decoder_num_hidden_layers=1, decoder_num_attention_heads=4,
    decoder_intermediate_size=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, num_labels=10,
)  # fmt: skip
NUM_PATCHES = 16


@contextlib.contextmanager
def batch_statistics_without_update(model):
    """Train mode for the [CLS] BatchNorms only (batch statistics), leaving their running statistics alone."""
    norms = cls_batchnorms(model)
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.momentum, norm.training = 0.0, True
    try:
        yield
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum, norm.training = momentum, False


def final_cls(backbone, pixel_values, mask_ratio: float, train_mode: bool) -> torch.Tensor:
    """The final [CLS] hidden state with `mask_ratio` of the patches masked (a fixed random draw)."""
    backbone.eval()
    masking = backbone.embeddings.config
    previous, masking.mask_ratio = masking.mask_ratio, mask_ratio
    noise = torch.rand(len(pixel_values), NUM_PATCHES, generator=torch.Generator().manual_seed(0))
    context = batch_statistics_without_update(backbone) if train_mode else contextlib.nullcontext()
    try:
        with torch.no_grad(), context:
            return backbone(pixel_values=pixel_values, noise=noise).last_hidden_state[:, 0]
    finally:
        masking.mask_ratio = previous


def relative_gap(backbone, pixel_values, mask_ratio: float) -> float:
    eval_mode = final_cls(backbone, pixel_values, mask_ratio, train_mode=False)
    train_mode = final_cls(backbone, pixel_values, mask_ratio, train_mode=True)
    return ((eval_mode - train_mode).norm(dim=-1) / train_mode.norm(dim=-1)).mean().item()


def probe(classifier, train_loader, test_loader) -> float:
    from hf_sepnorm.analysis import extract_cls_embeddings

    train_x, train_y = extract_cls_embeddings(classifier, train_loader, return_labels=True)
    test_x, test_y = extract_cls_embeddings(classifier, test_loader, return_labels=True)
    return linear_probe_accuracy(train_x, train_y, test_x, test_y)


def measure_arm(arm: str, splits, steps: int, seed: int, work_dir: Path) -> dict[str, float]:
    set_seed(seed)
    config = SepNormViTMAEConfig(cls_norm=ARMS[arm], **MODEL)
    mae = SepNormViTMAEForPreTraining(config)
    classifier = SepNormViTMAEForImageClassification(config)  # the same encoder, never masking
    if arm == "batch, first norm too":
        for model in (mae.vit, classifier.vit):
            install_sepnorm(model, ["layers.0.layernorm_before"], "batch", config.cls_norm_momentum)
    processor = make_image_processor(8, 1)
    plain = {name: split.with_transform(ImageTransform(processor, 1, False)) for name, split in splits.items()}
    train(mae, work_dir / arm, plain["train"], steps=steps, learning_rate=1.5e-3, batch_size=64, seed=seed,
          collator=stack_images)  # fmt: skip

    classifier.vit.load_state_dict(mae.vit.state_dict())
    classifier.eval()
    test_pixels = stack_images([plain["test"][i] for i in range(256)])["pixel_values"]
    train_loader = batches(plain["train"], stack_images, 64)
    test_loader = batches(plain["test"], stack_images, 64)
    result = {
        "gap_masked_0.75": relative_gap(classifier.vit, test_pixels, 0.75),
        "gap_unmasked": relative_gap(classifier.vit, test_pixels, 0.0),
        "probe_accuracy": probe(classifier, train_loader, test_loader),
    }
    if cls_batchnorms(classifier):
        first = getattr(classifier.vit.layers[0].layernorm_before, "cls_norm", None)
        if first is not None:
            result["first_norm_running_var_max"] = first.running_var.max().item()
        recalibrate_cls_batchnorm(classifier, train_loader, max_batches=20)
        result["gap_unmasked_recalibrated"] = relative_gap(classifier.vit, test_pixels, 0.0)
        result["probe_accuracy_recalibrated"] = probe(classifier, train_loader, test_loader)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--output", default="cls_statistics.json")
    parser.add_argument("--work_dir", default="cls_statistics_runs")
    args = parser.parse_args()
    splits = digits_images()
    results = {
        arm: [measure_arm(arm, splits, args.steps, seed, Path(args.work_dir) / f"seed{seed}") for seed in range(args.seeds)]
        for arm in ARMS
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({"steps": args.steps, "seeds": args.seeds, "results": results}, indent=2))
    keys = sorted({key for runs in results.values() for run in runs for key in run})
    print("| arm | " + " | ".join(keys) + " |\n|---|" + "---|" * len(keys))
    for arm, runs in results.items():
        cells = [
            "–" if key not in runs[0] else " / ".join(f"{run[key]:.4g}" for run in runs) for key in keys
        ]
        print(f"| {arm} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
