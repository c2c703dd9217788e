"""The README as a new user reads it: its length, the commands CI takes from it, and its Quick start blocks, run as
pasted in an empty folder."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_the_readme_leads_with_the_answer_in_about_250_lines():
    assert len(README.splitlines()) <= 260
    headings = re.findall(r"^## (.+)$", README, flags=re.MULTILINE)
    assert headings[:3] == ["Set up and run", "Quick start", "Does SepNorm help?"]
    # the first pytest command is the fast tier; the full suite, which CI runs (.ci/run), comes after it
    commands = re.findall(r"python -m pytest tests -q[^\n`]*", README)
    assert commands[0] == 'python -m pytest tests -q -m "not slow"' and "python -m pytest tests -q" in commands[1:]
    assert "python -m pytest tests -q\n" in (ROOT / ".ci" / "run").read_text()
    assert "~/.cache/hf_sepnorm/" in README  # where the tests write outside the project


def test_every_local_link_of_the_readme_and_its_pages_resolves_or_is_being_written():
    # pages other developers write in parallel (they exist after the merge)
    written_elsewhere = {"docs/own-data.md", "docs/supported-versions.md", "docs/publishing.md", "docs/onnx.md",
                         "docs/families.md"}  # fmt: skip
    for page in [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), ROOT / "docs" / "results" / "answer.md"]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            path = (page.parent / target).resolve()
            assert path.exists() or str(path.relative_to(ROOT)) in written_elsewhere, f"{page.name}: {target}"


@pytest.mark.slow
def test_the_quick_start_blocks_run_as_pasted(tmp_path):
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(python|bash)\n(.*?)```", quick_start, flags=re.DOTALL)
    assert [kind for kind, _ in blocks] == ["python", "python", "bash", "bash"]  # the Hub-id form is apart, as text
    for kind, code in blocks:
        command = [sys.executable, "-c", code] if kind == "python" else ["bash", "-c", code]
        bin_dir = str(Path(sys.executable).parent)  # hf-sepnorm of this environment
        env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "HOME": str(Path.home())}
        result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
        assert result.returncode == 0, f"{code}\n{result.stderr[-2000:]}"
    for folder in ("my-sepnorm-bert", "stock-bert-sepnorm", "stock-bert-sepnorm-cli", "my-classifier"):
        assert (tmp_path / folder / "config.json").is_file()
