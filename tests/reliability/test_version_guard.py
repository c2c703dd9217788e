"""The version guard of the code that travels with every checkpoint: it states the versions it was written for, the
same ones setup.cfg declares, and an environment outside them gets one message naming the installed version, the
range and the fix, before any transformers internal is imported. Tested in a real second environment with
transformers 4.57.6 (a venv built once and cached in `~/.cache/hf_sepnorm/venv-transformers-4.57.6/`, see
tests/release_venvs.py; skipped, saying why, when it cannot be built)."""

import configparser
import os
import subprocess
import textwrap
from pathlib import Path

import pytest
from conftest import tiny_bert_config
from packaging.requirements import Requirement
from release_venvs import python_with_transformers

from hf_sepnorm import SepNormBertModel
from hf_sepnorm.remote_code.configuration_sepnorm import REQUIRED_VERSIONS

ROOT = Path(__file__).resolve().parents[2]
OLD_TRANSFORMERS = "4.57.6"  # the last 4.x release: what `pip install optimum-onnx` downgrades to


def test_the_guard_states_the_ranges_setup_cfg_and_the_docs_declare():
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    declared = {
        requirement.name.replace("-", "_"): requirement.specifier
        for requirement in (Requirement(line.strip()) for line in setup["options"]["install_requires"].splitlines()
                            if line.strip() and not line.strip().startswith("#"))  # fmt: skip
    }
    docs = (ROOT / "docs" / "supported-versions.md").read_text(encoding="utf-8")
    for package, (lowest, below) in REQUIRED_VERSIONS.items():
        assert str(declared[package]) in (f"<{below},>={lowest}", f">={lowest},<{below}"), package
        assert f"`{package}>={lowest},<{below}`" in docs, package


LOAD = textwrap.dedent("""
    import sys
    import transformers
    assert transformers.__version__ == sys.argv[2], transformers.__version__
    transformers.AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True)
""")


@pytest.mark.slow
def test_loading_under_an_older_transformers_fails_with_the_fix(tmp_path):
    python = python_with_transformers(OLD_TRANSFORMERS)
    folder = tmp_path / "saved"
    SepNormBertModel(tiny_bert_config()).save_pretrained(folder)
    result = subprocess.run(
        [str(python), "-c", LOAD, str(folder), OLD_TRANSFORMERS], capture_output=True, text=True, timeout=300,
        cwd=tmp_path, env={**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    lowest, below = REQUIRED_VERSIONS["transformers"]
    assert last == (
        f"ImportError: This SepNorm model's code needs transformers>={lowest},<{below}, and transformers "
        f'{OLD_TRANSFORMERS} is installed. Fix: pip install -U "transformers>={lowest},<{below}"'
    ), result.stderr[-2000:]
