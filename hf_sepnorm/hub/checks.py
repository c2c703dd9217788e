"""What a push checks in a checkpoint folder before any request: its modeling code is the installed package's, and
its weights files read in full and match its config.

The code check compares bytes with the installed package's files (a `trust_remote_code=True` reader runs what is
pushed, and the card describes it); the weights check builds the model from the config with the installed package's
class on the meta device (no memory, no code of the folder's) and compares the shape of every tensor.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import inspect
import json
import re
from pathlib import Path

import torch
from huggingface_hub import constants
from safetensors import SafetensorError, safe_open
from transformers.dynamic_module_utils import get_relative_import_files

from ..errors import InputError
from ..families import SepNormFamily

READ_FIRST = "sepnorm.py"  # the code file a reviewer of a checkpoint's code reads first


class CheckpointFolderError(InputError):
    """The folder cannot be published as it is; nothing was sent to the Hub."""


def package_version() -> str:
    return importlib.metadata.version("hf_sepnorm")


def package_code_files(family: SepNormFamily) -> dict[str, Path]:
    """The installed package's code files that travel with a checkpoint of `family`, as `save_pretrained` copies them
    (its modeling file and what that imports, as transformers resolves it), by name; `sepnorm.py` first."""
    modeling = inspect.getfile(family.backbone)
    paths = sorted(
        map(Path, [modeling, *get_relative_import_files(modeling)]), key=lambda path: (path.name != READ_FIRST, path.name)
    )
    return {path.name: path for path in paths}


def code_summary(files: dict[str, Path]) -> dict[str, dict]:
    """Each code file's length in lines and sha256, by name, in the order given: what the card's code section lists."""
    summary = {}
    for name, path in files.items():
        content = path.read_bytes()
        summary[name] = {"lines": len(content.decode("utf-8").splitlines()), "sha256": hashlib.sha256(content).hexdigest()}
    return summary


def folder_code_files(folder: Path, pushed: list[str], family: SepNormFamily) -> dict[str, Path]:
    """The Python files among `pushed` (paths relative to `folder`), in the package's order, then any other."""
    order = list(package_code_files(family))
    names = sorted((path for path in pushed if path.endswith(".py")),
                   key=lambda name: (order.index(name) if name in order else len(order), name))  # fmt: skip
    return {name: folder / name for name in names}


def modified_code_files(folder: Path, pushed: list[str], family: SepNormFamily) -> list[str]:
    """The Python files among `pushed` that differ from the installed package's file of that name, or that the
    package does not have."""
    package = package_code_files(family)
    return [
        name for name, path in folder_code_files(folder, pushed, family).items()
        if name not in package or path.read_bytes() != package[name].read_bytes()
    ]  # fmt: skip


def refuse_modified_code(folder: Path, modified: list[str], card_code: dict[str, str],
                         mine: str = "push with --modified-code-is-mine") -> None:
    """Refuse, in one line, code files that are not the installed package's. `card_code` is the code section of the
    folder's own card (name -> sha256): when the files match it, another release of the package saved them. `mine`
    is how the user says the change is theirs."""
    files = ", ".join(modified)
    saved_by_release = bool(card_code) and all(
        name in card_code and hashlib.sha256((folder / name).read_bytes()).hexdigest() == card_code[name]
        for name in modified
    )
    cause = (
        f"{folder} was saved by another hf_sepnorm release than the installed {package_version()} (its card lists "
        f"these files as they are): refresh its code with `python -m hf_sepnorm.hub.refresh_code {folder}`"
        if saved_by_release
        else f"they were modified since hf_sepnorm saved them, or another release saved them: restore them with "
        f"`python -m hf_sepnorm.hub.refresh_code {folder}`"
    )
    raise CheckpointFolderError(
        f"The code files {files} of {folder} differ from the installed hf_sepnorm {package_version()}'s, and "
        f"trust_remote_code=True would run them: {cause}, or, if the change is yours, {mine} (the card then says the "
        "code was modified)."
    )


def weights_files(folder: Path) -> list[str]:
    index = folder / constants.SAFETENSORS_INDEX_FILE
    if index.is_file():
        return sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
    return [constants.SAFETENSORS_SINGLE_FILE]


def check_weights_match_config(folder: Path, family: SepNormFamily) -> None:
    """Read every weights file of `folder` in full and compare each tensor's shape with the model its config builds
    (the installed package's class of the config's architecture, on the meta device)."""
    try:
        config = family.config_class.from_pretrained(folder)
    except ValueError as error:  # a value the config refuses
        raise CheckpointFolderError(f"{folder}/config.json: {str(error).splitlines()[0]}") from None
    architecture = (config.architectures or [family.backbone.__name__])[0]
    model_class = next((cls for cls in family.heads.values() if cls.__name__ == architecture), None)
    if model_class is None:
        raise CheckpointFolderError(f"{folder}/config.json names the architecture {architecture!r}, which is no "
                                    f"SepNorm {family.name} class of hf_sepnorm {package_version()}.")  # fmt: skip
    with torch.device("meta"):
        model = model_class(config)
    expected = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    tied = set(getattr(model, "all_tied_weights_keys", None) or {})
    saved = {}
    for name in weights_files(folder):
        try:
            with safe_open(folder / name, framework="pt") as weights:
                for key in weights.keys():
                    saved[key] = tuple(weights.get_tensor(key).shape)  # reads every byte: a cut file fails here
        except (SafetensorError, OSError, RuntimeError) as error:
            raise CheckpointFolderError(
                f"{folder}/{name} cannot be read as safetensors weights ({str(error).splitlines()[0]}): it is damaged "
                "or incomplete. Save the model again (`save_pretrained`) before pushing."
            ) from None
    wrong = [f"{key} {saved[key]} for {shape}" for key, shape in expected.items() if key in saved and saved[key] != shape]
    missing = [key for key in expected if key not in saved and key not in tied]
    unknown = [key for key in saved if key not in expected]
    if wrong or missing or unknown:
        problems = "; ".join(
            f"{label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
            for label, keys in (("shapes differ", wrong), ("missing", missing), ("unknown", unknown)) if keys
        )
        raise CheckpointFolderError(
            f"The weights of {folder} ({', '.join(weights_files(folder))}) do not match its config.json's "
            f"{architecture} ({problems}): they were saved from another model. Save the model and its config "
            "together (`save_pretrained`)."
        )


# an absolute path in a card's text: two or more components (URLs' paths are preceded by their host, not a space)
ABSOLUTE_PATH = re.compile(r"(?<![\w.:/-])(?:/[\w.+-]+){2,}")


def check_card_names_no_local_path(folder: Path, card_text: str) -> None:
    """Refuse a card that names an absolute path of this machine: it means nothing to the card's readers."""
    local = sorted({path for path in ABSOLUTE_PATH.findall(card_text) if Path(path).exists()})
    if local:
        raise CheckpointFolderError(
            f"The model card pushed with {folder} names the local path {', '.join(local)}, which means nothing on the "
            f"Hub: edit {folder}/README.md to name the Hub repo or the data instead, then push again."
        )
