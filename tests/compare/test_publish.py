"""`hf-sepnorm compare --push_to_hub`: each arm's seed-0 model published with its script's card and the comparison it
comes from, through the real client against the local Hub server (`tests/hub_server.py`), in a real process."""

import hashlib
import json
import os
import subprocess
import sys

import pytest
from hub_server import TEST_USER, hub_server  # noqa: F401 - `hub_server` is a fixture
from huggingface_hub import ModelCard

from hf_sepnorm.compare import run_comparison
from hf_sepnorm.compare.assessment import assess_track
from hf_sepnorm.compare.report import verdict_lines


def compare(*args, timeout=900):
    return subprocess.run([sys.executable, "-m", "hf_sepnorm_cli", "compare", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1"})  # HF_ENDPOINT: the local Hub


@pytest.mark.slow
def test_each_arms_seed_0_model_is_pushed_with_its_card_and_the_comparisons_verdicts(hub_server, tmp_path):  # noqa: F811
    prefix = f"{TEST_USER}/digits"
    flags = ["--output_dir", tmp_path, "--seeds", "2", "--arms", "shared", "batch-final", "--pretrain_steps", "3",
             "--finetune_steps", "2"]  # fmt: skip
    assert compare(*flags).returncode == 0  # first without pushing: no weights kept
    assert not list(tmp_path.rglob("*.safetensors"))
    seed_1 = {arm: (tmp_path / "runs" / "image" / f"{arm}-seed1" / "results.json").read_text() for arm in ("shared", "batch-final")}
    # then the same comparison pushed: seed 0 runs again to keep its weights, seed 1 is reused
    result = compare(*flags, "--push_to_hub", prefix)
    assert result.returncode == 0, result.stderr[-3000:]
    assert seed_1 == {arm: (tmp_path / "runs" / "image" / f"{arm}-seed1" / "results.json").read_text() for arm in seed_1}
    summary = json.loads((tmp_path / "results.json").read_text())
    track = summary["tracks"]["image"]
    assert [(push["arm"], push["repo_id"]) for push in summary["pushed"]] == [
        ("shared", f"{prefix}-image-shared"), ("batch-final", f"{prefix}-image-batch-final")]  # fmt: skip
    expected_verdicts = verdict_lines(track, assess_track(track).comparisons)
    for arm in ("shared", "batch-final"):
        repo_id = f"{prefix}-image-{arm}"
        files = hub_server.files(repo_id)
        local = tmp_path / "runs" / "image" / f"{arm}-seed0" / "mae"
        # exactly the seed-0 MAE that was measured: the weights kept for the push, byte for byte
        assert files["model.safetensors"] == (local / "model.safetensors").read_bytes()
        assert {"config.json", "preprocessor_config.json", "sepnorm.py"} <= set(files)
        assert not any(name.endswith((".bin", ".pt")) for name in files)
        card = ModelCard(files["README.md"].decode())
        assert "sepnorm" in card.data.tags and card.data.library_name == "transformers"
        # the card the MAE script wrote (its own metrics, on these weights), then the comparison, then the citation
        sha256 = hashlib.sha256(files["model.safetensors"]).hexdigest()
        assert f"`model.safetensors` (sha256 `{sha256}`)" in card.text
        assert f"seed 0 of the arm `{arm}`" in card.text and "Validity gate" in card.text
        assert all(line in card.text for line in expected_verdicts)
        assert "| `batch-final` | `linear_probe_accuracy` |" in card.text
        assert card.text.index("## ShareNorm vs SepNorm: the comparison") < card.text.index("## Citation")
        assert f'repo_id = "{repo_id}"' in card.text
    # every other run's weights were dropped, as without --push_to_hub
    kept = sorted(path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*.safetensors"))
    assert kept == ["runs/image/batch-final-seed0/mae/model.safetensors", "runs/image/shared-seed0/mae/model.safetensors"]

    # the card lists the code files pushed, with their sha256; code changed since is refused, nothing pushed
    from hf_sepnorm.hub.cards import card_code_sha256

    files = hub_server.files(f"{prefix}-image-shared")
    assert card_code_sha256(ModelCard(files["README.md"].decode())) == {
        name: hashlib.sha256(content).hexdigest() for name, content in files.items() if name.endswith(".py")
    }
    commits = len(hub_server.history(f"{prefix}-image-shared"))
    with open(tmp_path / "runs" / "image" / "shared-seed0" / "mae" / "sepnorm.py", "a") as handle:
        handle.write("\nprint('changed')\n")
    result = compare(*flags, "--push_to_hub", prefix)
    assert result.returncode == 1
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("hf-sepnorm compare: error: The code files sepnorm.py of ") and "differ from" in error
    assert len(hub_server.history(f"{prefix}-image-shared")) == commits


def test_a_prefix_that_makes_no_repo_id_or_an_arm_not_compared_is_refused_before_training(tmp_path):
    with pytest.raises(ValueError, match=r"--push_to_hub not a/valid/prefix: .* Give 'namespace/name-prefix'"):
        run_comparison(tmp_path, arms=("shared", "batch-final"), push_to_hub="not a/valid/prefix")
    with pytest.raises(ValueError, match=r"--push_arms batch-all: not compared; choose among --arms shared batch-final"):
        run_comparison(tmp_path, arms=("shared", "batch-final"), push_to_hub=f"{TEST_USER}/x", push_arms=("batch-all",))
    assert not (tmp_path / "runs").exists()
