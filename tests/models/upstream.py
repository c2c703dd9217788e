"""transformers' own model tests, taken from the installed release's sdist at test time (never copied here).

`import_upstream()` returns the sdist's `tests/` folder imported as the package `transformers_tests` (a name that
cannot clash with this repository's `tests/`): it is downloaded once per transformers version with pip into
`~/.cache/hf_sepnorm/transformers-tests-<version>/transformers_tests/`. Without network the importing test module
is skipped with the reason.

The sdist holds transformers' common test modules (`test_modeling_common.py`, `test_configuration_common.py`, ...)
but not `tests/models/`, `tests/generation/`, `tests/exporters/` or `tests/utils/`: the model testers of the SepNorm
families are written here (modelled on transformers' `BertModelTester` / `ViTMAEModelTester`), and the three
modules the common tests import from those folders are stood in for by `_ABSENT_FROM_SDIST` (what each stand-in
leaves out is said there).
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import types
from pathlib import Path

import pytest
import transformers

PACKAGE = "transformers_tests"


class _NoExportTests:
    """Stands in for `tests/exporters/test_export.py::ExportTesterMixin` (not in the sdist): no torch.export tests."""


class _NoGenerationTests:
    """Stands in for `tests/generation/test_utils.py::GenerationTesterMixin`: no SepNorm class generates text, and
    the common tests only check that a non-generative model's tester does not inherit it."""


# The modules transformers' common tests import from folders the sdist does not ship.
_ABSENT_FROM_SDIST = {
    f"{PACKAGE}.exporters.test_export": {"ExportTesterMixin": _NoExportTests},
    f"{PACKAGE}.generation.test_utils": {"GenerationTesterMixin": _NoGenerationTests},
    # used only by `ConfigTester.check_config_arguments_init`, which the SepNorm tests do not run
    f"{PACKAGE}.utils.test_configuration_utils": {"config_common_kwargs": {}},
}


def cache_dir() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "hf_sepnorm" / f"transformers-tests-{transformers.__version__}"


def _download_upstream_tests(target: Path) -> None:
    """Extract the installed release's sdist `tests/` folder into `target/transformers_tests`."""
    with tempfile.TemporaryDirectory() as download:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--quiet",
                   f"transformers=={transformers.__version__}", "-d", download]  # fmt: skip
        try:
            subprocess.run(command, check=True, capture_output=True, text=True, timeout=600)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
            output = getattr(error, "stderr", "") or ""
            pytest.skip(
                f"transformers' model tests need the transformers {transformers.__version__} sdist from PyPI, "
                f"which could not be downloaded ({type(error).__name__}: {output.strip()[-300:]})",
                allow_module_level=True,
            )
        (archive,) = Path(download).glob("transformers-*.tar.gz")
        staging = Path(tempfile.mkdtemp(dir=target))
        with tarfile.open(archive) as sdist:
            prefix = f"transformers-{transformers.__version__}/tests/"
            members = [member for member in sdist.getmembers() if member.name.startswith(prefix)]
            for member in members:
                member.name = member.name[len(prefix) :]
            sdist.extractall(staging / PACKAGE, members=[m for m in members if m.name], filter="data")
        try:
            os.replace(staging / PACKAGE, target / PACKAGE)  # atomic: a concurrent run sees all or nothing
        except OSError:
            if not (target / PACKAGE / "test_modeling_common.py").is_file():  # not another run's extraction
                raise
        shutil.rmtree(staging, ignore_errors=True)


def import_upstream(module: str) -> types.ModuleType:
    """`transformers_tests.<module>`, downloading transformers' tests on first use."""
    root = cache_dir()
    if not (root / PACKAGE / "test_modeling_common.py").is_file():
        root.mkdir(parents=True, exist_ok=True)
        _download_upstream_tests(root)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    for name, attributes in _ABSENT_FROM_SDIST.items():
        parts = name.split(".")
        for depth in range(2, len(parts) + 1):
            sys.modules.setdefault(".".join(parts[:depth]), types.ModuleType(".".join(parts[:depth])))
        vars(sys.modules[name]).update(attributes)
    return importlib.import_module(f"{PACKAGE}.{module}")


class SepNormModelTestMixin:
    """Mixed in before transformers' `ModelTesterMixin` in every SepNorm model test class.

    transformers' common tests recognise a head by its class name in the Auto classes' name tables (e.g. the
    multiple-choice inputs and labels): each test runs with the family's classes listed there, as an in-library
    model's would be. `skipped_upstream_tests` maps a common test that cannot apply to the reason.
    """

    family_auto_classes: dict = {}
    skipped_upstream_tests: dict[str, str] = {}

    @pytest.fixture(autouse=True)
    def _listed_in_auto_name_tables(self, monkeypatch):
        for auto_name, model_class in self.family_auto_classes.items():
            names = getattr(transformers, auto_name)._model_mapping._model_mapping
            monkeypatch.setitem(names, model_class.config_class.model_type, model_class.__name__)

    @pytest.fixture(autouse=True)
    def _skip_what_cannot_apply(self, request):
        for test, reason in self.skipped_upstream_tests.items():
            # `parameterized.expand` names each case `<test>_<index>_<parameters>`
            if re.fullmatch(rf"{test}(_\d+_\w+)?", request.node.name):
                pytest.skip(reason)


# The one documented deviation: SepNorm checkpoints keep the modules' own key names (see `save_pretrained`), where
# transformers saves ViT-MAE under its legacy key names and tests that round trip.
KEY_NAME_DEVIATION = (
    "SepNorm saves under the modules' own key names (save_original_format=False), the documented deviation "
    "from transformers' legacy-key round trip"
)

# transformers' eager-vs-SDPA matrix (24 dtype/padding/mask cases, half of a test class's time) checks attention, which
# SepNorm does not change and which is the same whatever the [CLS] norm: it runs on the cls_norm="batch" classes.
ATTENTION_MATRIX_ONCE = {
    "test_eager_matches_sdpa_inference": "attention does not depend on the [CLS] norm: this matrix runs with "
    'cls_norm="batch"'
}
