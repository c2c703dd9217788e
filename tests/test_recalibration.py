"""Re-estimating the [CLS] BatchNorm statistics (PreciseBN): exact, local, and closing the train/eval gap."""

import warnings

import pytest
import torch
from conftest import bert_inputs, image_inputs, tiny_bert_config, tiny_vit_mae_config
from transformers import AutoTokenizer

from hf_sepnorm import ClsBatchNorm, SepNormBertModel, SepNormViTMAEForImageClassification
from hf_sepnorm.cls_norms import cls_batchnorms
from hf_sepnorm.recalibration import cls_statistics_never_updated, recalibrate_cls_batchnorm


def shifted_batches(count: int, batch_size: int = 8):
    generator = torch.Generator().manual_seed(5)
    return [{"pixel_values": torch.randn(batch_size, 3, 32, 32, generator=generator) * 2 + 0.5} for _ in range(count)]


def test_statistics_are_exact_averages_of_the_batch_statistics():
    model = SepNormViTMAEForImageClassification(tiny_vit_mae_config(num_labels=3))
    norm = model.vit.layernorm.cls_norm
    seen = []
    handle = norm.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().double()))
    data = shifted_batches(5)
    used = recalibrate_cls_batchnorm(model, data)
    handle.remove()
    assert used == 5 and len(seen) == 5
    expected_mean = torch.stack([batch.mean(dim=0) for batch in seen]).mean(dim=0)
    expected_var = torch.stack([batch.var(dim=0, unbiased=True) for batch in seen]).mean(dim=0)
    torch.testing.assert_close(norm.running_mean.double(), expected_mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(norm.running_var.double(), expected_var, rtol=1e-5, atol=1e-6)


def test_nothing_but_the_running_statistics_changes():
    model = SepNormBertModel(tiny_bert_config()).train()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    momenta = [norm.momentum for norm in cls_batchnorms(model)]
    recalibrate_cls_batchnorm(model, [bert_inputs(batch_size=6) for _ in range(3)])
    after = model.state_dict()
    changed = {key for key in before if not torch.equal(before[key], after[key])}
    assert changed and all(key.endswith(("running_mean", "running_var")) for key in changed)
    assert model.training  # mode restored
    assert [norm.momentum for norm in cls_batchnorms(model)] == momenta


def test_batches_of_one_are_skipped_and_no_usable_batch_is_an_error_that_changes_nothing():
    model = SepNormViTMAEForImageClassification(tiny_vit_mae_config(num_labels=3))
    assert recalibrate_cls_batchnorm(model, [image_inputs(batch_size=1), image_inputs(batch_size=4)]) == 1
    before = {key: value.clone() for key, value in model.state_dict().items()}
    with pytest.raises(ValueError, match="at least one batch of 2 or more"):
        recalibrate_cls_batchnorm(model, [image_inputs(batch_size=1)])
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())


def cls_output(model, batch, training: bool) -> torch.Tensor:
    model.train(training)
    with torch.no_grad():
        return model.vit(**batch, noise=torch.arange(16).expand(len(batch["pixel_values"]), -1)).last_hidden_state[:, 0]


def test_after_recalibration_eval_mode_matches_train_mode_on_the_same_large_batch():
    """Tolerance: recalibrated on exactly this batch, eval and train mode differ only by BatchNorm's unbiased
    (n/(n-1)) running variance against the biased batch variance: ~1/(2n) = 0.2 % per norm at n = 256, a few
    norms deep. Before recalibration (statistics from other data) the gap is far larger."""
    model = SepNormViTMAEForImageClassification(tiny_vit_mae_config(num_labels=3, hidden_dropout_prob=0.0))
    for batch in shifted_batches(3, batch_size=32):  # running statistics from a different distribution
        model.train()(**batch)
    large = {"pixel_values": torch.randn(256, 3, 32, 32, generator=torch.Generator().manual_seed(9))}

    def relative_gap():
        eval_mode = cls_output(model, large, False)
        train_mode = cls_output(model, large, True)  # after eval: its update of the statistics must not count
        return ((eval_mode - train_mode).norm(dim=-1) / train_mode.norm(dim=-1)).mean().item()

    gap_before = relative_gap()
    recalibrate_cls_batchnorm(model, [large])
    gap_after = relative_gap()
    assert gap_after < 0.01
    assert gap_before > 10 * gap_after


# ---- never-updated statistics: warned about in eval, estimated where there is data ----

SENTENCES = [
    "A man is playing a guitar.", "The stock market fell sharply today.", "Two dogs run across a snowy field.",
    "The committee approved the new budget.", "She baked bread for the whole family.", "Rain is expected tomorrow.",
    "The train to Paris was delayed by an hour.", "Scientists found water on a distant moon.",
    "He forgot his keys at the office again.", "A child laughs at a puppet show.", "The river flooded the valley.",
    "Parliament debated the tax reform for hours.", "The orchestra tuned their instruments.",
    "Our team lost the final in extra time.", "Fresh snow covered the mountain road.", "The old bridge was repaired.",
]  # fmt: skip


def test_eval_on_never_updated_statistics_warns_once_naming_the_fix(monkeypatch):
    monkeypatch.setattr(ClsBatchNorm, "_warned_never_updated", False)
    model = SepNormBertModel(tiny_bert_config()).eval()
    with pytest.warns(UserWarning, match=r"never updated .*recalibrate_cls_batchnorm\(model, batches\)"):
        model(**bert_inputs(batch_size=4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model(**bert_inputs(batch_size=4))  # once only


def test_estimated_or_trained_statistics_do_not_warn(monkeypatch):
    monkeypatch.setattr(ClsBatchNorm, "_warned_never_updated", False)
    model = SepNormBertModel(tiny_bert_config())
    assert cls_statistics_never_updated(model)
    recalibrate_cls_batchnorm(model, [bert_inputs(batch_size=6) for _ in range(2)])
    assert not cls_statistics_never_updated(model)
    trained = SepNormBertModel(tiny_bert_config()).train()
    trained(**bert_inputs(batch_size=6))  # one training step's running averages
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.eval()(**bert_inputs(batch_size=4))
        trained.eval()(**bert_inputs(batch_size=4))
    with torch.no_grad():  # statistics put back to (0, 1) in place are checked again
        for norm in cls_batchnorms(model):
            norm.reset_running_stats()
    with pytest.warns(UserWarning, match="never updated"):
        model(**bert_inputs(batch_size=4))


def test_a_converted_minilm_gives_unrelated_sentences_distinct_cls_once_estimated(minilm_dir, monkeypatch):
    """On never-updated statistics, six layers of unnormalized [CLS] leave one direction: unrelated sentences have
    cosine ~1. Estimated on a few sentences, they are told apart."""
    monkeypatch.setattr(ClsBatchNorm, "_warned_never_updated", False)
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    model = SepNormBertModel.from_pretrained(minilm_dir, cls_norm="batch").eval()
    probe = tokenizer(SENTENCES[:2], padding=True, return_tensors="pt")

    def cosine() -> float:
        with torch.no_grad():
            cls = model(**probe).last_hidden_state[:, 0]
        return torch.nn.functional.cosine_similarity(cls[0], cls[1], dim=0).item()

    with pytest.warns(UserWarning, match="never updated"):
        before = cosine()
    batches = [dict(tokenizer(SENTENCES[i : i + 8], padding=True, return_tensors="pt")) for i in (0, 8)]
    assert recalibrate_cls_batchnorm(model, batches) == 2
    after = cosine()
    assert before > 0.999 and after < 0.9, (before, after)
