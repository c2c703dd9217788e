"""The standardized-[CLS] control arm: standardized at the final norm while training (BatchNorm's epsilon), folded
into the saved pooler, unfolded on load."""

import json

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_BERT_OVERRIDES, bert_inputs, tiny_bert_config
from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertForSequenceClassification

from hf_sepnorm import SepNormBertForSequenceClassification
from hf_sepnorm.scripts import glue as run_glue
from hf_sepnorm.training import frozen_standardization, standardize_cls_features


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


def _final_norm(model):
    return model.bert.encoder.layer[-1].output.LayerNorm


def _with_random_affine(model):
    with torch.no_grad():
        _final_norm(model).weight.uniform_(0.5, 2.0)
        _final_norm(model).bias.normal_()
    return model


def test_the_final_cls_is_standardized_before_the_norms_affine_map_and_the_tokens_are_untouched():
    model = _with_random_affine(SepNormBertForSequenceClassification(tiny_bert_config(cls_norm="shared", num_labels=2)))
    model.eval()
    batches = _batches()
    norm = _final_norm(model)
    inputs = []
    handle = norm.register_forward_hook(lambda module, args, output: inputs.append(args[0][:, 0]))
    with torch.no_grad():
        stock = [model.bert(**batch).last_hidden_state for batch in batches]
    handle.remove()
    normalized = F.layer_norm(torch.cat(inputs), norm.normalized_shape, eps=norm.eps)
    mean, scale = standardize_cls_features(model, batches)
    torch.testing.assert_close(mean, normalized.mean(0))
    torch.testing.assert_close(scale, (normalized.var(0, unbiased=False) + 1e-5).sqrt())
    expected = norm.weight * (normalized - mean) / scale + norm.bias
    torch.testing.assert_close(_pooler_inputs(model, batches), expected.detach())
    standardized = (_pooler_inputs(model, batches) - norm.bias) / norm.weight
    torch.testing.assert_close(standardized.mean(0), torch.zeros(normalized.shape[1]), atol=1e-3, rtol=0)
    variance = normalized.var(0, unbiased=False)  # a random tiny model's [CLS] varies little: the epsilon shows
    torch.testing.assert_close(standardized.std(0, unbiased=False), (variance / (variance + 1e-5)).sqrt(), atol=2e-3, rtol=0)
    with torch.no_grad():
        for batch, before in zip(batches, stock):
            torch.testing.assert_close(model.bert(**batch).last_hidden_state[:, 1:], before[:, 1:])
    with pytest.raises(ValueError, match="already standardized"):
        standardize_cls_features(model, batches)


def test_a_zero_variance_feature_maps_to_about_zero_not_to_its_rounding_noise():
    torch.manual_seed(0)
    rows = torch.randn(200, 6)
    rows[:, 2] = 0.75 + 1e-8 * torch.randn(200)  # constant up to rounding, as a dead feature is
    rows[:, 4] = -3.0  # exactly constant
    center, scale = frozen_standardization(rows)
    held_out = torch.randn(50, 6)
    held_out[:, 2], held_out[:, 4] = 0.75 + 1e-8 * torch.randn(50), -3.0
    standardized = (held_out - center) / scale
    assert torch.isfinite(standardized).all()
    assert standardized[:, [2, 4]].abs().max() < 1e-4
    assert standardized.abs().max() < 10


def test_a_dead_feature_gets_no_amplified_gradient_and_the_cls_stays_bounded():
    """all-MiniLM-L6-v2's final LayerNorm has gamma ~ 1e-33 at two features: dividing the pooler's input by its
    standard deviation (the old control) multiplied their gradient by about a million. Standardized before gamma,
    they get a gradient of the size the live features get, and their [CLS] coordinate stays at beta."""
    model = _with_random_affine(SepNormBertForSequenceClassification(tiny_bert_config(cls_norm="shared", num_labels=1)))
    dead = [3, 7]
    with torch.no_grad():
        _final_norm(model).weight[dead] = torch.tensor([4.8e-33, 6.0e-33])
        _final_norm(model).bias[dead] = 0.0
    batches = _batches()
    standardize_cls_features(model, batches)
    model.train()
    F.mse_loss(model(**batches[0]).logits.squeeze(-1), torch.linspace(0, 5, 8)).backward()
    assert all(torch.isfinite(parameter.grad).all() for parameter in model.parameters() if parameter.grad is not None)
    gamma_gradient = _final_norm(model).weight.grad.abs()
    assert gamma_gradient[dead].max() < 10 * gamma_gradient.median(), gamma_gradient
    cls = _pooler_inputs(model.eval(), batches)
    assert torch.isfinite(cls).all() and cls[:, dead].abs().max() < 1e-6  # beta 0, gamma ~ 0: about 0
    assert cls.abs().max() < 100


def test_on_all_minilm_the_controls_gradient_at_step_0_is_that_of_shared(minilm_dir, data_dir):
    """The old control: gradient norm 253,860 at step 0 against 18.4 for shared (issue 33); now about shared's."""
    from hf_sepnorm.data import load_glue

    rows = load_glue("stsb", str(data_dir / "glue" / "STS-B"), splits=["train"])["train"].select(range(64))
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    encoded = tokenizer(list(rows["sentence1"]), list(rows["sentence2"]), truncation=True, max_length=64,
                        padding=True, return_tensors="pt")  # fmt: skip
    batches = [{name: value[i : i + 32] for name, value in encoded.items()} for i in (0, 32)]
    labels = torch.tensor(list(rows["label"]), dtype=torch.float32)[:32]
    norms = {}
    for arm in ("shared", "control"):
        torch.manual_seed(0)
        model = SepNormBertForSequenceClassification.from_pretrained(minilm_dir, num_labels=1, cls_norm="shared")
        if arm == "control":
            standardize_cls_features(model, batches)
        model.train()
        F.mse_loss(model(**batches[0]).logits.squeeze(-1), labels).backward()
        norms[arm] = torch.stack([p.grad.norm() for p in model.parameters() if p.grad is not None]).norm().item()
    assert norms["control"] < 5 * norms["shared"], norms


def test_the_saved_weights_are_a_plain_model_computing_what_was_trained_and_load_back_unfolded():
    model = SepNormBertForSequenceClassification(tiny_bert_config(cls_norm="shared", num_labels=3)).eval()
    batches = _batches()
    start = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    standardize_cls_features(model, batches)
    with torch.no_grad():  # a trained standardized model: the pooler and the final norm move away from their start
        model.bert.pooler.dense.weight.mul_(1.5)
        _with_random_affine(model)
        trained_weight = model.bert.pooler.dense.weight.clone()
        expected = model(**batches[0]).logits
    saved = model.state_dict()
    assert not any("cls_feature" in name for name in saved)
    assert not torch.equal(saved["bert.pooler.dense.weight"], trained_weight)  # folded, not the raw parameter
    plain = SepNormBertForSequenceClassification(model.config).eval()
    plain.load_state_dict(saved)
    with torch.no_grad():
        torch.testing.assert_close(plain(**batches[0]).logits, expected)
    # into the same start standardized again (the Trainer's resume): unfolded to the trained parameters
    again = SepNormBertForSequenceClassification(model.config).eval()
    again.load_state_dict(start)
    standardize_cls_features(again, batches)
    again.load_state_dict(saved)
    torch.testing.assert_close(again.bert.pooler.dense.weight, trained_weight)
    with torch.no_grad():
        torch.testing.assert_close(again(**batches[0]).logits, expected)


def test_a_model_without_a_pooler_or_with_a_cls_batchnorm_is_refused_in_one_line():
    model = SepNormBertForSequenceClassification(tiny_bert_config(cls_norm="shared"))
    model.bert.pooler = None
    with pytest.raises(ValueError, match="use --cls_norm shared and a BERT-like checkpoint built with its pooler"):
        standardize_cls_features(model, _batches(1))
    model = SepNormBertForSequenceClassification(tiny_bert_config(cls_norm="batch", sepnorm_scope="final"))
    with pytest.raises(ValueError, match="use --cls_norm shared"):
        standardize_cls_features(model, _batches(1))


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


def test_a_family_without_a_pooler_is_refused_in_one_line_naming_what_the_control_covers():
    """ModernBERT has no pooler (its final norm feeds its own `head`): the control is BERT and RoBERTa's."""
    from family_checkpoints import sepnorm_config

    from hf_sepnorm import SepNormModernBertForSequenceClassification

    model = SepNormModernBertForSequenceClassification(sepnorm_config("sepnorm_modernbert", cls_norm="shared"))
    with pytest.raises(ValueError, match=r"built for BERT and RoBERTa \(ModernBERT has no pooler and is not covered\)"):
        standardize_cls_features(model, _batches(1))
