"""`hf-sepnorm compare` end to end with the tiny preset (fewer steps), in a real process."""

import json
import subprocess
import sys

import pytest


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("comparison")
    result = subprocess.run(
        [sys.executable, "-m", "hf_sepnorm.cli", "compare", "--output_dir", str(output_dir), "--seeds", "2",
         "--pretrain_steps", "12", "--finetune_steps", "6"],
        capture_output=True, text=True, timeout=900, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return output_dir, result.stdout


def test_both_arms_ran_for_every_seed(comparison):
    output_dir, _ = comparison
    summary = json.loads((output_dir / "results.json").read_text())
    assert summary["preset"] == "tiny" and summary["seeds"] == 2 and summary["arms"] == ["shared", "batch"]
    assert summary["recipe"]["image"]["pretrain_steps"] == 12
    for arm in ("shared", "batch"):
        runs = summary["results"]["image"][arm]
        assert len(runs) == 2
        for run in runs:
            assert {"mae_eval_loss", "uniformity", "effective_rank", "linear_probe_accuracy", "finetune_accuracy"} <= set(run)
            assert 0 <= run["finetune_accuracy"] <= 1 and 1 <= run["effective_rank"] <= 64
        for seed in range(2):
            assert (output_dir / "runs" / "image" / f"{arm}-seed{seed}" / "results.json").is_file()
            assert (output_dir / "runs" / "image" / f"{arm}-seed{seed}" / "mae" / "log_history.json").is_file()
    # the arms differ in cls_norm only, so their results differ
    assert summary["results"]["image"]["shared"] != summary["results"]["image"]["batch"]


def test_report_has_the_table_plots_and_recipe(comparison):
    output_dir, stdout = comparison
    report = (output_dir / "report.md").read_text()
    assert report in stdout  # the table is printed too
    header = "| metric | ShareNorm | SepNorm (BatchNorm [CLS]) |"
    assert header in report
    table = report.split(header)[1].split("\n\n")[0]
    assert "| finetune_accuracy | " in table and table.count(" ± ") >= 2 * 6
    for image in ("image_spectrum.png", "image_projection.png"):
        assert f"]({image})" in report
        assert (output_dir / image).stat().st_size > 10_000
    assert '"pretrain_steps": 12' in report and "2 seed(s) per arm" in report
