"""The report's bootstrap intervals: ratios of medians, for runs saved before passes existed.

- ``ratio_ci``: 95% percentile-bootstrap intervals for ratios of medians
  (MLX steps/s over NumPy steps/s), for many pairs at once.

The noise prior, Holm and Benjamini-Hochberg, and the verdicts live in the one
verdict engine (bench.stats.verdict_engine).
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
