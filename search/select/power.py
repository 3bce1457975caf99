"""Resolution of a seed comparison: the smallest gain it detects, and how many seeds a gain needs.

A one-sided t test at level ``alpha`` with ``seeds`` seeds per side finds a true gain with
probability ``power`` (80% by default) only from `detectable_effect` up; the power comes from the
noncentral t distribution (`scipy.stats.nct`). The test is the one `search.select.verdict.compare` picks:
the paired t on same-seed differences when same-seed scores correlate positively (sd of a difference
``sd * sqrt(2 (1 - correlation))``, ``seeds - 1`` degrees of freedom), else Welch's t with equal
seeds and variances per side. Welch's power is exact too: the share b of one side in the summed
variance estimates is Beta((n - 1) / 2, (n - 1) / 2) and fixes its degrees of freedom,
(n - 1) / (b^2 + (1 - b)^2), while its statistic is noncentral t with 2 n - 2 degrees of freedom
independently of b; the power is the expectation over b, by Gauss-Jacobi quadrature
(`scipy.special.roots_jacobi`, whose weight is that Beta density).
`seed_noise` measures ``sd`` and ``correlation`` from several placements' scores on shared seeds.

A race states its resolution from what it measured instead (`paired_detectable`, `paired_power`,
`welch_detectable`, `welch_power`): the sd of its same-seed differences, whose mean over ``pairs``
pairs has standard error ``sd / sqrt(pairs)`` and ``pairs - 1`` degrees of freedom, or Welch's t with
the two sides' measured sds (Welch-Satterthwaite degrees of freedom at those sds). A correlation
measured on a handful of pairs is too loose to build a standard error on (3 pairs can read +1.00 and
shrink it to nothing), while the differences' sd measures the same thing directly; below
`RELIABLE_PAIRS` pairs even that sd is loose (`sd_upper_bound`), and the report says so.
Effects and sds are in the metric's units (mAP50-95: a fraction in [0, 1]).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from scipy import optimize, special, stats

from search.select.verdict import MIN_PAIRS

POWER = 0.8
QUADRATURE_NODES = 32  # Gauss-Jacobi nodes for Welch's power: exact to ~1e-6 for smooth integrands
RELIABLE_PAIRS = 6  # fewer same-seed pairs measure their spread too loosely to state fine resolutions from
SD_BOUND = 0.9  # confidence of `sd_upper_bound`


def _check(sd: float, seeds: int, alpha: float, correlation: float, power: float) -> None:
    if not (math.isfinite(sd) and sd >= 0):
        raise ValueError(f"sd must be a finite number >= 0, got {sd}")
    if seeds < 2:
        raise ValueError(f"seeds must be at least 2 (a t test needs 2 scores per side), got {seeds}")
    if not -1 <= correlation <= 1:
        raise ValueError(f"correlation must be in [-1, 1], got {correlation}")
    if not 0 < alpha < power < 1:
        raise ValueError(f"need 0 < alpha < power < 1, got alpha {alpha} and power {power}")


def _power(noncentrality: float, seeds: int, alpha: float, paired: bool) -> float:
    """Probability that the one-sided test at level ``alpha`` rejects, at ``noncentrality`` (the true
    gain over the standard error of the mean difference)."""
    if paired:
        return float(stats.nct.sf(stats.t.isf(alpha, seeds - 1), seeds - 1, noncentrality))
    x, weights = special.roots_jacobi(QUADRATURE_NODES, (seeds - 3) / 2, (seeds - 3) / 2)  # Beta((n-1)/2, (n-1)/2) on [-1, 1]
    b = (1 + x) / 2
    rejects = stats.nct.sf(stats.t.isf(alpha, (seeds - 1) / (b * b + (1 - b) ** 2)), 2 * seeds - 2, noncentrality)
    return float(weights @ rejects / weights.sum())


def _standard_error(sd: float, seeds: int, correlation: float) -> tuple[float, bool]:
    """Standard error of the mean difference of the test `detectable_effect` describes, and whether it pairs."""
    paired = correlation > 0 and seeds >= MIN_PAIRS
    return (sd * math.sqrt(2 * (1 - correlation) / seeds) if paired else sd * math.sqrt(2 / seeds)), paired


def power_at(effect: float, sd: float, seeds: int, alpha: float, correlation: float = 0.0) -> float:
    """Probability that a one-sided t test at level ``alpha`` with ``seeds`` seeds per side finds a true
    gain ``effect`` (units of ``sd``); paired when ``correlation`` > 0, as `detectable_effect`."""
    _check(sd, seeds, alpha, correlation, POWER)
    se, paired = _standard_error(sd, seeds, correlation)
    return 1.0 if se == 0 else _power(effect / se, seeds, alpha, paired)


def detectable_effect(sd: float, seeds: int, alpha: float, correlation: float = 0.0, power: float = POWER) -> float:
    """Smallest true gain (units of ``sd``) that a one-sided t test at level ``alpha`` with ``seeds``
    seeds per side finds with probability ``power``; paired when ``correlation`` > 0 (module docstring)."""
    _check(sd, seeds, alpha, correlation, power)
    se, paired = _standard_error(sd, seeds, correlation)
    if se == 0:
        return 0.0
    return _noncentrality(lambda d: _power(d, seeds, alpha, paired), float(stats.t.isf(alpha, seeds - 1)), power) * se


def _noncentrality(power_of: Callable[[float], float], start: float, power: float) -> float:
    """The noncentrality at which ``power_of`` (increasing) reaches ``power``, searched from ``start``
    (the critical value) on."""
    high = start + 4.0
    while power_of(high) < power:  # heavy tails at 1-2 degrees of freedom need more
        high *= 2
    return float(optimize.brentq(lambda d: power_of(d) - power, 0.0, high, xtol=1e-6))


def _t_power(noncentrality: float, df: float, alpha: float) -> float:
    return float(stats.nct.sf(stats.t.isf(alpha, df), df, noncentrality))


def _check_measured(sds: Sequence[float], seeds: int, alpha: float, power: float) -> None:
    if not all(math.isfinite(sd) and sd >= 0 for sd in sds):
        raise ValueError(f"sds must be finite numbers >= 0, got {list(sds)}")
    if seeds < 2:
        raise ValueError(f"seeds must be at least 2 (a t test needs 2 scores per side), got {seeds}")
    if not 0 < alpha < power < 1:
        raise ValueError(f"need 0 < alpha < power < 1, got alpha {alpha} and power {power}")


def _welch(sd_candidate: float, sd_baseline: float, seeds: int) -> tuple[float, float]:
    """Standard error of the mean difference and Welch-Satterthwaite degrees of freedom at these sds."""
    a, b = sd_candidate**2 / seeds, sd_baseline**2 / seeds
    return math.sqrt(a + b), ((a + b) ** 2 / ((a * a + b * b) / (seeds - 1)) if a + b > 0 else 2 * seeds - 2)


def paired_detectable(sd_difference: float, pairs: int, alpha: float, power: float = POWER) -> float:
    """Smallest true gain that a one-sided paired t test at level ``alpha`` on ``pairs`` same-seed pairs
    finds with probability ``power``, where one same-seed difference has sd ``sd_difference`` (``pairs -
    1`` degrees of freedom)."""
    _check_measured([sd_difference], pairs, alpha, power)
    se = sd_difference / math.sqrt(pairs)
    if se == 0:
        return 0.0
    return _noncentrality(lambda d: _t_power(d, pairs - 1, alpha), float(stats.t.isf(alpha, pairs - 1)), power) * se


def paired_power(effect: float, sd_difference: float, pairs: int, alpha: float) -> float:
    """Probability that the test of `paired_detectable` finds a true gain ``effect``."""
    _check_measured([sd_difference], pairs, alpha, POWER)
    se = sd_difference / math.sqrt(pairs)
    return 1.0 if se == 0 else _t_power(effect / se, pairs - 1, alpha)


def welch_detectable(sd_candidate: float, sd_baseline: float, seeds: int, alpha: float, power: float = POWER) -> float:
    """Smallest true gain that a one-sided Welch's t test at level ``alpha`` with ``seeds`` seeds per side
    finds with probability ``power``, at the two sides' sds (Welch-Satterthwaite degrees of freedom)."""
    _check_measured([sd_candidate, sd_baseline], seeds, alpha, power)
    se, df = _welch(sd_candidate, sd_baseline, seeds)
    if se == 0:
        return 0.0
    return _noncentrality(lambda d: _t_power(d, df, alpha), float(stats.t.isf(alpha, df)), power) * se


def welch_power(effect: float, sd_candidate: float, sd_baseline: float, seeds: int, alpha: float) -> float:
    """Probability that the test of `welch_detectable` finds a true gain ``effect``."""
    _check_measured([sd_candidate, sd_baseline], seeds, alpha, POWER)
    se, df = _welch(sd_candidate, sd_baseline, seeds)
    return 1.0 if se == 0 else _t_power(effect / se, df, alpha)


def sd_upper_bound(sd: float, df: float, confidence: float = SD_BOUND) -> float:
    """One-sided upper confidence bound of a true sd measured as ``sd`` with ``df`` degrees of freedom
    (chi-square): how much larger the noise may be than a few runs showed."""
    if not df > 0:
        raise ValueError(f"df must be positive, got {df}")
    return sd * math.sqrt(df / float(stats.chi2.ppf(1 - confidence, df)))


def seeds_needed(
    effect: float, sd: float, alpha: float | Callable[[int], float], correlation: float = 0.0, power: float = POWER,
    most: int = 10_000,
) -> int | None:
    """Fewest seeds per side whose `detectable_effect` is at most ``effect``, or None beyond ``most``.

    ``alpha`` may be a function of the seeds (a test that looks more often with more seeds).
    """
    level = alpha if callable(alpha) else lambda _: alpha
    return fewest_seeds(effect, lambda n: detectable_effect(sd, n, level(n), correlation, power), most)


def fewest_seeds(effect: float, detectable: Callable[[int], float], most: int = 10_000, least: int = 2) -> int | None:
    """Fewest seeds n >= ``least`` with ``detectable(n)`` (falling as n grows) at most ``effect``, or None
    beyond ``most``."""
    if not effect > 0:
        raise ValueError(f"effect must be positive, got {effect}")

    def enough(n: int) -> bool:
        return detectable(n) <= effect

    low, high = least - 1, least  # enough(high) once found; the detectable effect shrinks as seeds grow
    while not enough(high):
        if high >= most:
            return None
        low, high = high, min(2 * high, most)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return high


def seed_noise(scores: Mapping[str, Sequence[float | None]]) -> tuple[float | None, float | None]:
    """(seed sd, same-seed correlation) of placements scored on shared seeds.

    ``scores`` maps each placement to one entry per seed, all in the same seed order (None: not run
    or failed). The sd is pooled over placements (each around its own mean); the correlation is
    pooled over every two placements on the seeds both ran, each centred on those seeds. Either is
    None without the data to measure it.
    """
    arms = [np.array([np.nan if x is None else x for x in s], dtype=float) for s in scores.values()]
    squares = sum(float(np.nansum((a - np.nanmean(a)) ** 2)) for a in arms if np.sum(~np.isnan(a)) > 1)
    df = sum(int(np.sum(~np.isnan(a))) - 1 for a in arms if np.sum(~np.isnan(a)) > 1)
    sd = math.sqrt(squares / df) if df else None
    cross = square_a = square_b = 0.0
    for a, b in itertools.combinations(arms, 2):
        both = ~np.isnan(a) & ~np.isnan(b)
        if both.sum() < 2:
            continue
        da, db = a[both] - a[both].mean(), b[both] - b[both].mean()
        cross, square_a, square_b = cross + float(da @ db), square_a + float(da @ da), square_b + float(db @ db)
    correlation = cross / math.sqrt(square_a * square_b) if square_a > 0 and square_b > 0 else None
    return sd, correlation
