"""Venvs with another transformers release, for tests that load SepNorm checkpoints under it in a second process.

Each venv is built once and cached in the user's cache directory, `$XDG_CACHE_HOME/hf_sepnorm/` (default
`~/.cache/hf_sepnorm/`), as `venv-transformers-<version>/`: pip installs there the release asked for and the
dependencies it pins (e.g. huggingface_hub 1.x), and nothing else. Every other package (torch, safetensors, ...)
is the running interpreter's: the venv's `running-interpreter.pth` lists the running interpreter's site-packages
folders, so it works whether the suite runs from a venv (with or without system site packages) or not (a venv
built with `--system-site-packages` from a venv's python would see the base interpreter's packages instead).
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hf_sepnorm"


def running_site_packages() -> list[str]:
    """The running interpreter's site-packages folders, in their import order."""
    folders = [path for path in sys.path if Path(path).name in ("site-packages", "dist-packages")]
    folders += [path for path in (*site.getsitepackages(), site.getusersitepackages()) if path not in folders]
    return [path for path in folders if Path(path).is_dir()]


def _hand_over_running_packages(venv: Path) -> None:
    """(Re)write the venv's .pth so that it sees the running interpreter's packages after its own."""
    (site_packages,) = (venv / "lib").glob("python*/site-packages")
    pth = site_packages / "running-interpreter.pth"
    staged = pth.with_suffix(f".{os.getpid()}")
    staged.write_text("".join(f"{path}\n" for path in running_site_packages()), encoding="utf-8")
    os.replace(staged, pth)  # atomic: a concurrent run reads the old list or the new one


def create_venv(venv: Path, with_pip: bool = True) -> Path:
    """A new venv at `venv` that sees the running interpreter's packages after its own; returns its python."""
    command = [sys.executable, "-m", "venv", str(venv)] + ([] if with_pip else ["--without-pip"])
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    _hand_over_running_packages(venv)
    return venv / "bin" / "python"


def python_with_transformers(version: str, extras: str = "") -> Path:
    """The python of a cached venv with `transformers[extras]==version` installed over the running interpreter's
    packages; skips the test, saying why, when it cannot be built (no network)."""
    venv = CACHE / f"venv-transformers-{version}" if not extras else CACHE / f"venv-transformers-{version}-{extras}"
    python = venv / "bin" / "python"
    if not (venv / "complete").is_file():
        shutil.rmtree(venv, ignore_errors=True)
        create_venv(venv)
        requirement = f"transformers[{extras}]=={version}" if extras else f"transformers=={version}"
        command = [str(python), "-m", "pip", "install", "--quiet", requirement]
        result = subprocess.run(command, capture_output=True, text=True, timeout=1200)
        if result.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            pytest.skip(f"could not build a venv with transformers {version}: {result.stderr.strip()[-300:]}")
        (venv / "complete").write_text(" ".join(command[4:]) + "\n", encoding="utf-8")
    _hand_over_running_packages(venv)
    return python
