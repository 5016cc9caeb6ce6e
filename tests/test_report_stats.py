"""The statistics: the verdict engine's noise shrinkage, Holm and Benjamini-Hochberg."""

import numpy as np
import pytest
import scipy.special
import scipy.stats

from bench.stats.verdict_engine import adjust_p, fit_noise_prior, holm, shrink_variances, trigamma_inverse


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


@pytest.mark.parametrize("x", [0.05, 0.7, 3.0, 40.0])
def test_trigamma_inverse_inverts_trigamma(x):
    assert trigamma_inverse(float(scipy.special.polygamma(1, x))) == pytest.approx(x, rel=1e-6)


@pytest.mark.parametrize("d0", [4.0, 12.0])
def test_noise_prior_recovers_a_known_prior(d0):
    # True variances drawn from the scaled inverse chi-square prior (s0^2 = 4e-4, d0), then
    # sample variances with 4 degrees of freedom each: the fit must find both back.
    rng = np.random.default_rng(7)
    true = 4e-4 * d0 / rng.chisquare(d0, 20_000)
    sample = true * rng.chisquare(4, 20_000) / 4
    s0, fitted = fit_noise_prior(sample, np.full(20_000, 4.0))
    assert s0 == pytest.approx(4e-4, rel=0.05)
    assert fitted == pytest.approx(d0, rel=0.15)


def test_noise_prior_of_equal_variances_is_infinitely_sure():
    rng = np.random.default_rng(8)
    sample = 1e-4 * rng.chisquare(6, 5_000) / 6  # one true variance: spread from sampling alone
    s0, d0 = fit_noise_prior(sample, np.full(5_000, 6.0))
    assert s0 == pytest.approx(1e-4, rel=0.05) and d0 > 100


def test_noise_prior_needs_two_usable_variances():
    assert fit_noise_prior([1e-4, 0.0, np.nan], [4, 4, 4])[1] == 0


def test_shrinkage_pulls_small_variances_up_and_keeps_large_ones():
    own = np.array([1e-6, 4e-4, 0.05, np.nan])
    dfs = np.array([4.0, 4.0, 4.0, 0.0])
    shrunk, df = shrink_variances(own, dfs, 4e-4, 12.0)
    assert shrunk[0] == pytest.approx((12 * 4e-4 + 4 * 1e-6) / 16)  # pulled up towards the prior
    assert shrunk[1] == pytest.approx(4e-4)
    assert shrunk[2] == 0.05  # a disturbed case keeps its own, larger noise
    assert shrunk[3] == pytest.approx(4e-4) and df[3] == 12  # no runs to judge by: the prior alone
    assert list(df[:3]) == [16, 16, 16]
    without, own_df = shrink_variances(own, dfs, np.nan, 0.0)
    assert list(own_df) == list(dfs) and without[2] == 0.05 and np.isnan(without[3])
