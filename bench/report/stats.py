"""Statistics for comparisons: bootstrap intervals, noise shrinkage, multiple comparisons.

- ``ratio_ci``: 95% percentile-bootstrap intervals for ratios of medians
  (MLX steps/s over NumPy steps/s), for many pairs at once.
- ``fit_noise_prior`` and ``shrink_variances``: empirical-Bayes shrinkage of
  many small-sample variances towards their common typical value (the
  moderated variances of Smyth's limma, 2004): with 3 runs of a release, one
  case's own spread is too rough to test on, the spread of all cases is not.
- ``adjust_p``: Holm (family-wise error) or Benjamini-Hochberg (false discovery
  rate) adjusted p-values.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.special
import scipy.stats

CONFIDENCE = 0.95
N_RESAMPLES = 2_000
SEED = 20_240_601  # fixed, so a report run twice on the same files writes the same intervals
_BLOCK = 2_000  # pairs bootstrapped at once
CORRECTIONS = ("holm", "bh")


def _resample_plan(n: int, n_resamples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the two middle order statistics of each resample of n sorted values."""
    draws = np.sort(rng.integers(0, n, size=(n_resamples, n)), axis=1)
    return draws[:, (n - 1) // 2], draws[:, n // 2]  # the same position twice when n is odd


def bootstrap_medians(
    samples: Sequence[np.ndarray],
    n_resamples: int = N_RESAMPLES,
    rng: np.random.Generator | None = None,
    plans: dict | None = None,
) -> list[np.ndarray]:
    """n_resamples bootstrap medians of each sample (resampled with replacement).

    scipy.stats.bootstrap costs milliseconds per call, and a report over 1,000
    runs needs tens of thousands of intervals. Sorting each sample first makes
    the median of a resample the value at the median of the drawn positions, so
    one plan of drawn positions per sample size serves every sample of that
    size: one gather per sample instead of a median of n_resamples x n values.
    Samples of one size share the plan (common random numbers); each sample's
    bootstrap distribution is still exactly its own.
    """
    rng = rng if rng is not None else np.random.default_rng(SEED)
    plans = plans if plans is not None else {}  # sample size -> positions; reused across calls
    medians = []
    for sample in samples:
        ordered = np.sort(np.asarray(sample, dtype=float))
        if len(ordered) not in plans:
            plans[len(ordered)] = _resample_plan(len(ordered), n_resamples, rng)
        low, high = plans[len(ordered)]
        medians.append((ordered[low] + ordered[high]) / 2)
    return medians


def ratio_ci(
    numerators: Sequence[np.ndarray],
    denominators: Sequence[np.ndarray],
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile-bootstrap interval of median(num) / median(den) for each pair of samples.

    The two samples of a pair are independent measurements (different cases),
    so each is resampled on its own: numerators and denominators draw from
    different random streams.
    """
    tail = (1 - confidence) / 2
    rng_num, rng_den = np.random.default_rng(seed), np.random.default_rng(seed + 1)
    plans_num, plans_den = {}, {}
    bounds = []
    # In blocks, so memory stays near BLOCK x n_resamples floats however many pairs there are.
    for start in range(0, len(numerators), _BLOCK):
        num = np.array(bootstrap_medians(numerators[start : start + _BLOCK], n_resamples, rng_num, plans_num))
        den = np.array(bootstrap_medians(denominators[start : start + _BLOCK], n_resamples, rng_den, plans_den))
        bounds.append(np.quantile(num / den, [tail, 1 - tail], axis=1).reshape(2, -1))
    if not bounds:
        return np.array([]), np.array([])
    low, high = np.concatenate(bounds, axis=1)
    return low, high


def trigamma_inverse(value: float) -> float:
    """The x > 0 with trigamma(x) = value (Newton's method, as limma's trigammaInverse)."""
    if value > 1e7:
        return 1 / np.sqrt(value)
    if value < 1e-6:
        return 1 / value
    x = 0.5 + 1 / value
    for _ in range(50):
        tri = float(scipy.special.polygamma(1, x))
        step = tri * (1 - tri / value) / float(scipy.special.polygamma(2, x))
        x += step
        if -step / x < 1e-8:
            break
    return x


def fit_noise_prior(variances, dfs) -> tuple[float, float]:
    """(s0^2, d0): the typical variance of many cases and how many degrees of freedom it is worth.

    Fits a scaled inverse chi-square prior to sample variances s^2 with d degrees
    of freedom each, by the moments of log s^2 (limma's fitFDist). d0 is
    infinite when the variances spread no more than sampling alone explains; it
    is 0 (no prior) with fewer than two usable variances.
    """
    variances, dfs = np.asarray(variances, dtype=float), np.asarray(dfs, dtype=float)
    usable = np.isfinite(variances) & (variances > 0) & (dfs > 0)
    if usable.sum() < 2:
        return np.nan, 0.0
    half = dfs[usable] / 2
    # log s^2 of a scaled chi-square has mean log s0^2 + digamma(d/2) - log(d/2) and variance trigamma(d/2).
    centred = np.log(variances[usable]) - scipy.special.digamma(half) + np.log(half)
    mean = float(np.mean(centred))
    excess = float(np.var(centred, ddof=1) - np.mean(scipy.special.polygamma(1, half)))
    if excess <= 0:
        return float(np.exp(mean)), np.inf
    d0 = 2 * trigamma_inverse(excess)
    return float(np.exp(mean + scipy.special.digamma(d0 / 2) - np.log(d0 / 2))), float(d0)


def shrink_variances(variances, dfs, prior_variance: float, prior_df: float) -> tuple[np.ndarray, np.ndarray]:
    """(variance, degrees of freedom) of each case after shrinkage towards the prior, never below its own.

    The posterior (d0 s0^2 + d s^2) / (d0 + d) with d0 + d degrees of freedom;
    where a case's own variance is the larger (one disturbed run, say), its own
    is kept: shrinking it down would turn that disturbance into a verdict.
    Without a prior (d0 = 0) each case keeps its own variance and d.
    """
    variances, dfs = np.asarray(variances, dtype=float), np.asarray(dfs, dtype=float)
    own = np.where(dfs > 0, variances, np.nan)
    if not prior_df or not np.isfinite(prior_variance):
        return own, dfs.copy()
    if np.isinf(prior_df):
        posterior = np.full(variances.shape, prior_variance)
    else:
        posterior = (prior_df * prior_variance + dfs * np.nan_to_num(own)) / (prior_df + dfs)
    return np.fmax(posterior, own), dfs + prior_df


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values (family-wise error rate) of finite p-values."""
    m = len(p_values)
    order = np.argsort(p_values, kind="stable")
    # The i-th smallest is multiplied by (m - i); adjusted values never decrease along the order.
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p_values[order]))
    result = np.empty(m)
    result[order] = adjusted
    return result


def adjust_p(p_values, method: str = "holm") -> np.ndarray:
    """Adjusted p-values for one family of tests; NaN (no test made) stays NaN and is not counted."""
    p_values = np.asarray(p_values, dtype=float)
    adjusted = np.full(p_values.shape, np.nan)
    tested = ~np.isnan(p_values)
    if not tested.any():
        return adjusted
    if method == "holm":
        adjusted[tested] = holm(p_values[tested])
    elif method == "bh":
        adjusted[tested] = scipy.stats.false_discovery_control(p_values[tested], method="bh")
    else:
        raise ValueError(f"unknown correction {method!r}; expected one of {', '.join(CORRECTIONS)}")
    return adjusted
