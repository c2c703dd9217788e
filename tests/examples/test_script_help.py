"""Every script in examples/ answers `--help` (argparse formats help strings with %: a bare % in one crashes it)."""

from pathlib import Path

import pytest
from scripts_in_one_process import run_scripts

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))


def test_every_training_script_is_covered():
    assert {"run_glue.py", "run_mlm.py", "run_mae.py", "run_image_classification.py"} <= {s.name for s in SCRIPTS}


@pytest.fixture(scope="module")
def help_outputs() -> dict[str, dict]:
    outputs = run_scripts([[script, "--help"] for script in SCRIPTS])
    return {script.name: output for script, output in zip(SCRIPTS, outputs)}


@pytest.mark.parametrize("script", [script.name for script in SCRIPTS])
def test_help(script, help_outputs):
    output = help_outputs[script]
    assert output["code"] == 0, output["stderr"][-3000:]
    assert output["stdout"].startswith("usage:") and "--help" in output["stdout"]
    if script.startswith("run_"):  # the HfArgumentParser scripts list the Trainer's arguments and ours
        assert "--output_dir" in output["stdout"] and "--recalibrate_cls_norm" in output["stdout"]
