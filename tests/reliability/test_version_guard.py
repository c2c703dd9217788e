"""The version guard of the code that travels with every checkpoint: it states the versions it was written for, the
same ones setup.cfg declares, and an environment outside them gets one message naming the installed version, the
range and the fix, before any transformers internal is imported. Tested in a real second environment with
transformers 4.57.6 (a venv built once and cached; skipped, saying why, when it cannot be built)."""

import configparser
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import tiny_bert_config
from packaging.requirements import Requirement

from hf_sepnorm import SepNormBertModel
from hf_sepnorm.remote_code.configuration_sepnorm import REQUIRED_VERSIONS

ROOT = Path(__file__).resolve().parents[2]
OLD_TRANSFORMERS = "4.57.6"  # the last 4.x release: what `pip install optimum-onnx` downgrades to
VENV = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hf_sepnorm" / f"venv-transformers-{OLD_TRANSFORMERS}"


def test_the_guard_states_the_ranges_setup_cfg_declares():
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    declared = {
        requirement.name.replace("-", "_"): requirement.specifier
        for requirement in (Requirement(line.strip()) for line in setup["options"]["install_requires"].splitlines()
                            if line.strip() and not line.strip().startswith("#"))  # fmt: skip
    }
    for package, (lowest, below) in REQUIRED_VERSIONS.items():
        assert str(declared[package]) in (f"<{below},>={lowest}", f">={lowest},<{below}"), package


def old_transformers_python() -> Path:
    """The python of a venv that sees this machine's packages but has transformers 4.57.6 (and the huggingface_hub
    it needs) installed over them."""
    python = VENV / "bin" / "python"
    if python.is_file():
        return python
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(VENV)], check=True, timeout=300)
    result = subprocess.run([str(python), "-m", "pip", "install", "--quiet", f"transformers=={OLD_TRANSFORMERS}"],
                            capture_output=True, text=True, timeout=900)  # fmt: skip
    if result.returncode != 0:
        import shutil

        shutil.rmtree(VENV, ignore_errors=True)
        pytest.skip(f"could not build a venv with transformers {OLD_TRANSFORMERS}: {result.stderr.strip()[-300:]}")
    return python


LOAD = textwrap.dedent("""
    import sys
    import transformers
    assert transformers.__version__ == sys.argv[2], transformers.__version__
    transformers.AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True)
""")


@pytest.mark.slow
def test_loading_under_an_older_transformers_fails_with_the_fix(tmp_path):
    python = old_transformers_python()
    folder = tmp_path / "saved"
    SepNormBertModel(tiny_bert_config()).save_pretrained(folder)
    result = subprocess.run(
        [str(python), "-c", LOAD, str(folder), OLD_TRANSFORMERS], capture_output=True, text=True, timeout=300,
        cwd=tmp_path, env={**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        f"ImportError: This SepNorm model's code needs transformers>=5.24,<6, and transformers {OLD_TRANSFORMERS} "
        'is installed. Fix: pip install -U "transformers>=5.24,<6"'
    ), result.stderr[-2000:]
