"""Paired statistics for arm-vs-baseline comparisons over seeds: every arm and its baseline are trained with the same
seeds, so seed i of one is compared with seed i of the other (the seed's data order and initialization cancel)."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence

from scipy import integrate, optimize, stats

CONFIDENCE = 0.95
POWER = 0.80


@dataclasses.dataclass(frozen=True)
class PairedComparison:
    """`treatment - baseline`, seed by seed.

    mean_difference, ci_low, ci_high: the mean paired difference and its 95 % t-interval.
    t_p: two-sided paired t-test p-value.
    wilcoxon_p: two-sided exact Wilcoxon signed-rank p-value, tie-aware (midranks of |differences|, every one of the
        2^n sign patterns enumerated; zero differences dropped, Wilcoxon's convention); None when every difference is
        0. wilcoxon_smallest_p: the smallest value it can take with these differences (2 / 2^n without ties): with
        n = 5 seeds it is 0.0625, with n = 2 it is 0.5, so the test cannot reject at 0.05 whatever the data.
    detectable_effect: the smallest true mean difference a two-sided paired t-test at alpha 0.05 detects with 80 %
        power, given the spread of the differences measured (the run's resolution), from the noncentral t
        distribution.
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
    wilcoxon_smallest_p: float | None
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
    wilcoxon_p, wilcoxon_smallest_p = exact_signed_rank_test(differences)
    detectable = detectable_difference(sd, n)
    low, high = mean - half_width, mean + half_width
    verdict = verdict_of(low, high, higher_is_better)
    return PairedComparison(
        n, tuple(differences), mean, low, high, t_p, wilcoxon_p, wilcoxon_smallest_p, detectable, verdict
    )


def verdict_of(low: float, high: float, higher_is_better: bool) -> str:
    if low > 0 or high < 0:
        return "better" if (low > 0) == higher_is_better else "worse"
    return "no detectable difference"


def exact_signed_rank_test(differences: Sequence[float]) -> tuple[float | None, float | None]:
    """Two-sided exact Wilcoxon signed-rank test with ties: the p-value and the smallest p-value these |differences|
    allow. scipy's `method="exact"` uses the tie-free null distribution even when |differences| tie (for
    [1, 1, -1, 2, 3] it gives 0.1875; the exact value is 0.25), so the null distribution is enumerated here: under
    H0 each nonzero difference is positive or negative with probability 1/2, independently."""
    nonzero = [d for d in differences if d != 0]
    if not nonzero:
        return None, None
    if len(nonzero) > 20:  # 2^20 patterns; beyond, the normal approximation with tie correction is accurate
        return float(stats.wilcoxon(nonzero, method="approx").pvalue), 0.0
    ranks = stats.rankdata([abs(d) for d in nonzero])  # midranks for ties
    # doubled ranks are integers (midranks are multiples of 1/2): count sign patterns per doubled statistic exactly
    doubled = [int(round(2 * rank)) for rank in ranks]
    counts = {0: 1}
    for rank in doubled:
        shifted = dict(counts)
        for total, count in counts.items():
            shifted[total + rank] = shifted.get(total + rank, 0) + count
        counts = shifted
    patterns = 2 ** len(nonzero)
    center = sum(doubled) / 2
    observed = abs(sum(rank for rank, d in zip(doubled, nonzero) if d > 0) - center)

    def p_of(distance: float) -> float:
        return min(1.0, sum(count for total, count in counts.items() if abs(total - center) >= distance - 1e-9) / patterns)

    return p_of(observed), p_of(max(abs(total - center) for total in counts))


def paired_t_power(effect: float, sd: float, n: int) -> float:
    """Power of the two-sided paired t-test at alpha = 1 - CONFIDENCE for a true mean difference `effect`: the
    noncentral t distribution's tails, P(|Z + delta| > c * sqrt(V / df)) with V ~ chi2(df), integrated over V
    (scipy's `nct` returns NaN far in the tail at df = 1, which n = 2 seeds has)."""
    df = n - 1
    critical = float(stats.t.ppf(0.5 + CONFIDENCE / 2, df=df))
    noncentrality = effect * math.sqrt(n) / sd

    def rejected(v: float) -> float:
        threshold = critical * math.sqrt(v / df)
        return (stats.norm.sf(threshold - noncentrality) + stats.norm.cdf(-threshold - noncentrality)) * stats.chi2.pdf(v, df)

    return float(integrate.quad(rejected, 0, math.inf, limit=200)[0])


def detectable_difference(sd: float, n: int, power: float = POWER) -> float:
    """The true mean difference at which the two-sided paired t-test has `power` (exact, noncentral t)."""
    return 0.0 if sd == 0 else sd * _detectable_in_sds(n, power)


@functools.cache
def _detectable_in_sds(n: int, power: float) -> float:
    # in units of the differences' sd it depends on n alone: solved once per n (an integral per evaluation)
    upper = 1.0
    while paired_t_power(upper, 1.0, n) < power:  # power rises monotonically with the effect
        upper *= 2
    return optimize.brentq(lambda effect: paired_t_power(effect, 1.0, n) - power, 0.0, upper, xtol=1e-10)


def holm_adjusted(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the order given (controls the family-wise error over the metrics)."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [0.0] * len(p_values)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def holm_verdict(row: dict, higher_is_better: bool, alpha: float = 1 - CONFIDENCE) -> str:
    """The verdict of a secondary row, read from its Holm-adjusted p-value: a row whose own interval excludes 0 is
    "better"/"worse" only if it survives the correction over the arm's secondary rows."""
    if row["holm_p"] >= alpha:
        return "no detectable difference after Holm correction" if row["verdict"] in ("better", "worse") else row["verdict"]
    return verdict_of(row["ci_low"], row["ci_high"], higher_is_better)
