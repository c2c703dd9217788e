"""Paired statistics for arm-vs-baseline comparisons over seeds: every arm and its baseline are trained with the same
seeds, so seed i of one is compared with seed i of the other (the seed's data order and initialization cancel)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from scipy import stats

CONFIDENCE = 0.95
POWER = 0.80


@dataclasses.dataclass(frozen=True)
class PairedComparison:
    """`treatment - baseline`, seed by seed.

    mean_difference, ci_low, ci_high: the mean paired difference and its 95 % t-interval.
    t_p: two-sided paired t-test p-value; wilcoxon_p: two-sided exact Wilcoxon signed-rank p-value (None when every
        difference is 0).
    detectable_effect: the smallest true mean difference a two-sided paired t-test at alpha 0.05 would detect with
        80 % power, given the spread of the differences measured (the run's resolution).
    verdict: "better", "worse" (the interval excludes 0; `higher_is_better` says which side is better) or
        "no detectable difference".
    """

    n: int
    differences: tuple[float, ...]
    mean_difference: float
    ci_low: float
    ci_high: float
    t_p: float
    wilcoxon_p: float | None
    detectable_effect: float
    verdict: str


def paired_comparison(
    baseline: Sequence[float], treatment: Sequence[float], higher_is_better: bool = True
) -> PairedComparison:
    if len(baseline) != len(treatment):
        raise ValueError(f"Paired values need one per seed in each arm: got {len(baseline)} and {len(treatment)}.")
    n = len(baseline)
    if n < 2:
        raise ValueError(f"A paired comparison needs at least 2 seeds, got {n}.")
    differences = [float(t) - float(b) for b, t in zip(baseline, treatment)]
    mean = sum(differences) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in differences) / (n - 1))
    t_critical = float(stats.t.ppf(0.5 + CONFIDENCE / 2, df=n - 1))
    half_width = t_critical * sd / math.sqrt(n)
    if sd == 0:
        t_p = 1.0 if mean == 0 else 0.0
    else:
        t_p = float(stats.ttest_rel(treatment, baseline).pvalue)
    wilcoxon_p = None
    if any(d != 0 for d in differences):
        wilcoxon_p = float(stats.wilcoxon(differences, method="exact" if n <= 50 else "auto").pvalue)
    # noncentral-t power is close to this normal approximation with the t critical value for n >= 5
    detectable = (t_critical + float(stats.norm.ppf(POWER))) * sd / math.sqrt(n)
    low, high = mean - half_width, mean + half_width
    if low > 0 or high < 0:
        verdict = "better" if (low > 0) == higher_is_better else "worse"
    else:
        verdict = "no detectable difference"
    return PairedComparison(n, tuple(differences), mean, low, high, t_p, wilcoxon_p, detectable, verdict)


def holm_adjusted(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the order given (controls the family-wise error over the metrics)."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [0.0] * len(p_values)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted
