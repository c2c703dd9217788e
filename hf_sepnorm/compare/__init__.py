"""`hf-sepnorm compare`: the same recipe for each `cls_norm` arm and seed, then a report of mean ± std per metric."""

from __future__ import annotations

import dataclasses
import json
import logging
import statistics
import time
from pathlib import Path

import transformers
from tqdm.auto import tqdm
from transformers import AutoTokenizer

from ..analysis import plot_projections, plot_spectra
from ..data.text import cls_led_blocks, load_text_corpus, train_wordpiece_tokenizer
from .recipes import PRESETS, Preset, recipe_as_dict
from .tracks import encode_glue_task, image_splits, run_image_arm, run_text_arm

ARM_NAMES = {"shared": "ShareNorm", "batch": "SepNorm (BatchNorm [CLS])", "layer": "SepNorm (LayerNorm [CLS])",
             "rms": "SepNorm (RMSNorm [CLS])"}  # fmt: skip
GLUE_FOLDERS = {"sst2": "SST-2", "cola": "CoLA", "mrpc": "MRPC", "stsb": "STS-B", "qqp": "QQP", "mnli": "MNLI",
                "qnli": "QNLI", "rte": "RTE", "wnli": "WNLI"}  # fmt: skip

logger = logging.getLogger(__name__)


def run_comparison(
    output_dir: str | Path,
    preset: str = "tiny",
    arms: tuple[str, ...] = ("shared", "batch"),
    seeds: int | None = None,
    images: str | None = None,
    text: list[str] | None = None,
    glue_dir: str | None = None,
    step_overrides: dict[str, int] | None = None,
) -> dict:
    """Run the comparison and write `report.md`, `results.json`, plots and per-run logs to `output_dir`.

    The image track (MAE) runs on scikit-learn's digits, or on `images` (`DIR/train`, `DIR/test` image folders); the
    text track (MLM then GLUE) runs when `text` files and a `glue_dir` with task folders are given (alone, unless
    `images` is given too). Returns the
    results: per track, per arm, the list of per-seed metric dicts. `step_overrides` (`pretrain_steps`,
    `finetune_steps`) replace the preset's step counts in both tracks.
    """
    recipe = PRESETS[preset]
    if step_overrides:
        recipe = dataclasses.replace(
            recipe,
            image=dataclasses.replace(recipe.image, **step_overrides),
            text=dataclasses.replace(recipe.text, **step_overrides),
        )
    seeds = seeds or recipe.seeds
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    transformers.logging.set_verbosity_warning()
    tracks = {}
    if images is not None or not text:  # the image track is the default; --text alone runs the text track only
        tracks["image"] = _image_track(recipe, images)
    if text:
        if glue_dir is None:
            raise ValueError("The text track needs --glue_dir, a folder of GLUE task folders (e.g. SST-2/).")
        tracks["text"] = _text_track(recipe, text, glue_dir, output_dir)

    started = time.time()
    results: dict = {name: {arm: [] for arm in arms} for name in tracks}
    plots: dict = {name: {} for name in tracks}
    runs = [(name, arm, seed) for name in tracks for seed in range(seeds) for arm in arms]
    for name, arm, seed in tqdm(runs, desc="compare: runs", unit="run"):
        run_dir = output_dir / "runs" / name / f"{arm}-seed{seed}"
        run_started = time.time()
        metrics, plot_data = tracks[name](arm, seed, run_dir)
        metrics["seconds"] = time.time() - run_started
        results[name][arm].append(metrics)
        (run_dir / "results.json").write_text(json.dumps(metrics, indent=2))
        if seed == 0:
            plots[name][ARM_NAMES[arm]] = plot_data
        tqdm.write(f"{name} {ARM_NAMES[arm]} seed {seed}: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))

    elapsed = time.time() - started
    summary = {
        "preset": preset,
        "seeds": seeds,
        "arms": list(arms),
        "data": {"images": images or "sklearn digits", "text": text, "glue_dir": glue_dir},
        "recipe": {name: recipe_as_dict(getattr(recipe, name)) for name in tracks},
        "seconds": elapsed,
        "results": results,
    }
    (output_dir / "results.json").write_text(json.dumps(summary, indent=2))
    figures = _write_plots(plots, output_dir)
    report = render_report(summary, figures)
    (output_dir / "report.md").write_text(report)
    print(report)
    return summary


def _image_track(recipe: Preset, images: str | None):
    splits, channels = image_splits(images, recipe.image)

    def run(arm: str, seed: int, run_dir: Path):
        return run_image_arm(arm, seed, splits, channels, recipe.image, run_dir)

    return run


def _text_track(recipe: Preset, text_files: list[str], glue_dir: str, output_dir: Path):
    """Corpus, tokenizer and GLUE data are prepared once and shared by every arm and seed."""
    text_recipe = recipe.text
    corpus = load_text_corpus(text_files)
    tokenizer_dir = output_dir / "tokenizer"
    if (tokenizer_dir / "tokenizer.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    else:
        tokenizer = train_wordpiece_tokenizer(iter(corpus["train"]["text"]), vocab_size=text_recipe.vocab_size)
        tokenizer.save_pretrained(tokenizer_dir)
    blocks = cls_led_blocks(corpus, tokenizer, text_recipe.max_seq_length)
    if text_recipe.max_pretrain_blocks:
        blocks["train"] = blocks["train"].select(range(min(len(blocks["train"]), text_recipe.max_pretrain_blocks)))
        blocks["validation"] = blocks["validation"].select(range(min(len(blocks["validation"]), 512)))
    glue = {
        task: encode_glue_task(task, str(Path(glue_dir) / GLUE_FOLDERS[task]), tokenizer, text_recipe)
        for task in text_recipe.glue_tasks
        if (Path(glue_dir) / GLUE_FOLDERS[task]).is_dir()
    }
    if not glue:
        raise ValueError(f"--glue_dir {glue_dir} holds none of the task folders {sorted(GLUE_FOLDERS.values())}.")

    def run(arm: str, seed: int, run_dir: Path):
        return run_text_arm(arm, seed, blocks, tokenizer, glue, text_recipe, run_dir)

    return run


def _write_plots(plots: dict, output_dir: Path) -> dict[str, dict[str, str]]:
    figures: dict[str, dict[str, str]] = {}
    for track, arms in plots.items():
        spectra = plot_spectra(
            {arm: data["spectrum"] for arm, data in arms.items()},
            output_dir / f"{track}_spectrum.png",
            title=f"[CLS] singular value spectrum ({track} track, seed 0, test set)",
        )
        projection = plot_projections(
            {arm: (data["embeddings"], data["labels"]) for arm, data in arms.items()},
            output_dir / f"{track}_projection.png",
        )
        figures[track] = {"spectrum": Path(spectra).name, "projection": Path(projection).name}
    return figures


def mean_and_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def render_report(summary: dict, figures: dict[str, dict[str, str]]) -> str:
    """The Markdown report: per track, a table of mean ± std over seeds per metric and arm, the plots, the recipe."""
    lines = [
        f"# ShareNorm vs SepNorm — `{summary['preset']}` preset",
        "",
        f"{summary['seeds']} seed(s) per arm; only `cls_norm` differs between arms. Data: {summary['data']}. "
        f"Total time: {summary['seconds'] / 60:.1f} min.",
        "",
    ]
    for track, arms in summary["results"].items():
        arm_names = list(arms)
        metrics = [metric for metric in next(iter(arms.values()))[0]]
        lines += [f"## {track} track", "", "| metric | " + " | ".join(ARM_NAMES[a] for a in arm_names) + " |",
                  "|---|" + "---|" * len(arm_names)]  # fmt: skip
        for metric in metrics:
            cells = [mean_and_std([run[metric] for run in arms[arm]]) for arm in arm_names]
            lines.append(f"| {metric} | " + " | ".join(cells) + " |")
        if track in figures:
            lines += ["", f"![spectrum]({figures[track]['spectrum']})", f"![projection]({figures[track]['projection']})"]
        lines += ["", "Recipe:", "", "```json", json.dumps(summary["recipe"][track], indent=2), "```", ""]
    lines += [
        "Metrics: `*_loss`/`perplexity` are the pretraining objective on held-out data (lower is better); "
        "`uniformity` is Wang & Isola's log E exp(-2||f(x)-f(y)||^2) over L2-normalized test [CLS] embeddings "
        "(lower = more uniform); `effective_rank` is exp(entropy) of the normalized singular values (higher = less "
        "collapse); `probe_accuracy` is a logistic regression on frozen [CLS] embeddings; the rest are fine-tuning "
        "results on the test/validation set. [CLS] BatchNorm statistics are re-estimated on unmasked training data "
        "before every analysis and evaluation.",
        "",
    ]
    return "\n".join(lines)
