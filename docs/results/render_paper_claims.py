#!/usr/bin/env python
"""Write docs/paper-claims.md: the paper's claims as the paper states them, each beside what this project measured
(read from the run records under docs/results/) and the command that would test it at full scale.

    python docs/results/render_paper_claims.py

The paper's numbers are quoted (PAPER below) from the authors' repository README (github.com/tufts-ml/SepNorm,
commit ce5b3a8), which reproduces the paper's result tables; every number this project measured is read from a
record here, none typed by hand.
"""

from __future__ import annotations

import importlib.util
import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from hf_sepnorm.compare.statistics import paired_comparison  # noqa: E402

SOURCE = "the authors' repository README (github.com/tufts-ml/SepNorm, commit ce5b3a8), which reproduces the paper's tables"
PAPER = [  # (domain, protocol as the paper states it, ShareNorm -> SepNorm as the paper reports it)
    ("image", "MAE (ViT), top-1 after fine-tuning (`ACC@1`)",
     "STL-10 92.01 → 93.84; Aircraft 52.54 → 59.02; SVHN 88.97 → 89.18; Flowers 27.63 → 32.51"),
    ("image", "MAE (ViT), linear probe",
     "the paper has a linear-probe table; it is not in the authors' README and the paper's PDF is not available "
     "offline here, so it is not transcribed (no number is quoted from memory)"),
    ("text", "unsupervised SimCSE from a converted `bert-base-uncased` (ShareNorm MLM checkpoint, SepNorm inserted, then "
     "SimCSE), Spearman on STS12–16, STS-B, SICK-R",
     "average 74.04 → 75.87 (STS-B 76.40 → 77.56; SICK-R 71.74 → 71.36, lower); from `roberta-base` 76.00 → 76.70"),
    ("text", "supervised SimCSE (NLI), same STS tasks",
     "`bert-base` average 81.00 → 81.23; `roberta-base` 80.70 → 81.90"),
    ("text", "SentEval transfer (MR, CR, SUBJ, MPQA, SST2, TREC, MRPC) of the unsupervised SimCSE models",
     "`bert-base` average 86.36 → 86.14 (SepNorm slightly **lower**); `roberta-base` 87.61 → 88.37"),
    ("text", "GLUE", "**none**: the paper reports no GLUE result"),
    ("graph", "Graphormer on molecular property prediction",
     "ZINC mean absolute error 0.069 → 0.052; ZINC (subset) 0.164 → 0.144; MolHIV AUC 73.36 % → 75.64 %"),
    ("all", "abstract", "\"an average 2.7 % performance improvement over the image, natural language, and graph domains\""),
]
FULL_SCALE = {
    "image": "`hf-sepnorm compare --preset paper --images stl10/ --seeds 5` on GPUs (MAE pretraining from scratch with "
             "each arm, then fine-tuning and the linear probe; image folders `train/`, `test/`)",
    "SimCSE": "`accelerate launch examples/run_simcse.py --model_name_or_path bert-base-uncased --train_file "
              "wiki1m_for_simcse.txt --sts_dir glue/STS-B --per_device_train_batch_size 64 --num_train_epochs 1 "
              "--learning_rate 3e-5 --cls_norm batch` (and `--cls_norm shared`), 5 seeds, on GPUs; STS12–16 and "
              "SICK-R are not shipped here (only STS-B), SentEval not at all",
    "supervised": "not built: no NLI data or supervised SimCSE loss here",
    "graph": "not built: this package has no Graphormer family",
}


def records(folder: Path, pattern: str) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(folder.glob(pattern))]


def simcse_start_and_gain(folder: Path) -> list[dict]:
    """Per arm of a SimCSE experiment: its untrained start (step 0) and, over the trained seeds, its gain from that
    start and the head start over `shared`, on the primary (held-out STS-B train pairs) and the dev pairs."""
    rows = []
    runs = folder / "runs"
    start_of = {path.parent.name: json.loads(path.read_text())["metrics"] for path in runs.glob("*/untrained.json")}
    for arm in ("shared", "batch-final", "batch-all"):
        trained = records(runs / arm, "seed*.json")
        if arm not in start_of or not trained:
            continue
        row = {"arm": arm, "seeds": len(trained)}
        for split in ("train", "dev"):
            key = f"eval_stsb_{split}_spearman"
            start, ends = start_of[arm][key], [record["metrics"][key] for record in trained]
            gain = paired_comparison([start] * len(ends), ends, True) if len(ends) > 1 else None
            row[split] = {"start": start, "end": statistics.mean(ends), "gain": gain,
                          "head_start": start - start_of["shared"][key],
                          "gains": {r["seed"]: r["metrics"][key] - start for r in trained},
                          "ends": {r["seed"]: r["metrics"][key] for r in trained}}  # fmt: skip
        rows.append(row)
    shared = next((row for row in rows if row["arm"] == "shared"), None)
    for row in rows:  # the arm's gain minus shared's, paired by seed
        for split in ("train", "dev"):
            seeds = sorted(set(row[split]["gains"]) & set(shared[split]["gains"])) if shared else []
            for name in ("gains", "ends"):
                row[split][f"{name}_vs_shared"] = paired_comparison(
                    [shared[split][name][seed] for seed in seeds], [row[split][name][seed] for seed in seeds], True
                ) if row["arm"] != "shared" and len(seeds) > 1 else None
    return rows


def interval(result) -> str:
    return "–" if result is None else f"{result.mean_difference:+.2f} [{result.ci_low:+.2f}, {result.ci_high:+.2f}]"


def glue_rows() -> list[str]:
    """STS-B and SST-2 from all-MiniLM-L6-v2 per recipe: mean primary and eval loss per arm, with its seeds."""
    folder = HERE / "glue-minilm-converging"
    baselines = json.loads((folder / "baselines.json").read_text())
    lines = []
    for recipe, runs in (("old recipe (head bias 0, old control)", "runs"),
                         ("new recipe (head bias at the label mean, sound control)", "runs-label-mean-head")):  # fmt: skip
        for task, primary, name, loss in (("stsb", "eval_pearson", "Pearson", "MSE"),
                                          ("sst2", "eval_accuracy", "accuracy", "log-loss")):  # fmt: skip
            parts = []
            for arm in ("shared", "batch-final", "batch-all", "shared-standardized"):
                found = records(folder / runs / task / arm, "seed*.json")
                if found:
                    parts.append(f"`{arm}` {name} {statistics.mean(r['metrics'][primary] for r in found):.3f}, "
                                 f"{loss} {statistics.mean(r['metrics']['eval_loss'] for r in found):.3f} "
                                 f"({len(found)} seeds)")  # fmt: skip
            if parts:
                lines.append(f"  - {recipe}, {task} (constant predictor's {loss} "
                             f"{baselines[task]['constant_eval_loss']:.3f}): " + "; ".join(parts))  # fmt: skip
    return lines


def image_line() -> str:
    track = json.loads((HERE / "image-digits-tiny" / "results.json").read_text())["tracks"]["image"]
    trivial = track["baselines"]["MAE loss, predicting zeros"][0]
    losses = {arm: statistics.mean(run["mae_eval_loss"] for run in runs) for arm, runs in track["runs"].items()}
    return ("a 4-layer MAE from scratch on 8x8 digits (`image-digits-tiny`): eval loss "
            + ", ".join(f"`{arm}` {loss:.4f}" for arm, loss in losses.items())
            + f" against {trivial:.4f} for predicting zeros: it did not learn, no verdict")


def mlm_start_runner():
    """simcse-mlm-start/run_experiment.py under its own module name (every experiment names its runner alike)."""
    spec = importlib.util.spec_from_file_location("mlm_start_runner", HERE / "simcse-mlm-start" / "run_experiment.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mlm_start_state() -> str:
    """How far `simcse-mlm-start` got, from its records."""
    runs = HERE / "simcse-mlm-start" / "runs"
    found = sorted(path.relative_to(runs).as_posix() for path in runs.glob("*/*.json"))
    if not found:
        return "planned, no stage recorded yet; its masked-LM pretraining resumes across sessions"
    read = lambda name: json.loads((runs / name).read_text()) if (runs / name).exists() else None  # noqa: E731
    pilot, start = read("pilot/shared-seed0.json"), read("shared/untrained.json")
    if pilot is None or start is None or mlm_start_runner().step_count(pilot, start) is not None:
        return f"under way, {len(found)} record(s) so far; see `simcse-mlm-start/report.md`"
    dev = "eval_stsb_dev_spearman"
    state = (f"stopped by its pilot rule, without a verdict on SepNorm: SimCSE did not lift `shared`'s [CLS] from its "
             f"masked-LM start (STS-B dev Spearman {start['metrics'][dev]:.2f} at step 0, "
             f"{pilot['metrics'][dev]:.2f} after {pilot['steps']:,} steps; 5 points were needed)")
    if baselines := read("diagnostics/baselines.json"):
        state += f", and that start is below the bag-of-words baseline ({baselines['stsb_dev_spearman']:.2f})"
    for path in found:
        if path.startswith("diagnostics/pilot-lr"):
            record = read(path)
            state += (f"; at the paper's SimCSE rate ({record['recipe']['learning_rate']:g}) it reached "
                      f"{record['metrics'][dev]:.2f}")
    return state + "; see `simcse-mlm-start/report.md`"


def glue_sentences() -> list[str]:
    """Sentences 4 and 5: GLUE with the corrected recipe and the sound control, from report-label-mean-head's rows."""
    sys.path.insert(0, str(HERE / "glue-minilm-converging"))
    from render_label_mean_head import NEW, by_recipe, rows_of

    baselines = json.loads((HERE / "glue-minilm-converging" / "baselines.json").read_text())
    rows = rows_of(by_recipe()[NEW], baselines)
    names = {"stsb": "STS-B Pearson", "sst2": "SST-2 accuracy"}

    def said(row: dict) -> str:
        result = row["result"]
        verdict = row["verdict"] if row["verdict"].startswith("preliminary") else f"{row['verdict']}, n = {result.n}"
        return (f"`{row['arm']}` − `{row['reference']}`, {names[row['task']]}, {result.mean_difference:+.4f} "
                f"[{result.ci_low:+.4f}, {result.ci_high:+.4f}] ({verdict})")

    primary = [row for row in rows if row["primary"]]
    control = [row for row in rows if "standardized" in row["arm"] + row["reference"]
               and row["key"] in ("eval_pearson", "eval_accuracy")]  # fmt: skip
    glue = ("4. GLUE is this project's question, not the paper's: fine-tuning all-MiniLM-L6-v2 on 2,000 rows for 3 "
            "epochs, with the recipe corrected (a regression head's bias starts at the label mean: STS-B's earlier "
            "\"not converged\" was a head starting at 0, not SepNorm), paired by seed: " + "; ".join(map(said, primary))
            + " (`glue-minilm-converging/report-label-mean-head.md`).")  # fmt: skip
    sound = ("5. The earlier standardization control (`shared-standardized`) was numerically broken (a dead feature's "
             "gradient multiplied by about a million), so its \"against the control\" verdicts are withdrawn; the sound "
             "control (standardized where `batch-final` normalizes, BatchNorm's epsilon), re-run: "
             + ("; ".join(map(said, control)) if control else "no paired seeds yet") + ".")  # fmt: skip
    return [glue, sound]


def in_short(by_arm: dict) -> list[str]:
    """"Does SepNorm help?" in five sentences, as the records support them."""
    image = image_line()
    shared, final, every = (by_arm.get(arm) for arm in ("shared", "batch-final", "batch-all"))
    lines = ["## In short: does SepNorm help?", "",
             "1. The paper's own claims (MAE fine-tuning, STL-10 92.01 → 93.84; unsupervised SimCSE from a converted "
             "`bert-base-uncased`, STS 74.04 → 75.87, with SentEval transfer slightly lower, 86.36 → 86.14; Graphormer) "
             "are not tested here: each needs pretraining or SimCSE at the paper's scale on GPUs, and the one run of "
             f"that kind the CPU allowed, {image.split(' (')[0]}, did not learn."]  # fmt: skip
    if shared and final:
        end = final["train"]["ends_vs_shared"]
        lines.append(f"2. From all-MiniLM-L6-v2, already contrastive, `batch-final` ends 200 SimCSE steps "
                     f"{interval(end)} Spearman points from `shared` on held-out STS-B pairs ({end.verdict}), and "
                     "what edge there is is a head start "
                     f"present before training ({final['train']['head_start']:+.2f} on the train pairs, "
                     f"{final['dev']['head_start']:+.2f} on the dev pairs at step 0): its training gain, "
                     f"{final['train']['gain'].mean_difference:+.2f}, is no larger than `shared`'s "
                     f"({shared['train']['gain'].mean_difference:+.2f}; difference "
                     f"{interval(final['train']['gains_vs_shared'])}).")  # fmt: skip
    if shared and every:
        lines.append(f"3. `batch-all` inserted into that pretrained LayerNorm model starts "
                     f"{-every['train']['head_start']:.2f} points below `shared` and 200 steps recover "
                     f"{every['train']['gain'].mean_difference:.2f}: the cost of inserting BatchNorms into a model "
                     "pretrained without them, not a test of the paper's SepNorm; the paper's protocol from a raw MLM "
                     f"start (`simcse-mlm-start`) is {mlm_start_state()}.")  # fmt: skip
    lines += glue_sentences()
    return [*lines, ""]


def render() -> str:
    simcse = simcse_start_and_gain(HERE / "simcse-minilm")
    by_arm = {row["arm"]: row for row in simcse}
    shared = by_arm.get("shared")
    lines = [
        "# What the paper claims, and what this project measured", "",
        "Written by `docs/results/render_paper_claims.py`: the paper's numbers are quoted from " + SOURCE + "; every "
        "number this project measured is read from its run records under `docs/results/`.", "",
        "Chen et al., \"On Separate Normalization in Self-supervised Transformers\", NeurIPS 2023 (arXiv 2309.12931). "
        "SepNorm normalizes the [CLS] token with its own norm (BatchNorm in the paper) and the other tokens with a "
        "LayerNorm, at every norm of the transformer (`batch-all` here).", "",
        *in_short(by_arm),
        "## The paper's claims, as the paper states them", "",
        "| domain | protocol (the paper's) | ShareNorm → SepNorm (the paper's numbers) |", "|---|---|---|",
        *(f"| {domain} | {protocol} | {numbers} |" for domain, protocol, numbers in PAPER), "",
        "## Beside what this project measured", "",
        "| the paper's claim | measured here (CPU, 2 cores) | what would test it at full scale |", "|---|---|---|",
        f"| image: MAE fine-tuning, STL-10 92.01 → 93.84 (and the linear probe) | {image_line()} | {FULL_SCALE['image']} |",
    ]
    if shared:
        gains = "; ".join(f"`{row['arm']}` {row['train']['start']:.2f} → {row['train']['end']:.2f} "
                          f"(gain {interval(row['train']['gain'])}, {row['seeds']} seeds)" for row in simcse)  # fmt: skip
        lines.append("| text: unsupervised SimCSE from a converted ShareNorm MLM `bert-base-uncased`, STS average "
                     "74.04 → 75.87 | not that start: SimCSE from all-MiniLM-L6-v2, already trained contrastively "
                     f"(`simcse-minilm`, 200 steps), held-out STS-B train pairs, start → end: {gains}. The "
                     f"paper's start (a raw MLM model that SimCSE moves far) is `simcse-mlm-start`, {mlm_start_state()} "
                     f"| {FULL_SCALE['SimCSE']} |")  # fmt: skip
    lines += [
        f"| text: supervised SimCSE, 81.00 → 81.23 | not run | {FULL_SCALE['supervised']} |",
        "| text: SentEval transfer, 86.36 → 86.14 (SepNorm slightly lower) | not run (SentEval not shipped) | "
        "SentEval's transfer tasks on the unsupervised SimCSE checkpoints above |",
        "| text: GLUE — **no claim in the paper** | this project's own question, not the paper's: GLUE fine-tuning of "
        "all-MiniLM-L6-v2 with [CLS] BatchNorms inserted (3 epochs of 2,000 rows), listed below | – |",
        f"| graph: Graphormer, ZINC 0.069 → 0.052 | not run | {FULL_SCALE['graph']} |", "",
        "GLUE from all-MiniLM-L6-v2 (`docs/results/glue-minilm-converging/`, mean over the seeds finished; the reports "
        "have the paired differences and verdicts):", "", *glue_rows(), "",
        "## What `batch-all` is in each experiment", "",
        "`batch-all` is the paper's layout (a [CLS] BatchNorm at every norm but the embedding norm, whose [CLS] input "
        "is constant), but what it measures depends on where it is put:", "",
        "- `simcse-minilm`: **inserted into a pretrained LayerNorm model**, all-MiniLM-L6-v2 (trained contrastively "
        "with mean pooling), then 200 SimCSE steps. Inserting BatchNorms into every layer changes the start (step 0) "
        "far more than 200 steps from an already contrastive start recover: a cost of insertion, not the paper's "
        "setting.",
        "- `glue-minilm-converging`: **inserted into the same pretrained all-MiniLM-L6-v2**, then fine-tuned on 2,000 "
        "rows of a GLUE task.",
        "- `image-digits-tiny`: **trained from scratch** with its BatchNorms (MAE pretraining, then fine-tuning), as in "
        "the paper, but on 8x8 digits for 60 steps: it did not learn.",
        f"- `simcse-mlm-start` ({mlm_start_state()}): **inserted into a small BERT pretrained here with ShareNorm masked LM** (never "
        "contrastive), then SimCSE moves it far: the paper's text protocol at a small scale.", "",
    ]
    if shared:
        lines += ["## SimCSE from all-MiniLM-L6-v2: head start and training gain, apart", "",
                  "Spearman x 100 of [CLS] cosines (`simcse-minilm`). Head start: the arm's untrained start (step 0, "
                  "the BatchNorms inserted, statistics from training sentences) minus `shared`'s. Training gain: the "
                  "trained seeds minus the arm's own start (mean, 95 % t-interval over seeds).", "",
                  "| arm | seeds | pairs | start (step 0) | head start vs `shared` | after 200 steps (mean) | "
                  "training gain | gain − `shared`'s gain, paired by seed |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for row in simcse:
            for split, pairs in (("train", "5,749 STS-B train pairs (primary)"), ("dev", "1,500 STS-B dev pairs")):
                values = row[split]
                lines.append(f"| `{row['arm']}` | {row['seeds']} | {pairs} | {values['start']:.2f} | "
                             f"{values['head_start']:+.2f} | {values['end']:.2f} | {interval(values['gain'])} | "
                             f"{interval(values['gains_vs_shared'])} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    (ROOT / "docs" / "paper-claims.md").write_text(render())
    print(f"wrote {ROOT / 'docs' / 'paper-claims.md'}")


if __name__ == "__main__":
    main()
