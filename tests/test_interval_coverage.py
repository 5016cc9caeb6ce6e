"""The 95% intervals cover the truth 95% of the time, at 3 passes and at 10 (bench.stats.intervals), in simulation.

The simulation is the model the intervals assume, with every level the suite measures
(docs/stable-numbers.md, "Intervals"; docs/measurement.md, "Where the variance lies"):

- each case has a true log steps/s (0 here: only the error matters);
- each run moves each case by a between-run effect, normal with standard deviation TAU
  (the run term), which no number of passes averages away;
- each pass adds a pass effect, normal with the case's own variance; the cases' variances
  differ, drawn from a scaled inverse chi-square (S0, D0), the spread the noise prior fits;
- a case's figure is the median of its passes.

The suite's run term grows with a case's noise (bench.stats.run_terms): a second simulation
draws each case's between-run effect with variance SCALE x v^POWER, v the case's own pass
variance, and gives the intervals that term read at each case's moderated variance, with
Student's t or with a calibrated quantile (2.03, the suite's own for steps/s from its first nine pairs).

Each run's intervals come from log_intervals exactly as a session's do: the prior fitted
over the run's cases, the run term added as it is, with its degrees of freedom. Coverage is
counted over RUNS x CASES intervals; with 8,000 of them its standard error is about 0.0025,
so the 0.93-0.97 band is five standard errors wide either side of 0.95. Run it alone:

    python -m pytest -q tests/test_interval_coverage.py -p no:randomly
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.stats.intervals import RunTerm, log_intervals

RUNS, CASES = 200, 40
TAU = 0.05  # between-run sd (5%)
S0, D0 = 0.08, 8  # the pass-to-pass sd typical of the cases, and how far the cases' own spread around it


SCALE, POWER = 3.0, 1.5  # a term that grows with the noise: about 4% between runs at S0


def coverage(
    passes: int, seed: int, tau: float = TAU, term_df: float = math.inf, growing: RunTerm | None = None
) -> tuple[float, float]:
    """(share of intervals holding the truth, median half-width in log) over RUNS simulated runs.

    growing: the between-run effect's variance is growing.between(the case's own pass variance), and
    the intervals are given that term; otherwise it is tau^2, estimated with term_df degrees of freedom.
    """
    rng = np.random.default_rng(seed)
    hits, halves = [], []
    for _ in range(RUNS):
        variances = S0**2 * D0 / rng.chisquare(D0, CASES)
        if growing is None:
            run_effect = rng.normal(0.0, tau, CASES)
            # A run term estimated with term_df degrees of freedom is itself a scaled chi-square draw around tau^2.
            estimate = tau**2 if math.isinf(term_df) else tau**2 * rng.chisquare(term_df) / term_df
            term = RunTerm(estimate, term_df)
        else:
            run_effect = rng.normal(0.0, np.sqrt([growing.between(v) for v in variances]))
            term = growing
        samples = [run_effect[i] + rng.normal(0.0, math.sqrt(variances[i]), passes) for i in range(CASES)]
        intervals = log_intervals(samples, [float(np.median(s)) for s in samples], [term] * CASES)
        for interval in intervals:
            hits.append(abs(interval.centre) <= interval.half)
            halves.append(interval.half)
    return float(np.mean(hits)), float(np.median(halves))


@pytest.mark.parametrize("passes", [3, 10])
def test_coverage_is_95_percent_at_3_and_10_passes(passes):
    share, _ = coverage(passes, seed=passes)
    assert 0.93 <= share <= 0.97


@pytest.mark.parametrize("passes", [3, 10])
def test_coverage_holds_with_an_estimated_run_term(passes):
    share, _ = coverage(passes, seed=100 + passes, term_df=20)
    assert 0.93 <= share <= 0.97


@pytest.mark.parametrize("passes", [3, 10])
@pytest.mark.parametrize("quantile", [math.nan, 2.03], ids=["t", "calibrated quantile"])
def test_coverage_holds_with_a_term_that_grows_with_the_noise(passes, quantile):
    # The term is read at each case's moderated variance, not its true one, and still does not shrink with passes.
    growing = RunTerm(0.0, math.inf, "simulation", SCALE, POWER, quantile)
    share, _ = coverage(passes, seed=200 + passes, growing=growing)
    assert 0.93 <= share <= 0.97


def test_more_passes_narrow_the_interval_but_never_below_the_run_term():
    _, at_3 = coverage(3, seed=7)
    _, at_10 = coverage(10, seed=8)
    assert at_10 < at_3
    # The run term is added as it is: ten passes cannot take the interval below 1.96 x TAU.
    assert at_10 > 1.96 * TAU


def test_without_the_run_term_the_intervals_undercover():
    """The design's reason: a run-level effect left out makes the intervals overconfident, the more passes the worse."""
    rng_share = []
    for passes in (3, 10):
        rng = np.random.default_rng(passes)
        hits = []
        for _ in range(RUNS // 4):
            variances = S0**2 * D0 / rng.chisquare(D0, CASES)
            run_effect = rng.normal(0.0, TAU, CASES)
            samples = [run_effect[i] + rng.normal(0.0, math.sqrt(variances[i]), passes) for i in range(CASES)]
            for interval in log_intervals(samples, [float(np.median(s)) for s in samples]):
                hits.append(abs(interval.centre) <= interval.half)
        rng_share.append(float(np.mean(hits)))
    assert rng_share[0] < 0.95 and rng_share[1] < rng_share[0]
