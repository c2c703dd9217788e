"""Paired statistics (hf_sepnorm.compare.statistics) with known answers, and the report rendered from results.json:
baselines, validity gate, intervals, per-seed values, verdicts."""

import math

import pytest
import torch
from scipy import stats

from hf_sepnorm.compare.assessment import assess_track
from hf_sepnorm.compare.report import (
    convergence_lines,
    gate_lines,
    render_report,
    verdict_lines,
)
from hf_sepnorm.compare.statistics import (
    detectable_difference,
    exact_signed_rank_test,
    holm_adjusted,
    holm_verdict,
    paired_comparison,
    paired_t_power,
)


def test_paired_interval_and_tests_on_known_differences():
    baseline = [10.0, 10.0, 10.0, 10.0, 10.0]
    treatment = [11.0, 12.0, 13.0, 14.0, 15.0]  # differences 1..5: mean 3, sd sqrt(2.5)
    result = paired_comparison(baseline, treatment, higher_is_better=True)
    half_width = stats.t.ppf(0.975, 4) * math.sqrt(2.5) / math.sqrt(5)
    assert result.n == 5 and result.differences == (1.0, 2.0, 3.0, 4.0, 5.0)
    assert result.mean_difference == 3.0
    assert result.ci_low == pytest.approx(3 - half_width) and result.ci_high == pytest.approx(3 + half_width)
    expected = stats.ttest_rel(treatment, baseline)
    assert result.t_p == pytest.approx(expected.pvalue)
    assert (result.ci_low, result.ci_high) == pytest.approx(tuple(expected.confidence_interval(0.95)))
    assert result.wilcoxon_p == pytest.approx(2 / 32)  # all 5 signs positive: 2 of the 2^5 sign patterns as extreme
    assert result.verdict == "better"
    assert paired_comparison(baseline, treatment, higher_is_better=False).verdict == "worse"


def test_an_interval_containing_zero_is_no_detectable_difference():
    result = paired_comparison([1.0, 2.0, 3.0, 4.0], [1.5, 1.5, 3.5, 3.5])
    assert result.ci_low < 0 < result.ci_high and result.verdict == "no detectable difference"
    identical = paired_comparison([1.0, 2.0], [1.0, 2.0])
    assert identical.t_p == 1.0 and identical.wilcoxon_p is None and identical.verdict == "no detectable difference"


@pytest.mark.parametrize("n", [3, 5, 10, 30])
def test_detectable_effect_has_80_percent_power(n):
    """At the reported detectable effect, a two-sided paired t-test at alpha 0.05 has power 0.8 (scipy's noncentral
    t distribution, computed independently of the integral the package uses)."""
    differences = [math.sin(i) for i in range(n)]
    result = paired_comparison([0.0] * n, differences)
    sd = stats.tstd(differences)
    noncentrality = result.detectable_effect * math.sqrt(n) / sd
    critical = stats.t.ppf(0.975, n - 1)
    power = stats.nct.sf(critical, n - 1, noncentrality) + stats.nct.cdf(-critical, n - 1, noncentrality)
    assert power == pytest.approx(0.8, abs=1e-6)


def test_detectable_effect_is_larger_than_the_normal_approximation_at_few_seeds():
    """(t_crit + z_0.8) * sd / sqrt(n) understates it: by 4 % at n = 5 and 21 % at n = 2."""
    for n, ratio in ((5, 1.040), (2, 1.206)):
        approximation = (stats.t.ppf(0.975, n - 1) + stats.norm.ppf(0.8)) / math.sqrt(n)
        assert detectable_difference(1.0, n) / approximation == pytest.approx(ratio, abs=2e-3)
    # G*Power, paired t, dz = 1, n = 10, two-sided alpha 0.05: power 0.8031
    assert paired_t_power(1.0, 1.0, 10) == pytest.approx(0.8031, abs=1e-4)
    assert detectable_difference(0.0, 5) == 0.0


def test_exact_wilcoxon_counts_ties_and_zeros():
    # |d| = 1, 1, 1, 2, 3 -> midranks 2, 2, 2, 4, 5; W+ = 13 of 15. Sign patterns at least as far from 7.5:
    # W+ >= 13 ({2,2,4,5} three ways, all five) or W+ <= 2 (none, one 2 three ways): 8 of 32
    assert exact_signed_rank_test([1.0, 1.0, -1.0, 2.0, 3.0]) == (pytest.approx(0.25), pytest.approx(2 / 32))
    assert stats.wilcoxon([1.0, 1.0, -1.0, 2.0, 3.0], method="exact").pvalue == pytest.approx(0.1875)  # ties ignored
    # no ties: ranks 1..4, W+ = 8 of 10; |W+ - 5| >= 3 for W+ in {0, 1, 2, 8, 9, 10}: 6 of 16
    assert exact_signed_rank_test([1.0, -2.0, 3.0, 4.0])[0] == pytest.approx(6 / 16)
    assert exact_signed_rank_test([0.0, 1.0, 2.0]) == (pytest.approx(0.5), pytest.approx(0.5))  # zero dropped: n = 2
    assert exact_signed_rank_test([0.0, 0.0]) == (None, None)
    result = paired_comparison([0.0] * 5, [1.0, 1.0, -1.0, 2.0, 3.0])
    assert result.wilcoxon_p == pytest.approx(0.25) and result.wilcoxon_smallest_p == pytest.approx(0.0625)


def test_a_secondary_row_reads_its_verdict_from_the_holm_adjusted_p():
    row = {"verdict": "better", "holm_p": 0.075, "ci_low": 0.01, "ci_high": 0.2}
    assert holm_verdict(row, higher_is_better=True) == "no detectable difference after Holm correction"
    assert holm_verdict({**row, "holm_p": 0.01}, higher_is_better=True) == "better"
    assert holm_verdict({**row, "holm_p": 0.01}, higher_is_better=False) == "worse"
    assert holm_verdict({**row, "verdict": "no detectable difference", "holm_p": 0.4}, True) == "no detectable difference"


def test_paired_comparison_needs_one_value_per_seed_and_two_seeds():
    with pytest.raises(ValueError, match="one per seed"):
        paired_comparison([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="at least 2 seeds"):
        paired_comparison([1.0], [2.0])


def test_holm_adjustment_known_values():
    assert holm_adjusted([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm_adjusted([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm_adjusted([]) == []


# ---- the report, from a results.json summary ----


def summary(random_probe: float) -> dict:
    """Two arms, 5 seeds; `batch-all` has a probe 0.05 above `shared` in every seed (plus noise) and a worse loss."""
    noise = [0.001, -0.002, 0.0, 0.002, -0.001]
    runs = {
        "shared": [{"mae_eval_loss": 0.5 + n, "linear_probe_accuracy": 0.60 + n, "knn_accuracy": 0.5,
                    "random_init_linear_probe_accuracy": random_probe + n} for n in noise],
        "batch-all": [{"mae_eval_loss": 0.6 + n, "linear_probe_accuracy": 0.65 - n, "knn_accuracy": 0.5 + n,
                       "random_init_linear_probe_accuracy": random_probe - n} for n in noise],
    }  # fmt: skip
    metrics = [
        {"key": "mae_eval_loss", "higher_is_better": False, "description": "MAE loss", "role": "pretraining"},
        {"key": "linear_probe_accuracy", "higher_is_better": True, "description": "linear probe", "role": "primary"},
        {"key": "knn_accuracy", "higher_is_better": True, "description": "20-NN", "role": "secondary"},
        {"key": "random_init_linear_probe_accuracy", "higher_is_better": True, "description": "random-init probe",
         "role": "reference"},
    ]  # fmt: skip
    track = {
        "title": "Images", "data": {"train images": 1437, "test images": 360}, "recipe": {"steps": 3},
        "metrics": metrics, "gate": [["linear_probe_accuracy", "random_init_linear_probe_accuracy"]],
        "baselines": {"chance": [0.1, "1 / classes"], "linear probe on raw pixels": [0.97, "pixels"]},
        "runs": runs, "figures": [{"file": "image_spectrum.png", "alt": "spectrum", "caption": "Spectra of seed 0."}],
        "seconds": 60.0,
    }  # fmt: skip
    return {"preset": "tiny", "note": "a check", "seeds": 5, "arms": ["shared", "batch-all"], "device": "CPU (x86_64)",
            "arm_descriptions": {"shared": "ShareNorm", "batch-all": "SepNorm"}, "recalibrate_cls_norm": True,
            "seconds": 61.0, "tracks": {"image": track}}  # fmt: skip


def test_report_with_a_passed_gate_states_the_measured_verdicts():
    data = summary(random_probe=0.3)
    assessment = assess_track(data["tracks"]["image"])
    assert assessment.gate_passed
    comparisons = assessment.comparisons["batch-all"]
    assert comparisons["linear_probe_accuracy"]["verdict"] == "better"
    assert comparisons["mae_eval_loss"]["verdict"] == "worse"  # lower is better, and it went up
    assert comparisons["knn_accuracy"]["holm_p"] == pytest.approx(comparisons["knn_accuracy"]["t_p"])  # one secondary
    report = render_report(data)
    assert "**`batch-all` vs `shared`, linear probe (higher is better): better**" in report
    assert "mean paired difference +0.0500" in report and "n = 5 seeds" in report
    assert "Validity gate" in report and "**passed**" in report
    assert "| linear probe on raw pixels | 0.9700 | pixels |" in report
    assert "| `linear_probe_accuracy` | `shared` | 0.6010 | 0.5980 | 0.6000 | 0.6020 | 0.5990 |" in report
    assert "| `mae_eval_loss` | lower |" in report and "| `linear_probe_accuracy` **(primary)** | higher |" in report
    assert "- `mae_eval_loss`: MAE loss." in report
    assert "![spectrum](image_spectrum.png)\n\n*Spectra of seed 0.*" in report
    assert "train images: 1437; test images: 360" in report and "Device: CPU (x86_64)" in report
    assert "seconds |" not in report


def test_report_with_a_failed_gate_reads_inconclusive_except_for_pretraining():
    data = summary(random_probe=0.62)  # random init probes as well as the trained [CLS] of `shared`
    assessment = assess_track(data["tracks"]["image"])
    lines = gate_lines(data["tracks"]["image"], assessment)
    assert not assessment.gate_passed and any(line.startswith("`shared`") and line.endswith("FAILED") for line in lines)
    assert [check.passed for check in assessment.gate] == [False, True]  # shared's probe is not above random init's
    comparisons = assessment.comparisons["batch-all"]
    assert comparisons["linear_probe_accuracy"]["verdict"] == "inconclusive (validity gate failed)"
    assert comparisons["mae_eval_loss"]["verdict"] == "worse"
    report = render_report(data)
    assert "**failed**" in report and "inconclusive (validity gate failed)**" in report


def test_reestimation_rows_are_reported_within_each_arm_not_against_shared():
    data = summary(random_probe=0.3)
    track = data["tracks"]["image"]
    for arm, shift in (("shared", 0.0), ("batch-all", 0.02)):  # re-estimation leaves `shared` as it is
        for run in track["runs"][arm]:
            run["linear_probe_accuracy_reestimated"] = run["linear_probe_accuracy"] + shift
    track["metrics"].append({"key": "linear_probe_accuracy_reestimated", "higher_is_better": True,
                             "description": "linear probe, re-estimated", "role": "re-estimation"})  # fmt: skip
    assessment = assess_track(track)
    assert "linear_probe_accuracy_reestimated" not in assessment.comparisons["batch-all"]
    assert [(row.arm, row.key) for row in assessment.reestimation] == [("batch-all", "linear_probe_accuracy")]
    report = render_report(data)
    rows = [line for line in report.splitlines() if line.startswith("| `") and "| helps |" in line]
    assert rows == ["| `batch-all` | linear_probe_accuracy | 0.6500 | 0.6700 | +0.0200 | [+0.0200, +0.0200] | 0 | helps |"]
    assert "| `shared` | linear_probe_accuracy | 0.6000 |" not in report


def test_a_pretraining_that_does_not_beat_its_trivial_predictor_fails_the_gate_and_says_why():
    data = summary(random_probe=0.3)
    track = data["tracks"]["image"]
    track["baselines"]["MAE loss, predicting zeros"] = [0.5465, "predicting 0"]
    track["learning_check"] = {"metric": "mae_eval_loss", "baseline": "MAE loss, predicting zeros",
                               "learner": "the MAE", "trivial": "predicting zeros"}  # fmt: skip
    for run in track["runs"]["batch-all"]:
        run["mae_eval_loss"] -= 0.2  # 0.4: learned; shared's 0.5 too
    assert assess_track(track).gate_passed
    for run in track["runs"]["shared"]:
        run["mae_eval_loss"] += 0.05  # about 0.55: not below 0.5465
    assessment = assess_track(track)
    lines = gate_lines(track, assessment)
    assert not assessment.gate_passed and not assessment.learned
    assert all(check.passed for check in assessment.gate)  # the readouts alone would pass: the MAE check fails it
    assert lines[0] == ("`shared`: the MAE did not learn: eval loss 0.5500 (mean of 5 seeds) against 0.5465 for "
                        "predicting zeros (not below it with 95 % confidence)")  # fmt: skip
    assert lines[1].startswith("`batch-all`: the MAE learned: eval loss 0.4000")
    report = render_report(data)
    assert "pretraining did not beat the trivial predictor" in report and lines[0] in report


def test_trivial_predictors_have_their_closed_form_values():
    from hf_sepnorm.compare.tracks.image import zero_prediction_mae_loss
    from hf_sepnorm.compare.tracks.scratch_text import unigram_mlm_loss

    # one 2x2 image, patch 2: the patch (0, 1, 2, 3) standardized with the unbiased variance 5/3 has mean square 3/4
    pixels = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
    assert zero_prediction_mae_loss(pixels, 2) == pytest.approx(0.75 * (5 / 3) / (5 / 3 + 1e-6))
    constant = torch.ones(1, 1, 2, 2)
    assert zero_prediction_mae_loss(constant, 2) == 0.0  # a flat patch standardizes to 0
    assert zero_prediction_mae_loss(pixels, 2, norm_pix_loss=False) == pytest.approx(14 / 4)
    # train tokens 5, 5, 6 (+1 smoothing over a vocabulary of 8 with special 0): p(5) = 3/11, p(6) = 2/11
    loss = unigram_mlm_loss([[0, 5, 5, 6]], [[0, 5, 6]], special_ids={0}, vocab_size=8)
    assert loss == pytest.approx(-(math.log(3 / 11) + math.log(2 / 11)) / 2)


def test_a_task_whose_fine_tuning_loss_does_not_beat_the_constant_predictor_reads_inconclusive():
    data = summary(random_probe=0.3)
    track = data["tracks"]["image"]
    track["metrics"].append({"key": "stsb_eval_loss", "higher_is_better": False, "description": "STS-B MSE",
                             "role": "convergence"})  # fmt: skip
    track["baselines"]["stsb eval loss: constant predictor"] = [2.25, "MSE of the mean training score"]
    track["convergence_checks"] = [{"task": "stsb", "loss": "stsb_eval_loss", "baseline": "stsb eval loss: constant predictor",
                                    "rows": ["knn_accuracy"]}]  # fmt: skip
    noise = [0.01, -0.02, 0.0, 0.02, -0.01]
    for arm, loss in (("shared", 1.5), ("batch-all", 5.5)):  # batch-all 2.4x worse than a constant
        for run, n in zip(track["runs"][arm], noise):
            run["stsb_eval_loss"] = loss + n
    assessment = assess_track(track)
    assert [(check.arm, check.task, check.converged) for check in assessment.convergence] == [
        ("shared", "stsb", True), ("batch-all", "stsb", False)]  # fmt: skip
    assert assessment.converged("shared", "stsb") and not assessment.converged("batch-all", "stsb")
    lines = convergence_lines(assessment)
    assert lines == ["`batch-all` stsb: fine-tuning did not converge: eval loss 5.5000 (mean of 5 seeds) against "
                     "2.2500 for the constant predictor, so its rows of that task read inconclusive"]  # fmt: skip
    rows = assessment.comparisons["batch-all"]
    assert rows["knn_accuracy"]["verdict"] == "inconclusive (not converged)"
    assert rows["linear_probe_accuracy"]["verdict"] == "better"  # another task's row is untouched
    assert lines[0] in render_report(data)


def test_the_report_says_what_rows_measure_flags_chance_and_names_identical_arms():
    data = summary(random_probe=0.3)
    track = data["tracks"]["image"]
    track["metrics"].append({"key": "finetune_accuracy", "higher_is_better": True, "description": "fine-tuned",
                             "role": "secondary"})  # fmt: skip
    for arm, accuracy in (("shared", 0.1), ("batch-all", 0.4)):
        for run in track["runs"][arm]:
            run["finetune_accuracy"] = accuracy
    report = render_report(data)
    # one name per metric: its key in every table, its description once
    assert "| `finetune_accuracy` | higher | 0.1000 (at chance) | 0.4000 |" in report
    assert report.count("fine-tuned") == 1 and "- `finetune_accuracy`: fine-tuned." in report
    assert "- `uniformity`" not in report and "- `linear_probe_accuracy`: accuracy (0–1, higher is better)" in report
    assert "`docs/results/`" in report
    for run, twin in zip(track["runs"]["batch-all"], track["runs"]["shared"]):
        run.update(twin)  # every row of every seed equal: the same computation
    lines = verdict_lines(track, assess_track(track).comparisons)
    assert lines[0].startswith("**`batch-all` vs `shared`: the same values** — every row's paired difference is "
                               "exactly 0 in every seed (n = 5)")  # fmt: skip
    assert "±0.0000" not in lines[0]


def test_arms_equal_on_the_primary_row_alone_are_not_called_the_same_and_the_rows_that_differ_are_given():
    """The primary row exactly equal in every seed while other rows differ (the reviewer's `layer-final`: probe
    differences 0, other rows -0.0001 / +0.0003): no verdict from the primary row, and every differing row named
    with its numbers, never "computes what shared computes"."""
    data = summary(random_probe=0.3)
    track = data["tracks"]["image"]
    for run, twin in zip(track["runs"]["batch-all"], track["runs"]["shared"]):
        run.update(twin)
    track["runs"]["batch-all"][2]["knn_accuracy"] += 0.0003  # one seed of one secondary row
    track["runs"]["batch-all"][0]["random_init_linear_probe_accuracy"] -= 0.0001  # and of a reference row
    line = verdict_lines(track, assess_track(track).comparisons)[0]
    assert line.startswith("**`batch-all` vs `shared`, linear probe: no difference in any seed** — every paired "
                           "difference of this row is exactly 0 (n = 5 seeds), so it gives no verdict; other rows "
                           "differ: `knn_accuracy` +0.0001 [")  # fmt: skip
    assert "`random_init_linear_probe_accuracy` per seed -0.0001, +0.0000, +0.0000, +0.0000, +0.0000" in line
    assert "computes what" not in line and "the same values" not in line
    assert "computes what" not in render_report(data)


def test_the_spectrum_caption_says_which_arm_hides_another(tmp_path):
    from hf_sepnorm.compare import _write_plots

    torch.manual_seed(0)
    shared = torch.randn(40, 8)
    plots = {arm: {"embeddings": embeddings, "labels": torch.arange(40) % 2}
             for arm, embeddings in (("shared", shared), ("batch-final", torch.randn(40, 8)),
                                     ("layer-final", shared.clone()))}  # fmt: skip
    spectrum, _ = _write_plots("image", plots, tmp_path, "test [CLS] embeddings")
    assert spectrum["caption"].endswith(" `layer-final`'s curve coincides with `shared`'s (embeddings equal to 1e-5): "
                                        "drawn over it, dashed and with smaller markers, it leaves the other visible.")  # fmt: skip
    assert (tmp_path / spectrum["file"]).is_file()
    del plots["layer-final"]
    assert "drawn over" not in _write_plots("image", plots, tmp_path, "test [CLS] embeddings")[0]["caption"]


def test_coinciding_spectra_leave_every_arm_of_the_legend_visible(tmp_path):
    """Two arms with equal embeddings: the later curve, drawn over the earlier, differs in line style, marker and
    width, so the earlier one still shows (its pixels in the rendered chart)."""
    import matplotlib.image

    from hf_sepnorm.analysis import plot_spectra

    torch.manual_seed(0)
    shared = torch.randn(60, 8)
    pixels = matplotlib.image.imread(plot_spectra({"shared": shared, "layer-final": shared.clone()}, tmp_path / "s.png"))
    # the first arm's colour (matplotlib's C0, blue) shows around the second arm's curve (C1, orange)
    blue = (pixels[..., 2] > 0.6) & (pixels[..., 0] < 0.3)
    orange = (pixels[..., 0] > 0.9) & (pixels[..., 1] > 0.4) & (pixels[..., 1] < 0.6) & (pixels[..., 2] < 0.3)
    assert blue.sum() > 500 and orange.sum() > 500
