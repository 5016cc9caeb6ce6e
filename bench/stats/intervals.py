"""How far a figure can be trusted: a 95% interval on every steps/s and every ratio of a run, and the unstable rule.

The unit of evidence is the pass (docs/measurement.md, "How a case is timed"):
a case's steps/s is K over the median of its pass medians, and its interval
comes from the spread of its passes' log steps/s, in three steps:

1. **Each case's pass-to-pass variance, moderated by the run's other cases of its backend**
   (bench.stats.verdict_engine's noise prior, the same empirical-Bayes shrinkage the
   release verdicts use): with three passes a case's own variance is a guess
   (three passes that happen to agree would claim a precision no rerun
   keeps), so it is pooled with the variance typical of the run, never below
   its own, and its degrees of freedom grow with the prior's.
2. **A term for the machine**: passes minutes apart do not see how the
   machine moves over longer spans (two back-to-back runs on a shared VM
   differ by more than each run's passes suggest). The run measures how far
   the machine's own speed moved while it ran (bench.engine.steadiness: a fixed probe
   before every pass), and a share MACHINE_TERM_SHARE of the probe's standard
   deviation (in log) is added to each case's standard error as an independent
   term, with Welch-Satterthwaite's degrees of freedom. The share was chosen
   on three pairs of back-to-back default runs on 2-core AMD EPYC VMs (the
   share of cases whose two figures agree within their intervals was 77-87%
   without it, 84-97% with it) and is checked anew by every
   `python -m bench.report.agreement` (docs/stable-numbers.md, "Intervals").
   On a quiet machine the probe barely moves and the term is small.
3. **A t interval** of the mean log steps/s over the passes.

A ratio to NumPy is taken pass by pass (bench.stats.pairing), so a burst that slows
both cases of a pass cancels out; its interval follows the same three steps
over its per-pass ratios (moderated by the run's other ratios), with the
machine term of both of its figures (RATIO_MACHINE_SHARE).

A figure is **unstable** when its interval reaches more than
UNSTABLE_HALF_WIDTH either side of it (or rests on one pass): the same rule in
the terminal, the report and the CSVs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from bench.stats.verdict_engine import fit_noise_prior, shrink_variances

CONFIDENCE = 0.95
MACHINE_TERM_SHARE = 0.3  # the share of the probe's log standard deviation added to each figure's (step 2)
# A ratio holds two figures timed at different moments of a pass, each exposed to the machine alike and
# independently: its machine term is the two terms combined.
RATIO_MACHINE_SHARE = MACHINE_TERM_SHARE * math.sqrt(2)
UNSTABLE_HALF_WIDTH = 0.10  # a figure whose 95% interval reaches more than 10% either side is unstable
# The rule in words, for the report's page and digest; runs saved before intervals keep bench.stats.stability's.
UNSTABLE_RULE = (
    f"a 95% interval of steps/s reaching more than {UNSTABLE_HALF_WIDTH:.0%} either side (runs saved before "
    "intervals existed: no majority of passes within 5% of the median, rounds' IQR above 10%, or fewer than 5 rounds)"
)


@dataclass(frozen=True)
class Interval:
    """A figure on the log scale: its centre, standard error and degrees of freedom, and the 95% half-width."""

    centre: float  # log of the figure
    se: float  # standard error of the log figure
    df: float

    @property
    def half(self) -> float:
        """The half-width of the 95% interval, in log (NaN without a standard error)."""
        if not (math.isfinite(self.se) and self.df > 0):
            return math.nan
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


def log_intervals(
    samples: list, centres: list, machine_sd: float = 0.0, machine_samples: int = 0, share: float = MACHINE_TERM_SHARE
) -> list[Interval]:
    """The interval of each figure from its per-pass log samples (steps 1-3 of the module doc).

    samples[i]: the log values of figure i, one per pass; centres[i]: the log of
    the figure itself (the median of its passes). machine_sd: the probe's
    standard deviation in log over the run, from machine_samples probes (0: none);
    share: how much of it enters (MACHINE_TERM_SHARE, RATIO_MACHINE_SHARE for a ratio).
    """
    n = np.array([len(s) for s in samples], dtype=float)
    variances = np.array([np.var(s, ddof=1) if len(s) > 1 else np.nan for s in samples])
    dfs = np.maximum(n - 1, 0)
    prior_variance, prior_df = fit_noise_prior(variances, dfs)
    pooled, pooled_df = shrink_variances(variances, dfs, prior_variance, prior_df)
    machine = (share * machine_sd) ** 2 if machine_sd and machine_samples > 1 else 0.0
    found = []
    for count, own, own_df, centre in zip(n, pooled, pooled_df, centres):
        if count < 2 or not np.isfinite(own):
            found.append(Interval(float(centre), math.nan, 0.0))
            continue
        a, b = own / count, machine / count
        se = math.sqrt(a + b)
        df = own_df if not b else (a + b) ** 2 / (a**2 / own_df + b**2 / (machine_samples - 1))
        found.append(Interval(float(centre), se, float(df)))
    return found


def pooled_intervals(
    samples: list,
    centres: list,
    groups: list,
    machine_sd: float = 0.0,
    machine_samples: int = 0,
    share: float = MACHINE_TERM_SHARE,
) -> list[Interval]:
    """log_intervals with the prior of step 1 fitted within each group (a backend), in the order given.

    Each backend's noise is its own, and a peer's cases never change MLX's intervals.
    """
    found: list = [None] * len(samples)
    for group in dict.fromkeys(groups):
        mine = [i for i, g in enumerate(groups) if g == group]
        intervals = log_intervals(
            [samples[i] for i in mine], [centres[i] for i in mine], machine_sd, machine_samples, share
        )
        for i, interval in zip(mine, intervals):
            found[i] = interval
    return found


def machine_spread(probes_s) -> tuple[float, int]:
    """(standard deviation of the log probe times, how many) over a run's probes; (0, n) below three."""
    logs = np.log([p for p in probes_s if p and p > 0])
    return (float(np.std(logs, ddof=1)), len(logs)) if len(logs) >= 3 else (0.0, len(logs))
