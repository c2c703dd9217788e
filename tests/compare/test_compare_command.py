"""`hf-sepnorm compare` end to end in a real process (the tiny preset on digits, a few steps, through the example
scripts), its resumption, and its command-line errors."""

import json
import os
import subprocess
import sys

import pytest

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def compare(*args, timeout=900):
    return subprocess.run([sys.executable, "-m", "hf_sepnorm_cli", "compare", *args], capture_output=True, text=True,
                          timeout=timeout, env=ENV)  # fmt: skip


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("comparison")
    result = compare("--output_dir", output_dir, "--seeds", "2", "--arms", "shared", "batch-final",
                     "--pretrain_steps", "3", "--finetune_steps", "2", "--recalibrate_cls_norm", "true")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return output_dir, result


def test_every_arm_and_seed_ran_through_the_scripts_on_the_full_test_set(comparison):
    output_dir, _ = comparison
    summary = json.loads((output_dir / "results.json").read_text())
    assert summary["preset"] == "tiny" and summary["seeds"] == 2 and summary["arms"] == ["shared", "batch-final"]
    assert summary["recalibrate_cls_norm"] is True and summary["device"].startswith(("CPU", "GPU"))
    track = summary["tracks"]["image"]
    assert track["recipe"]["pretrain_steps"] == 3 and track["data"]["test images"] == 360
    expected = {metric["key"] for metric in track["metrics"]}
    assert {"linear_probe_accuracy", "knn_accuracy", "random_init_linear_probe_accuracy", "finetune_accuracy"} <= expected
    assert "seconds" not in expected
    for arm in ("shared", "batch-final"):
        assert len(track["runs"][arm]) == 2
        for seed, run in enumerate(track["runs"][arm]):
            assert set(run) == expected
            assert 0 <= run["finetune_accuracy"] <= 1 and 0 <= run["linear_probe_accuracy"] <= 1
            run_dir = output_dir / "runs" / "image" / f"{arm}-seed{seed}"
            for stage in ("mae", "finetune"):
                eval_results = json.loads((run_dir / stage / "eval_results.json").read_text())
                assert eval_results["eval_samples"] == 360  # nothing dropped
                log = json.loads((run_dir / stage / "log_history.json").read_text())
                assert any("loss" in entry for entry in log)  # the training log ...
                assert "eval_loss" in log[-1]["final_metrics"]  # ... and the evaluation in the same file
                assert not (run_dir / stage / "model.safetensors").exists()  # weights are not kept
    # with 8x8 images, 10 classes: the scripts' own accuracy is measured on the 360 test images, in steps of 1/360
    accuracy = track["runs"]["shared"][0]["finetune_accuracy"]
    assert abs(accuracy * 360 - round(accuracy * 360)) < 1e-6
    assert track["runs"]["shared"] != track["runs"]["batch-final"]
    baselines = track["baselines"]
    assert baselines["chance"][0] == pytest.approx(0.1) and baselines["linear probe on raw pixels"][0] > 0.9


def test_report_has_baselines_gate_statistics_per_seed_values_and_captioned_plots(comparison):
    output_dir, result = comparison
    report = (output_dir / "report.md").read_text()
    assert "## " not in result.stdout  # the console gives the verdicts and the paths, not the report
    for text in ("Validity gate", "| linear probe on raw pixels |", "Paired differences against `shared`",
                 "| `linear_probe_accuracy` | `batch-final` |", "**`batch-final` vs `shared`", "detects with 80% power",
                 "higher |", "lower |", "train images: 1437; test images: 360", "Device: "):  # fmt: skip
        assert text in report, text
    for image in ("image_spectrum.png", "image_projection.png"):
        assert f"]({image})\n\n*" in report
        assert (output_dir / image).stat().st_size > 10_000


def test_the_console_says_what_runs_then_the_verdicts_and_where_the_report_is(comparison):
    output_dir, result = comparison
    console = (result.stdout + result.stderr).splitlines()
    # the first line: what this run checks and how to get an answer; one line per run; the verdicts, the paths
    assert console[0].startswith("hf-sepnorm compare: ShareNorm (shared) against batch-final, 2 seeds each, on "
                                 "scikit-learn's digits") and "--preset small" in console[0]  # fmt: skip
    assert [line.split(" ... ")[0] for line in console if " ... " in line] == [
        "[1/4] image shared seed 0", "[2/4] image batch-final seed 0", "[3/4] image shared seed 1",
        "[4/4] image batch-final seed 1"]  # fmt: skip
    assert "about 0:00 left" in console[4]
    assert any(line.startswith("  batch-final vs shared, ") for line in console)
    assert f"Report: {output_dir / 'report.md'}" in console
    assert f"Plots: {output_dir / 'image_spectrum.png'}, {output_dir / 'image_projection.png'}" in console
    assert len(console) <= 12, "\n".join(console)  # no load reports, library warnings, training logs or report
    run_log = (output_dir / "runs" / "image" / "shared-seed0" / "console.log").read_text()
    assert "LOAD REPORT" in run_log and "UNEXPECTED" in run_log and "train_runtime" in run_log  # held back here


@pytest.mark.slow
def test_an_interrupted_comparison_keeps_its_finished_runs(comparison):
    output_dir, _ = comparison
    before = json.loads((output_dir / "results.json").read_text())["tracks"]["image"]["runs"]
    run_files = sorted((output_dir / "runs").rglob("*.json"))
    written = {path: path.stat().st_mtime_ns for path in run_files}
    result = compare("--output_dir", output_dir, "--seeds", "2", "--arms", "shared", "batch-final",
                     "--pretrain_steps", "3", "--finetune_steps", "2", "--recalibrate_cls_norm", "true", timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((output_dir / "results.json").read_text())["tracks"]["image"]["runs"] == before
    assert {path: path.stat().st_mtime_ns for path in run_files} == written  # nothing trained or written again


@pytest.mark.slow
def test_recalibrate_cls_norm_takes_true_or_false():
    from hf_sepnorm_cli import build_parser

    parse = lambda *args: build_parser().parse_args(["compare", *args]).recalibrate_cls_norm  # noqa: E731
    assert parse("--recalibrate_cls_norm", "false") is False and parse("--recalibrate_cls_norm", "true") is True
    assert parse() is False  # the default since docs/cls_statistics.md's measurement
    result = compare("--recalibrate_cls_norm", "maybe", timeout=120)
    assert result.returncode == 2 and "expected true or false, got 'maybe'" in result.stderr


@pytest.mark.slow
def test_a_missing_image_folder_is_named_by_its_own_flag(tmp_path):
    result = compare("--images", "/nonexistent", "--output_dir", tmp_path, timeout=300)
    assert result.returncode != 0
    assert "--images /nonexistent" in result.stderr and "--train_dir" not in result.stderr
    (tmp_path / "only_train" / "train").mkdir(parents=True)
    result = compare("--images", tmp_path / "only_train", "--output_dir", tmp_path / "out", timeout=300)
    assert result.returncode == 2 and "only_train/test is missing" in result.stderr


@pytest.mark.slow
def test_the_arms_must_include_shared(tmp_path):
    result = compare("--arms", "batch-all", "layer-final", "--output_dir", tmp_path, timeout=300)
    assert result.returncode == 2 and "--arms must include `shared`" in result.stderr


def test_runs_are_reused_only_with_the_same_recipe_inputs_and_flags(tmp_path):
    """A finished run is reused when everything that defines it is the same, and trained again when an input changed
    (another image folder, or the same folder with a file changed) or a flag did."""
    from hf_sepnorm.compare import path_identity, run_identity
    from hf_sepnorm.compare.recipes import PRESETS

    recipe = PRESETS["tiny"].image
    images = tmp_path / "images"
    for split in ("train", "test"):
        (images / split / "a").mkdir(parents=True)
        (images / split / "a" / "0.png").write_bytes(b"first")
    identity = run_identity(recipe, {"images": str(images)}, recalibrate_cls_norm=False)
    assert identity == run_identity(recipe, {"images": str(images)}, recalibrate_cls_norm=False)
    assert identity != run_identity(recipe, {"images": str(images)}, recalibrate_cls_norm=True)
    other = tmp_path / "other"
    other.mkdir()
    assert identity != run_identity(recipe, {"images": str(other)}, recalibrate_cls_norm=False)
    before = path_identity(images)
    (images / "train" / "a" / "0.png").write_bytes(b"changed!")
    assert path_identity(images) != before
    assert identity != run_identity(recipe, {"images": str(images)}, recalibrate_cls_norm=False)


def test_a_comparison_with_other_inputs_in_the_same_folder_does_not_reuse_its_runs(comparison):
    """The finished runs of the fixture's comparison are reused with its own identity (as the interrupted-comparison
    test above runs through the command) and not with another input or flag."""
    from hf_sepnorm.compare import _finished_run, run_identity
    from hf_sepnorm.compare.recipes import PRESETS, with_overrides

    output_dir, _ = comparison
    run_dir = output_dir / "runs" / "image" / "shared-seed0"
    saved = json.loads((run_dir / "results.json").read_text())["identity"]
    recipe = with_overrides(PRESETS["tiny"], pretrain_steps=3, finetune_steps=2).image
    assert saved == run_identity(recipe, saved_inputs := {"images": saved["inputs"]["images"][0]}, True)
    assert _finished_run(run_dir, saved) is not None
    assert _finished_run(run_dir, run_identity(recipe, saved_inputs, recalibrate_cls_norm=False)) is None
    digits = output_dir / "data" / "digits"  # the same images, given as a folder: another input
    assert _finished_run(run_dir, run_identity(recipe, {"images": str(digits)}, True)) is None
