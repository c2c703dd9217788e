"""`python -m hf_sepnorm.hub.refresh_code FOLDER`: replace the modeling code files of a saved SepNorm checkpoint
folder by the installed package's (what `save_pretrained` with this release would write), leaving its weights,
config and card as they are. For a folder saved by another hf_sepnorm release, before `hf-sepnorm push`."""

import json
import shutil
import sys
from pathlib import Path

from ..families import FAMILIES
from .checks import package_code_files


def refresh_code(folder: str | Path) -> list[str]:
    """Copy the installed package's code files of the folder's family into `folder`; returns the names replaced or
    added."""
    folder = Path(folder)
    family = FAMILIES[json.loads((folder / "config.json").read_text(encoding="utf-8"))["model_type"]]
    changed = []
    for name, path in package_code_files(family).items():
        target = folder / name
        if not target.is_file() or target.read_bytes() != path.read_bytes():
            shutil.copyfile(path, target)
            changed.append(name)
    return changed


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m hf_sepnorm.hub.refresh_code FOLDER")
    replaced = refresh_code(sys.argv[1])
    print(f"Replaced {', '.join(replaced)} by the installed hf_sepnorm's." if replaced else "Nothing to replace.")
