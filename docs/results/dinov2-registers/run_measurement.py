"""Which leading tokens should a DINOv2-with-registers SepNorm normalize apart by default: [CLS] alone, or [CLS] and
the registers together? A short measurement, fixed before running:

- data: scikit-learn's digits (8x8 grey images, 10 classes), upsampled to 16x16; a stratified 70/30 split (seed 0),
  the 30% held out for testing only;
- model: SepNormDinov2ForImageClassification from scratch, cls_norm="batch", 4 registers, hidden 32, 2 layers, 2
  heads, patches of 4x4 pixels (16 patches);
- training: the HF Trainer, AdamW lr 1e-3, batch 64, 200 steps (about 10 epochs), linear decay, warm-up 20 steps;
- arms: cls_norm_tokens="cls" against "cls_and_registers", 5 paired seeds (same initialization seed and data order
  per seed in both arms);
- primary row: held-out test accuracy; paired difference (cls_and_registers - cls) per seed, with an exact
  sign-flip permutation test over the 5 pairs (2^5 = 32 sign patterns).

    OMP_NUM_THREADS=1 python docs/results/dinov2-registers/run_measurement.py  # writes measurement.json next to it (results.json names compare summaries, which docs/results/render.py reads)
    OMP_NUM_THREADS=1 python docs/results/dinov2-registers/run_measurement.py 3 4  # only these seeds: results_3_4.json
"""

import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from transformers import Trainer, TrainingArguments, set_seed

from hf_sepnorm import SepNormDinov2Config, SepNormDinov2ForImageClassification

ARMS = ("cls", "cls_and_registers")
SEEDS = [int(seed) for seed in sys.argv[1:]] or list(range(5))
HERE = Path(__file__).parent


def digits_splits():
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    images = torch.nn.functional.interpolate(images, size=16, mode="bilinear", align_corners=False)
    images = (images - 0.5) / 0.5
    train, test = train_test_split(np.arange(len(images)), test_size=0.3, stratify=digits.target, random_state=0)
    labels = torch.tensor(digits.target)
    return (images[train], labels[train]), (images[test], labels[test])


def run(arm: str, seed: int, train, test) -> float:
    set_seed(seed)
    config = SepNormDinov2Config(
        cls_norm="batch", cls_norm_tokens=arm, num_register_tokens=4, image_size=16, patch_size=4, num_channels=1,
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, mlp_ratio=2, num_labels=10,
    )  # fmt: skip
    model = SepNormDinov2ForImageClassification(config)
    dataset = Dataset.from_dict({"pixel_values": train[0].numpy(), "labels": train[1].numpy()}).with_format("torch")
    args = TrainingArguments(
        output_dir=str(HERE / "tmp"), max_steps=200, per_device_train_batch_size=64, learning_rate=1e-3,
        lr_scheduler_type="linear", warmup_steps=20, weight_decay=0.05, seed=seed, data_seed=seed,
        report_to=[], save_strategy="no", logging_steps=100, disable_tqdm=True, dataloader_drop_last=True,
    )  # fmt: skip
    Trainer(model=model, args=args, train_dataset=dataset).train()
    model.eval()
    with torch.no_grad():
        predictions = torch.cat([model(pixel_values=batch).logits.argmax(-1) for batch in test[0].split(256)])
    return float((predictions == test[1]).float().mean())


def sign_flip_p_value(differences: list[float]) -> float:
    observed = abs(np.mean(differences))
    flips = [abs(np.mean([d * s for d, s in zip(differences, signs)]))
             for signs in itertools.product((1, -1), repeat=len(differences))]  # fmt: skip
    return float(np.mean([flip >= observed - 1e-12 for flip in flips]))


def main():
    train, test = digits_splits()
    results = {arm: {} for arm in ARMS}
    started = time.time()
    for seed in SEEDS:
        for arm in ARMS:
            results[arm][seed] = run(arm, seed, train, test)
            print(f"seed {seed} {arm}: test accuracy {results[arm][seed]:.4f} ({time.time() - started:.0f}s)",
                  file=sys.stderr, flush=True)  # fmt: skip
    differences = [results["cls_and_registers"][s] - results["cls"][s] for s in SEEDS]
    summary = {
        "primary": "held-out test accuracy (30% of digits)",
        "seeds": SEEDS,
        "accuracy": {arm: [results[arm][s] for s in SEEDS] for arm in ARMS},
        "mean_accuracy": {arm: float(np.mean([results[arm][s] for s in SEEDS])) for arm in ARMS},
        "paired_differences_cls_and_registers_minus_cls": differences,
        "mean_difference": float(np.mean(differences)),
        "sign_flip_p_value": sign_flip_p_value(differences),
        "seconds": round(time.time() - started),
        "torch": torch.__version__,
    }
    name = "measurement.json" if len(sys.argv) == 1 else f"measurement_{'_'.join(map(str, SEEDS))}.json"
    (HERE / name).write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
