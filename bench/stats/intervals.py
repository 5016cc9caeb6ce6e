"""How far a figure can be trusted: the one recipe for the 95% interval of every steps/s and every ratio.

The unit of evidence is the pass (docs/measurement.md, "How a case is timed"): a case's
steps/s is K over the median of its pass medians, and a ratio's centre is the median of its
per-pass log ratios (ratio_centre). Its interval on the log scale has two parts
(docs/stable-numbers.md, "Intervals"):

1. **Within the run**: the spread of the figure's passes. With a few passes a case's own
   variance is a guess, so it is moderated by the run's other figures of its backend
   (bench.stats.verdict_engine's noise prior, the empirical-Bayes shrinkage the release
   verdicts use): pooled with the variance typical of the run, never below its own, with the
   posterior's degrees of freedom (its own and the prior's) for every case, the one that keeps
   its own larger variance included. That is the rule that holds 95%: over the six settings of
   the simulation in tests/test_interval_coverage.py (3 and 10 passes), t intervals held
   95.5-96.5%; giving a case that keeps its own variance only its own degrees of freedom (2 at
   three passes) made them hold up to 97.3%, over 97% in three of the six. The centre is
   a median, whose variance exceeds a mean's (by median_variance_factor: 1.35 at three
   passes), so the standard error is the median's, not the mean's.
2. **Between runs**: what stays constant within a run but moves from one run to the next
   (the moment's load, the machine's state) does not shrink with more passes. Its variance,
   the run term, grows with how noisy the figure is: scale x v^power, v the figure's
   moderated pass-to-pass variance (its noise level, whatever the number of passes), the
   scale per figure kind, backend and size class and the power per kind, both estimated
   from the suite's own repeated runs (bench.stats.run_terms). It is added to the squared
   standard error as it is, not divided by the number of passes, with Welch-Satterthwaite's
   degrees of freedom. (Records saved before the term grew with the noise carry a constant
   variance instead; it is read and added the same way.)

3. **The quantile**: the half-width is the standard error times the 95% quantile of |z| that
   the run terms' estimate found on pairs of runs it held out (z = log(x2 / x1) over the
   two runs' standard errors; bench.stats.run_terms), the split-conformal calibration of
   the interval: on the suite's own pairs the t quantile at Welch-Satterthwaite's degrees
   of freedom (three to four at the median) held 98% of the reruns, not 95%. Where the
   terms carry no quantile (estimated from one pair, or saved before), a t interval
   at those degrees of freedom.

A figure resting on one pass (a cold start, timed once per session)
has no interval: rounds of one pass share that moment's luck and are not samples
(docs/measurement.md, "Measurement rules", rule 8). It is unstable, and it does not feed
the prior.

A figure is **unstable** when its interval reaches more than UNSTABLE_HALF_WIDTH either
side of it (or it has none): the same rule in the terminal, the report and the CSVs.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from bench.stats.verdict_engine import moderate

CONFIDENCE = 0.95
UNSTABLE_HALF_WIDTH = 0.10  # a figure whose 95% interval reaches more than 10% either side is unstable
# The rule in words, for the report's page and digest; runs saved before intervals keep bench.stats.stability's.
UNSTABLE_RULE = (
    f"a 95% interval reaching more than {UNSTABLE_HALF_WIDTH:.0%} either side of the figure, or none (one pass); "
    "runs saved before intervals existed: no majority of passes within 5% of the median, rounds' IQR above 10%, "
    "or fewer than 5 rounds"
)
# Draws of the seeded simulation behind median_variance_factor: its factors are good to about 0.3%.
MEDIAN_FACTOR_DRAWS = 2**20


@dataclass(frozen=True)
class RunTerm:
    """The between-run variance of a log figure (step 2): variance + scale x noise^power, noise the figure's
    pass-to-pass variance; its degrees of freedom and where it was estimated."""

    variance: float  # a constant part, in log^2 (records saved before the term grew with the noise); 0 otherwise
    df: float  # of the estimate (inf: taken as known)
    source: str = ""
    scale: float = 0.0  # the part that grows with the figure's noise: scale x noise^power
    power: float = 0.0
    # The 95% quantile of |z| the estimate found on pairs it held out (step 3); NaN: Student's t at df.
    quantile: float = math.nan

    def between(self, noise: float) -> float:
        """The between-run variance (log^2) of a figure whose passes vary with variance `noise`."""
        grows = self.scale * max(noise, 0.0) ** self.power if self.scale > 0 and math.isfinite(noise) else 0.0
        return max(self.variance, 0.0) + grows

    def sd_pct(self, noise: float) -> float:
        """The term as a standard deviation, in %, for a figure of pass-to-pass variance `noise`."""
        return 100 * math.expm1(math.sqrt(self.between(noise)))


NO_RUN_TERM = RunTerm(0.0, math.inf, "none")


@dataclass(frozen=True)
class Interval:
    """A figure on the log scale: its centre, standard error and degrees of freedom, and the 95% half-width."""

    centre: float  # log of the figure
    se: float  # standard error of the log figure, run term included
    df: float
    se_within: float = math.nan  # the part from the run's own passes (step 1)
    noise: float = math.nan  # the moderated pass-to-pass variance the run term grows with (step 2)
    quantile: float = math.nan  # the calibrated quantile of step 3; NaN: Student's t at df

    @property
    def half(self) -> float:
        """The half-width of the 95% interval, in log (NaN without a standard error)."""
        if not (math.isfinite(self.se) and self.df > 0):
            return math.nan
        if math.isfinite(self.quantile):
            return float(self.quantile * self.se)
        return float(stats.t.ppf(0.5 + CONFIDENCE / 2, self.df) * self.se)

    @property
    def low_high(self) -> tuple[float, float]:
        """The interval's ends on the figure's own scale."""
        return math.exp(self.centre - self.half), math.exp(self.centre + self.half)

    @property
    def half_width_pct(self) -> float:
        """How far the interval reaches above the figure, in % (the larger side of a log interval)."""
        return 100 * (math.exp(self.half) - 1)

    @property
    def unstable(self) -> bool:
        """Whether the interval is too wide to trust the figure (or unknown)."""
        half = self.half
        return not math.isfinite(half) or math.exp(half) - 1 > UNSTABLE_HALF_WIDTH


@functools.lru_cache(maxsize=64)
def median_variance_factor(n: int) -> float:
    """Var(median of n normal draws) / Var(mean of them): 1 for one or two draws, 1.35 for three, pi/2 at the limit.

    A seeded simulation (MEDIAN_FACTOR_DRAWS draws), so every process gets the same factors.
    """
    if n <= 2:
        return 1.0
    rng = np.random.default_rng(n)
    draws = rng.standard_normal((MEDIAN_FACTOR_DRAWS // n + 1, n))
    return float(np.var(np.median(draws, axis=1)) * n)


def ratio_centre(logs) -> float:
    """The log of a ratio measured pass by pass: the median of its per-pass log ratios (one rule everywhere)."""
    return float(np.median(np.asarray(logs, dtype=float)))


def log_intervals(samples: list, centres: list, run_terms: list[RunTerm] | None = None) -> list[Interval]:
    """The interval of each figure from its per-pass log values (steps 1-2 of the module doc).

    samples[i]: the log values of figure i, one per pass; centres[i]: the log of the
    figure itself (the median of its passes); run_terms[i]: its between-run term
    (none given: no run term). The prior of step 1 is fitted over all the figures given:
    give one backend's figures at a time (pooled_intervals does).
    """
    terms = run_terms if run_terms is not None else [NO_RUN_TERM] * len(samples)
    n = np.array([len(s) for s in samples], dtype=float)
    variances = np.array([np.var(s, ddof=1) if len(s) > 1 else np.nan for s in samples])
    dfs = np.maximum(n - 1, 0)
    pooled, pooled_df = moderate(variances, dfs, [0] * len(samples))  # one group: the caller gives one backend
    found = []
    for count, own, own_df, centre, term in zip(n, pooled, pooled_df, centres, terms):
        if count < 2 or not np.isfinite(own):
            found.append(Interval(float(centre), math.nan, 0.0))
            continue
        within = median_variance_factor(int(count)) * own / count
        between = term.between(own)
        se = math.sqrt(within + between)
        df = welch_df(within, own_df, between, term, own)
        found.append(Interval(float(centre), se, df, math.sqrt(within), float(own), term.quantile))
    return found


def welch_df(within: float, own_df: float, between: float, term: RunTerm, noise: float) -> float:
    """Welch-Satterthwaite's degrees of freedom of within + between, between being term.between(noise).

    Two estimates make the sum: the noise (own_df degrees of freedom), which the within
    part is proportional to and the growing part of the term goes with as noise^power,
    and the term's scale (term.df). Its relative variance is
    ((within + power x growing) / total)^2 / own_df + (between / total)^2 / term.df; for a
    constant term (power 0) that is the familiar Welch-Satterthwaite sum.
    """
    total = within + between
    if between == 0:
        return float(own_df)
    growing = between - max(term.variance, 0.0) if term.power > 0 else 0.0
    relative = ((within + term.power * growing) / total) ** 2 / own_df
    if math.isfinite(term.df):
        relative += (between / total) ** 2 / term.df
    return float(1 / relative) if relative > 0 else math.inf


def pooled_intervals(
    samples: list, centres: list, groups: list, run_terms: list[RunTerm] | None = None
) -> list[Interval]:
    """log_intervals with the prior of step 1 fitted within each group (a backend), in the order given.

    Each backend's noise is its own, and a peer's cases never change MLX's intervals.
    """
    terms = run_terms if run_terms is not None else [NO_RUN_TERM] * len(samples)
    found: list = [None] * len(samples)
    for group in dict.fromkeys(groups):
        mine = [i for i, g in enumerate(groups) if g == group]
        intervals = log_intervals([samples[i] for i in mine], [centres[i] for i in mine], [terms[i] for i in mine])
        for i, interval in zip(mine, intervals):
            found[i] = interval
    return found


def mean_interval(values) -> Interval:
    """The t interval of the mean of independent log values: one per session of fresh processes, or per case.

    Where every value is its own unit (the release runner's sessions, the history's
    steps/s over them; the cases of an order check), nothing is pooled or added:
    the mean, its standard error over the units, n - 1 degrees of freedom.
    One value: the centre with no interval.
    """
    logs = np.asarray(list(values), dtype=float)
    if logs.size == 0:
        return Interval(math.nan, math.nan, 0.0)
    if logs.size == 1:
        return Interval(float(logs[0]), math.nan, 0.0)
    se = float(np.std(logs, ddof=1) / math.sqrt(logs.size))
    return Interval(float(np.mean(logs)), se, float(logs.size - 1), se)


def machine_spread(probes_s) -> tuple[float, int]:
    """(standard deviation of the log probe times, how many) over a run's probes; (0, n) below three."""
    logs = np.log([p for p in probes_s if p and p > 0])
    return (float(np.std(logs, ddof=1)), len(logs)) if len(logs) >= 3 else (0.0, len(logs))
