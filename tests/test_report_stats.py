"""The report's statistics: bootstrap intervals, Mann-Whitney limits, Holm and Benjamini-Hochberg."""

import numpy as np
import pytest
import scipy.stats

from bench.report.stats import adjust_p, bootstrap_medians, holm, ratio_ci, smallest_possible_p


def test_holm_by_hand():
    # Sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> running max 0.02, 0.03, 0.06, 0.06.
    p = np.array([0.01, 0.04, 0.03, 0.005])
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_adjusted_p_values_never_shrink_and_nan_is_not_counted():
    p = np.array([0.2, np.nan, 0.001, 0.5, 0.04])
    adjusted = adjust_p(p, "holm")
    assert np.isnan(adjusted[1])
    assert np.all(adjusted[~np.isnan(p)] >= p[~np.isnan(p)])
    assert adjusted[2] == pytest.approx(0.004)  # four tests made, not five
    assert adjust_p(p, "bh")[~np.isnan(p)] == pytest.approx(scipy.stats.false_discovery_control(p[~np.isnan(p)]))


def test_unknown_correction_is_refused():
    with pytest.raises(ValueError):
        adjust_p([0.1], "bonferroni-ish")


def test_smallest_possible_p():
    assert smallest_possible_p(3, 3) == pytest.approx(0.1)  # 2 / C(6, 3): never below 0.05
    assert smallest_possible_p(5, 5) == pytest.approx(2 / 252)
    assert smallest_possible_p(15, 15) < 1e-5


@pytest.mark.parametrize("n", [5, 6, 15])
def test_bootstrap_medians_match_a_direct_bootstrap(n):
    sample = np.random.default_rng(n).lognormal(0, 0.3, n)
    ours = bootstrap_medians([sample], n_resamples=20_000)[0]
    direct = np.median(np.random.default_rng(1).choice(sample, size=(20_000, n)), axis=1)
    # Same distribution: the empirical CDFs agree everywhere (Kolmogorov-Smirnov distance).
    grid = np.union1d(ours, direct)
    distance = (
        np.abs(np.searchsorted(np.sort(ours), grid, "right") - np.searchsorted(np.sort(direct), grid, "right")) / 20_000
    )
    assert distance.max() < 0.02


def test_ratio_interval_agrees_with_scipy_bootstrap():
    rng = np.random.default_rng(3)
    a, b = rng.lognormal(0, 0.05, 15), 1.5 * rng.lognormal(0, 0.05, 15)
    low, high = ratio_ci([b], [a], n_resamples=20_000)
    reference = scipy.stats.bootstrap(
        (b, a),
        lambda x, y, axis=-1: np.median(x, axis=axis) / np.median(y, axis=axis),
        n_resamples=20_000,
        method="percentile",
        vectorized=True,
    ).confidence_interval
    assert (low[0], high[0]) == pytest.approx((reference.low, reference.high), rel=0.03)


def test_ratio_interval_covers_the_true_ratio():
    rng = np.random.default_rng(4)
    numerators = [2.0 * rng.lognormal(0, 0.1, 15) for _ in range(400)]
    denominators = [rng.lognormal(0, 0.1, 15) for _ in range(400)]
    low, high = ratio_ci(numerators, denominators)
    coverage = np.mean((low <= 2.0) & (2.0 <= high))
    assert 0.85 <= coverage <= 1.0
    assert ratio_ci([], [])[0].size == 0
