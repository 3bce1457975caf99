"""Did attention beat the baseline? Scores of several seeds per side, compared beyond seed noise.

Seed noise of one proxy run is as large as the effect of attention (DESIGN.md, "Signal and noise of
proxy runs"), so a candidate counts as better only when a confidence interval of the difference of
mean scores lies above 0. The test is Welch's t (unequal variances, Welch-Satterthwaite degrees of
freedom), with the t distribution from scipy.

Degenerate inputs get no interval (``low``, ``high`` and ``p_value`` are None, and the verdict says
why) rather than a made-up one: with one score on a side the seed noise of that side is unknown, and
when every score on both sides is identical there is no noise to measure (most often the seed was
not varied). A bootstrap would not help: it cannot invent the variance that one score lacks.
Scores are in the metric's own units (mAP50-95: a fraction in [0, 1]).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

WELCH = "Welch's t"
TRADEOFF_THRESHOLD = 0.005  # precision/recall moves smaller than this (absolute) count as flat


@dataclass(frozen=True)
class Comparison:
    """Candidate scores against baseline scores, one score per seed on each side.

    ``difference`` is candidate mean - baseline mean; ``[low, high]`` its interval at ``confidence``
    and ``p_value`` the two-sided p of "no difference" (all three None when undefined, see module
    docstring); an ``sd`` is the sample standard deviation (ddof 1), None with a single score.
    ``method`` names the test, or says why there is none.
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


def _scores(values: Sequence[float], side: str) -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    if x.size == 0:
        raise ValueError(f"no {side} scores to compare")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{side} scores must be finite numbers, got {list(values)}")
    return x


def _sd(x: np.ndarray) -> float | None:
    return float(np.std(x, ddof=1)) if x.size > 1 else None


def compare(candidate: Sequence[float], baseline: Sequence[float], confidence: float = 0.95) -> Comparison:
    """Welch's t comparison of ``candidate`` against ``baseline`` scores (one per seed each).

    Raises ``ValueError`` for an empty side, non-finite scores or ``confidence`` outside (0, 1).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    c, b = _scores(candidate, "candidate"), _scores(baseline, "baseline")
    diff = float(c.mean() - b.mean())
    common = dict(
        candidate_mean=float(c.mean()), candidate_sd=_sd(c), baseline_mean=float(b.mean()), baseline_sd=_sd(b),
        difference=diff, n_candidate=int(c.size), n_baseline=int(b.size), confidence=confidence,
    )  # fmt: skip
    if c.size < 2 or b.size < 2:
        why = f"no interval: seed noise needs at least 2 scores per side, got {c.size} vs {b.size}"
        return Comparison(low=None, high=None, p_value=None, method=why, **common)
    if c.max() == c.min() and b.max() == b.min():
        why = "no interval: every score is identical on both sides, so seed noise cannot be measured"
        return Comparison(low=None, high=None, p_value=None, method=why, **common)
    vc, vb = float(c.var(ddof=1)) / c.size, float(b.var(ddof=1)) / b.size
    se = math.sqrt(vc + vb)
    df = (vc + vb) ** 2 / (vc**2 / (c.size - 1) + vb**2 / (b.size - 1))
    t = diff / se
    half = float(stats.t.ppf(0.5 + confidence / 2.0, df)) * se
    p = float(2.0 * stats.t.sf(abs(t), df))
    return Comparison(low=diff - half, high=diff + half, p_value=p, method=WELCH, **common)


def beats_baseline(c: Comparison) -> bool:
    """True only when the interval of the difference lies entirely above 0."""
    return c.low is not None and c.low > 0


def _p_text(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def verdict_line(c: Comparison, metric: str = "mAP50-95") -> str:
    """One plain sentence: improves, lowers, or no difference beyond seed noise, with the interval."""
    seeds = f"{c.n_candidate} vs {c.n_baseline} seeds"
    if c.low is None or c.high is None or c.p_value is None:
        return f"cannot be told from seed noise: {metric} {c.difference:+.4f} ({c.method})"
    detail = (
        f"{c.confidence * 100:g}% interval [{c.low:+.4f}, {c.high:+.4f}], {c.method}, {_p_text(c.p_value)}, {seeds}"
    )
    if c.low > 0:
        return f"improves {metric} by {c.difference:+.4f} ({detail})"
    if c.high < 0:
        return f"lowers {metric} by {c.difference:+.4f} ({detail})"
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
