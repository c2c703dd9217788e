#!/usr/bin/env python
"""How far apart are a SepNorm model's [CLS] outputs in train mode (batch statistics) and eval mode (running
statistics), before and after re-estimating the statistics, and what does re-estimation do to the readouts?

    python examples/measure_cls_statistics.py --seeds 5 --output docs/results/cls_statistics.json

Per arm and seed, a tiny ViT-MAE (4 layers, 64 hidden, patch 2) is MAE-pretrained on scikit-learn's digits with
examples/run_mae.py (--recalibrate_cls_norm false, so that the saved model keeps the running statistics of
training). Then, on the 360 test images: the mean relative difference of the final [CLS] hidden state between train
and eval mode, with masking as in pretraining (mask ratio 0.75) and without (as every downstream use); and the
readouts of `hf_sepnorm.analysis.readout_summary` (linear probe with C chosen by cross-validation, 20-NN, on
training-standardized features) — both before and after `recalibrate_cls_batchnorm` on `--recalibration_samples`
unmasked training images. Paired differences (after - before) over seeds are printed with 95 % intervals.
"""

import argparse
import contextlib
import json
import statistics
import tempfile
from pathlib import Path

import torch

from hf_sepnorm import SepNormViTMAEForImageClassification
from hf_sepnorm.analysis import extract_cls_embeddings, readout_summary
from hf_sepnorm.cls_norms import cls_batchnorms
from hf_sepnorm.compare.scripts import run_script, training_flags
from hf_sepnorm.compare.statistics import paired_comparison
from hf_sepnorm.data.image_folders import load_pixels, write_digits_folders
from hf_sepnorm.recalibration import recalibrate_cls_batchnorm

ARMS = {"batch-all": ("batch", "all"), "batch-final": ("batch", "final")}
MODEL = ("hidden_size=64,num_hidden_layers=4,num_attention_heads=4,intermediate_size=128,decoder_hidden_size=32,"
         "decoder_num_hidden_layers=1,decoder_num_attention_heads=4,decoder_intermediate_size=64,patch_size=2,"
         "hidden_dropout_prob=0.0,attention_probs_dropout_prob=0.0")  # fmt: skip
BATCH_SIZE = 64


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
    num_patches = backbone.embeddings.patch_embeddings.num_patches
    noise = torch.rand(len(pixel_values), num_patches, generator=torch.Generator().manual_seed(0))
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


def batches(pixels, labels, order=None):
    order = torch.arange(len(labels)) if order is None else order
    for start in range(0, len(order), BATCH_SIZE):
        index = order[start : start + BATCH_SIZE]
        yield {"pixel_values": pixels[index].float() / 127.5 - 1.0, "labels": labels[index]}


def readouts(model, data) -> dict[str, float]:
    train_x, train_y = extract_cls_embeddings(model, batches(*data["train"]), return_labels=True)
    test_x, test_y = extract_cls_embeddings(model, batches(*data["test"]), return_labels=True)
    summary = readout_summary(train_x, train_y, test_x, test_y)
    return {key: summary[key] for key in ("linear_probe_accuracy", "knn_accuracy", "uniformity", "effective_rank")}


def measure(arm: str, seed: int, steps: int, recalibration_samples: int, folder: Path, data, work_dir: Path) -> dict:
    cls_norm, scope = ARMS[arm]
    output_dir = work_dir / f"{arm}-seed{seed}"
    run_script("mae", [
        "--train_dir", folder / "train", "--validation_dir", folder / "test", "--num_channels", 1,
        "--config_overrides", MODEL, "--cls_norm", cls_norm, "--sepnorm_scope", scope, "--recalibrate_cls_norm", "false",
        *training_flags(output_dir, steps=steps, learning_rate=1.5e-3, batch_size=BATCH_SIZE, seed=seed),
    ])  # fmt: skip
    model = SepNormViTMAEForImageClassification.from_pretrained(output_dir, num_labels=10)
    test_pixels = data["test"][0].float() / 127.5 - 1.0
    result = {"gap_masked_0.75": relative_gap(model.vit, test_pixels, 0.75),
              "gap_unmasked": relative_gap(model.vit, test_pixels, 0.0), **readouts(model, data)}  # fmt: skip
    order = torch.randperm(len(data["train"][1]), generator=torch.Generator().manual_seed(seed))
    used = recalibrate_cls_batchnorm(model, batches(*data["train"], order), max_batches=-(-recalibration_samples // BATCH_SIZE))
    result["recalibration_samples"] = min(used * BATCH_SIZE, len(order))
    result["gap_unmasked_recalibrated"] = relative_gap(model.vit, test_pixels, 0.0)
    result.update({f"{key}_recalibrated": value for key, value in readouts(model, data).items()})
    return result


def main(args=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--recalibration_samples", type=int, default=1024)
    parser.add_argument("--output", default="cls_statistics.json")
    parser.add_argument("--work_dir", help="where the MAE runs go (default: a temporary folder)")
    args = parser.parse_args(args)
    with tempfile.TemporaryDirectory() as temporary:
        work_dir = Path(args.work_dir or temporary)
        folder = write_digits_folders(work_dir / "digits")
        data = {split: load_pixels(folder / split)[:2] for split in ("train", "test")}
        results = {arm: [] for arm in ARMS}
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        for seed in range(args.seeds):
            for arm in ARMS:
                results[arm].append(measure(arm, seed, args.steps, args.recalibration_samples, folder, data, work_dir))
                # written after every run: an interrupted study keeps what it measured
                Path(args.output).write_text(json.dumps(
                    {"steps": args.steps, "seeds": args.seeds, "recalibration_samples": args.recalibration_samples,
                     "results": results}, indent=2))  # fmt: skip
    print(render(results))
    return results


def render(results: dict) -> str:
    """Markdown: per arm, the mean of each measurement before and after re-estimation and the paired difference."""
    lines = ["| arm | measurement | before | after | after - before [95 % CI] | verdict |", "|---|---|---|---|---|---|"]
    for arm, runs in results.items():
        pairs = [("gap_unmasked", False), ("linear_probe_accuracy", True), ("knn_accuracy", True)]
        for key, higher in pairs:
            before = [run[key] for run in runs]
            after = [run[f"{key}_recalibrated"] for run in runs]
            cells = f"{statistics.mean(before):.4f} | {statistics.mean(after):.4f}"
            if len(runs) >= 2:
                c = paired_comparison(before, after, higher)
                cells += f" | {c.mean_difference:+.4f} [{c.ci_low:+.4f}, {c.ci_high:+.4f}] | {c.verdict}"
            else:
                cells += " | – | –"
            lines.append(f"| {arm} | {key} | {cells} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
