"""Checkpoints: saved fixtures keep loading, broken folders give clear errors, remote code stays self-contained."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForPreTraining, AutoModelForSequenceClassification

from hf_sepnorm import SepNormBertModel

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
REMOTE_CODE = Path(__file__).resolve().parents[2] / "hf_sepnorm" / "remote_code"
HUB_BOUND = sorted(path for path in REMOTE_CODE.glob("*.py") if path.name != "__init__.py")


@pytest.mark.parametrize(
    "fixture, auto_class",
    [("sepnorm_bert_v0.1", AutoModelForSequenceClassification), ("sepnorm_vit_mae_v0.1", AutoModelForPreTraining)],
)
def test_checkpoints_saved_by_version_0_1_still_load_and_compute_the_same(fixture, auto_class):
    model, info = auto_class.from_pretrained(FIXTURES / fixture, output_loading_info=True)
    assert not any(info[key] for key in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    saved = load_file(FIXTURES / fixture / "expected.safetensors")
    expected = saved.pop("expected")
    with torch.no_grad():
        output = model.eval()(**saved).logits
    torch.testing.assert_close(output, expected, rtol=1e-5, atol=1e-6)


@pytest.fixture
def saved(tmp_path):
    """A checkpoint as save_pretrained writes it: weights, config and the code files."""
    folder = tmp_path / "saved"
    AutoModelForSequenceClassification.from_pretrained(FIXTURES / "sepnorm_bert_v0.1").save_pretrained(folder)
    return folder


def test_truncated_weights_are_named(saved):
    weights = saved / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(OSError, match=r"weights of .*saved are truncated or corrupted"):
        AutoModelForSequenceClassification.from_pretrained(saved)


def test_garbage_weights_are_named(saved):
    (saved / "model.safetensors").write_bytes(b"\0" * 64)
    with pytest.raises(OSError, match="truncated or corrupted"):
        SepNormBertModel.from_pretrained(saved)


def test_config_without_weights_is_named(saved):
    (saved / "model.safetensors").unlink()
    with pytest.raises(OSError, match="no file named model.safetensors"):
        AutoModelForSequenceClassification.from_pretrained(saved)


def test_remote_code_folder_missing_a_code_file_is_named(saved, tmp_path):
    (saved / "sepnorm.py").unlink()
    script = (
        "import sys; sys.modules['hf_sepnorm'] = None\n"
        "from transformers import AutoModelForSequenceClassification\n"
        f"AutoModelForSequenceClassification.from_pretrained({str(saved)!r}, trust_remote_code=True)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={"PATH": "", "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"),
             "HF_HOME": str(tmp_path / "home")},
    )  # fmt: skip
    assert result.returncode != 0
    assert "sepnorm.py" in result.stderr.strip().splitlines()[-1]


def test_only_safetensors_are_written(tmp_path):
    model = AutoModelForSequenceClassification.from_pretrained(FIXTURES / "sepnorm_bert_v0.1")
    model.save_pretrained(tmp_path / "out")
    written = {path.name for path in (tmp_path / "out").iterdir()}
    assert "model.safetensors" in written and not {name for name in written if name.endswith((".bin", ".pt"))}


@pytest.mark.parametrize("path", HUB_BOUND, ids=lambda path: path.name)
def test_remote_code_imports_only_stdlib_torch_transformers_and_siblings(path):
    # transformers' own dependencies: huggingface_hub only for `strict`, which transformers' own configs import from it;
    # safetensors for the error class of a corrupted weights file; torch's own: typing_extensions (`Unpack` on 3.10)
    allowed_roots = {"torch", "transformers", "huggingface_hub", "safetensors", "typing_extensions"}
    allowed_roots |= set(sys.stdlib_module_names)
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots = {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level == 1:  # `from .x import y`: copied next to it
                assert (REMOTE_CODE / f"{node.module}.py") in HUB_BOUND, node.module
                continue
            assert node.level == 0, f"{path.name}: only single-dot relative imports are copied with the code"
            roots = {node.module.split(".")[0]}
        else:
            continue
        assert roots <= allowed_roots, f"{path.name} imports {roots - allowed_roots}"


def test_no_torch_load_without_weights_only():
    root = REMOTE_CODE.parents[1]
    offenders = []
    for path in [*root.glob("hf_sepnorm/**/*.py"), *root.glob("examples/**/*.py"), *root.glob("tests/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "load":
                if getattr(node.func.value, "id", "") == "torch" and not any(
                    keyword.arg == "weights_only" and getattr(keyword.value, "value", None) is True
                    for keyword in node.keywords
                ):
                    offenders.append(f"{path}:{node.lineno}")
    assert offenders == []


READ_FIRST_BUDGET = 320  # lines: the file every reviewer of a checkpoint's code reads first stays this short


def test_the_code_file_read_first_stays_within_its_budget():
    lines = len((REMOTE_CODE / "sepnorm.py").read_text().splitlines())
    assert lines <= READ_FIRST_BUDGET, f"remote_code/sepnorm.py has {lines} lines: move what a reader can skip out"


def test_the_layout_page_lists_each_code_file_that_travels_with_its_length():
    readme = (REMOTE_CODE.parents[1] / "docs" / "layout.md").read_text()
    listed = {name: int(lines) for name, lines in re.findall(r"^  (\w+\.py) +(\d+)  ", readme, flags=re.MULTILINE)}
    family_files = ("configuration_sepnorm_", "modeling_sepnorm_")
    shared = {path.name: len(path.read_text().splitlines()) for path in HUB_BOUND if not path.name.startswith(family_files)}
    assert listed == shared
