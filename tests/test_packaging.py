"""Packaging: the declared dependency ranges are the tested ones, the license ships, the templates are packaged."""

import ast
import configparser
import importlib.metadata
import sys
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
    for path in (ROOT / "hf_sepnorm").rglob("*.py"):
        for root in imported_roots(path) - set(sys.stdlib_module_names) - {"hf_sepnorm"}:
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
