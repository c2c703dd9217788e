"""The report of `hf-sepnorm compare`, rendered from its `results.json` alone (no number is typed in): per track the
data sizes, baselines, validity gate, per-arm means, paired differences against `shared` with 95 % intervals and
tests, per-seed values, plots with captions, and one verdict line. What the runs support is computed once, by
`assessment.assess_track`; this module only renders it."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from .assessment import TrackAssessment, assess_track
from .recipes import BASELINE_ARM
from .statistics import CONFIDENCE, POWER


def _number(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    return f"{value:.4g}" if abs(value) >= 10 else f"{value:.4f}"


# What each kind of row measures, on what scale, and which way is better (keys without their track prefix)
METRIC_GLOSSARY = {
    "linear_probe_accuracy": "accuracy (0–1, higher is better) of a logistic regression fitted on the training "
    "[CLS] and scored on the test [CLS], both standardized with training statistics; C chosen by 5-fold CV",
    "knn_accuracy": "accuracy (0–1, higher is better) of a 20-nearest-neighbour vote by cosine among the training [CLS]",
    "uniformity": "log E exp(-2 ||u - v||²) over pairs of L2-normalized, train-standardized test [CLS] (Wang & Isola; "
    "from -4 to 0, lower is more uniformly spread, the paper's measure of collapse)",
    "effective_rank": "exp of the entropy of the normalized singular values of the train-standardized test [CLS] (1 to "
    "the dimension; higher is less collapsed)",
    "raw_uniformity": "uniformity of the raw [CLS] vectors: a per-feature rescaling, which a BatchNorm applies by "
    "construction, changes it, hence secondary",
    "raw_effective_rank": "effective rank of the raw [CLS] vectors: secondary for the same reason",
    "mae_eval_loss": "MSE of the MAE's reconstruction of masked patches on the test images (lower is better; compare "
    "with predicting zeros)",
    "mlm_eval_loss": "cross-entropy of the masked-LM on held-out blocks (lower is better; compare with the unigram "
    "distribution)",
    "finetune_accuracy": "top-1 accuracy (0–1) after fine-tuning the whole model (compare with chance)",
    "eval_loss": "the fine-tuning loss on the full dev set (MSE for STS-B, cross-entropy otherwise; lower is better; "
    "compare with the constant predictor's)",
}


def glossary_lines(track: dict) -> list[str]:
    """One line per kind of row the track reports."""
    seen = []
    for metric in track["metrics"]:
        key = metric["key"].removeprefix("start_").removeprefix("random_init_")
        kind = next((name for name in METRIC_GLOSSARY if key == name or key.endswith("_" + name)), None)
        if kind and kind not in seen:
            seen.append(kind)
    return [f"- `{kind}`: {METRIC_GLOSSARY[kind]}." for kind in seen]


def chance_level(track: dict, key: str) -> float | None:
    """The chance or constant-predictor value of a fine-tuned score, when the track has one."""
    baselines = track["baselines"]
    if key == "finetune_accuracy" and "chance" in baselines:
        return baselines["chance"][0]
    task, _, metric = key.removesuffix("_reestimated").partition("_")
    constant = baselines.get(f"{task} {metric}: constant prediction")
    return None if constant is None else constant[0]


def wilcoxon_cell(row: dict) -> str:
    """The exact Wilcoxon p-value, or why there is none: with n = 2 seeds its smallest possible value is 0.5."""
    smallest = row.get("wilcoxon_smallest_p")
    if row["wilcoxon_p"] is None:
        return "– (all differences 0)"
    if smallest is not None and smallest >= 0.5:
        return f"– (n = {row['n']}: smallest possible p is {smallest:.2g})"
    return _number(row["wilcoxon_p"])


def after_holm(verdict: str) -> str:
    """A secondary row's verdict in a sentence, saying that it follows the Holm-adjusted p (an inconclusive or
    preliminary or withdrawn row has no verdict to adjust)."""
    no_verdict = ("inconclusive", "preliminary", "withdrawn")
    return verdict if "Holm" in verdict or verdict.startswith(no_verdict) else f"{verdict} after Holm"


def _direction(higher_is_better: bool) -> str:
    return "higher is better" if higher_is_better else "lower is better"


def _values(runs: dict, arm: str, key: str) -> list[float]:
    return [run[key] for run in runs[arm]]


def learning_lines(track: dict, assessment: TrackAssessment) -> list[str]:
    """A line per arm saying in words whether pretraining beat the trivial predictor."""
    check = track.get("learning_check")
    return [
        f"`{item.arm}`: {check['learner']} {'learned' if item.learned else 'did not learn'}: eval loss "
        f"{item.mean:.4f} (mean of {item.seeds} seeds) against {item.trivial:.4f} for "
        f"{check['trivial']}{'' if item.learned else ' (not below it with 95 % confidence)'}"
        for item in assessment.learning
    ]


def gate_lines(track: dict, assessment: TrackAssessment) -> list[str]:
    """The learning lines, then a line per (arm, gate check) saying how it went."""
    lines = learning_lines(track, assessment)
    for check in assessment.gate:
        if check.comparison is None:
            lines.append(f"`{check.arm}`: {check.trained} vs {check.reference} needs at least 2 seeds for an interval: "
                         "not checked.")  # fmt: skip
            continue
        comparison = check.comparison
        lines.append(
            f"`{check.arm}`: {check.trained} {check.trained_mean:.4f} vs {check.reference} "
            f"{check.reference_mean:.4f}, difference {comparison.mean_difference:+.4f} "
            f"[{comparison.ci_low:+.4f}, {comparison.ci_high:+.4f}]: {'passed' if check.passed else 'FAILED'}"
        )
    return lines


def convergence_lines(assessment: TrackAssessment) -> list[str]:
    """A line for each (arm, task) whose fine-tuning did not converge, saying so in words."""
    return [
        f"`{check.arm}` {check.task}: fine-tuning did not converge: eval loss {check.mean:.4f} (mean of "
        f"{check.seeds} seeds) against {check.constant:.4f} for the constant predictor, so its rows of that task read "
        "inconclusive"
        for check in assessment.convergence
        if not check.converged
    ]


def primary_metric(track: dict) -> dict:
    """The row the track's verdict is read from."""
    return next(metric for metric in track["metrics"] if metric["role"] == "primary")


def differing_rows(track: dict, arm: str) -> list[str]:
    """The rows (metric keys) in which `arm` and `shared` differ in at least one seed: an arm computes what `shared`
    computes only when this is empty."""
    runs = track["runs"]
    return [metric["key"] for metric in track["metrics"]
            if any(run[metric["key"]] != twin[metric["key"]] for run, twin in zip(runs[arm], runs[BASELINE_ARM]))]  # fmt: skip


def _signed(value: float) -> str:
    """A difference with its sign: 4 decimals, or 2 significant digits when it is nonzero but smaller than that shows."""
    return f"{value:+.4f}" if value == 0 or abs(value) >= 5e-5 else f"{value:+.1e}"


def _difference_summary(track: dict, arm: str, key: str, row: dict | None) -> str:
    """A row's differences against `shared` in a few words: its paired statistics when it is compared, else its
    per-seed differences."""
    if row is not None:
        return (f"`{key}` {_signed(row['mean_difference'])} [{_signed(row['ci_low'])}, {_signed(row['ci_high'])}], "
                f"t p {row['t_p']:.3g}: {row['verdict']}")  # fmt: skip
    runs = track["runs"]
    differences = [run[key] - twin[key] for run, twin in zip(runs[arm], runs[BASELINE_ARM])]
    return f"`{key}` per seed {', '.join(_signed(difference) for difference in differences)}"


def verdict_lines(track: dict, comparisons: dict) -> list[str]:
    """One line per arm against `shared`, read from the primary row. An arm is called the same as `shared` only when
    every row of every seed is exactly equal; a primary row equal in every seed with other rows differing names
    those rows with their numbers."""
    primary = primary_metric(track)
    if not comparisons:
        return [f"No paired verdict: it needs the `{BASELINE_ARM}` arm and at least 2 seeds."]
    lines = []
    for arm, rows in comparisons.items():
        row = rows[primary["key"]]
        if all(difference == 0 for difference in row["differences"]):
            differing = differing_rows(track, arm)
            if not differing:
                lines.append(f"**`{arm}` vs `{BASELINE_ARM}`: the same values** — every row's paired difference is "
                             f"exactly 0 in every seed (n = {row['n']}): here `{arm}` computes what `{BASELINE_ARM}` "
                             "computes, so the run says nothing about it.")  # fmt: skip
                continue
            lines.append(
                f"**`{arm}` vs `{BASELINE_ARM}`, {primary['description']}: no difference in any seed** — every paired "
                f"difference of this row is exactly 0 (n = {row['n']} seeds), so it gives no verdict; other rows "
                f"differ: " + "; ".join(_difference_summary(track, arm, key, rows.get(key)) for key in differing) + "."
            )
            continue
        lines.append(
            f"**`{arm}` vs `{BASELINE_ARM}`, {primary['description']} ({_direction(primary['higher_is_better'])}): "
            f"{row['verdict']}** — mean paired difference {row['mean_difference']:+.4f}, "
            f"{CONFIDENCE:.0%} CI [{row['ci_low']:+.4f}, {row['ci_high']:+.4f}], n = {row['n']} seeds; the smallest "
            f"difference this run detects with {POWER:.0%} power is ±{row['detectable_effect']:.4f}."
        )
    return lines


def paired_table_lines(track: dict, comparisons: dict) -> list[str]:
    """The table of every compared row of every arm against `shared` (nothing without comparisons)."""
    if not comparisons:
        return []
    lines = [f"Paired differences against `{BASELINE_ARM}` (arm − {BASELINE_ARM}, seed by seed; Holm over the "
             "secondary rows of an arm, whose verdict follows the Holm-adjusted p; Wilcoxon: exact signed-rank test with ties, "
             "whose smallest possible p is 2/2^n with n seeds; detectable = smallest true difference found with 80 % "
             "power, noncentral t):", "",
             "| arm | metric | better | mean difference | 95 % CI | paired t p | Wilcoxon p | Holm p | detectable | verdict |",
             "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for arm, rows in comparisons.items():
        for metric in track["metrics"]:
            row = rows.get(metric["key"])
            if row is None:
                continue
            lines.append(
                f"| `{arm}` | `{metric['key']}` | {_direction(metric['higher_is_better']).split()[0]} | "
                f"{row['mean_difference']:+.4f} | [{row['ci_low']:+.4f}, {row['ci_high']:+.4f}] | {row['t_p']:.3g} | "
                f"{wilcoxon_cell(row)} | {_number(row.get('holm_p'))} | {row['detectable_effect']:.4f} | "
                f"{row['verdict']} |"
            )
    return lines + [""]


def reestimation_lines(assessment: TrackAssessment) -> list[str]:
    """The table of the re-estimation rows (`assessment.reestimation`), within each arm."""
    if not assessment.reestimation:
        return []
    lines = ["Re-estimating the [CLS] BatchNorm statistics (the example scripts' `--recalibrate_cls_norm`), within each "
             "arm: the same fine-tuned weights evaluated with re-estimated statistics minus with the running statistics "
             "of training, seed by seed (an arm without a [CLS] BatchNorm is unchanged by construction):", "",
             "| arm | metric | with running statistics | re-estimated | mean difference | 95 % CI | paired t p | verdict |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for item in assessment.reestimation:
        row = item.comparison
        verdict = {"better": "helps", "worse": "hurts"}.get(row.verdict, row.verdict)
        lines.append(
            f"| `{item.arm}` | {item.key} | {item.before_mean:.4f} | {item.after_mean:.4f} | "
            f"{row.mean_difference:+.4f} | [{row.ci_low:+.4f}, {row.ci_high:+.4f}] | {row.t_p:.3g} | {verdict} |"
        )
    return lines + [""]


def _track_section(name: str, track: dict) -> list[str]:
    runs, arms = track["runs"], list(track["runs"])
    metrics = track["metrics"]
    assessment = assess_track(track)
    comparisons, gate_passed = assessment.comparisons, assessment.gate_passed
    lines = [f"## {track['title']} (`{name}` track)", ""]
    lines += ["Verdict:", ""] + [f"- {line}" for line in verdict_lines(track, comparisons)] + [""]
    lines += ["Data: " + "; ".join(f"{key}: {value}" for key, value in track["data"].items()) + ".", ""]

    lines += ["Validity gate — pretraining must beat its trivial predictor, and trained [CLS] the same architecture's "
              f"[CLS] at random initialization, in every arm ({CONFIDENCE:.0%} intervals): "
              f"**{'passed' if gate_passed else 'failed'}**."]  # fmt: skip
    if not gate_passed:
        cause = ("pretraining did not beat the trivial predictor (below), so there is nothing learned to compare"
                 if not assessment.learned else "the readouts and downstream results do not show that training taught the "
                 "[CLS] token anything a random network's does not carry")  # fmt: skip
        lines += [f"Every row but the pretraining objective reads *inconclusive*: {cause}."]
    lines += [""] + [f"- {line}" for line in gate_lines(track, assessment)] + [""]
    not_converged = convergence_lines(assessment)
    if track.get("convergence_checks"):
        lines += ["Convergence — a fine-tuned task counts only where its eval loss beats the constant predictor's "
                  "(the best constant fitted on the training rows; a 95 % interval over seeds), in the arm and in "
                  f"`{BASELINE_ARM}`: " + ("every arm converged on every task." if not not_converged else ""), ""]
        lines += [f"- {line}" for line in not_converged] + ([""] if not_converged else [])

    lines += ["Baselines (test set, no training):", "", "| baseline | value | what |", "|---|---|---|"]
    lines += [f"| {key} | {_number(value)} | {what} |" for key, (value, what) in track["baselines"].items()] + [""]

    seeds = len(next(iter(runs.values())))
    lines += [f"Mean over {seeds} seeds per arm:", "",
              "| metric | better | " + " | ".join(f"`{arm}`" for arm in arms) + " |",
              "|---|---|" + "---|" * len(arms)]  # fmt: skip
    for metric in metrics:
        chance = chance_level(track, metric["key"])
        means = [statistics.mean(_values(runs, arm, metric["key"])) for arm in arms]
        cells = [_number(mean) + (" (at chance)" if chance is not None and mean <= chance + 1e-9 else "") for mean in means]
        label = f"`{metric['key']}`" + (" **(primary)**" if metric["role"] == "primary" else "")
        lines.append(f"| {label} | {_direction(metric['higher_is_better']).split()[0]} | " + " | ".join(cells) + " |")
    lines.append("")
    chance_rows = [metric["key"] for metric in metrics if chance_level(track, metric["key"]) is not None]
    if chance_rows:
        lines += ["*(at chance)*: a mean no better than chance or the constant predictor's score (baselines above).", ""]
    # one name per metric, its key, in every table and line of the report; what each is, once, here
    lines += ["What the rows are (each table names a row by its key):", ""]
    lines += [f"- `{metric['key']}`: {metric['description']}." for metric in metrics] + [""]
    lines += ["What they measure, and on what scale:", ""] + glossary_lines(track) + [""]

    lines += paired_table_lines(track, comparisons)

    lines += reestimation_lines(assessment)

    lines += ["Per-seed values:", "", "| metric | arm | " + " | ".join(f"seed {s}" for s in range(seeds)) + " |",
              "|---|---|" + "---|" * seeds]  # fmt: skip
    for metric in metrics:
        for arm in arms:
            lines.append(f"| `{metric['key']}` | `{arm}` | " + " | ".join(_number(v) for v in _values(runs, arm, metric["key"])) + " |")
    lines.append("")

    for figure in track.get("figures", []):
        lines += [f"![{figure['alt']}]({figure['file']})", "", f"*{figure['caption']}*", ""]
    lines += [f"Recipe ({track['seconds'] / 60:.1f} min for this track):", "", "```json",
              json.dumps(track["recipe"], indent=2), "```", ""]  # fmt: skip
    return lines


def render_report(summary: dict) -> str:
    """The Markdown report of a `results.json` summary."""
    lines = [
        f"# ShareNorm vs SepNorm — `{summary['preset']}` preset",
        "",
        f"{summary['seeds']} seeds per arm, the same seeds in every arm (seed i of an arm is paired with seed i of "
        f"`{BASELINE_ARM}`); only the [CLS] normalization differs between arms. Device: {summary['device']}. "
        f"[CLS] BatchNorm statistics re-estimated on training data before readouts and evaluation: "
        f"{'yes' if summary['recalibrate_cls_norm'] else 'no'}. Total time {summary['seconds'] / 60:.1f} min. "
        f"Preset: {summary['note']}.",
        "",
        "Arms: " + "; ".join(f"`{name}` = {text}" for name, text in summary["arm_descriptions"].items()) + ".",
        "",
        "This report is what this run measured, at its budget. The project's measured answer to \"does SepNorm "
        "help?\", from longer runs with 5 paired seeds, and what those can and cannot say, is the README's section "
        "\"Does SepNorm help?\" and `docs/results/` of the hf_sepnorm source tree.",
        "",
        "Readouts are measured on held-out test data after standardizing every feature with statistics of the training "
        "data, so that a per-feature rescaling (which a [CLS] BatchNorm applies by construction) cannot change them; "
        "the raw-vector uniformity and effective rank are secondary rows for that reason. Every row of a table uses the "
        "same full test set.",
        "",
    ]
    for name, track in summary["tracks"].items():
        lines += _track_section(name, track)
    return "\n".join(lines)


def render_report_file(results_json: str | Path) -> str:
    return render_report(json.loads(Path(results_json).read_text()))


if __name__ == "__main__":  # python -m hf_sepnorm.compare.report results.json > report.md
    import sys

    print(render_report_file(sys.argv[1]))
