"""A regression head that can reach its labels: its bias starts at the training labels' mean."""

import json

import numpy as np
import pytest
import torch
from conftest import TINY_BERT_OVERRIDES, bert_inputs, tiny_bert_config

from hf_sepnorm import SepNormBertForSequenceClassification
from hf_sepnorm.errors import InputError
from hf_sepnorm.scripts import glue as run_glue
from hf_sepnorm.training import init_head_bias_from_labels


def test_a_regression_head_bias_starts_at_the_label_mean_and_its_weights_stay():
    model = SepNormBertForSequenceClassification(tiny_bert_config(cls_norm="batch", num_labels=1))
    weight = model.classifier.weight.detach().clone()
    labels = [0.5, 4.0, 2.25, 3.75]
    mean = init_head_bias_from_labels(model, labels)
    assert mean.tolist() == pytest.approx([2.625])
    assert model.classifier.bias.tolist() == pytest.approx([2.625])
    torch.testing.assert_close(model.classifier.weight, weight)
    # an untrained head's outputs are now centred on the labels, not on 0
    with torch.no_grad():
        outputs = model.eval()(**bert_inputs(batch_size=8)).logits
    assert abs(outputs.mean().item() - 2.625) < 0.5


def test_labels_that_are_not_numbers_name_the_flag():
    model = SepNormBertForSequenceClassification(tiny_bert_config(num_labels=1))
    with pytest.raises(InputError, match="--init_head_bias_from_labels"):
        init_head_bias_from_labels(model, [1.0, float("nan")])


def _stsb_predictions(data_dir, tmp_path, init: str) -> tuple[float, float, dict]:
    """A [CLS]-BatchNorm model fine-tuned on real STS-B rows for a short, slow schedule; the mean of its predictions
    on 64 validation rows and of their labels, and the run's card."""
    output_dir = tmp_path / f"init-{init}"
    run_glue.main(
        ["--task_name", "stsb", "--data_dir", str(data_dir / "glue" / "STS-B"), "--output_dir", str(output_dir),
         "--cls_norm", "batch", "--config_overrides", TINY_BERT_OVERRIDES, "--vocab_size", "2000",
         "--init_head_bias_from_labels", init, "--do_train", "--max_steps", "10", "--learning_rate", "5e-5",
         "--max_train_samples", "256", "--per_device_train_batch_size", "32", "--max_seq_length", "64",
         "--report_to", "none", "--disable_tqdm", "true", "--seed", "0"]
    )  # fmt: skip
    from transformers import AutoTokenizer

    from hf_sepnorm.data import load_glue

    rows = load_glue("stsb", str(data_dir / "glue" / "STS-B"), splits=["validation"])["validation"].select(range(64))
    tokenizer = AutoTokenizer.from_pretrained(output_dir)
    model = SepNormBertForSequenceClassification.from_pretrained(output_dir).eval()
    inputs = tokenizer(list(rows["sentence1"]), list(rows["sentence2"]), truncation=True, max_length=64, padding=True,
                       return_tensors="pt")  # fmt: skip
    with torch.no_grad():
        predictions = model(**inputs).logits.squeeze(-1).numpy()
    return float(predictions.mean()), float(np.mean(list(rows["label"]))), (output_dir / "README.md").read_text()


def test_a_short_run_of_a_cls_batchnorm_model_predicts_around_the_labels(data_dir, tmp_path):
    centred, label_mean, card = _stsb_predictions(data_dir, tmp_path, "true")
    assert abs(centred - label_mean) < 0.6, (centred, label_mean)
    assert "head bias start" in card and "mean of the 256 training labels" in card
    # the old start, for contrast: 10 steps at 5e-5 leave a head starting at 0 far below the labels
    at_zero, _, card = _stsb_predictions(data_dir, tmp_path, "false")
    assert abs(at_zero - label_mean) > 1.5, (at_zero, label_mean)
    assert "head bias start" not in card
