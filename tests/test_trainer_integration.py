"""SepNorm models under the HF Trainer: activation checkpointing, a last batch of one, bf16 autocast, checkpoints."""

import pytest
import torch
from conftest import tiny_vit_mae_config
from sklearn.datasets import load_digits
from transformers import Trainer, TrainingArguments

from hf_sepnorm import ClsBatchNorm, SepNormViTMAEForImageClassification, SepNormViTMAEForPreTraining


class DigitsDataset(torch.utils.data.Dataset):
    """scikit-learn's bundled 8x8 digits, as 1-channel images scaled to [-1, 1]."""

    def __init__(self, count: int):
        digits = load_digits()
        self.images = torch.tensor(digits.images[:count], dtype=torch.float32).unsqueeze(1) / 8.0 - 1.0
        self.labels = torch.tensor(digits.target[:count])

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return {"pixel_values": self.images[index], "labels": self.labels[index]}


def digits_config(**overrides):
    return tiny_vit_mae_config(image_size=8, patch_size=2, num_channels=1, num_labels=10, **overrides)


def cls_batchnorms(model):
    return [module for module in model.modules() if isinstance(module, ClsBatchNorm)]


def train(model, dataset, tmp_path, **arguments):
    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=8,
        learning_rate=1e-3,
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        **{"save_strategy": "no", **arguments},
    )
    trainer = Trainer(model=model, args=args, train_dataset=dataset)
    trainer.train()
    return trainer


@pytest.mark.slow
@pytest.mark.parametrize("reentrant", [False, True])
def test_activation_checkpointing_updates_running_statistics_once_per_step(tmp_path, reentrant):
    model = SepNormViTMAEForPreTraining(digits_config(decoder_cls_norm="batch"))
    train(
        model,
        DigitsDataset(40),
        tmp_path,
        max_steps=5,
        gradient_checkpointing=True,
        gradient_checkpointing_kwargs={"use_reentrant": reentrant},
    )
    norms = cls_batchnorms(model)
    assert len(norms) == 7
    assert [norm.num_batches_tracked.item() for norm in norms] == [5] * 7


def test_checkpointed_and_plain_training_reach_the_same_weights(tmp_path):
    results = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = SepNormViTMAEForImageClassification(digits_config())
        train(model, DigitsDataset(32), tmp_path / str(checkpointing), max_steps=4, gradient_checkpointing=checkpointing)
        results.append(model.state_dict())
    for key in results[0]:
        torch.testing.assert_close(results[0][key], results[1][key], msg=key)


def test_last_batch_of_one_sample_trains_on(tmp_path, monkeypatch):
    monkeypatch.setattr(ClsBatchNorm, "_warned_single_sample", False)
    model = SepNormViTMAEForImageClassification(digits_config())
    with pytest.warns(UserWarning, match="batch of 1 sample"):
        trainer = train(model, DigitsDataset(17), tmp_path, num_train_epochs=2)  # batches of 8, 8, 1 per epoch
    assert trainer.state.global_step == 6
    assert all(norm.num_batches_tracked.item() == 4 for norm in cls_batchnorms(model))
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_bf16_autocast_training_keeps_batchnorm_fp32_and_checkpoints_carry_the_code(tmp_path):
    model = SepNormViTMAEForImageClassification(digits_config())
    train(model, DigitsDataset(32), tmp_path, max_steps=3, bf16=True, save_strategy="steps", save_steps=3)
    for norm in cls_batchnorms(model):
        assert norm.running_mean.dtype == torch.float32 and norm.weight.dtype == torch.float32
        assert norm.num_batches_tracked.item() == 3
    checkpoint = tmp_path / "checkpoint-3"
    assert {"model.safetensors", "modeling_sepnorm_vit_mae.py", "sepnorm.py", "configuration_sepnorm_vit_mae.py"} <= {
        p.name for p in checkpoint.iterdir()
    }
    reloaded = SepNormViTMAEForImageClassification.from_pretrained(checkpoint)
    assert cls_batchnorms(reloaded)[0].num_batches_tracked.item() == 3
