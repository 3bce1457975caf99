"""Did attention beat the baseline? Scores of several seeds per side, compared beyond seed noise.

Seed noise of one proxy run is as large as the effect of attention (results/benchmarks/seed_noise.md),
so a candidate counts as better only when a confidence interval of the difference of
mean scores lies above 0. When both sides were trained with the same seeds (``paired=True``: the
i-th score of each side comes from the i-th seed, which fixes data order and augmentation), the test
is the paired t on the per-seed differences whenever pairing lowers their variance, i.e. the scores
of one seed correlate positively across the two sides (measured from at least `MIN_PAIRS` pairs, or
decided beforehand on other data: ``pairing``); otherwise it is Welch's t (unequal variances,
Welch-Satterthwaite degrees of freedom). Both come from scipy (`scipy.stats.ttest_rel`,
`scipy.stats.ttest_ind` with ``equal_var=False``), intervals included.

Degenerate inputs get no interval (``low``, ``high`` and ``p_value`` are None, and the verdict says
why) rather than a made-up one: with one score on a side the seed noise of that side is unknown, and
when every score on both sides is identical there is no noise to measure (most often the seed was
not varied). A bootstrap would not help: it cannot invent the variance that one score lacks.
Scores are in the metric's own units (mAP50-95: a fraction in [0, 1]).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

WELCH = "Welch's t"
PAIRED = "paired t"
MIN_PAIRS = 3  # same-seed pairs needed to measure their correlation and pair them; fewer: Welch's t
TRADEOFF_THRESHOLD = 0.005  # precision/recall moves smaller than this (absolute) count as flat


@dataclass(frozen=True)
class Comparison:
    """Candidate scores against baseline scores, one score per seed on each side.

    ``difference`` is candidate mean - baseline mean; ``[low, high]`` its interval at ``confidence``
    and ``p_value`` the two-sided p of "no difference" (all three None when undefined, see module
    docstring); an ``sd`` is the sample standard deviation (ddof 1), None with a single score.
    ``method`` names the test, or says why there is none. ``correlation`` is the sample correlation of
    same-seed scores (paired input with at least `MIN_PAIRS` pairs, else None); with the paired test,
    means, sds and counts are those of the ``n_pairs`` complete pairs.
    """

    candidate_mean: float
    candidate_sd: float | None
    baseline_mean: float
    baseline_sd: float | None
    difference: float
    low: float | None
    high: float | None
    p_value: float | None
    method: str
    n_candidate: int
    n_baseline: int
    confidence: float
    correlation: float | None = None
    n_pairs: int = 0


def _scores(values: Sequence[float], side: str) -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    if x.size == 0:
        raise ValueError(f"no {side} scores to compare")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{side} scores must be finite numbers, got {list(values)}")
    return x


def _sd(x: np.ndarray) -> float | None:
    return float(np.std(x, ddof=1)) if x.size > 1 else None


def _summary(c: np.ndarray, b: np.ndarray, confidence: float) -> dict:
    return dict(
        candidate_mean=float(c.mean()), candidate_sd=_sd(c), baseline_mean=float(b.mean()), baseline_sd=_sd(b),
        difference=float(c.mean() - b.mean()), n_candidate=int(c.size), n_baseline=int(b.size), confidence=confidence,
    )


def _correlation(c: np.ndarray, b: np.ndarray) -> float | None:
    """Sample correlation of same-seed scores; None below `MIN_PAIRS` pairs or with a constant side."""
    if c.size < MIN_PAIRS or np.ptp(c) == 0 or np.ptp(b) == 0:
        return None
    return float(np.corrcoef(c, b)[0, 1])


def _quiet(test: Callable, *args, **kwargs):
    """``test(*args, **kwargs)`` without scipy's precision warning: a constant side (sd 0) is legitimate here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Precision loss", RuntimeWarning)
        return test(*args, **kwargs)


def compare(
    candidate: Sequence[float | None], baseline: Sequence[float | None], confidence: float = 0.95, paired: bool = False,
    pairing: bool | None = None,
) -> Comparison:
    """Compare ``candidate`` against ``baseline`` scores: paired t or Welch's t (module docstring).

    Unpaired, each side is a list of scores, one per seed. With ``paired``, both lists have one entry
    per seed in the same order, None for a run that failed (it leaves that seed unpaired). Whether to
    pair is then ``pairing`` when given (decided beforehand on other data: a choice made on the
    compared scores themselves favours the test with the smaller variance estimate, which raises the
    false-positive rate by about a third at correlation 0), else whether the pairs' own correlation is
    positive; below `MIN_PAIRS` pairs it is Welch's t either way. Raises ``ValueError`` for an empty
    side, non-finite scores, paired lists of different lengths or ``confidence`` outside (0, 1).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if paired and len(candidate) != len(baseline):
        raise ValueError(f"paired scores need one entry per seed on each side, got {len(candidate)} and {len(baseline)}")
    c = _scores([x for x in candidate if x is not None] if paired else candidate, "candidate")
    b = _scores([x for x in baseline if x is not None] if paired else baseline, "baseline")
    pairs = np.array([(x, y) for x, y in zip(candidate, baseline) if x is not None and y is not None] if paired else [])
    measured = _correlation(pairs[:, 0], pairs[:, 1]) if len(pairs) else None
    pair = (measured is not None and measured > 0) if pairing is None else pairing
    if pair and len(pairs) >= MIN_PAIRS and np.ptp(pairs[:, 0] - pairs[:, 1]) > 0:
        test = _quiet(stats.ttest_rel, pairs[:, 0], pairs[:, 1])
        common = _summary(pairs[:, 0], pairs[:, 1], confidence)
        method, n_pairs = PAIRED, len(pairs)
    else:
        common = _summary(c, b, confidence)
        if c.size < 2 or b.size < 2:
            why = f"no interval: seed noise needs at least 2 scores per side, got {c.size} vs {b.size}"
            return Comparison(low=None, high=None, p_value=None, method=why, correlation=measured, **common)
        if np.ptp(c) == 0 and np.ptp(b) == 0:
            why = "no interval: every score is identical on both sides, so seed noise cannot be measured"
            return Comparison(low=None, high=None, p_value=None, method=why, correlation=measured, **common)
        test = _quiet(stats.ttest_ind, c, b, equal_var=False)
        method, n_pairs = WELCH, 0
    interval = test.confidence_interval(confidence)
    return Comparison(low=float(interval.low), high=float(interval.high), p_value=float(test.pvalue), method=method,
                      correlation=measured, n_pairs=n_pairs, **common)


def beats_baseline(c: Comparison) -> bool:
    """True only when the interval of the difference lies entirely above 0."""
    return c.low is not None and c.low > 0


def _p_text(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def verdict_line(c: Comparison, metric: str = "mAP50-95") -> str:
    """One plain sentence: improves, lowers, or no difference beyond seed noise, with the interval."""
    seeds = f"{c.n_candidate} vs {c.n_baseline} seeds"
    if c.method == PAIRED:
        seeds = f"{c.n_pairs} same-seed pairs" + (f", r={c.correlation:+.2f}" if c.correlation is not None else "")
    if c.low is None or c.high is None or c.p_value is None:
        return f"cannot be told from seed noise: {metric} {c.difference:+.4f} ({c.method})"
    detail = (
        f"{c.confidence * 100:.3g}% interval [{c.low:+.4f}, {c.high:+.4f}], {c.method}, {_p_text(c.p_value)}, {seeds}"
    )
    if c.low > 0:
        return f"improves {metric} by {c.difference:+.4f} ({detail})"
    if c.high < 0:
        return f"lowers {metric} by {-c.difference:.4f} ({detail})"  # a loss's size: the interval keeps the sign
    return f"no difference beyond seed noise: {metric} {c.difference:+.4f} ({detail})"


def tradeoff_line(candidate: dict, baseline: dict) -> str | None:
    """How mean precision and recall move from ``baseline`` to ``candidate`` (dicts with both keys).

    None when neither moves by more than `TRADEOFF_THRESHOLD` (absolute, in the metrics' [0, 1] units).
    """
    dp = candidate["precision"] - baseline["precision"]
    dr = candidate["recall"] - baseline["recall"]
    moved_p, moved_r = abs(dp) > TRADEOFF_THRESHOLD, abs(dr) > TRADEOFF_THRESHOLD
    if not (moved_p or moved_r):
        return None
    if moved_p and moved_r:
        if dp > 0 and dr > 0:
            return f"raises both precision ({dp:+.3f}) and recall ({dr:+.3f})"
        if dp < 0 and dr < 0:
            return f"lowers both precision ({dp:+.3f}) and recall ({dr:+.3f})"
        gained, lost = ("precision", "recall") if dp > 0 else ("recall", "precision")
        return f"precision {dp:+.3f}, recall {dr:+.3f}: trades {lost} for {gained}"
    (name, d), (flat, f) = (("precision", dp), ("recall", dr)) if moved_p else (("recall", dr), ("precision", dp))
    return f"{'raises' if d > 0 else 'lowers'} {name} ({d:+.3f}), {flat} flat ({f:+.3f})"
