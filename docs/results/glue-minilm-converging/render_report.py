#!/usr/bin/env python
"""Render report.md and the plots from runs/<task>/<arm>/seed<i>.json (written by run_experiment.py) and
baselines.json. No number is typed by hand; a partial experiment renders as partial.

    python docs/results/glue-minilm-converging/render_report.py
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from run_experiment import ARMS, RANDOM_INIT, RECIPE, SEEDS, TASKS  # noqa: E402

from experiment_runner import render_experiment  # noqa: E402

from hf_sepnorm.compare.report import after_holm, wilcoxon_cell  # noqa: E402
from hf_sepnorm.compare.statistics import holm_adjusted, holm_verdict, paired_comparison  # noqa: E402

BASELINE, CONTROL = "shared", "shared-standardized"
SEPNORM_ARMS = [arm for arm in ARMS if arm not in (BASELINE, CONTROL)]
NAMES = {"eval_pearson": "Pearson", "eval_spearmanr": "Spearman", "eval_accuracy": "accuracy"}
LOSS_NAMES = {"stsb": "MSE", "sst2": "log-loss"}
TASK_LABELS = {"stsb": "STS-B (1,500 dev pairs)", "sst2": "SST-2 (872 dev sentences)"}
INCONCLUSIVE = "inconclusive (not converged)"


def metric_name(task: str, key: str) -> str:
    return f"eval {LOSS_NAMES[task]}" if key == "eval_loss" else NAMES[key]


def higher_is_better(key: str) -> bool:
    return key != "eval_loss"


def load_runs(runs_dir: Path) -> dict:
    runs: dict = {}
    for path in sorted(runs_dir.glob("*/*/seed*.json")):
        record = json.loads(path.read_text())
        runs.setdefault(record["task"], {}).setdefault(record["arm"], {})[record["seed"]] = record
    return runs


def load_reference_runs() -> dict:
    """The random-init reference runs (reference_runs/<task>/random-init/seed<i>.json), as `load_runs` reads arms."""
    return load_runs(HERE / "reference_runs")


def beats_constant(losses: list[float], constant: float) -> bool | None:
    """Whether eval losses lie below the constant predictor's (a 95 % interval over seeds); None under 2 seeds."""
    if len(losses) < 2:
        return None
    return paired_comparison([constant] * len(losses), losses, False).verdict == "better"


def random_init_lines(runs: dict, references: dict, baselines: dict) -> list[str]:
    """What pretraining is worth at this budget: the same architecture fine-tuned from random weights, against the
    constant predictor and, paired by seed, against the pretrained `shared`."""
    lines = []
    for task, (_, primary, _) in TASKS.items():
        by_seed = references.get(task, {}).get(RANDOM_INIT, {})
        if not by_seed:
            continue
        seeds = sorted(by_seed)
        scores, losses = (values_of(references, task, RANDOM_INIT, key) for key in (primary, "eval_loss"))
        line = (f"- {task}, `{RANDOM_INIT}` ({len(seeds)} of {len(SEEDS)} seeds: {', '.join(map(str, seeds))}): "
                f"{metric_name(task, primary)} {mean_sd(scores)}, eval {LOSS_NAMES[task]} {mean_sd(losses)} against "
                f"{baselines[task]['constant_eval_loss']:.4f} for the constant predictor")  # fmt: skip
        converged = beats_constant(losses, baselines[task]["constant_eval_loss"])
        line += {True: ": below it with 95 % confidence, converged.", None: ".",
                 False: ": not below it with 95 % confidence, not converged."}[converged]  # fmt: skip
        paired = [seed for seed in seeds if seed in runs.get(task, {}).get(BASELINE, {})]
        if len(paired) >= 2:
            result = paired_comparison(values_of(references, task, RANDOM_INIT, primary, paired),
                                       values_of(runs, task, BASELINE, primary, paired), True)  # fmt: skip
            line += (f" The pretrained `{BASELINE}` minus it, paired by seed (n = {result.n}): "
                     f"{result.mean_difference:+.4f} [{result.ci_low:+.4f}, {result.ci_high:+.4f}].")  # fmt: skip
        lines.append(line)
    return lines


def values_of(runs: dict, task: str, arm: str, key: str, seeds=None) -> list[float]:
    by_seed = runs.get(task, {}).get(arm, {})
    return [by_seed[seed]["metrics"][key] for seed in (sorted(by_seed) if seeds is None else seeds)]


def mean_sd(values: list[float], digits: int = 4) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.{digits}f} (n=1)"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def convergence(runs: dict, baselines: dict) -> dict:
    """(task, arm) -> (status, the one-sample comparison of its eval losses with the constant predictor's). Status
    "yes": the 95 % interval of its mean eval loss lies below the constant's loss; "no": it does not, or the one seed
    there is does not beat the constant; "not yet": one seed below the constant (no interval yet)."""
    checks = {}
    for task in TASKS:
        constant = baselines[task]["constant_eval_loss"]
        for arm in ARMS:
            losses = values_of(runs, task, arm, "eval_loss")
            if len(losses) >= 2:
                result = paired_comparison([constant] * len(losses), losses, higher_is_better=False)
                checks[task, arm] = ("yes" if result.verdict == "better" else "no", result)
            elif losses:  # one seed: no interval; it counts as converged only once an interval says so
                checks[task, arm] = ("not yet" if losses[0] < constant else "no", None)
    return checks


def comparison_rows(runs: dict, checks: dict) -> list[dict]:
    """Per task and SepNorm arm, over the seeds the arm and its reference both finished: the primary row against
    `shared`, then the secondary rows (against `shared`, then against the control), Holm-adjusted over the task-arm's
    secondary rows; the control arm's own rows against `shared` last. A reference with fewer than 2 paired seeds has no
    rows yet. A row whose arms did not both converge reads inconclusive; one over fewer paired seeds than planned
    reads preliminary, without a verdict."""
    rows = []
    for task, (_, primary, secondary) in TASKS.items():
        for arm in [*SEPNORM_ARMS, CONTROL]:
            references = [BASELINE] if arm == CONTROL else [BASELINE, CONTROL]
            paired = {reference: sorted(set(runs.get(task, {}).get(arm, {})) & set(runs.get(task, {}).get(reference, {})))
                      for reference in references}  # fmt: skip
            specs = [(reference, key) for reference in references if len(paired[reference]) >= 2
                     for key in (primary, *secondary)]  # fmt: skip
            if not any(reference == BASELINE for reference, _ in specs):
                continue
            group = []
            for reference, key in specs:
                seeds = paired[reference]
                result = paired_comparison(values_of(runs, task, reference, key, seeds),
                                           values_of(runs, task, arm, key, seeds), higher_is_better(key))  # fmt: skip
                converged = all(checks.get((task, name), ("no",))[0] == "yes" for name in (arm, reference))
                group.append({"task": task, "arm": arm, "reference": reference, "key": key, "result": result,
                              "converged": converged,
                              "primary": arm != CONTROL and reference == BASELINE and key == primary})  # fmt: skip
            secondary_rows = [row for row in group if not row["primary"]]
            for row, adjusted in zip(secondary_rows, holm_adjusted([row["result"].t_p for row in secondary_rows])):
                row["holm_p"] = adjusted
                row["verdict"] = holm_verdict({**row["result"].__dict__, "holm_p": adjusted}, higher_is_better(row["key"]))
            for row in group:
                row.setdefault("verdict", row["result"].verdict)
                if not row["converged"]:
                    row["verdict"] = INCONCLUSIVE
                elif row["result"].n < len(SEEDS):  # fewer paired seeds than planned: numbers, not a verdict
                    row["verdict"] = f"preliminary (n = {row['result'].n} of {len(SEEDS)} planned seeds, no verdict)"
            rows += group
    return rows


def render(runs_dir: Path) -> str:
    runs = load_runs(runs_dir)
    baselines = json.loads((HERE / "baselines.json").read_text())
    checks = convergence(runs, baselines)
    finished = sum(len(by_seed) for by_arm in runs.values() for by_seed in by_arm.values())
    expected = len(TASKS) * len(ARMS) * len(SEEDS)
    records = [record for by_arm in runs.values() for by_seed in by_arm.values() for record in by_seed.values()]
    steps = records[0]["metrics"].get("train_steps") if records else None
    lines = ["# GLUE fine-tuning from all-MiniLM-L6-v2 at a converging budget: ShareNorm vs SepNorm, with the "
             "standardization control", ""]  # fmt: skip
    if finished < expected:
        per_cell = "; ".join(f"{task}: " + ", ".join(f"`{arm}` {len(runs.get(task, {}).get(arm, {}))}" for arm in ARMS)
                             for task in TASKS)  # fmt: skip
        lines += [f"**PARTIAL RESULTS: {finished} of {expected} runs finished** (seeds per arm: {per_cell}). "
                  "The runner continues where it stopped; every number below is from the runs finished, and a task "
                  "without runs has no row.", ""]  # fmt: skip
        not_run = [task for task in TASKS if task not in runs]
        if not_run:
            lines[-2] += f" Not run yet: {', '.join(not_run)} (the plan runs the tasks in the order {', '.join(TASKS)})."
        deferred = [task for task in runs
                    if len(runs[task].get("batch-all", {})) < min(len(runs[task].get(arm, {})) for arm in ARMS if arm != "batch-all")]
        if deferred:
            lines[-2] += (f" `batch-all` was deferred after its first seed on {', '.join(deferred)}, so that the three "
                          "other arms reach more paired seeds within the session (the budget line below gives the "
                          "step times); it has no paired verdict there.")  # fmt: skip
    lines += [
        "Generated by `render_report.py` from `runs/<task>/<arm>/seed<i>.json` and `baselines.json` (both written by "
        "`run_experiment.py`); every number below comes from those files.",
        "",
        "## What this measures, and what it cannot",
        "",
        "Whether fine-tuning a real pretrained encoder on a GLUE task scores better when its [CLS] is normalized apart "
        "(SepNorm, inserted into the stock checkpoint) than with the stock shared LayerNorm, at a budget where "
        "fine-tuning beats the constant predictor, and whether what a [CLS] BatchNorm adds is more than the "
        "per-feature standardization it applies by construction (`shared-standardized`). It cannot test SepNorm "
        "as the paper trained it (BatchNorm on [CLS] through MLM pretraining from scratch, then fine-tuning on the "
        "full GLUE training sets on GPUs): here the BatchNorms are inserted into a checkpoint pretrained without "
        "them, and each task sees 2,000 training rows.",
        "",
        "## Fixed before running",
        "",
        "- **Primary rows: STS-B dev Pearson and SST-2 dev accuracy, `batch-final` and `batch-all` each against "
        "`shared`, paired by seed** (same seed: same initialization of the head, same batches). GLUE's test labels "
        "are not public, so the official dev sets are the held-out data: the model is evaluated on them after each "
        "epoch for the learning curves, and the last epoch counts (no selection on dev).",
        "- Secondary rows, Holm-adjusted over each task and arm: STS-B Spearman and eval MSE (Pearson ignores "
        "offset and scale), SST-2 eval log-loss; every SepNorm arm against the control `shared-standardized` on "
        "every metric; the control against `shared`.",
        "- Arms: `shared` = ShareNorm, the stock model; `shared-standardized` = the stock model whose final [CLS] "
        "enters the pooler standardized per feature with statistics of the 2,000 training rows measured once on the "
        "starting checkpoint, then frozen (`run_glue.py --standardize_cls_features`: what a [CLS] BatchNorm does by "
        "construction, without SepNorm); `batch-final` = a [CLS] BatchNorm in the encoder's last LayerNorm; "
        "`batch-all` = a [CLS] BatchNorm in every LayerNorm of the encoder layers (the paper's SepNorm).",
        f"- Recipe, the same for every task, arm and seed: `{json.dumps(RECIPE)}`"
        + (f" ({steps} optimizer steps)" if steps else "") + ". The 2,000 training rows are drawn at random "
        "(seed 0) from the official train.tsv, the same rows for every arm and seed. [CLS] BatchNorm statistics: "
        "as training left them.",
        "- Convergence gate: an arm converged on a task when the 95 % interval of its mean eval loss over seeds lies "
        "below the loss of the best constant predictor fitted on the training rows (the mean score for STS-B, the "
        "class frequencies for SST-2). A comparison row counts only when both its arms converged; otherwise it "
        f"reads *{INCONCLUSIVE}*; a row over fewer than the {len(SEEDS)} planned paired seeds reads *preliminary*, "
        "with its numbers and no verdict.",
        "",
    ]
    if records:
        seconds = [record["seconds"] for record in records]
        step_seconds = [entry["step_seconds"] for record in records for entry in record["log_history"]
                        if "step_seconds" in entry]  # fmt: skip
        lines += [f"Budget: {len(records)} runs, {sum(seconds) / 60:.0f} min in all ({min(seconds) / 60:.1f}–"
                  f"{max(seconds) / 60:.1f} min each, evaluations included; optimizer steps "
                  f"{statistics.median(step_seconds):.2f} s median), {records[0]['threads']} torch thread per "
                  "process, two processes side by side on 2 CPU cores; "
                  + ", ".join(f"{name} {version}" for name, version in records[0]["versions"].items()) + ".", ""]  # fmt: skip

    pilot = runs.get("stsb", {}).get(BASELINE, {}).get(0)
    if pilot:
        constant = baselines["stsb"]["constant_eval_loss"]
        lines += ["## The budget, checked first", "",
                  f"`shared` seed 0 of STS-B ran first, to check that {RECIPE['num_train_epochs']} epochs converge "
                  f"before running the other arms: its dev MSE after each epoch, against {constant:.4f} for the "
                  "constant predictor: " + ", ".join(f"epoch {entry['epoch']:.0f}: {entry['eval_loss']:.4f} "
                  f"(Pearson {entry['eval_pearson']:.4f})" for entry in pilot["curve"]) + ".", ""]  # fmt: skip

    lines += ["## Convergence: eval loss against the constant predictor", "",
              "| task | arm | eval loss (mean ± sd) | constant predictor | difference, 95 % CI | seeds | converged? |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for (task, arm), (status, result) in checks.items():
        losses = values_of(runs, task, arm, "eval_loss")
        constant = baselines[task]["constant_eval_loss"]
        difference = (f"{losses[0] - constant:+.4f} (no interval)" if result is None else
                      f"{result.mean_difference:+.4f} [{result.ci_low:+.4f}, {result.ci_high:+.4f}]")  # fmt: skip
        shown = {"yes": "yes", "no": "**no**", "not yet": "not yet (1 seed)"}[status]
        lines.append(f"| {task} | `{arm}` | {mean_sd(losses)} | {constant:.4f} | {difference} | {len(losses)} | "
                     f"{shown} |")
    lines += ["", "Eval loss: MSE for STS-B, cross-entropy (log-loss) for SST-2; lower is better.", ""]
    lines += [*not_converged_in_words(runs, baselines, checks), ""]

    diagnostics_file = HERE / "diagnostics.json"
    if diagnostics_file.exists():  # diagnose_mse.py: one extra run, outside the plan
        d = json.loads(diagnostics_file.read_text())
        trained, again = d["trained_metrics"], d["reestimated_metrics"]
        lines += [f"Diagnostic, outside the plan (`diagnose_mse.py`: `{d['arm']}` seed {d['seed']} of {d['task']} "
                  f"trained again with the same recipe, {d['seconds'] / 60:.0f} min): its dev predictions have mean "
                  f"{d['predictions']['mean']:.3f} and standard deviation {d['predictions']['sd']:.3f}, against "
                  f"{d['gold']['mean']:.3f} and {d['gold']['sd']:.3f} for the gold scores (MSE {d['mse_recomputed']:.4f}; "
                  f"the run's own: {trained['eval_loss']:.4f}, Pearson {trained['eval_pearson']:.4f}). The same weights "
                  "evaluated after re-estimating the [CLS] BatchNorm statistics on 50 training batches: MSE "
                  f"{again['eval_loss']:.4f}, Pearson {again['eval_pearson']:.4f}, Spearman {again['eval_spearmanr']:.4f}.",
                  ""]  # fmt: skip
        offset = d["gold"]["mean"] - d["predictions"]["mean"]
        if abs(d["predictions"]["sd"] / d["gold"]["sd"] - 1) < 0.2 and abs(offset) > d["gold"]["sd"] / 2:
            lines[-2] += (f" So its predictions have about the gold scores' spread but sit {offset:+.2f} away from "
                          "them: the regression head did not learn the scores' offset in these steps (the squared "
                          f"offset, {offset ** 2:.2f}, is most of the MSE), and re-estimated statistics do not move "
                          "it.")  # fmt: skip

    lines += ["## Baselines", "", "| task | baseline | primary | eval loss | what |", "|---|---|---|---|---|"]
    for task in TASKS:
        values = baselines[task]
        lines.append(f"| {task} | constant | {values['constant_primary']:.4f} | {values['constant_eval_loss']:.4f} | "
                     + ("every pair gets the mean training score: no correlation (0), its MSE the variance of the "
                        "dev scores around that mean" if task == "stsb" else
                        "the majority training class; log-loss of the training class frequencies") + " |")  # fmt: skip
    references = random_init_lines(runs, load_reference_runs(), baselines)
    lines += ["", "The same architecture and tokenizer fine-tuned from random weights with the same recipe (a reference "
              "run per task and seed, `run_experiment.py`'s `random-init`, run after the arms; ShareNorm; each seed "
              "draws its own weights):" if references else
              "Not run yet: the same architecture fine-tuned from random initialization (`random-init`).", ""]  # fmt: skip
    lines += [*references, ""] if references else []

    lines += ["## Per arm (mean ± sd over seeds, full dev sets)", ""]
    for task, (_, primary, secondary) in TASKS.items():
        if task not in runs:
            continue
        keys = [primary, *secondary]
        lines += [f"### {TASK_LABELS[task]}", "", "| arm | " + " | ".join(metric_name(task, key) for key in keys)
                  + " | seeds |", "|---" * (len(keys) + 2) + "|"]  # fmt: skip
        for arm in ARMS:
            by_seed = runs[task].get(arm, {})
            if by_seed:
                lines.append(f"| `{arm}` | " + " | ".join(mean_sd(values_of(runs, task, arm, key)) for key in keys)
                             + f" | {len(by_seed)} |")  # fmt: skip
        lines.append("")

    rows = comparison_rows(runs, checks)
    lines += ["## Paired differences (arm − reference, same seed)", ""]
    if rows:
        lines += ["95 % t-interval of the mean difference, paired t p, exact Wilcoxon signed-rank p with ties (its "
                  "smallest possible value at n seeds is 2/2^n: 0.0625 at 5), Holm-adjusted p over each task and "
                  "arm's secondary rows, and the smallest true difference the run detects with 80 % power "
                  "(noncentral t). For eval loss a negative difference is better.", "",
                  "| task | arm − reference | n | row | mean difference | 95 % CI | t p | Wilcoxon p | Holm p | "
                  "detectable | verdict |", "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for row in rows:
            result = row["result"]
            holm = "(primary)" if row["primary"] else f"{row['holm_p']:.3g}"
            lines.append(f"| {row['task']} | `{row['arm']}` − `{row['reference']}` | {result.n} | "
                         f"{metric_name(row['task'], row['key'])} | {result.mean_difference:+.4f} | "
                         f"[{result.ci_low:+.4f}, {result.ci_high:+.4f}] | {result.t_p:.3g} | "
                         f"{wilcoxon_cell(result.__dict__)} | {holm} | {result.detectable_effect:.4f} | "
                         f"{row['verdict']} |")  # fmt: skip
        lines.append("")
    else:
        lines += ["Not enough paired seeds yet (at least 2).", ""]

    lines += ["## Verdict (as measured)", "", *verdict_lines(rows), ""]

    if records:
        lines += ["## Learning curves", "", "![learning curves](learning_curves.png)", "",
                  "*Figure 1. Each task's primary metric (left) and eval loss (right) on the full dev set after each "
                  "epoch, per arm: mean over the seeds finished (the legend says how many), band min–max over seeds. "
                  "The dashed grey line is the constant predictor's loss: an arm above it has not converged. Higher "
                  "is better on the left, lower on the right. Where two arms overlap, the one drawn later hides the "
                  "other: every arm is in the legend, and the tables above have the numbers.*", "",
                  "![paired differences](paired_differences.png)", "",
                  "*Figure 2. Per-seed paired differences of the primary metric after the last epoch: each SepNorm "
                  "arm minus `shared`, and minus the control `shared-standardized`; the control minus `shared`. "
                  "Above 0: the first arm is better. One panel per task, each on its own scale.*", ""]  # fmt: skip

    lines += ["## Per-seed values", "", "| task | arm | seed | primary | secondary | first → last logged train loss | "
              "learning rate (min–max) | s/step (median) | min |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for task, (_, primary, secondary) in TASKS.items():
        for arm in ARMS:
            for seed, record in sorted(runs.get(task, {}).get(arm, {}).items()):
                history = [entry for entry in record["log_history"] if "loss" in entry]
                rates = [entry["learning_rate"] for entry in history]
                step_seconds = [entry["step_seconds"] for entry in history if "step_seconds" in entry]
                lines.append(
                    f"| {task} | `{arm}` | {seed} | {NAMES[primary]} {record['metrics'][primary]:.4f} | "
                    + ", ".join(f"{metric_name(task, key)} {record['metrics'][key]:.4f}" for key in secondary)
                    + f" | {history[0]['loss']:.4f} → {history[-1]['loss']:.4f} | {min(rates):.2g}–{max(rates):.2g} | "
                    f"{statistics.median(step_seconds):.2f} | {record['seconds'] / 60:.1f} |"
                )
    lines += ["", "Each run's full log (losses, learning rates, step times, every evaluation) is its "
              "`runs/<task>/<arm>/seed<i>.json` (`log_history`).", ""]  # fmt: skip
    return "\n".join(lines)


def last_train_loss(record: dict) -> float:
    return [entry["loss"] for entry in record["log_history"] if "loss" in entry][-1]


def not_converged_in_words(runs: dict, baselines: dict, checks: dict) -> list[str]:
    """Why an arm did not pass the convergence gate, as far as the records tell."""
    lines = []
    for (task, arm), (status, _) in checks.items():
        if status != "no":
            continue
        loss = statistics.mean(values_of(runs, task, arm, "eval_loss"))
        primary = TASKS[task][1]
        own, stock = (statistics.mean(values_of(runs, task, name, primary)) for name in (arm, BASELINE))
        seeds = len(runs[task][arm])
        line = (f"- `{arm}` on {task} did not converge ({seeds} seed{'s' if seeds > 1 else ''}, mean): eval "
                f"{LOSS_NAMES[task]} {loss:.4f} against "
                f"{baselines[task]['constant_eval_loss']:.4f} for the constant predictor, with a dev "
                f"{NAMES[primary]} of {own:.4f} (`shared`: {stock:.4f}).")  # fmt: skip
        if task == "stsb" and own > 0.5:
            line += (" Its predictions follow the order of the gold scores but not their offset and scale, which "
                     "Pearson ignores and MSE does not.")  # fmt: skip
        train_loss = statistics.mean(last_train_loss(record) for record in runs[task][arm].values())
        if train_loss >= 0.5 * loss:
            line += (f" Its last logged training loss is {train_loss:.4f}, as high: it did not fit the targets in "
                     "training either (batch statistics, dropout), so this is not a gap between training and "
                     "evaluation on running statistics.")  # fmt: skip
        else:
            line += (f" Its last logged training loss is {train_loss:.4f}, far lower: the gap is between training "
                     "and evaluation (for a [CLS] BatchNorm, batch statistics against running statistics).")  # fmt: skip
        lines.append(line)
    return lines


def verdict_lines(rows: list[dict]) -> list[str]:
    lines = []
    for row in (row for row in rows if row["primary"]):
        result, task, arm = row["result"], row["task"], row["arm"]
        control = next((r for r in rows if (r["task"], r["arm"], r["reference"], r["key"])
                        == (task, arm, CONTROL, row["key"])), None)  # fmt: skip
        loss = next(r for r in rows if (r["task"], r["arm"], r["reference"], r["key"]) == (task, arm, BASELINE, "eval_loss"))
        against_control = ("The control `shared-standardized` has no paired seeds yet" if control is None else
                           f"Against the control `shared-standardized`: {control['result'].mean_difference:+.4f} "
                           f"[{control['result'].ci_low:+.4f}, {control['result'].ci_high:+.4f}], "
                           f"{after_holm(control['verdict'])}")  # fmt: skip
        lines.append(
            f"- **`{arm}` vs `shared`, {task} dev {NAMES[row['key']]}: {row['verdict']}** ({result.mean_difference:+.4f}, "
            f"95 % CI [{result.ci_low:+.4f}, {result.ci_high:+.4f}], paired t p {result.t_p:.3g}, n = {result.n}; "
            f"resolution at 80 % power ±{result.detectable_effect:.4f}). Eval {LOSS_NAMES[task]}: "
            f"{loss['result'].mean_difference:+.4f} [{loss['result'].ci_low:+.4f}, {loss['result'].ci_high:+.4f}], "
            f"{after_holm(loss['verdict'])}. {against_control}."
        )
    for row in (row for row in rows if row["arm"] == CONTROL and row["key"] == TASKS[row["task"]][1]):
        result = row["result"]
        lines.append(f"- The control `shared-standardized` vs `shared`, {row['task']} dev {NAMES[row['key']]}: "
                     f"{result.mean_difference:+.4f} [{result.ci_low:+.4f}, {result.ci_high:+.4f}], {after_holm(row['verdict'])}: "
                     "what per-feature standardization of [CLS] alone does to fine-tuning.")  # fmt: skip
    return lines or ["- No verdict yet: fewer than 2 paired seeds."]


README_BEGIN = "<!-- glue-minilm-converging: begin (written by docs/results/glue-minilm-converging/render_report.py) -->"
README_END = "<!-- glue-minilm-converging: end -->"


def headline(runs_dir: Path) -> list[str]:
    """The measured answer as the project README states it."""
    runs = load_runs(runs_dir)
    baselines = json.loads((HERE / "baselines.json").read_text())
    checks = convergence(runs, baselines)
    rows = comparison_rows(runs, checks)
    ran = "; ".join(f"{task}: " + ", ".join(f"`{arm}` {len(runs[task].get(arm, {}))}" for arm in ARMS) for task in runs)
    lines = [f"- **GLUE fine-tuning from all-MiniLM-L6-v2 at a converging budget** ({RECIPE['num_train_epochs']} "
             f"epochs of the same 2,000 random training rows, lr {RECIPE['learning_rate']:g}; seeds finished: {ran}; "
             "primary, fixed before running: STS-B dev Pearson and SST-2 dev accuracy against ShareNorm; with the "
             "control `shared-standardized`, ShareNorm whose [CLS] enters the head standardized per feature)."]  # fmt: skip
    not_converged = [f"`{arm}` on {task}" + (" (1 seed)" if result is None else "")
                     for (task, arm), (status, result) in checks.items() if status == "no"]  # fmt: skip
    lines.append("  Every arm beat the constant predictor's eval loss." if checks and not not_converged else
                 "  Not converged (eval loss not below the constant predictor's): " + ", ".join(not_converged) + "."
                 if not_converged else "  No convergence check yet (fewer than 2 seeds).")  # fmt: skip
    lines += ["  " + line[2:] for line in verdict_lines(rows)]
    diagnostics_file = HERE / "diagnostics.json"
    if diagnostics_file.exists():
        d = json.loads(diagnostics_file.read_text())
        lines.append(f"  Why (one diagnostic run, `{d['arm']}` seed {d['seed']}): its STS-B predictions have the gold "
                     f"scores' spread (sd {d['predictions']['sd']:.2f} against {d['gold']['sd']:.2f}) but are centred "
                     f"at {d['predictions']['mean']:.2f} instead of {d['gold']['mean']:.2f}; re-estimated [CLS] "
                     f"statistics leave the MSE at {d['reestimated_metrics']['eval_loss']:.2f}: the head did not learn "
                     "the scores' offset within this budget.")  # fmt: skip
    references = load_reference_runs()
    parts = []
    for task, (_, primary, _) in TASKS.items():
        scores = values_of(references, task, RANDOM_INIT, primary) if RANDOM_INIT in references.get(task, {}) else []
        if scores:
            losses = values_of(references, task, RANDOM_INIT, "eval_loss")
            converged = beats_constant(losses, baselines[task]["constant_eval_loss"])
            parts.append(f"{task} {metric_name(task, primary)} {statistics.mean(scores):.3f}, eval {LOSS_NAMES[task]} "
                         f"{statistics.mean(losses):.3f} against {baselines[task]['constant_eval_loss']:.3f} for the "
                         f"constant predictor ({len(scores)} seeds"
                         + {True: ", converged)", False: ", not converged)", None: ")"}[converged])  # fmt: skip
    if parts:
        lines.append("  Baseline: the same architecture fine-tuned from random weights with the same recipe: "
                     + "; ".join(parts) + ".")  # fmt: skip
    lines.append("  It cannot test SepNorm as the paper trained it (BatchNorm through pretraining, full GLUE, GPUs). "
                 "[glue-minilm-converging/](glue-minilm-converging/report.md) has the "
                 "learning curves, every secondary row and the per-seed values.")  # fmt: skip
    return lines


def plot(runs_dir: Path) -> None:
    plot_runs(load_runs(runs_dir))


def plot_runs(runs: dict, suffix: str = "") -> None:
    """learning_curves{suffix}.png and paired_differences{suffix}.png of `runs` (task -> arm -> seed -> record)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    baselines = json.loads((HERE / "baselines.json").read_text())
    tasks = [task for task in TASKS if task in runs]
    if not tasks:
        return
    figure, grid = plt.subplots(len(tasks), 2, figsize=(12, 4.2 * len(tasks)), squeeze=False)
    for row_axes, task in zip(grid, tasks):
        primary = TASKS[task][1]
        for axis, key in zip(row_axes, (primary, "eval_loss")):
            for colour, arm in zip(("C0", "C7", "C1", "C2"), ARMS):
                curves: dict = {}
                for record in runs[task].get(arm, {}).values():
                    for entry in record["curve"]:
                        curves.setdefault(round(entry["epoch"]), []).append(entry[key])
                if not curves:
                    continue
                epochs = sorted(curves)
                axis.plot(epochs, [statistics.mean(curves[e]) for e in epochs], marker="o", color=colour,
                          linestyle="--" if arm == CONTROL else "-", label=f"{arm} ({len(runs[task][arm])} seeds)")  # fmt: skip
                axis.fill_between(epochs, [min(curves[e]) for e in epochs], [max(curves[e]) for e in epochs],
                                  color=colour, alpha=0.15)  # fmt: skip
            if key == "eval_loss":
                axis.axhline(baselines[task]["constant_eval_loss"], color="gray", linestyle="--", linewidth=1,
                             label="constant predictor")  # fmt: skip
            axis.set_xticks(range(1, RECIPE["num_train_epochs"] + 1))
            axis.set_xlabel("epoch")
            axis.set_ylabel(f"dev {metric_name(task, key)}")
            axis.set_title(f"{TASK_LABELS[task]}: {metric_name(task, key)}")
            axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(HERE / f"learning_curves{suffix}.png", dpi=110)
    plt.close(figure)

    figure, axes = plt.subplots(1, len(tasks), figsize=(8.5 * len(tasks), 4.6), squeeze=False)
    pairs = [*((arm, BASELINE) for arm in SEPNORM_ARMS), *((arm, CONTROL) for arm in SEPNORM_ARMS), (CONTROL, BASELINE)]
    for axis, task in zip(axes[0], tasks):
        primary, labels = TASKS[task][1], []
        for j, (arm, reference) in enumerate(pairs):
            seeds = sorted(set(runs[task].get(arm, {})) & set(runs[task].get(reference, {})))
            differences = [a - b for a, b in zip(values_of(runs, task, arm, primary, seeds),
                                                 values_of(runs, task, reference, primary, seeds))]  # fmt: skip
            axis.scatter([j] * len(differences), differences, s=22, color=f"C{j}")
            labels.append(f"{arm}\n− {reference}\n({len(seeds)})")
        axis.axhline(0, color="gray", linewidth=0.8)
        axis.set_xticks(range(len(pairs)), labels, fontsize=7)
        axis.set_ylabel(f"paired difference, dev {NAMES[primary]}")
        axis.set_title(f"{TASK_LABELS[task]} (seeds per pair in brackets)")
    figure.tight_layout()
    figure.savefig(HERE / f"paired_differences{suffix}.png", dpi=110)
    plt.close(figure)


def main() -> None:
    render_experiment(HERE, render, plot, headline, (README_BEGIN, README_END))


if __name__ == "__main__":
    main()
