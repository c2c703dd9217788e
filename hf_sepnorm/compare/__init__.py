"""`hf-sepnorm compare`: the example scripts' recipe once per arm and seed, readouts of the [CLS] embeddings on held-out
data, baselines, and a report of paired differences against ShareNorm."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import platform
import time
from pathlib import Path

import sklearn
import torch
import transformers

from ..analysis import plot_projections, plot_spectra
from ..data.image_folders import check_split_folders
from ..errors import InputError
from ..hub.cards import weights_sha256
from .console import Progress, plain, run_output
from .lock import holding_output_dir
from .publish import check_repo_prefix, publish_comparison
from .recipes import (
    ARMS,
    BASELINE_ARM,
    DEFAULT_ARMS,
    PRESETS,
    recipe_as_dict,
    with_overrides,
)
from .report import primary_metric, render_report, verdict_lines
from .tracks import ImageTrack, PretrainedTextTrack, ScratchTextTrack, Track
from .tracks.checkpoints import drop_weights

logger = logging.getLogger(__name__)


def device_description() -> str:
    if torch.cuda.is_available():
        return f"GPU ({torch.cuda.get_device_name(0)})"
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


class ComparisonInputError(InputError):
    """An argument of `hf-sepnorm compare` that cannot work, found before anything is trained (the data readers and
    the push's checks raise their own `InputError`s, as they do for the scripts)."""


def check_inputs(images: str | None, text: list[str] | None, glue_dir: str | None, pretrained) -> None:
    """Stop before any training when a data argument cannot work, naming the flag and the fix."""
    if images is not None:
        check_split_folders(images)
    for file in text or []:
        if not Path(file).is_file():
            raise ComparisonInputError(f"--text {file}: no such file (plain-text files for MLM pretraining).")
    if (text or pretrained) and glue_dir is None:
        raise ComparisonInputError("The text tracks need --glue_dir, a folder of GLUE task folders (e.g. SST-2/).")
    if glue_dir is not None and not Path(glue_dir).is_dir():
        raise ComparisonInputError(f"--glue_dir {glue_dir}: no such folder (it holds SST-2/, CoLA/, ...).")


@holding_output_dir  # one comparison at a time in output_dir
def run_comparison(
    output_dir: str | Path,
    preset: str = "tiny",
    arms: tuple[str, ...] = DEFAULT_ARMS,
    seeds: int | None = None,
    images: str | None = None,
    text: list[str] | None = None,
    glue_dir: str | None = None,
    pretrained: str | bool | None = None,
    pretrain_steps: int | None = None,
    finetune_steps: int | None = None,
    recalibrate_cls_norm: bool = False,
    finetune_learning_rate: float | None = None,
    push_to_hub: str | None = None,
    push_arms: tuple[str, ...] | None = None,
    hub_token: str | None = None,
    hub_private_repo: bool | None = None,
    verbose: bool = False,
) -> dict:
    """Run the comparison and write `report.md`, `results.json`, plots and per-run logs and results to `output_dir`.

    Tracks: images (MAE) on scikit-learn's digits or on `images` (`DIR/train`, `DIR/test` image folders) — the
    default, and run with `images`; text from scratch (MLM then GLUE) with `text` files and `glue_dir`; text from a
    pretrained stock text model with `pretrained` (a BERT, RoBERTa or ModernBERT checkpoint, or True for the bundled
    all-MiniLM-L6-v2) and
    `glue_dir` (SimCSE too when `text` is given). Each run's `results.json` is
    written as soon as it ends. `recalibrate_cls_norm` (default off: re-estimation hurt `batch-all` readouts on average
    in docs/cls_statistics.md) is passed to the scripts and applied before the readouts. Returns the summary written
    to `results.json`.

    With `push_to_hub` (a repo id prefix, "namespace/name"), seed 0's model of each arm of `push_arms` (default:
    every arm) keeps its weights and is pushed, once the report is written, to `{push_to_hub}-{track}-{arm}` with the
    card its script wrote and the comparison's verdicts and paired table (`compare.publish`); `hub_token` and
    `hub_private_repo` as the Trainer's flags of those names.

    The console shows what the run checks, one line per run, and at the end the verdicts and the paths of the report
    and plots; each run's own output goes to its `console.log` (`compare.console`). `verbose` shows it all, and the
    report.
    """
    unknown = [arm for arm in arms if arm not in ARMS]
    if unknown:
        raise ComparisonInputError(f"--arms: unknown arm(s) {unknown}; choose from {sorted(ARMS)}.")
    if BASELINE_ARM not in arms:
        raise ComparisonInputError(f"--arms must include `{BASELINE_ARM}`: every other arm is compared with it.")
    check_inputs(images, text, glue_dir, pretrained)
    pushed_arms = list(push_arms or arms) if push_to_hub else []
    if set(pushed_arms) - set(arms):
        raise ComparisonInputError(f"--push_arms {' '.join(sorted(set(pushed_arms) - set(arms)))}: not compared; "
                                   f"choose among --arms {' '.join(arms)}.")  # fmt: skip
    controls = [arm for arm in arms if ARMS[arm].standardize_cls]
    if controls and (images is not None or not (text or pretrained)):
        raise ComparisonInputError(
            f"--arms {' '.join(controls)}: a control of text fine-tuning (it standardizes the [CLS] of BERT's final "
            "norm), and the image track has none: leave it out, or compare only text (--text / --pretrained)."
        )
    recipe = with_overrides(PRESETS[preset], pretrain_steps, finetune_steps, finetune_learning_rate)
    seeds = seeds or recipe.seeds
    output_dir = Path(output_dir)
    print(intro_line(preset, recipe.note, arms, seeds, images, text, pretrained, output_dir), flush=True)
    output_dir.mkdir(parents=True, exist_ok=True)
    transformers.logging.set_verbosity_warning()

    tracks: list[Track] = []
    inputs = {}  # what each track reads, beside its recipe (a run is reused only if both match)
    if images is not None or not (text or pretrained):
        tracks.append(ImageTrack(recipe.image, images, output_dir, recalibrate_cls_norm))
        inputs["image"] = {"images": images or f"scikit-learn {sklearn.__version__} load_digits"}
    if text:
        tracks.append(ScratchTextTrack(recipe.text, text, glue_dir, output_dir, recalibrate_cls_norm))
        inputs["text"] = {"text": text, "glue_dir": glue_dir}
    if pretrained:
        checkpoint = pretrained if isinstance(pretrained, str) else None
        track = PretrainedTextTrack(recipe.pretrained_text, checkpoint, glue_dir, output_dir, text, recalibrate_cls_norm)
        tracks.append(track)
        # the key keeps its first name: earlier runs recorded it, and a run is reused only if its inputs match
        inputs["pretrained-text"] = {"pretrained_bert": track.checkpoint, "glue_dir": glue_dir, "text": text}

    if push_to_hub:
        check_repo_prefix(push_to_hub, [track.name for track in tracks], pushed_arms)
    summary = {
        "preset": preset,
        "note": recipe.note,
        "seeds": seeds,
        "arms": list(arms),
        "arm_descriptions": {arm: ARMS[arm].description for arm in arms},
        "device": device_description(),
        "recalibrate_cls_norm": recalibrate_cls_norm,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "tracks": {},
    }
    started = time.time()
    progress = Progress(len(tracks) * seeds * len(arms))
    for track in tracks:
        name, track_recipe = track.name, track.recipe
        track_started = time.time()
        runs: dict[str, list[dict]] = {arm: [] for arm in arms}
        plots: dict[str, dict] = {}
        identity = run_identity(track_recipe, inputs[name], recalibrate_cls_norm)
        for seed, arm in [(s, a) for s in range(seeds) for a in arms]:
            run_dir = output_dir / "runs" / name / f"{arm}-seed{seed}"
            published = run_dir / track.published_folder if seed == 0 and arm in pushed_arms else None
            finished = _finished_run(run_dir, identity, needs_weights=published)
            progress.start(name, arm, seed)
            if finished is None:
                run_started = time.time()
                with run_output(run_dir / "console.log", verbose):
                    metrics, plot_data = track.run(ARMS[arm], seed, run_dir)
                drop_weights(run_dir, keep=published)
                torch.save(plot_data, run_dir / "test_cls.pt")
                write_json(run_dir / "results.json", {"arm": arm, "seed": seed, "seconds": time.time() - run_started,
                                                      "recipe": recipe_as_dict(track_recipe), "identity": identity,
                                                      "metrics": metrics})  # fmt: skip
            else:  # an interrupted comparison, run again with the same arguments and inputs, keeps its finished runs
                metrics, plot_data = finished
            progress.finish(reused=finished is not None)
            runs[arm].append(metrics)
            if seed == 0:
                plots[arm] = plot_data
            if verbose:
                print(f"{name} {arm} seed {seed}: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
        summary["tracks"][name] = {
            "title": track.title,
            "data": track.data,
            "recipe": recipe_as_dict(track_recipe),
            "metrics": [dataclasses.asdict(metric) for metric in track.metrics],
            "gate": track.gate,
            "learning_check": track.learning_check,
            "convergence_checks": track.convergence_checks,
            "published_folder": track.published_folder,
            "baselines": track.baselines(),
            "runs": runs,
            "figures": _write_plots(name, plots, output_dir, track.plotted),
            "seconds": time.time() - track_started,
        }
    summary["seconds"] = time.time() - started
    write_json(output_dir / "results.json", summary)
    report = render_report(summary)
    (output_dir / "report.md").write_text(report)
    if verbose:
        print(report)
    print(ending(summary, output_dir))
    if push_to_hub:
        summary["pushed"] = publish_comparison(summary, output_dir, push_to_hub, pushed_arms, token=hub_token,
                                               private=hub_private_repo)  # fmt: skip
        write_json(output_dir / "results.json", summary)
        for push in summary["pushed"]:
            print(f"pushed {push['track']} {push['arm']} (seed 0): {push['commit_url']}")
    return summary


def intro_line(preset: str, note: str, arms, seeds: int, images, text, pretrained, output_dir: Path) -> str:
    """The console's first line: what this run checks, on what, and where an answer comes from."""
    data = [f"images in {images}" if images else "", "MLM on --text, then GLUE" if text else "",
            "GLUE from a pretrained text model" if pretrained else ""]  # fmt: skip
    data = "; ".join(item for item in data if item) or "scikit-learn's digits (8x8 images)"
    line = (f"hf-sepnorm compare: ShareNorm (`{BASELINE_ARM}`) against {', '.join(a for a in arms if a != BASELINE_ARM)}"
            f", {seeds} seeds each, on {data}; preset {preset}: {note}. Report: {output_dir / 'report.md'}.")
    if preset == "tiny":
        line += (" It checks that every arm trains and is measured end to end; whether SepNorm helps needs a larger "
                 "preset on real data (e.g. `--preset small --images DIR`, hours; the README's \"Does SepNorm help?\" "
                 "gives the measured answer).")  # fmt: skip
    return plain(line)


def ending(summary: dict, output_dir: Path) -> str:
    """The console's last lines: each track's verdicts and validity gate, and where the report and plots are."""
    from .assessment import assess_track

    lines = []
    for name, track in summary["tracks"].items():
        assessment = assess_track(track)
        gate = "passed" if assessment.gate_passed else "FAILED (every row but pretraining reads inconclusive)"
        lines.append(f"{name} track, validity gate {gate}; {primary_metric(track)['key']}:")
        lines += [f"  {plain(line)}" for line in verdict_lines(track, assessment.comparisons)]
    lines.append(f"Report: {output_dir / 'report.md'}")
    figures = [str(output_dir / figure["file"]) for track in summary["tracks"].values() for figure in track["figures"]]
    lines.append(f"Plots: {', '.join(figures)}")
    return "\n".join(lines)


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str))


def run_identity(recipe, inputs: dict, recalibrate_cls_norm: bool) -> dict:
    """Everything that defines a run besides its arm and seed: the track's recipe, each input path with the identity
    of what it holds (`path_identity`), the flags and the package's version. A finished run is reused only when its
    identity is this one."""
    from .. import __version__

    identified = {}
    for name, value in inputs.items():
        values = value if isinstance(value, list) else [value]
        identified[name] = [path_identity(item) if item and Path(item).exists() else item for item in values]
    identity = {"recipe": recipe_as_dict(recipe), "inputs": identified,
                "flags": {"recalibrate_cls_norm": recalibrate_cls_norm}, "hf_sepnorm": __version__}  # fmt: skip
    return json.loads(json.dumps(identity, default=str))


def path_identity(path: str | Path) -> dict:
    """A file or folder as its absolute path and a digest of the names, sizes and modification times of its files:
    another file, or the same file changed, is another input."""
    path = Path(path).resolve()
    files = [path] if path.is_file() else sorted(item for item in path.rglob("*") if item.is_file())
    digest = hashlib.sha256()
    for item in files:
        stat = item.stat()
        name = item.name if item == path else item.relative_to(path)
        digest.update(f"{name}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return {"path": str(path), "files": len(files), "digest": digest.hexdigest()}


def _finished_run(run_dir: Path, identity: dict, needs_weights: Path | None = None) -> tuple[dict, dict] | None:
    """The metrics and plot data of a run that finished with the same identity (`run_identity`), or None; None too
    when the run must publish the model of `needs_weights` and its weights were not kept."""
    results, plot_file = run_dir / "results.json", run_dir / "test_cls.pt"
    if not (results.is_file() and plot_file.is_file()):
        return None
    if needs_weights is not None and not weights_sha256(needs_weights):
        logger.info("%s: its weights were not kept, and --push_to_hub publishes them: run again", run_dir)
        return None
    saved = json.loads(results.read_text())
    if saved.get("identity") != identity:
        logger.info("%s: finished with other settings or inputs, so run again", run_dir)
        return None
    return saved["metrics"], torch.load(plot_file, weights_only=True)


def _write_plots(track: str, plots: dict[str, dict], output_dir: Path, plotted: str) -> list[dict[str, str]]:
    """Seed 0's test [CLS] embeddings of every arm (`plotted` says which: trained, or a pretrained start), standardized
    with the training statistics as the readouts measure them: singular value spectra on one chart, and PCA
    projections side by side."""
    spectrum = f"{track}_spectrum.png"
    plot_spectra({arm: data["embeddings"] for arm, data in plots.items()}, output_dir / spectrum,
                 title=f"Train-standardized test [CLS] spectrum ({track} track, seed 0)")  # fmt: skip
    projection = f"{track}_projection.png"
    plot_projections({arm: (data["embeddings"], data["labels"]) for arm, data in plots.items()}, output_dir / projection,
                     title=f"Train-standardized test [CLS], PCA ({track} track, seed 0)")  # fmt: skip
    hidden = "".join(f" `{later}`'s curve coincides with `{earlier}`'s (embeddings equal to 1e-5): drawn over it, "
                     "dashed and with smaller markers, it leaves the other visible."
                     for earlier, later in identical_arms({arm: data["embeddings"] for arm, data in plots.items()}))  # fmt: skip
    return [
        {"file": spectrum, "alt": "spectrum",
         "caption": f"Normalized singular values s_i / Σ s of seed 0's {plotted} of each arm, standardized per "
                    "feature with training statistics (log scale; the legend gives their effective rank, as the "
                    "table's effective-rank row does). A flatter curve spreads the variance over more directions. One "
                    f"seed: the tables give the spread over seeds.{hidden}"},
        {"file": projection, "alt": "projection",
         "caption": f"Seed 0's {plotted}, train-standardized, projected on their first two principal components, "
                    "one panel per arm, coloured by class. An illustration: the probe and k-NN rows measure "
                    "separability."},
    ]  # fmt: skip


def identical_arms(embeddings: dict[str, torch.Tensor]) -> list[tuple[str, str]]:
    """The pairs (earlier, later) of arms, in plotting order, whose embeddings are equal: on a chart of one line per
    arm, the later one hides the earlier (e.g. `layer-final` and `shared` when only [CLS] reads the final norm)."""
    arms = list(embeddings)
    pairs = []
    for index, later in enumerate(arms):
        earlier = next((arm for arm in arms[:index] if embeddings[arm].shape == embeddings[later].shape
                        and torch.allclose(embeddings[arm], embeddings[later], rtol=1e-5, atol=1e-6)), None)  # fmt: skip
        if earlier is not None:
            pairs.append((earlier, later))
    return pairs


__all__ = ["run_comparison", "render_report", "check_inputs", "ComparisonInputError", "run_identity", "path_identity"]
