"""`search.select.verdict`: paired and Welch's t comparisons (against scipy), verdict and trade-off lines."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from search.select.verdict import PAIRED, WELCH, Comparison, beats_baseline, compare, tradeoff_line, verdict_line


def test_welch_interval_matches_a_hand_computation():
    """Welch by hand: 4 against 5 seeds; Welch-Satterthwaite gives df 4.98, t(0.975, 5) = 2.571."""
    candidate, baseline = [0.61, 0.62, 0.63, 0.62], [0.58, 0.62, 0.60, 0.57, 0.63]
    vc, vb = np.var(candidate, ddof=1) / 4, np.var(baseline, ddof=1) / 5
    assert (vc + vb) ** 2 / (vc**2 / 3 + vb**2 / 4) == pytest.approx(4.98, abs=0.01)
    c = compare(candidate, baseline)
    assert c.difference == pytest.approx(0.02)
    assert c.high - c.difference == pytest.approx(2.571 * np.sqrt(vc + vb), rel=0.005)
    assert c.high - c.difference == pytest.approx(c.difference - c.low)
    df = (vc + vb) ** 2 / (vc**2 / 3 + vb**2 / 4)
    assert c.p_value == pytest.approx(2 * stats.t.sf(0.02 / np.sqrt(vc + vb), df), rel=1e-6)  # two-sided, from t's tail


def test_clear_win():
    rng = np.random.default_rng(1)
    c = compare(rng.normal(0.60, 0.01, 5), rng.normal(0.55, 0.01, 5))
    assert beats_baseline(c)
    assert c.method == "Welch's t" and c.n_candidate == c.n_baseline == 5
    assert 0 < c.low < c.difference < c.high and c.p_value < 0.01
    assert verdict_line(c).startswith("improves mAP50-95 by +0.0")
    assert "95% interval [+" in verdict_line(c) and "Welch's t" in verdict_line(c)


def test_clear_loss():
    rng = np.random.default_rng(2)
    c = compare(rng.normal(0.53, 0.01, 4), rng.normal(0.57, 0.014, 4))
    assert not beats_baseline(c)
    assert c.high < 0
    line = verdict_line(c, "mAP50")
    assert line.startswith(f"lowers mAP50 by {-c.difference:.4f} (") and "by -" not in line  # no double negative
    assert f"interval [{c.low:+.4f}, {c.high:+.4f}]" in line  # the signed difference stays in the interval


def test_pure_noise_interval_covers_zero():
    rng = np.random.default_rng(3)
    covered = improves = 0
    for _ in range(200):
        candidate, baseline = rng.normal(0.569, 0.014, 5), rng.normal(0.569, 0.014, 5)
        c = compare(candidate, baseline)
        covered += c.low <= 0 <= c.high
        welch = stats.ttest_ind(candidate, baseline, equal_var=False)  # scipy's decision at 5%, not our interval
        assert beats_baseline(c) == (welch.pvalue < 0.05 and welch.statistic > 0)
        improves += beats_baseline(c)
        assert verdict_line(c).startswith("no difference beyond seed noise") == (c.low <= 0 <= c.high)
    assert covered >= 180  # nominal 95%: 190 expected
    assert improves <= 10  # a false "improves" is one side of the 5%: 5 expected


def test_one_score_each_has_no_interval():
    c = compare([0.6], [0.5])
    assert c.low is None and c.high is None and c.p_value is None and c.candidate_sd is None
    assert c.difference == pytest.approx(0.1)
    assert not beats_baseline(c)
    line = verdict_line(c)
    assert line.startswith("cannot be told from seed noise: mAP50-95 +0.1000") and "1 vs 1" in line


def test_identical_scores_have_no_interval():
    c = compare([0.6, 0.6, 0.6], [0.5, 0.5, 0.5])
    assert c.low is None and not beats_baseline(c)
    assert c.candidate_sd == 0.0
    assert "identical" in verdict_line(c)


def test_one_side_constant_still_compares():
    c = compare([0.6, 0.6, 0.6], [0.50, 0.51, 0.49])
    assert c.method == "Welch's t" and beats_baseline(c)


@pytest.mark.parametrize("candidate, baseline", [([], [0.5]), ([0.5, float("nan")], [0.5, 0.4])])
def test_bad_scores_raise(candidate, baseline):
    with pytest.raises(ValueError):
        compare(candidate, baseline)


def test_bad_confidence_raises():
    with pytest.raises(ValueError, match="confidence"):
        compare([0.5, 0.6], [0.5, 0.6], confidence=95)


def test_confidence_widens_interval():
    a, b = [0.60, 0.62, 0.59, 0.61], [0.57, 0.58, 0.56, 0.59]
    narrow, wide = compare(a, b, 0.8), compare(a, b, 0.99)
    assert wide.low < narrow.low and wide.high > narrow.high
    assert verdict_line(wide).count("99% interval") == 1


def test_verdict_line_format():
    c = Comparison(0.6, 0.01, 0.5877, 0.01, 0.0123, 0.0041, 0.0205, 0.012, "Welch's t", 5, 5, 0.95)
    expected = "improves mAP50-95 by +0.0123 (95% interval [+0.0041, +0.0205], Welch's t, p=0.012, 5 vs 5 seeds)"
    assert verdict_line(c) == expected


@pytest.mark.parametrize(
    "candidate, expected",
    [
        ({"precision": 0.741, "recall": 0.537}, "precision +0.041, recall -0.063: trades recall for precision"),
        ({"precision": 0.650, "recall": 0.650}, "precision -0.050, recall +0.050: trades precision for recall"),
        ({"precision": 0.720, "recall": 0.620}, "raises both precision (+0.020) and recall (+0.020)"),
        ({"precision": 0.680, "recall": 0.580}, "lowers both precision (-0.020) and recall (-0.020)"),
        ({"precision": 0.702, "recall": 0.510}, "lowers recall (-0.090), precision flat (+0.002)"),
        ({"precision": 0.703, "recall": 0.596}, None),
    ],
)
def test_tradeoff_line(candidate, expected):
    assert tradeoff_line(candidate, {"precision": 0.700, "recall": 0.600}) == expected


def correlated(n: int, rho: float, gain: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Candidate and baseline scores of ``n`` seeds, sd 0.004, correlation ``rho`` within a seed."""
    rng = np.random.default_rng(seed)
    shared = rng.standard_normal(n)
    side = lambda: 0.004 * (np.sqrt(rho) * shared + np.sqrt(1 - rho) * rng.standard_normal(n))  # noqa: E731
    return 0.5 + gain + side(), 0.5 + side()


def test_paired_when_same_seed_scores_correlate():
    c, b = correlated(6, 0.8, 0.004, seed=1)
    found = compare(list(c), list(b), 0.9, paired=True)
    expected = stats.ttest_rel(c, b)
    assert found.method == PAIRED and found.n_pairs == 6 and found.correlation == pytest.approx(np.corrcoef(c, b)[0, 1])
    assert (found.low, found.high) == pytest.approx(tuple(expected.confidence_interval(0.9)))
    assert found.p_value == pytest.approx(expected.pvalue)
    unpaired = compare(list(c), list(b), 0.9)
    assert unpaired.method == WELCH and unpaired.high - unpaired.low > found.high - found.low  # pairing narrows it
    line = verdict_line(found)
    p = "p<0.001" if found.p_value < 0.001 else f"p={found.p_value:.3f}"
    assert "90% interval" in line and f"paired t, {p}, 6 same-seed pairs, r=+" in line


def test_welch_when_the_correlation_is_not_positive_or_pairs_are_few():
    c, b = correlated(6, 0.0, 0.0, seed=2)
    c = c - 2 * (b - b.mean())  # same-seed scores now move against each other
    found = compare(list(c), list(b), paired=True)
    assert found.correlation < 0 and found.method == WELCH and found.n_pairs == 0
    assert (found.low, found.high) == pytest.approx(tuple(stats.ttest_ind(c, b, equal_var=False).confidence_interval()))
    few = compare([0.51, 0.52], [0.50, 0.51], paired=True)
    assert few.method == WELCH and few.correlation is None


def test_failed_runs_leave_their_seed_unpaired():
    c, b = correlated(6, 0.9, 0.003, seed=3)
    candidate, baseline = [*c[:5], None], [None, *b[1:]]  # seed 1's baseline and seed 6's candidate failed
    found = compare(candidate, baseline, paired=True)
    assert found.method == PAIRED and found.n_pairs == 4
    assert (found.low, found.high) == pytest.approx(tuple(stats.ttest_rel(c[1:5], b[1:5]).confidence_interval()))
    welch = compare(candidate, baseline, paired=True, pairing=False)  # decided beforehand: every completed run counts
    assert welch.method == WELCH and (welch.n_candidate, welch.n_baseline) == (5, 5)
    with pytest.raises(ValueError, match="one entry per seed"):
        compare([0.5, 0.6], [0.5], paired=True)


def test_pairing_decided_beforehand_overrides_the_measured_correlation():
    c, b = correlated(5, 0.0, 0.0, seed=4)
    c = c - 2 * (b - b.mean())
    assert compare(list(c), list(b), paired=True, pairing=True).method == PAIRED
    c, b = correlated(5, 0.9, 0.0, seed=5)
    assert compare(list(c), list(b), paired=True, pairing=False).method == WELCH
