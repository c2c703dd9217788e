#!/usr/bin/env python
"""Render report.md and the plots from runs/*/*.json (written by run_experiment.py) and baselines.json (written by
baselines.py). No number is typed by hand; a partial experiment renders as partial.

    python docs/results/simcse-minilm/render_report.py
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from run_experiment import ARMS, PRIMARY, RECALIBRATED_ARMS, RECIPE, SEEDS  # noqa: E402

from experiment_runner import render_experiment  # noqa: E402

from hf_sepnorm.compare.report import after_holm, wilcoxon_cell  # noqa: E402
from hf_sepnorm.compare.statistics import holm_adjusted, holm_verdict, paired_comparison  # noqa: E402

BASELINE = "shared"
LABELS = {"shared": "`shared` (ShareNorm: the stock model)", "batch-final": "`batch-final`", "batch-all": "`batch-all`"}
SPLITS = {"stsb_train": "STS-B train pairs (5,749, held out: primary)", "stsb_dev": "STS-B dev pairs (1,500)"}
POOLINGS = {"": "[CLS]", "_standardized_cls": "[CLS] standardized (control)", "_mean_pooling": "mean of tokens"}
PAIRED_POOLINGS = {"": "[CLS]", "_standardized_cls": "[CLS] standardized in both arms", "_mean_pooling": "mean of tokens"}
# Runs whose processes were stopped (SIGSTOP) while the test suite ran, and for how many minutes: their wall times
# (`seconds`, `train_runtime`, one logged step time) include the pause; nothing else about them changed.
PAUSED_MINUTES = {("shared", 2): 24.4, ("batch-final", 1): 24.4}
CHANCE_LOSS = math.log(RECIPE["per_device_train_batch_size"])  # InfoNCE of a model that cannot tell the views apart


def key_of(split: str, pooling: str = "") -> str:
    return f"eval_{split}_spearman{pooling}"


def load_runs(runs_dir: Path) -> tuple[dict, dict]:
    untrained, trained = {}, {}
    for path in sorted(runs_dir.glob("*/*.json")):
        record = json.loads(path.read_text())
        if record["trained"]:
            trained.setdefault(record["arm"], {})[record["seed"]] = record
        else:
            untrained[record["arm"]] = record
    return untrained, trained


def mean_sd(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.2f} (n=1)"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def losses(record: dict) -> list[float]:
    return [entry["loss"] for entry in record["log_history"] if "loss" in entry]


def paired_seeds(trained: dict, arm: str) -> list[int]:
    return sorted(set(trained.get(arm, {})) & set(trained.get(BASELINE, {})))


# Records of runs whose standardized [CLS] divided by std + 1e-12 have no such field: a dead feature's rounding noise
# became a full-size coordinate of the embedding (issue 33), so their standardized rows carry no verdict.
STANDARDIZATION = "standardization_epsilon"
WITHDRAWN = "withdrawn (standardized with std + 1e-12 in these runs, not re-run with BatchNorm's epsilon)"


def uses_standardization(key: str) -> bool:
    return "_standardized_cls" in key or key.startswith("control_")


def control_runs() -> dict[int, dict]:
    """`shared` re-run for the control rows with BatchNorm's epsilon (rerun_control.py): seed -> record."""
    return {record["seed"]: record for path in sorted((HERE / "runs-control" / BASELINE).glob("seed*.json"))
            if STANDARDIZATION in (record := json.loads(path.read_text()))}  # fmt: skip


def control_reproduction(trained: dict) -> str | None:
    """How far the control re-runs' plain [CLS] Spearmans are from the original `shared` runs of the same seeds."""
    control = control_runs()
    seeds = sorted(set(control) & set(trained.get(BASELINE, {})))
    if not seeds:
        return None
    gap = max(abs(control[s]["metrics"][key] - trained[BASELINE][s]["metrics"][key])
              for s in seeds for key in (key_of("stsb_train"), key_of("stsb_dev")))  # fmt: skip
    return (f"The control rows use `shared` re-run with BatchNorm's epsilon (`rerun_control.py`, seeds "
            f"{', '.join(map(str, seeds))}): its plain [CLS] Spearmans differ from the original `shared` runs of the "
            f"same seeds by at most {gap:.2g} points.")


def comparison_rows(trained: dict) -> list[dict]:
    """Per arm against `shared`, over the seeds both finished: the primary row, then the secondary rows (Holm over an
    arm's)."""
    rows, control = [], control_runs()
    for arm in ARMS:
        seeds = paired_seeds(trained, arm)
        if arm == BASELINE or len(seeds) < 2:
            continue

        def values(arm_name: str, key: str, field: str = "metrics") -> list[float]:
            return [trained[arm_name][seed][field][key] for seed in seeds]

        arm_rows = [{"arm": arm, "label": "[CLS], STS-B train (primary)", "key": PRIMARY,
                     "result": paired_comparison(values(BASELINE, PRIMARY), values(arm, PRIMARY))}]  # fmt: skip
        for split in SPLITS:
            for pooling, pooling_label in PAIRED_POOLINGS.items():
                key = key_of(split, pooling)
                if key != PRIMARY:
                    arm_rows.append({"arm": arm, "label": f"{pooling_label}, {split}", "key": key,
                                     "result": paired_comparison(values(BASELINE, key), values(arm, key))})  # fmt: skip
            # the control for what a BatchNorm does by construction: the arm's [CLS] against shared's standardized one,
            # from shared's re-runs with BatchNorm's epsilon when every seed has one
            rerun = all(seed in control for seed in seeds)
            standardized = ([control[seed]["metrics"][key_of(split, "_standardized_cls")] for seed in seeds] if rerun
                            else values(BASELINE, key_of(split, "_standardized_cls")))  # fmt: skip
            arm_rows.append({"arm": arm, "label": f"[CLS] vs `shared`'s standardized [CLS], {split}",
                             "key": f"control_{split}", "rerun": rerun,
                             "result": paired_comparison(standardized, values(arm, key_of(split)))})  # fmt: skip
            if arm in RECALIBRATED_ARMS:
                arm_rows.append({"arm": arm, "label": f"[CLS] re-estimated statistics, {split}",
                                 "key": f"reestimated_{split}",
                                 "result": paired_comparison(values(BASELINE, key_of(split)),
                                                             values(arm, key_of(split), "reestimated_metrics"))})  # fmt: skip
        secondary = arm_rows[1:]
        for row, adjusted in zip(secondary, holm_adjusted([row["result"].t_p for row in secondary])):
            row["holm_p"] = adjusted
            row["verdict"] = holm_verdict({**row["result"].__dict__, "holm_p": adjusted}, True)
            if uses_standardization(row["key"]) and not row.get("rerun") and not all(
                    STANDARDIZATION in trained[name][seed] for name in (BASELINE, arm) for seed in seeds):  # fmt: skip
                row["verdict"] = WITHDRAWN  # kept in the Holm family: the other rows' adjustment stays conservative
        arm_rows[0]["verdict"] = arm_rows[0]["result"].verdict
        rows += arm_rows
    return rows


def movement_rows(untrained: dict, trained: dict) -> list[tuple[str, str, float, object]]:
    """Did training move the primary? Trained seeds against the arm's untrained start (one evaluation)."""
    rows = []
    for arm in ARMS:
        seeds = sorted(trained.get(arm, {}))
        if arm not in untrained or len(seeds) < 2:
            continue
        for split in SPLITS:
            start = untrained[arm]["metrics"][key_of(split)]
            values = [trained[arm][seed]["metrics"][key_of(split)] for seed in seeds]
            rows.append((arm, split, start, paired_comparison([start] * len(values), values)))
    return rows


def render(runs_dir: Path) -> str:
    untrained, trained = load_runs(runs_dir)
    baselines_file = HERE / "baselines.json"
    baselines = json.loads(baselines_file.read_text()) if baselines_file.exists() else {}
    seeds_by_arm = {arm: sorted(trained.get(arm, {})) for arm in ARMS}
    paired = sorted(set.intersection(*(set(seeds) for seeds in seeds_by_arm.values())))  # in every arm
    finished = sum(len(seeds) for seeds in seeds_by_arm.values())
    expected = len(ARMS) * len(SEEDS)
    example = next((runs[seed] for runs in trained.values() for seed in runs), None)
    lines = ["# Unsupervised SimCSE from all-MiniLM-L6-v2, 200 steps: ShareNorm vs SepNorm, STS-B", ""]
    if finished < expected:
        per_arm = ", ".join(f"`{arm}` {len(seeds)}" for arm, seeds in seeds_by_arm.items())
        lines += [f"**PARTIAL RESULTS: {finished} of {expected} trained runs finished** (seeds per arm: {per_arm}; "
                  f"paired over all arms: {len(paired)}). The runner continues where it stopped; every number below "
                  "is from the runs finished.", ""]  # fmt: skip
        if all(len(seeds_by_arm[arm]) == len(SEEDS) for arm in ARMS if arm != "batch-all"):
            lines[-2] += (" As planned for a budget that cannot fit all three arms, `shared` and `batch-final` ran "
                          "at every seed first; `batch-all` ran at fewer, so it has a learning curve but no paired "
                          "verdict.")  # fmt: skip
    lines += [
        "Generated by `render_report.py` from `runs/*/*.json` (written by `run_experiment.py`) and `baselines.json`",
        "(written by `baselines.py`); every number below comes from those files.",
        "",
        "## What this measures, and what it cannot",
        "",
        f"Whether, starting from a real pretrained sentence encoder, {RECIPE['max_steps']} steps of unsupervised SimCSE "
        "(32 sentences a step) give a better [CLS] sentence embedding when [CLS] is normalized apart (SepNorm) than "
        "with the stock shared LayerNorm (ShareNorm). It cannot test the paper's setting: `bert-base-uncased` from its "
        "MLM pretraining, 1M Wikipedia sentences, batch 64, on GPUs; that run is `accelerate launch "
        "examples/run_simcse.py --model_name_or_path bert-base-uncased --train_file wiki1m_for_simcse.txt "
        "--sts_dir glue/STS-B --per_device_train_batch_size 64 --num_train_epochs 1 --learning_rate 3e-5 "
        "--cls_norm batch --do_train --do_eval --output_dir simcse-bert` (and `--cls_norm shared` for ShareNorm), "
        "per seed. This "
        "checkpoint was already trained contrastively (1B pairs, mean pooling), so its InfoNCE loss starts near 0.",
        "",
        "## Fixed before running",
        "",
        f"- **Primary row: Spearman x 100 of [CLS] cosines on all 5,749 STS-B train pairs** (`{PRIMARY}`; held out: "
        "unsupervised SimCSE never reads a label, and no model selection is done), `batch-final` and `batch-all` "
        "each against `shared`, paired by seed.",
        "- Secondary (Holm-adjusted over each arm's secondary rows; a secondary verdict follows its Holm p): all 1,500 "
        "dev pairs; mean pooling; [CLS] standardized per feature with the statistics of "
        f"{RECIPE['standardization_samples']:,} training sentences (for `shared` this is the control: what a [CLS] "
        "BatchNorm does by construction, applied to the stock model's [CLS]); each arm's [CLS] against `shared`'s "
        "standardized [CLS]; the same trained weights evaluated after re-estimating the [CLS] statistics on 50 "
        "training batches.",
        f"- Recipe, the same for every arm and seed: `{json.dumps(RECIPE)}`. Training sentences: WikiText-2 "
        "validation and test, heading lines dropped, split at sentence ends, sentences of at least "
        f"{RECIPE['min_words']} words"
        + (f" ({example['metrics']['train_samples']:,} sentences; {RECIPE['max_steps'] * RECIPE['per_device_train_batch_size']:,} "
           "seen, less than one epoch)" if example else "")
        + ". Seed i of every arm sees the same sentences in the same order. Both dropout views of a sentence go "
        "through one forward pass (64 rows), so the [CLS] BatchNorm normalizes both views with the same statistics.",
        "- The [CLS] statistics are the running averages training left (momentum 0.1); a converted checkpoint's "
        "never-updated statistics are estimated on training sentences before its untrained evaluation.",
        "- Arms: `shared` = ShareNorm (exactly the stock model); `batch-final` = a [CLS] BatchNorm in the encoder's "
        "last LayerNorm only; `batch-all` = a [CLS] BatchNorm in every LayerNorm of the encoder layers (the paper's "
        "SepNorm; the embedding LayerNorm stays shared, its [CLS] input being one constant vector).",
        "",
    ]
    if example:
        seconds = [record["seconds"] for runs in trained.values() for record in runs.values()]
        step_seconds = [entry["step_seconds"] for runs in trained.values() for record in runs.values()
                        for entry in record["log_history"] if "step_seconds" in entry]  # fmt: skip
        lines += [f"Budget: {len(seconds)} trained runs, {sum(seconds) / 60:.0f} min in all "
                  f"({min(seconds) / 60:.0f}–{max(seconds) / 60:.0f} min each, evaluations included; optimizer steps "
                  f"{statistics.median(step_seconds):.2f} s median), {example['threads']} torch thread per process, "
                  "two processes side by side on 2 CPU cores; "
                  + ", ".join(f"{name} {version}" for name, version in example["versions"].items()) + "."]  # fmt: skip
        paused = [f"`{arm}` seed {seed} ({minutes:.0f} min)" for (arm, seed), minutes in PAUSED_MINUTES.items()
                  if seed in trained.get(arm, {})]  # fmt: skip
        if paused:
            lines[-1] += (" Paused while the test suite ran, their wall times including the pause: "
                          + ", ".join(paused) + ".")
        lines.append("")

    lines += ["## Did training move? (the convergence check)", ""]
    if example:
        lines += [f"InfoNCE loss: a model that cannot tell a sentence's two views from the other 31 sentences' scores "
                  f"ln 32 = {CHANCE_LOSS:.2f}. First and last logged loss (mean of the seeds' values):", "",
                  "| arm | first logged loss | last logged loss | seeds |", "|---|---|---|---|"]  # fmt: skip
        for arm in ARMS:
            records = [trained[arm][seed] for seed in seeds_by_arm[arm]]
            if records:
                first = statistics.mean(losses(record)[0] for record in records)
                last = statistics.mean(losses(record)[-1] for record in records)
                lines.append(f"| {LABELS[arm]} | {first:.4f} | {last:.4f} | {len(records)} |")
        lines.append("")
    lines += ["The [CLS] Spearman after training against the arm's untrained start (one evaluation; one-sample 95 % "
              "t-interval over seeds):", "", "| arm | split | untrained start | trained mean | change | 95 % CI | moved? |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for arm, split, start, result in movement_rows(untrained, trained):
        moved = "no" if result.verdict == "no detectable difference" else ("up" if result.verdict == "better" else "down")
        lines.append(f"| {LABELS[arm]} | {split} | {start:.2f} | {start + result.mean_difference:.2f} | "
                     f"{result.mean_difference:+.2f} | [{result.ci_low:+.2f}, {result.ci_high:+.2f}] | {moved} |")  # fmt: skip
    lines.append("")

    lines += ["## Baselines (Spearman x 100; higher is better)", "", "| baseline | STS-B train | STS-B dev | what |",
              "|---|---|---|---|"]  # fmt: skip
    described = {"constant": "every pair gets the same score: chance", "tfidf": "TF-IDF cosine of the words (fitted on "
                 "the training sentences): the raw input", "random_init": "the same architecture at random "
                 "initialization, [CLS]"}  # fmt: skip
    for name, what in described.items():
        if name in baselines:
            values = baselines[name]
            lines.append(f"| {name} | {values[key_of('stsb_train')]:.2f} | {values[key_of('stsb_dev')]:.2f} | {what} |")
    for arm in ARMS:
        if arm in untrained:
            values = untrained[arm]["metrics"]
            lines.append(f"| untrained `{arm}` | {values[key_of('stsb_train')]:.2f} | {values[key_of('stsb_dev')]:.2f} | "
                         "the converted start, [CLS] |")  # fmt: skip
    if "shared" in untrained:
        values = untrained["shared"]["metrics"]
        lines.append(f"| untrained `shared`, mean pooling | {values[key_of('stsb_train', '_mean_pooling')]:.2f} | "
                     f"{values[key_of('stsb_dev', '_mean_pooling')]:.2f} | the pooling this checkpoint was trained for |")  # fmt: skip
    lines.append("")

    lines += ["## Per arm (mean ± sd over seeds, Spearman x 100)", ""]
    for split, split_label in SPLITS.items():
        lines += [f"### {split_label}", "", "| arm, pooling | untrained start | trained | seeds |", "|---|---|---|---|"]
        for arm in ARMS:
            for pooling, pooling_label in POOLINGS.items():
                key = key_of(split, pooling)
                start = untrained.get(arm, {}).get("metrics", {}).get(key)
                values = [trained[arm][seed]["metrics"][key] for seed in seeds_by_arm[arm]]
                old = pooling == "_standardized_cls" and not all(
                    STANDARDIZATION in trained[arm][seed] for seed in seeds_by_arm[arm])  # fmt: skip
                lines.append(f"| {LABELS[arm]}, {pooling_label}{' (std + 1e-12)' if old else ''} | "
                             f"{'–' if start is None else f'{start:.2f}'} | {mean_sd(values)} | {len(values)} |")  # fmt: skip
            if arm == BASELINE and (control := control_runs()):
                values = [record["metrics"][key_of(split, "_standardized_cls")] for record in control.values()]
                lines.append(f"| {LABELS[arm]}, [CLS] standardized (control), re-run with BatchNorm's epsilon | – | "
                             f"{mean_sd(values)} | {len(values)} |")  # fmt: skip
            if arm in RECALIBRATED_ARMS:
                values = [trained[arm][seed]["reestimated_metrics"][key_of(split)] for seed in seeds_by_arm[arm]]
                lines.append(f"| {LABELS[arm]}, [CLS] with re-estimated statistics | – | {mean_sd(values)} | {len(values)} |")
        lines.append("")

    rows = comparison_rows(trained)
    lines += ["## Paired differences against `shared` (arm − shared, same seed = same sentences in the same order)", ""]
    if rows:
        lines += ["Over the seeds an arm and `shared` both finished (n in the verdicts). 95 % t-interval of the mean "
                  "difference, paired t p, exact Wilcoxon signed-rank p with ties (its smallest possible value at n "
                  "seeds is 2/2^n: 0.0625 at 5), Holm-adjusted p over each arm's secondary rows, and the smallest "
                  "true difference the run detects with 80 % power (noncentral t).", "",
                  "| arm | n | row | mean difference | 95 % CI | t p | Wilcoxon p | Holm p | detectable | verdict |",
                  "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for row in rows:
            result = row["result"]
            wilcoxon = wilcoxon_cell(result.__dict__)
            holm = "(primary)" if "holm_p" not in row else f"{row['holm_p']:.3g}"
            lines.append(f"| {LABELS[row['arm']]} | {result.n} | {row['label']} | {result.mean_difference:+.2f} | "
                         f"[{result.ci_low:+.2f}, {result.ci_high:+.2f}] | {result.t_p:.3g} | {wilcoxon} | {holm} | "
                         f"{result.detectable_effect:.2f} | {row['verdict']} |")  # fmt: skip
        lines.append("")
    else:
        lines += ["Not enough paired seeds yet (at least 2 in every arm).", ""]

    lines += ["## Verdict (as measured)", ""]
    primary = [row for row in rows if row["key"] == PRIMARY]
    for row in primary:
        result = row["result"]
        control = next(r for r in rows if r["arm"] == row["arm"] and r["key"] == "control_stsb_train")
        lines.append(
            f"- **{LABELS[row['arm']]} vs `shared`, [CLS] on the 5,749 STS-B train pairs: {row['verdict']}** "
            f"({result.mean_difference:+.2f} points, 95 % CI [{result.ci_low:+.2f}, {result.ci_high:+.2f}], "
            f"paired t p {result.t_p:.3g}, n = {result.n} seeds; resolution at 80 % power ±{result.detectable_effect:.2f}). "
            f"Against `shared`'s standardized [CLS] (the control for per-feature standardization): "
            f"{control['verdict']} ({control['result'].mean_difference:+.2f}, "
            f"[{control['result'].ci_low:+.2f}, {control['result'].ci_high:+.2f}], Holm p {control['holm_p']:.3g})."
        )
    if not primary:
        lines.append("- No verdict yet: fewer than 2 paired seeds.")
    if note := control_reproduction(trained):
        lines.append(f"- {note}")
    lines.append("")

    if example:
        lines += ["## Learning curves", "", "![learning curves](learning_curves.png)", "",
                  "*Figure 1. Spearman x 100 of [CLS] cosines against training steps, (a) on the 5,749 STS-B train "
                  "pairs (primary) and (b) on the 1,500 dev pairs; step 0 is the arm's untrained start (one "
                  "evaluation). Lines: mean over the seeds finished (the legend says how many); bands: min–max over "
                  "seeds; dashed: `shared`'s [CLS] standardized per feature (the control). With `batch-all` trained, "
                  "(c) and (d) repeat (a) and (b) without it, whose scale would flatten the others. Higher is better.*", "",
                  "![paired differences](paired_differences.png)", "",
                  "*Figure 2. Per-seed paired differences against `shared` after 200 steps (same seed: same "
                  "sentences and order), Spearman x 100: each arm's [CLS] minus `shared`'s [CLS], and minus `shared`'s "
                  "standardized [CLS] (the control), on the train and dev pairs. Above 0: the arm is better. "
                  "One panel per arm, each on its own scale.*", ""]  # fmt: skip

    lines += ["## Per-seed values", "", "| arm | seed | train [CLS] | train std. [CLS] | train mean | dev [CLS] | "
              "dev std. [CLS] | dev mean | train [CLS] re-estimated | first → last loss | learning rate | s/step | min |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for arm in ARMS:
        for seed in seeds_by_arm[arm]:
            record = trained[arm][seed]
            values = [record["metrics"][key_of(split, pooling)] for split in SPLITS for pooling in POOLINGS]
            reestimated = record.get("reestimated_metrics", {}).get(PRIMARY)
            history = [entry for entry in record["log_history"] if "loss" in entry]
            rates = sorted({entry["learning_rate"] for entry in history})
            step_seconds = [entry["step_seconds"] for entry in history if "step_seconds" in entry]
            lines.append(
                f"| {LABELS[arm]} | {seed} | " + " | ".join(f"{value:.2f}" for value in values)
                + f" | {'–' if reestimated is None else f'{reestimated:.2f}'} | {history[0]['loss']:.4f} → "
                f"{history[-1]['loss']:.4f} | {', '.join(f'{rate:g}' for rate in rates)} | "
                f"{statistics.median(step_seconds):.2f} | {record['seconds'] / 60:.1f} |"
            )
    lines += ["", "Each run's full log (losses, learning rates, step times, every evaluation) is in its "
              "`runs/<arm>/seed<i>.json` (`log_history`).", ""]  # fmt: skip
    return "\n".join(lines)


README_BEGIN = "<!-- simcse-minilm: begin (written by docs/results/simcse-minilm/render_report.py) -->"
README_END = "<!-- simcse-minilm: end -->"


def headline(runs_dir: Path) -> list[str]:
    """The measured answer as the project README states it: what ran, at what budget, the primary verdicts."""
    untrained, trained = load_runs(runs_dir)
    rows = comparison_rows(trained)
    seeds = {arm: len(trained.get(arm, {})) for arm in ARMS}
    lines = [f"- **SimCSE from a pretrained sentence encoder** (the paper's text protocol at a CPU budget: "
             f"all-MiniLM-L6-v2, {RECIPE['max_steps']} steps of {RECIPE['per_device_train_batch_size']} WikiText-2 "
             f"sentences at a constant lr {RECIPE['learning_rate']:g}; seeds finished: "
             + ", ".join(f"`{arm}` {count}" for arm, count in seeds.items())
             + "; primary, fixed before running: Spearman x 100 of [CLS] cosines on all 5,749 held-out STS-B train "
             "pairs; higher is better)."]  # fmt: skip
    if BASELINE in trained and BASELINE in untrained:
        values = [record["metrics"][PRIMARY] for record in trained[BASELINE].values()]
        lines[0] += f" ShareNorm went from {untrained[BASELINE]['metrics'][PRIMARY]:.2f} untrained to {mean_sd(values)}"
        moved = [(arm, result) for arm, split, _, result in movement_rows(untrained, trained) if split == "stsb_train"]
        if moved:
            lines[0] += " (change from the untrained start, 95 % CI: " + "; ".join(
                f"`{arm}` {result.mean_difference:+.2f} [{result.ci_low:+.2f}, {result.ci_high:+.2f}]"
                for arm, result in moved) + ")"
        lines[0] += "."
    for row in rows:
        if row["key"] != PRIMARY:
            continue
        result, arm = row["result"], row["arm"]
        control = next(r for r in rows if r["arm"] == arm and r["key"] == "control_stsb_train")
        dev = next(r for r in rows if r["arm"] == arm and r["key"] == key_of("stsb_dev"))
        start = untrained.get(arm, {}).get("metrics", {}).get(PRIMARY)
        values = [record["metrics"][PRIMARY] for record in trained[arm].values()]
        lines.append(
            f"  `{arm}`{f' (untrained start {start:.2f})' if start is not None else ''} reached {mean_sd(values)}: "
            f"paired difference against ShareNorm {result.mean_difference:+.2f}, 95 % CI [{result.ci_low:+.2f}, "
            f"{result.ci_high:+.2f}], n = {result.n}: **{row['verdict']}** (this run resolves about "
            f"±{result.detectable_effect:.2f} with 80 % power); against ShareNorm's [CLS] standardized per feature "
            f"(the control for what a BatchNorm does by construction) {control['result'].mean_difference:+.2f} "
            f"[{control['result'].ci_low:+.2f}, {control['result'].ci_high:+.2f}], {after_holm(control['verdict'])}; "
            f"on the 1,500 dev pairs {dev['result'].mean_difference:+.2f} [{dev['result'].ci_low:+.2f}, "
            f"{dev['result'].ci_high:+.2f}], {after_holm(dev['verdict'])}."
        )
    if not rows:
        lines.append("  No paired verdict yet (fewer than 2 paired seeds).")
    baselines_file = runs_dir.parent / "baselines.json"
    random_init = json.loads(baselines_file.read_text())["random_init"][PRIMARY] if baselines_file.exists() else None
    for arm in ARMS:
        if arm in untrained and len(trained.get(arm, {})) < 2:
            values = [record["metrics"][PRIMARY] for record in trained.get(arm, {}).values()]
            lines.append(f"  `{arm}`: fewer than 2 trained seeds so far, no verdict; its converted, untrained start "
                         f"scores {untrained[arm]['metrics'][PRIMARY]:.2f}"
                         + (f" (the same network at random initialization: {random_init:.2f})" if random_init else "")
                         + (f", and {values[0]:.2f} after {RECIPE['max_steps']} steps (1 seed)." if values else "."))
    lines.append("  This cannot test the paper's setting (raw `bert-base-uncased`, 1M sentences, GPUs): this checkpoint "
                 "was already trained contrastively with mean pooling. "
                 "[simcse-minilm/](simcse-minilm/report.md) has the learning curves, "
                 "baselines, every secondary row and the per-seed values.")  # fmt: skip
    return lines


def plot(runs_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    untrained, trained = load_runs(runs_dir)
    control = control_runs()
    # shared's standardized [CLS] (the control) from its re-runs with BatchNorm's epsilon once they cover its seeds
    standardized = control if BASELINE in trained and set(trained[BASELINE]) <= set(control) else trained.get(BASELINE, {})
    zoomed = "batch-all" in trained  # its scale would flatten the others: a second row without it
    figure, grid = plt.subplots(2 if zoomed else 1, 2, figsize=(12, 8.4 if zoomed else 4.2), squeeze=False)
    panels = [(axis, split, True) for axis, split in zip(grid[0], ("stsb_train", "stsb_dev"))]
    if zoomed:
        panels += [(axis, split, False) for axis, split in zip(grid[1], ("stsb_train", "stsb_dev"))]
    for number, (axis, split, every_arm) in enumerate(panels):
        series = [(arm, "", colour, "-") for colour, arm in zip(("C0", "C1", "C2"), ARMS)
                  if every_arm or arm != "batch-all"]  # fmt: skip
        series.append((BASELINE, "_standardized_cls", "C0", "--"))  # the control
        for arm, pooling, colour, style in series:
            if arm not in trained:
                continue
            curves = {}
            for record in (standardized if pooling else trained[arm]).values():
                points = {entry["step"]: entry[key_of(split, pooling)] for entry in record["curve"]}
                if arm in untrained:
                    points[0] = untrained[arm]["metrics"][key_of(split, pooling)]
                for step, value in points.items():
                    curves.setdefault(step, []).append(value)
            steps = sorted(curves)
            means = [statistics.mean(curves[step]) for step in steps]
            label = f"{arm}{' standardized (control)' if pooling else ''} ({len(trained[arm])} seeds)"
            axis.plot(steps, means, marker="o", linestyle=style, color=colour, label=label)
            axis.fill_between(steps, [min(curves[s]) for s in steps], [max(curves[s]) for s in steps],
                              color=colour, alpha=0.15)  # fmt: skip
        axis.set_xlabel("training step")
        axis.set_ylabel("Spearman x 100, [CLS] cosine")
        axis.set_title(f"({'abcd'[number]}) {SPLITS[split]}{'' if every_arm else ', without batch-all'}")
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(HERE / "learning_curves.png", dpi=110)
    plt.close(figure)

    series = {  # label -> (the arm's metric, shared's metric, colour)
        "train [CLS] − shared [CLS]": (PRIMARY, PRIMARY, "C0"),
        "train [CLS] − shared standardized [CLS]": (PRIMARY, key_of("stsb_train", "_standardized_cls"), "C1"),
        "dev [CLS] − shared [CLS]": (key_of("stsb_dev"), key_of("stsb_dev"), "C2"),
        "dev [CLS] − shared standardized [CLS]": (key_of("stsb_dev"), key_of("stsb_dev", "_standardized_cls"), "C3"),
    }
    arms = [arm for arm in ARMS if arm != BASELINE and arm in trained and BASELINE in trained]
    if not arms:
        return
    figure, axes = plt.subplots(1, len(arms), figsize=(6 * len(arms), 4.2), squeeze=False)
    for axis, arm in zip(axes[0], arms):
        seeds = sorted(set(trained[arm]) & set(trained[BASELINE]))
        for j, (label, (own, base, colour)) in enumerate(series.items()):
            shared = standardized if "_standardized_cls" in base else trained[BASELINE]
            differences = [trained[arm][s]["metrics"][own] - shared[s]["metrics"][base] for s in seeds]
            axis.scatter([j] * len(differences), differences, color=colour, s=22, label=label)
        axis.axhline(0, color="gray", linewidth=0.8)
        axis.set_xticks(range(len(series)), ["train", "train\nvs std.", "dev", "dev\nvs std."])
        axis.set_ylabel("paired difference, Spearman x 100")
        axis.set_title(f"{arm} − shared, same seed ({len(seeds)} seeds)")
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(HERE / "paired_differences.png", dpi=110)
    plt.close(figure)


def main() -> None:
    render_experiment(HERE, render, plot, headline, (README_BEGIN, README_END))


if __name__ == "__main__":
    main()
