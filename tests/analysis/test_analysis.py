"""hf_sepnorm.analysis: [CLS] extraction (BERT, unmasked ViT-MAE), spread/information metrics with known answers,
and the PNG charts."""

import math

import numpy as np
import pytest
import torch
from conftest import bert_inputs, image_inputs, tiny_bert_config, tiny_vit_mae_config
from PIL import Image
from scipy import integrate
from torch.testing import assert_close

from hf_sepnorm import (
    SepNormBertForSequenceClassification,
    SepNormBertModel,
    SepNormViTMAEForImageClassification,
    SepNormViTMAEForPreTraining,
    SepNormViTMAEModel,
)
from hf_sepnorm.analysis import (
    alignment,
    effective_rank,
    extract_cls_embeddings,
    linear_probe_accuracy,
    normalized_singular_values,
    plot_embedding_projection,
    plot_projections,
    plot_spectra,
    singular_value_spectrum,
    uniformity,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The tiny models here gain nothing from intra-op threads, and on shared cores under load two threads spin
    against each other (a 32x64 linear layer took 10 ms instead of 15 us); the setting is restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

# ---------------------------------------------------------------------------------------------- extraction: BERT


def labelled_bert_batches() -> list[dict[str, torch.Tensor]]:
    batches = [bert_inputs(batch_size=4), bert_inputs(batch_size=3)]
    batches[1]["token_type_ids"] = torch.randint(0, 2, batches[1]["input_ids"].shape)
    for batch in batches:
        batch["labels"] = torch.randint(0, 2, (batch["input_ids"].shape[0],))
    return batches


def without_labels(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: value for key, value in batch.items() if key != "labels"}


def test_bert_extraction_is_the_eval_mode_last_hidden_state_at_position_0():
    model = SepNormBertModel(tiny_bert_config())  # cls_norm="batch": train and eval mode differ
    batches = labelled_bert_batches()
    model.train()
    embeddings, labels = extract_cls_embeddings(model, batches, return_labels=True)

    assert model.training
    model.eval()
    expected = torch.cat([model(**without_labels(batch)).last_hidden_state[:, 0] for batch in batches])
    assert embeddings.dtype == torch.float32 and embeddings.device.type == "cpu"
    assert not embeddings.is_inference()  # usable outside inference mode, e.g. for in-place centering
    assert_close(embeddings, expected)
    assert torch.equal(labels, torch.cat([batch["labels"] for batch in batches]))


def test_bert_head_extraction_uses_its_backbone_and_restores_each_module_mode():
    model = SepNormBertForSequenceClassification(tiny_bert_config(num_labels=2))
    model.train()
    model.bert.embeddings.eval()  # e.g. a frozen embedding layer
    state_before = {name: value.clone() for name, value in model.state_dict().items()}
    batches = labelled_bert_batches()

    embeddings = extract_cls_embeddings(model, batches, max_batches=1)

    assert model.training and model.bert.encoder.training and not model.bert.embeddings.training
    for name, value in model.state_dict().items():  # no running statistic moved
        assert torch.equal(value, state_before[name]), name
    model.eval()
    assert_close(embeddings, model.bert(**without_labels(batches[0])).last_hidden_state[:, 0])


def test_return_labels_needs_labels_in_every_batch():
    with pytest.raises(ValueError, match="labels"):
        extract_cls_embeddings(SepNormBertModel(tiny_bert_config()), [bert_inputs()], return_labels=True)


# ------------------------------------------------------------------------------------------- extraction: ViT-MAE

VIT_MAE_CLASSES = [SepNormViTMAEModel, SepNormViTMAEForPreTraining, SepNormViTMAEForImageClassification]


def unmasked_reference(model) -> SepNormViTMAEModel:
    """A SepNormViTMAEModel with mask_ratio=0 and the weights and statistics of `model`'s backbone."""
    reference = SepNormViTMAEModel(tiny_vit_mae_config(mask_ratio=0.0))
    reference.load_state_dict(model.base_model.state_dict())
    return reference.eval()


def in_order(batch: dict[str, torch.Tensor], num_patches: int = 16) -> torch.Tensor:
    return torch.arange(num_patches).expand(batch["pixel_values"].shape[0], -1)


@pytest.mark.parametrize("model_class", VIT_MAE_CLASSES, ids=lambda cls: cls.__name__)
def test_vit_mae_extraction_sees_every_patch_in_order(model_class):
    model = model_class(tiny_vit_mae_config(num_labels=3))  # mask_ratio 0.75, as in pretraining
    model.train()
    config, embeddings_config = model.config, model.base_model.embeddings.config
    state_before = {name: value.clone() for name, value in model.state_dict().items()}
    batches = [{**image_inputs(batch_size=4), "labels": torch.tensor([0, 1, 2, 0])}, image_inputs(batch_size=3)]

    first = extract_cls_embeddings(model, batches)
    torch.manual_seed(1234)  # random masking would draw other patches now
    second = extract_cls_embeddings(model, batches)

    assert torch.equal(first, second)
    reference = unmasked_reference(model)
    expected = torch.cat([reference(**without_labels(b), noise=in_order(b)).last_hidden_state[:, 0] for b in batches])
    assert_close(first, expected)
    # the comparison can tell masking apart: a masked forward gives another [CLS] embedding
    masked = SepNormViTMAEModel(tiny_vit_mae_config(mask_ratio=0.75)).eval()
    masked.load_state_dict(reference.state_dict())
    assert not torch.allclose(first[:4], masked(batches[0]["pixel_values"]).last_hidden_state[:, 0], atol=1e-3)
    # nothing of the model changed: mode, config objects and mask ratio, weights and running statistics
    assert model.training
    assert model.config is config and model.base_model.embeddings.config is embeddings_config
    assert embeddings_config.mask_ratio == (0.0 if model_class is SepNormViTMAEForImageClassification else 0.75)
    for name, value in model.state_dict().items():
        assert torch.equal(value, state_before[name]), name


def test_vit_mae_extraction_restores_the_config_and_mode_on_error():
    model = SepNormViTMAEForPreTraining(tiny_vit_mae_config())
    model.train()
    config = model.vit.embeddings.config
    with pytest.raises(ValueError, match="doesn't match model"):
        extract_cls_embeddings(model, [image_inputs(size=16)])  # wrong image size
    assert model.vit.embeddings.config is config and config.mask_ratio == 0.75
    assert model.training and model.vit.training


def test_vit_mae_classifier_extraction_returns_the_labels():
    model = SepNormViTMAEForImageClassification(tiny_vit_mae_config(num_labels=3))
    batches = [
        {**image_inputs(batch_size=2), "labels": torch.tensor([2, 1])},
        {**image_inputs(batch_size=2), "labels": torch.tensor([0, 0])},
    ]
    embeddings, labels = extract_cls_embeddings(model, batches, return_labels=True)
    assert embeddings.shape == (4, 32)
    assert labels.tolist() == [2, 1, 0, 0]


# ------------------------------------------------------------------------------- uniformity and alignment


def collapsed(num_samples: int = 50, dim: int = 16) -> torch.Tensor:
    return torch.randn(1, dim).expand(num_samples, -1).clone()


def sphere_kernel_moment(dim: int, t: float) -> float:
    """E exp(-t ||x - y||^2) for x, y independent and uniform on the unit sphere S^{dim-1}.

    ||x - y||^2 = 2 - 2u with u = x.y, whose density is proportional to (1 - u^2)^((dim - 3) / 2) on [-1, 1].
    """
    density = lambda u: (1 - u * u) ** ((dim - 3) / 2)  # noqa: E731
    weighted, _ = integrate.quad(lambda u: np.exp(-t * (2 - 2 * u)) * density(u), -1, 1)
    normalizer, _ = integrate.quad(density, -1, 1)
    return weighted / normalizer


def test_uniformity_of_collapsed_embeddings_is_zero():
    assert uniformity(collapsed()) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("t", [1.0, 2.0])
def test_uniformity_of_an_isotropic_gaussian_is_that_of_the_uniform_sphere(t):
    num_samples, dim = 4000, 16
    embeddings = torch.randn(num_samples, dim)  # normalized, an isotropic Gaussian is uniform on the sphere
    mean_kernel = sphere_kernel_moment(dim, t)
    # The estimate is a U-statistic over pairs whose kernel k(x, y) = exp(-t||x - y||^2) has a constant projection
    # E_y k(x, y) (rotation invariance), so its variance is exactly 2 Var(k) / (N (N - 1)), with Var(k) =
    # E exp(-2t||x - y||^2) - (E k)^2; the delta method turns it into the standard deviation of the log. 5 sigma.
    kernel_variance = sphere_kernel_moment(dim, 2 * t) - mean_kernel**2
    log_std = math.sqrt(2 * kernel_variance / (num_samples * (num_samples - 1))) / mean_kernel
    assert uniformity(embeddings, t=t) == pytest.approx(math.log(mean_kernel), abs=5 * log_std)
    assert uniformity(embeddings, t=t) < uniformity(collapsed(), t=t) - 1.0


def test_uniformity_needs_two_embeddings():
    with pytest.raises(ValueError, match="at least 2"):
        uniformity(torch.randn(1, 4))


@pytest.mark.parametrize("alpha", [1.0, 2.0, 3.0])
def test_alignment_of_identical_pairs_is_zero_and_of_antipodal_pairs_two_to_the_alpha(alpha):
    embeddings = torch.randn(64, 8)
    assert alignment(embeddings, embeddings.clone(), alpha=alpha) == pytest.approx(0.0, abs=1e-12)
    assert alignment(embeddings, -3.0 * embeddings, alpha=alpha) == pytest.approx(2.0**alpha, rel=1e-12)


def test_alignment_needs_paired_rows():
    with pytest.raises(ValueError, match="equal shapes"):
        alignment(torch.randn(4, 8), torch.randn(5, 8))


# ----------------------------------------------------------------------------- spectrum and effective rank


def test_singular_value_spectrum_is_descending_and_centered_by_default():
    embeddings = torch.randn(300, 8) + 100.0  # a large common offset
    centered = singular_value_spectrum(embeddings)
    uncentered = singular_value_spectrum(embeddings, center=False)
    assert centered.shape == (8,) and torch.all(centered[:-1] >= centered[1:])
    assert_close(centered, torch.linalg.svdvals((embeddings - embeddings.mean(0)).double()))
    assert uncentered[0] > 10 * centered[0]  # the offset is one dominant direction unless removed


def test_effective_rank_of_collapsed_and_rank_1_embeddings_is_one():
    # built in fp64: float32 rounding alone would lift the other singular values to ~1e-7 of the first
    along_a_line = torch.randn(200, 1, dtype=torch.float64) * torch.randn(1, 16, dtype=torch.float64) + 1.0
    assert effective_rank(collapsed()) == pytest.approx(1.0, abs=1e-6)
    assert effective_rank(along_a_line) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("rank", [2, 3, 5])
def test_effective_rank_of_rank_k_embeddings_is_above_one_and_at_most_k(rank):
    embeddings = torch.randn(500, rank) @ torch.randn(rank, 16)
    assert 1.0 < effective_rank(embeddings) <= rank + 1e-6


def test_effective_rank_of_an_isotropic_gaussian_is_close_to_its_dimension():
    # with N >> d all singular values lie within sqrt(N) +- sqrt(d), i.e. within 7 % of each other for N=4000, d=16
    assert effective_rank(torch.randn(4000, 16)) > 0.98 * 16


def test_effective_rank_takes_singular_values_too():
    embeddings = torch.randn(100, 6)
    assert effective_rank(torch.ones(5)) == pytest.approx(5.0)
    assert effective_rank(torch.tensor([3.0, 0.0, 0.0])) == pytest.approx(1.0)
    assert effective_rank(singular_value_spectrum(embeddings)) == effective_rank(embeddings)
    assert normalized_singular_values(torch.tensor([3.0, 1.0])).tolist() == [0.75, 0.25]
    with pytest.raises(ValueError, match="negative"):
        effective_rank(torch.tensor([1.0, -1.0]))


# --------------------------------------------------------------------------------------------- linear probe


def gaussian_blobs(num_per_class: int, num_classes: int = 4, dim: int = 8, spread: float = 1.0):
    centers = 10.0 * torch.eye(num_classes, dim)
    labels = torch.arange(num_classes).repeat_interleave(num_per_class)
    return centers[labels] + spread * torch.randn(len(labels), dim), labels


def test_linear_probe_separates_gaussian_blobs():
    train, train_labels = gaussian_blobs(100)
    test, test_labels = gaussian_blobs(50)
    assert linear_probe_accuracy(train, train_labels, test, test_labels) == 1.0


def test_linear_probe_on_random_labels_is_at_chance():
    train, test = torch.randn(1000, 8), torch.randn(1000, 8)
    train_labels, test_labels = torch.randint(0, 4, (1000,)), torch.randint(0, 4, (1000,))
    # test labels independent of everything: accuracy ~ Binomial(1000, 1/4) / 1000, std 0.0137; 0.06 is 4.4 std
    assert linear_probe_accuracy(train, train_labels, test, test_labels) == pytest.approx(0.25, abs=0.06)


def test_linear_probe_standardizes_features():
    # the class is in a feature of scale 1e-3, among unit-scale noise: unstandardized, the L2 penalty on the large
    # weight it needs would keep the probe near chance
    def tiny_signal(num_samples):
        labels = torch.randint(0, 2, (num_samples,))
        features = torch.randn(num_samples, 8)
        features[:, 0] = 1e-3 * (2.0 * labels - 1.0) + 1e-4 * torch.randn(num_samples)
        return features, labels

    assert linear_probe_accuracy(*tiny_signal(400), *tiny_signal(200)) == 1.0


# ------------------------------------------------------------------------------------------------------ plots


def png_size(path) -> tuple[int, int]:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


def test_plot_spectra_writes_a_png_of_the_requested_size(tmp_path):
    collapsing = torch.randn(500, 3) @ torch.randn(3, 32) + 0.01 * torch.randn(500, 32)
    spectra = {"ShareNorm": singular_value_spectrum(collapsing), "SepNorm": torch.randn(500, 32)}
    path = plot_spectra(spectra, tmp_path / "spectra.png", title="Test spectra", figsize=(6.0, 4.0), dpi=50)
    assert path == tmp_path / "spectra.png"
    assert png_size(path) == (300, 200)


def test_plot_embedding_projection_writes_a_png_of_the_requested_size(tmp_path):
    embeddings, labels = gaussian_blobs(30, num_classes=3, dim=16)
    path = plot_embedding_projection(
        embeddings, labels, tmp_path / "pca.png", class_names=["cat", "dog", "ship"], figsize=(5.0, 4.0), dpi=40
    )
    assert png_size(path) == (200, 160)


def test_plot_projections_puts_one_panel_per_arm_side_by_side(tmp_path):
    arms = {"ShareNorm": gaussian_blobs(30, 3, 16, spread=5.0), "SepNorm": gaussian_blobs(30, 3, 16)}
    path = plot_projections(arms, tmp_path / "arms.png", panel_size=(4.0, 3.0), dpi=50)
    assert png_size(path) == (400, 150)
