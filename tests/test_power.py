"""`search.select.power`: minimal detectable effect, seeds needed, and seed noise measured from scores."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from search.select.power import (
    detectable_effect,
    fewest_seeds,
    paired_detectable,
    paired_power,
    power_at,
    sd_upper_bound,
    seed_noise,
    seeds_needed,
    welch_detectable,
    welch_power,
)
from search.select.verdict import compare


@pytest.mark.parametrize("seeds, correlation", [(3, 0.0), (5, 0.5), (8, 0.8)])
def test_detectable_effect_has_the_stated_power(seeds, correlation):
    """At the returned effect, the test `compare` runs rejects 80% of simulated comparisons."""
    sd, alpha = 0.004, 0.025
    effect = detectable_effect(sd, seeds, alpha, correlation)
    rng = np.random.default_rng(seeds)
    found = 0
    for _ in range(1500):
        shared = rng.standard_normal(seeds)

        def side(shared=shared):
            return sd * (np.sqrt(correlation) * shared + np.sqrt(1 - correlation) * rng.standard_normal(seeds))

        comparison = compare(list(effect + side()), list(side()), 1 - 2 * alpha, paired=correlation > 0, pairing=correlation > 0)
        found += comparison.low > 0
    assert found / 1500 == pytest.approx(0.8, abs=0.035)


def test_detectable_effect_against_scipy_power():
    """Paired: the noncentral t at n - 1 degrees of freedom. Welch's: the same expectation over the
    variance share, integrated by `scipy.stats.beta.expect` (adaptive quadrature) instead of
    Gauss-Jacobi nodes. 3 vs 3 seeds at one-sided 2.5% need about 3.5 sd unpaired (3.1 if the degrees
    of freedom were the pooled t's 4, as an earlier "about 3 sd" estimate assumed)."""
    paired = detectable_effect(1.0, 5, 0.025, 0.5)
    assert stats.nct.sf(stats.t.isf(0.025, 4), 4, paired / np.sqrt(2 * 0.5 / 5)) == pytest.approx(0.8)
    welch = detectable_effect(1.0, 3, 0.025)

    def rejects(b: float) -> float:
        return stats.nct.sf(stats.t.isf(0.025, 2 / (b * b + (1 - b) ** 2)), 4, welch / np.sqrt(2 / 3))

    assert stats.beta(1, 1).expect(rejects) == pytest.approx(0.8, abs=1e-5)
    assert welch == pytest.approx(3.51, abs=0.01)
    assert detectable_effect(1.0, 6, 0.025, 0.5) < detectable_effect(1.0, 6, 0.025, 0.0)  # pairing helps
    assert detectable_effect(0.0, 4, 0.05) == 0.0 and detectable_effect(1.0, 4, 0.05, 1.0) == 0.0


def test_seeds_needed_is_the_fewest():
    n = seeds_needed(0.01, 0.004, 0.025, 0.5)
    assert detectable_effect(0.004, n, 0.025, 0.5) <= 0.01 < detectable_effect(0.004, n - 1, 0.025, 0.5)
    by_seeds = seeds_needed(0.01, 0.004, lambda k: 0.05 / k, 0.5)  # a level that falls with the seeds
    assert detectable_effect(0.004, by_seeds, 0.05 / by_seeds, 0.5) <= 0.01
    assert seeds_needed(1e-6, 0.004, 0.025, most=50) is None


@pytest.mark.parametrize("sd, seeds, alpha, correlation, power", [
    (-1.0, 3, 0.05, 0.0, 0.8), (0.01, 1, 0.05, 0.0, 0.8), (0.01, 3, 0.05, 1.5, 0.8), (0.01, 3, 0.9, 0.0, 0.8),
])
def test_bad_input_raises(sd, seeds, alpha, correlation, power):
    with pytest.raises(ValueError):
        detectable_effect(sd, seeds, alpha, correlation, power)


def test_seed_noise_recovers_sd_and_correlation():
    rng = np.random.default_rng(0)
    shared = rng.standard_normal(300)
    scores = {f"p{i}": list(0.5 + 0.01 * i + 0.004 * (np.sqrt(0.5) * shared + np.sqrt(0.5) * rng.standard_normal(300)))
              for i in range(4)}
    scores["p0"][:100] = [None] * 100  # not run on the first seeds
    sd, correlation = seed_noise(scores)
    assert sd == pytest.approx(0.004, rel=0.05) and correlation == pytest.approx(0.5, abs=0.06)
    assert seed_noise({"a": [0.5, None], "b": [None, 0.4]}) == (None, None)


@pytest.mark.parametrize("correlation", [0.0, 0.5])
def test_power_at_inverts_detectable_effect_and_matches_simulated_tests(correlation):
    """At the detectable effect the power is 80%; at 0.01 with 8 seeds it matches the rejection rate of the
    scipy t test on simulated scores (4000 draws, within 3 standard errors)."""
    sd, seeds, alpha = 0.0045, 8, 0.025
    assert power_at(detectable_effect(sd, seeds, alpha, correlation), sd, seeds, alpha, correlation) == pytest.approx(0.8, abs=1e-4)
    rng = np.random.default_rng(0)
    shared = rng.standard_normal((4000, seeds)) * np.sqrt(correlation)
    base = sd * (shared + np.sqrt(1 - correlation) * rng.standard_normal((4000, seeds)))
    arm = 0.01 + sd * (shared + np.sqrt(1 - correlation) * rng.standard_normal((4000, seeds)))
    if correlation > 0:
        p = stats.ttest_rel(arm, base, axis=1, alternative="greater").pvalue
    else:
        p = stats.ttest_ind(arm, base, axis=1, equal_var=False, alternative="greater").pvalue
    simulated, expected = float(np.mean(p < alpha)), power_at(0.01, sd, seeds, alpha, correlation)
    assert abs(simulated - expected) < 3 * np.sqrt(expected * (1 - expected) / 4000)


def test_measured_spread_functions():
    """From a measured sd of same-seed differences: the paired t at pairs - 1 degrees of freedom, equal to
    `detectable_effect` at the difference's sd; Welch's at the two sides' sds with Welch-Satterthwaite's
    degrees of freedom; both scale with the sd, and the power inverts the detectable gain."""
    sd, correlation, pairs, alpha = 0.004, 0.5, 5, 0.025
    difference_sd = sd * np.sqrt(2 * (1 - correlation))
    assert paired_detectable(difference_sd, pairs, alpha) == pytest.approx(detectable_effect(sd, pairs, alpha, correlation))
    assert paired_detectable(2 * difference_sd, pairs, alpha) == pytest.approx(2 * paired_detectable(difference_sd, pairs, alpha))
    assert paired_power(paired_detectable(difference_sd, 3, 0.05), difference_sd, 3, 0.05) == pytest.approx(0.8, abs=1e-4)
    a, b, n = 0.01, 0.02, 4
    df = (a * a + b * b) ** 2 / ((a**4 + b**4) / (n - 1))
    gain = welch_detectable(a, b, n, alpha)
    assert stats.nct.sf(stats.t.isf(alpha, df), df, gain / np.sqrt((a * a + b * b) / n)) == pytest.approx(0.8, abs=1e-4)
    assert welch_power(gain, a, b, n, alpha) == pytest.approx(0.8, abs=1e-4)
    assert paired_detectable(0.0, 3, 0.05) == 0.0 and paired_power(0.01, 0.0, 3, 0.05) == 1.0
    assert sd_upper_bound(1.0, 2, 0.9) == pytest.approx(np.sqrt(2 / stats.chi2.ppf(0.1, 2)))
    assert fewest_seeds(0.01, lambda k: paired_detectable(difference_sd, k, alpha), least=3) == seeds_needed(
        0.01, sd, alpha, correlation)
    with pytest.raises(ValueError):
        paired_detectable(-1.0, 3, 0.05)
