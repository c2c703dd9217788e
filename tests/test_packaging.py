"""Packaging: the declared dependency ranges are the tested ones, the license ships, the card template is packaged."""

import ast
import configparser
import importlib.metadata
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
SETUP = configparser.ConfigParser()
SETUP.read(ROOT / "setup.cfg")


def declared(option: str, section: str = "options") -> list[Requirement]:
    lines = SETUP[section][option].splitlines()
    return [Requirement(line) for line in (line.strip() for line in lines) if line and not line.startswith("#")]


RUNTIME = declared("install_requires")
TEST_EXTRA = declared("test", "options.extras_require")


@pytest.mark.parametrize("requirement", RUNTIME + TEST_EXTRA, ids=str)
def test_installed_version_lies_in_the_declared_range(requirement):
    """The suite runs on these versions: a range that excludes them declares what is not tested."""
    installed = importlib.metadata.version(requirement.name)
    assert requirement.specifier.contains(installed, prereleases=True), f"{requirement.name} {installed}"


def test_the_hugging_face_stack_has_bounded_ranges():
    bounded = {"torch", "transformers", "huggingface-hub", "accelerate", "datasets", "evaluate", "peft"}
    for requirement in RUNTIME:
        if requirement.name in bounded:
            operators = {spec.operator for spec in requirement.specifier}
            assert {">=", "<"} <= operators, f"{requirement} should name the tested lower and an upper bound"


def test_installed_metadata_is_setup_cfg():
    """The card's transformers range and pip's resolution read the installed metadata: it must not be stale."""
    installed = {str(Requirement(line)) for line in importlib.metadata.requires("hf_sepnorm")}
    expected = {str(requirement) for requirement in RUNTIME}
    expected |= {str(Requirement(f'{requirement}; extra == "test"')) for requirement in TEST_EXTRA}
    assert installed == expected, "reinstall: pip install -e '.[test]'"


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_package_imports_only_declared_distributions():
    """Every third-party module the package imports belongs to a declared distribution (httpx2, brought by
    huggingface_hub 2 only, was imported while huggingface_hub 1 was allowed)."""
    distributions = importlib.metadata.packages_distributions()
    allowed = {requirement.name.lower().replace("_", "-") for requirement in RUNTIME}
    undeclared = {}
    for path in [*(ROOT / "hf_sepnorm").rglob("*.py"), ROOT / "hf_sepnorm_cli.py"]:
        for root in imported_roots(path) - set(sys.stdlib_module_names) - {"hf_sepnorm", "hf_sepnorm_cli"}:
            owners = {name.lower().replace("_", "-") for name in distributions.get(root, [root])}
            if not owners & allowed:
                undeclared.setdefault(root, []).append(path.relative_to(ROOT).as_posix())
    assert undeclared == {}


def test_license_is_the_apache_2_text_and_ships():
    text = (ROOT / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License\n                           Version 2.0, January 2004")
    assert "END OF TERMS AND CONDITIONS" in text
    assert SETUP["metadata"]["license"] == "Apache-2.0" and SETUP["metadata"]["license_files"].strip() == "LICENSE"


def test_the_card_template_is_package_data():
    assert SETUP["options"]["package_dir"].split() == ["hf_sepnorm.model_cards", "=", "model_cards"]
    assert "hf_sepnorm.model_cards" in SETUP["options"]["packages"].split()
    assert SETUP["options.package_data"]["hf_sepnorm.model_cards"].strip() == "*.md"
    assert (ROOT / "model_cards" / "sepnorm.md").is_file()


def test_every_package_folder_is_listed_in_setup_cfg():
    """setup.cfg lists packages one by one: a new subpackage left out installs from the source tree (`-e`) and is
    missing from the wheel."""
    folders = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "hf_sepnorm").rglob("__init__.py")}
    listed = set(SETUP["options"]["packages"].split()) - {"hf_sepnorm.model_cards"}
    assert listed == folders


PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]


def build_wheel(folder: Path) -> Path:
    """A wheel of this source tree, built in `folder` from a copy (setuptools writes build/ next to setup.cfg: not in
    the working tree)."""
    source = folder / "source"
    for name in ("hf_sepnorm", "model_cards"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.cfg", "pyproject.toml", "README.md", "LICENSE", "hf_sepnorm_cli.py"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([*PIP, "wheel", "--no-deps", "--no-build-isolation", str(source), "-w", str(folder)], check=True)
    (wheel,) = folder.glob("hf_sepnorm-*.whl")
    return wheel


@pytest.mark.slow
def test_wheel_installs_a_package_that_renders_cards(tmp_path):
    """A non-editable install (a wheel) has the card template, the license and every Hub-bound file, and renders a
    card from where it is installed."""
    wheel = build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    remote_code = {f"hf_sepnorm/remote_code/{path.name}" for path in (ROOT / "hf_sepnorm" / "remote_code").glob("*.py")}
    assert {"hf_sepnorm/model_cards/sepnorm.md", "hf_sepnorm/model_cards/sepnorm_adapter.md", "hf_sepnorm/families.py",
            "hf_sepnorm_cli.py"} | remote_code <= names  # fmt: skip
    entry_points = next(name for name in names if name.endswith(".dist-info/entry_points.txt"))
    assert "hf-sepnorm = hf_sepnorm_cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)

    subprocess.run([*PIP, "install", "--no-deps", "--target", str(tmp_path / "site"), str(wheel)], check=True)
    render = (
        "import hf_sepnorm, sys\n"
        "from hf_sepnorm.hub import render_model_card\n"
        "card = render_model_card(hf_sepnorm.SepNormRobertaConfig(), repo_id='lab/x')\n"
        "print(hf_sepnorm.__file__)\n"
        "print('A RoBERTa (SepNormRobertaModel)' in card.text)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", render],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(tmp_path / "site")},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    installed_at, rendered = result.stdout.split()[-2:]
    assert installed_at.startswith(str(tmp_path / "site")) and rendered == "True"


@pytest.mark.slow
def test_a_wheel_in_a_fresh_venv_runs_the_scripts_and_the_default_comparison(tmp_path):
    """`pip install hf_sepnorm-*.whl` (no source tree): `hf-sepnorm glue --help` and the README's main job,
    `hf-sepnorm compare` on its default data (digits, written by the package), run from the installed package alone;
    at a few steps (tests/compare runs the same pipeline from the source tree)."""
    wheel = build_wheel(tmp_path)
    # the dependencies come from this environment (installing torch again would take minutes); the package from
    # the wheel, which the venv's own site-packages put before any other install of it
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    subprocess.run([bin_dir / "python", "-m", "pip", "--disable-pip-version-check", "-q", "install", "--no-deps",
                    str(wheel)], check=True)  # fmt: skip
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**{key: value for key, value in os.environ.items() if key != "PYTHONPATH"}, "OMP_NUM_THREADS": "1"}

    def run(*command):
        result = subprocess.run(command, capture_output=True, text=True, cwd=work, timeout=1200, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout

    installed_at = run(bin_dir / "python", "-c", "import hf_sepnorm; print(hf_sepnorm.__file__)").strip()
    assert installed_at.startswith(str(venv))
    assert "--task_name" in run(bin_dir / "hf-sepnorm", "glue", "--help")
    run(bin_dir / "hf-sepnorm", "compare", "--output_dir", str(work / "comparison"), "--seeds", "2", "--arms", "shared",
        "batch-final", "--pretrain_steps", "3", "--finetune_steps", "2")  # fmt: skip
    report = (work / "comparison" / "report.md").read_text()
    assert "batch-final" in report and "shared" in report
