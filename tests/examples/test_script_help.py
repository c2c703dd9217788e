"""Every script in examples/ answers `--help` (argparse formats help strings with %: a bare % in one crashes it)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))

# Runs each script as `python <script> --help` would (as __main__, with that argv), in one process: the scripts share
# their imports, which take most of the time.
RUN_HELP = """
import contextlib, io, json, runpy, sys, traceback
results = {}
for script in sys.argv[1:]:
    sys.argv = [script, "--help"]
    out, err = io.StringIO(), io.StringIO()
    code = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            runpy.run_path(script, run_name="__main__")
        except SystemExit as exit:
            code = exit.code or 0
        except BaseException:
            traceback.print_exc()
            code = 1
    results[script] = {"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}
print(json.dumps(results))
"""


def test_every_training_script_is_covered():
    assert {"run_glue.py", "run_mlm.py", "run_mae.py", "run_image_classification.py"} <= {s.name for s in SCRIPTS}


@pytest.fixture(scope="module")
def help_outputs() -> dict[str, dict]:
    result = subprocess.run(
        [sys.executable, "-c", RUN_HELP, *map(str, SCRIPTS)], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return {Path(script).name: output for script, output in json.loads(result.stdout.splitlines()[-1]).items()}


@pytest.mark.parametrize("script", [script.name for script in SCRIPTS])
def test_help(script, help_outputs):
    output = help_outputs[script]
    assert output["code"] == 0, output["stderr"][-3000:]
    assert output["stdout"].startswith("usage:") and "--help" in output["stdout"]
    if script.startswith("run_"):  # the HfArgumentParser scripts list the Trainer's arguments and ours
        assert "--output_dir" in output["stdout"] and "--recalibrate_cls_norm" in output["stdout"]
