"""The standardized-[CLS] control arm: standardized while training, folded into the saved pooler, unfolded on load."""

import json

import pytest
import torch
from conftest import TINY_BERT_OVERRIDES, bert_inputs, tiny_bert_config
from transformers import AutoModelForSequenceClassification, BertForSequenceClassification

from hf_sepnorm import SepNormBertForSequenceClassification
from hf_sepnorm.scripts import glue as run_glue
from hf_sepnorm.training import standardize_pooler_input


def _batches(count: int = 3):
    torch.manual_seed(1)
    return [bert_inputs(batch_size=8) for _ in range(count)]


def _pooler_inputs(model, batches) -> torch.Tensor:
    seen = []
    handle = model.bert.pooler.dense.register_forward_hook(lambda module, args, output: seen.append(args[0]))
    with torch.no_grad():
        for batch in batches:
            model(**batch)
    handle.remove()
    return torch.cat(seen)


def test_the_pooler_sees_cls_standardized_with_the_statistics_of_the_given_rows():
    model = SepNormBertForSequenceClassification(tiny_bert_config(cls_norm="shared", num_labels=2)).eval()
    batches = _batches()
    raw = torch.cat([model.bert(**batch).last_hidden_state[:, 0] for batch in batches]).detach()
    mean, std = standardize_pooler_input(model, batches)
    torch.testing.assert_close(mean, raw.mean(0))
    torch.testing.assert_close(std, raw.std(0))
    standardized = _pooler_inputs(model, batches)
    torch.testing.assert_close(standardized.mean(0), torch.zeros(raw.shape[1]), atol=1e-3, rtol=0)
    torch.testing.assert_close(standardized.std(0), torch.ones(raw.shape[1]), atol=1e-3, rtol=0)
    with pytest.raises(ValueError, match="already standardized"):
        standardize_pooler_input(model, batches)


def test_the_saved_weights_are_a_plain_model_computing_what_was_trained_and_load_back_unfolded():
    model = SepNormBertForSequenceClassification(tiny_bert_config(cls_norm="shared", num_labels=3)).eval()
    batches = _batches()
    start = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    standardize_pooler_input(model, batches)
    with torch.no_grad():  # a trained standardized model: the pooler weights move away from their start
        model.bert.pooler.dense.weight.mul_(1.5)
        trained_weight = model.bert.pooler.dense.weight.clone()
        expected = model(**batches[0]).logits
    saved = model.state_dict()
    assert "bert.pooler.dense.cls_feature_mean" not in saved
    assert not torch.equal(saved["bert.pooler.dense.weight"], trained_weight)  # folded, not the raw parameter
    plain = SepNormBertForSequenceClassification(model.config).eval()
    plain.load_state_dict(saved)
    with torch.no_grad():
        torch.testing.assert_close(plain(**batches[0]).logits, expected)
    # into the same start standardized again (the Trainer's resume): unfolded to the trained parameters
    again = SepNormBertForSequenceClassification(model.config).eval()
    again.load_state_dict(start)
    standardize_pooler_input(again, batches)
    again.load_state_dict(saved)
    torch.testing.assert_close(again.bert.pooler.dense.weight, trained_weight)
    with torch.no_grad():
        torch.testing.assert_close(again(**batches[0]).logits, expected)


def test_a_model_without_a_pooler_is_refused_in_one_line():
    model = SepNormBertForSequenceClassification(tiny_bert_config(cls_norm="shared"))
    model.bert.pooler = None
    with pytest.raises(ValueError, match="has none: use a BERT-like checkpoint built with its pooling layer"):
        standardize_pooler_input(model, _batches(1))


def test_run_glue_trains_the_control_and_saves_a_stock_loadable_model_that_scores_what_the_run_scored(data_dir, tmp_path):
    output_dir = tmp_path / "control"
    common = ["--task_name", "stsb", "--data_dir", str(data_dir / "glue" / "STS-B"), "--max_eval_samples", "48",
              "--max_seq_length", "64", "--report_to", "none", "--disable_tqdm", "true", "--seed", "3",
              "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "16"]  # fmt: skip
    results = run_glue.main(
        ["--output_dir", str(output_dir), "--do_train", "--do_eval", "--max_steps", "4", "--max_train_samples", "64",
         "--config_overrides", TINY_BERT_OVERRIDES, "--cls_norm", "shared", "--standardize_cls_features", "true",
         "--vocab_size", "500", *common]
    )  # fmt: skip
    assert json.loads((output_dir / "config.json").read_text())["cls_norm"] == "shared"
    stock = AutoModelForSequenceClassification.from_pretrained(output_dir)
    assert isinstance(stock, (SepNormBertForSequenceClassification, BertForSequenceClassification))
    reloaded = run_glue.main(["--model_name_or_path", str(output_dir), "--output_dir", str(tmp_path / "eval"),
                              "--do_eval", *common])  # fmt: skip
    assert reloaded["eval_pearson"] == pytest.approx(results["eval_pearson"], abs=1e-4)  # fp32 rounding of the fold
    assert reloaded["eval_loss"] == pytest.approx(results["eval_loss"], rel=1e-4)


def test_run_glue_refuses_the_control_without_training(tmp_path):
    with pytest.raises(ValueError, match="use it with --do_train and without --use_peft"):
        run_glue.main(["--task_name", "stsb", "--output_dir", str(tmp_path), "--do_eval",
                       "--standardize_cls_features", "true", "--report_to", "none"])  # fmt: skip


def test_a_family_without_a_pooler_standardizes_the_input_of_its_head_and_saves_it_folded():
    """ModernBERT has no pooler: its classifier's first layer on [CLS] is `head.dense` (classifier_pooling="cls");
    a mean-pooling head has no [CLS] input, and a bias-free one no bias to fold the mean into: both refused."""
    from family_checkpoints import sepnorm_config

    from hf_sepnorm import SepNormModernBertForSequenceClassification

    config = sepnorm_config("sepnorm_modernbert", cls_norm="shared", classifier_bias=True)
    model = SepNormModernBertForSequenceClassification(config).eval()
    batches = _batches()
    mean, std = standardize_pooler_input(model, batches)
    seen = []
    handle = model.head.dense.register_forward_hook(lambda module, args, output: seen.append(args[0]))
    with torch.no_grad():
        expected = torch.cat([model(**batch).logits for batch in batches])
    handle.remove()
    standardized = torch.cat(seen)
    torch.testing.assert_close(standardized.mean(0), torch.zeros_like(mean), rtol=0, atol=1e-4)
    plain = SepNormModernBertForSequenceClassification(model.config).eval()
    plain.load_state_dict(model.state_dict())  # folded: a plain model computing what the standardized one does
    with torch.no_grad():
        torch.testing.assert_close(torch.cat([plain(**batch).logits for batch in batches]), expected, rtol=0, atol=1e-4)
    for refused, message in (({"classifier_pooling": "mean"}, "ModernBERT's `head` with classifier_pooling='cls'"),
                             ({"classifier_bias": False}, "build the head with classifier_bias=True")):  # fmt: skip
        head = SepNormModernBertForSequenceClassification(sepnorm_config("sepnorm_modernbert", **refused))
        with pytest.raises(ValueError, match=message):
            standardize_pooler_input(head, batches)
