"""What a track's runs support, computed once from its `results.json` entry (`assess_track`), for the report to
render: whether pretraining learned, the validity gate, which fine-tunings converged, the paired comparisons of each
arm against `shared` with their verdicts, and the re-estimation rows within each arm."""

from __future__ import annotations

import dataclasses
import statistics

from .recipes import BASELINE_ARM
from .statistics import PairedComparison, holm_adjusted, holm_verdict, paired_comparison

COMPARED_ROLES = ("primary", "secondary", "pretraining")
GATE_FAILED = "inconclusive (validity gate failed)"
NOT_CONVERGED = "inconclusive (not converged)"


@dataclasses.dataclass(frozen=True)
class LearningCheck:
    """An arm's pretraining eval loss (mean over `seeds`) against the trivial predictor's, `learned` when its 95 %
    interval lies below it."""

    arm: str
    learned: bool
    mean: float
    seeds: int
    trivial: float


@dataclasses.dataclass(frozen=True)
class GateCheck:
    """An arm's trained row against its reference row (random init), paired by seed; `comparison` is None with fewer
    than 2 seeds, which fails the gate."""

    arm: str
    trained: str
    reference: str
    trained_mean: float | None
    reference_mean: float | None
    comparison: PairedComparison | None

    @property
    def passed(self) -> bool:
        return self.comparison is not None and self.comparison.verdict == "better"


@dataclasses.dataclass(frozen=True)
class ConvergenceCheck:
    """An arm's fine-tuned eval loss on a task (mean over `seeds`) against the constant predictor's."""

    arm: str
    task: str
    converged: bool
    mean: float
    seeds: int
    constant: float


@dataclasses.dataclass(frozen=True)
class ReestimationRow:
    """Within an arm: a row with re-estimated [CLS] statistics minus the same row with the running ones."""

    arm: str
    key: str
    before_mean: float
    after_mean: float
    comparison: PairedComparison


@dataclasses.dataclass(frozen=True)
class TrackAssessment:
    learning: list[LearningCheck]
    gate: list[GateCheck]
    convergence: list[ConvergenceCheck]
    # arm -> row key -> the paired comparison against `shared` as a dict, with "holm_p" on secondary rows and the
    # row's final "verdict"; empty without the `shared` arm or with fewer than 2 seeds
    comparisons: dict[str, dict[str, dict]]
    reestimation: list[ReestimationRow]

    @property
    def learned(self) -> bool:
        return all(check.learned for check in self.learning)

    @property
    def gate_passed(self) -> bool:
        return self.learned and all(check.passed for check in self.gate)

    def converged(self, arm: str, task: str) -> bool:
        """False only where a check ran and failed (a task with fewer than 2 seeds is not checked)."""
        return all(check.converged for check in self.convergence if (check.arm, check.task) == (arm, task))


def _values(runs: dict, arm: str, key: str) -> list[float]:
    return [run[key] for run in runs[arm]]


def learning_checks(track: dict) -> list[LearningCheck]:
    """Per arm, the track's `learning_check`: pretraining's eval loss below the trivial predictor's (zeros for an MAE
    under norm_pix_loss, the unigram distribution for a masked LM), as a 95 % interval over seeds."""
    check = track.get("learning_check")
    if not check or check["baseline"] not in track["baselines"]:
        return []
    trivial = track["baselines"][check["baseline"]][0]
    checks = []
    for arm, runs in track["runs"].items():
        values = [run[check["metric"]] for run in runs]
        learned = len(values) >= 2 and paired_comparison([trivial] * len(values), values, False).verdict == "better"
        checks.append(LearningCheck(arm, learned, statistics.mean(values), len(values), trivial))
    return checks


def gate_checks(track: dict) -> list[GateCheck]:
    """Per (trained, reference) row of the track's gate and per arm: the paired comparison of the two."""
    runs, metrics = track["runs"], {metric["key"]: metric for metric in track["metrics"]}
    checks = []
    for trained, reference in track["gate"]:
        for arm in runs:
            trained_values, reference_values = _values(runs, arm, trained), _values(runs, arm, reference)
            if len(trained_values) < 2:
                checks.append(GateCheck(arm, trained, reference, None, None, None))
                continue
            comparison = paired_comparison(reference_values, trained_values, metrics[trained]["higher_is_better"])
            checks.append(GateCheck(arm, trained, reference, statistics.mean(trained_values),
                                    statistics.mean(reference_values), comparison))  # fmt: skip
    return checks


def convergence_checks(track: dict) -> list[ConvergenceCheck]:
    """Per (arm, task) of the track's `convergence_checks` with at least 2 seeds: the fine-tuned eval loss below the
    constant predictor's, as a 95 % interval over seeds."""
    checks = []
    for check in track.get("convergence_checks") or []:
        if check["baseline"] not in track["baselines"]:
            continue
        constant = track["baselines"][check["baseline"]][0]
        for arm, runs in track["runs"].items():
            values = [run[check["loss"]] for run in runs if check["loss"] in run]
            if len(values) < 2:
                continue
            converged = paired_comparison([constant] * len(values), values, False).verdict == "better"
            checks.append(ConvergenceCheck(arm, check["task"], converged, statistics.mean(values), len(values), constant))
    return checks


def comparisons_against_baseline(track: dict, gate_passed: bool, converged) -> dict[str, dict[str, dict]]:
    """Per non-baseline arm, per compared row: the paired comparison against `shared` (as a dict), with the
    Holm-adjusted t-test p-value over the secondary rows, and the verdict: "inconclusive" when the gate failed (except
    for the pretraining objective) or when either arm did not converge on the row's task (`converged(arm, task)`)."""
    runs = track["runs"]
    if BASELINE_ARM not in runs or len(runs[BASELINE_ARM]) < 2:
        return {}
    compared = [metric for metric in track["metrics"] if metric["role"] in COMPARED_ROLES]
    secondary = [metric for metric in compared if metric["role"] == "secondary"]
    comparisons: dict[str, dict[str, dict]] = {}
    for arm in runs:
        if arm == BASELINE_ARM:
            continue
        rows = {}
        for metric in compared:
            result = paired_comparison(_values(runs, BASELINE_ARM, metric["key"]), _values(runs, arm, metric["key"]),
                                       metric["higher_is_better"])  # fmt: skip
            row = {**result.__dict__, "differences": list(result.differences)}
            if not gate_passed and metric["role"] != "pretraining":
                row["verdict"] = GATE_FAILED
            rows[metric["key"]] = row
        for metric, adjusted in zip(secondary, holm_adjusted([rows[metric["key"]]["t_p"] for metric in secondary])):
            row = rows[metric["key"]]
            row["holm_p"] = adjusted
            if gate_passed:  # a secondary row is read from its Holm-adjusted p, not from its own interval
                row["verdict"] = holm_verdict(row, metric["higher_is_better"])
        for check in track.get("convergence_checks") or []:  # a task either arm did not converge on
            if converged(arm, check["task"]) and converged(BASELINE_ARM, check["task"]):
                continue
            for key in check["rows"]:
                if key in rows:
                    rows[key]["verdict"] = NOT_CONVERGED
        comparisons[arm] = rows
    return comparisons


def reestimation_rows(track: dict) -> list[ReestimationRow]:
    """For the rows of role "re-estimation": within each arm, the same fine-tuned weights evaluated with re-estimated
    [CLS] BatchNorm statistics minus with the running statistics of training, seed by seed (an arm whose two values
    are equal, having no [CLS] BatchNorm, is left out)."""
    runs = track["runs"]
    studied = [metric for metric in track["metrics"] if metric["role"] == "re-estimation"]
    if not studied or len(next(iter(runs.values()))) < 2:
        return []
    rows = []
    for arm in runs:
        for metric in studied:
            plain = metric["key"].removesuffix("_reestimated")
            before, after = _values(runs, arm, plain), _values(runs, arm, metric["key"])
            if before != after:
                comparison = paired_comparison(before, after, metric["higher_is_better"])
                rows.append(ReestimationRow(arm, plain, statistics.mean(before), statistics.mean(after), comparison))
    return rows


def assess_track(track: dict) -> TrackAssessment:
    learning, gate, convergence = learning_checks(track), gate_checks(track), convergence_checks(track)
    partial = TrackAssessment(learning, gate, convergence, {}, [])
    comparisons = comparisons_against_baseline(track, partial.gate_passed, partial.converged)
    return dataclasses.replace(partial, comparisons=comparisons, reestimation=reestimation_rows(track))
