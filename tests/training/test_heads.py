"""A head that starts where the constant predictor is: a regression head's bias at the training labels' mean, a
classification head's at their log class frequencies; a fine-tuned head keeps what it learned."""

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


def test_a_classification_head_bias_starts_at_the_log_class_frequencies():
    from hf_sepnorm.training import init_head_bias_from_class_frequencies

    model = SepNormBertForSequenceClassification(tiny_bert_config(cls_norm="batch", num_labels=3))
    weight = model.classifier.weight.detach().clone()
    labels = [0, 0, 0, 1, 1, 0]  # class 2 absent: add-one counts 5, 3, 1 of 9
    bias = init_head_bias_from_class_frequencies(model, labels, 3)
    expected = np.log([5 / 9, 3 / 9, 1 / 9])
    assert bias.tolist() == pytest.approx(expected.tolist(), rel=1e-6)
    assert model.classifier.bias.tolist() == pytest.approx(expected.tolist(), rel=1e-6)
    torch.testing.assert_close(model.classifier.weight, weight)
    assert "log class frequencies of the 6 training labels" in model.sepnorm_card_notes["head bias start"]
    with pytest.raises(InputError, match="--init_head_bias_from_class_frequencies needs training labels that are class"):
        init_head_bias_from_class_frequencies(model, [0, 3], 3)


def _run_glue(data_dir, output_dir, *options):
    run_glue.main(
        ["--task_name", "sst2", "--data_dir", str(data_dir / "glue" / "SST-2"), "--output_dir", str(output_dir),
         "--do_train", "--max_train_samples", "64", "--per_device_train_batch_size", "32", "--max_seq_length", "32",
         "--report_to", "none", "--disable_tqdm", "true", "--seed", "0", "--save_strategy", "no", *options]
    )  # fmt: skip


@pytest.mark.slow
def test_glue_starts_a_new_classifier_at_the_class_prior_and_leaves_a_fine_tuned_one_as_trained(data_dir, tmp_path):
    """The flag sets a new head's bias (the card says so); continuing from a fine-tuned classifier keeps the bias it
    learned (a zero learning rate: the saved bias comes back unchanged), whatever the flags."""
    from hf_sepnorm.data import load_glue

    first = tmp_path / "first"
    _run_glue(data_dir, first, "--cls_norm", "batch", "--config_overrides", TINY_BERT_OVERRIDES, "--vocab_size", "2000",
              "--init_head_bias_from_class_frequencies", "true", "--max_steps", "1", "--learning_rate", "0")
    labels = load_glue("sst2", str(data_dir / "glue" / "SST-2"), splits=["train"])["train"]["label"][:64]
    counts = np.bincount(labels, minlength=2) + 1
    started = SepNormBertForSequenceClassification.from_pretrained(first).classifier.bias
    assert started.tolist() == pytest.approx(np.log(counts / counts.sum()).tolist(), rel=1e-5)
    assert "log class frequencies of the 64 training labels" in (first / "README.md").read_text()

    with torch.no_grad():  # a bias no start would give, then continue training from that fine-tuned classifier
        model = SepNormBertForSequenceClassification.from_pretrained(first)
        model.classifier.bias.copy_(torch.tensor([0.25, -0.75]))
        model.save_pretrained(first)
    second = tmp_path / "second"
    _run_glue(data_dir, second, "--model_name_or_path", str(first), "--init_head_bias_from_class_frequencies", "true",
              "--max_steps", "1", "--learning_rate", "0")
    kept = SepNormBertForSequenceClassification.from_pretrained(second).classifier.bias
    assert kept.tolist() == pytest.approx([0.25, -0.75])
