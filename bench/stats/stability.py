"""A case's figure from its passes, and when that figure is too noisy to trust.

One rule for the terminal summary and the report (docs/measurement.md, "How a case is timed"):
a case is timed in several passes spread over the session, a pass being a few
rounds in a row. Rounds of one pass share that moment's luck (a busy neighbour
can slow a whole pass by 40% while its rounds agree perfectly), so the pass,
not the round, is the unit: the case's round time is the median of its pass
medians, so one disturbed pass is outvoted by the others.

A case's passes *disagree* when (slowest - fastest pass median) / median
exceeds PASS_TOLERANCE; the session then times it once more at the end if time
allows (bench.engine.passes). Its figure is *unstable* (not to be trusted) when

- no majority of its passes lies within AGREEMENT of the median (so the
  median is not backed by most passes: two passes 20% apart, or three that
  all differ), or
- the rounds inside its passes spread too widely (the median over passes of
  IQR / median exceeds UNSTABLE_IQR_SHARE), or
- it has fewer than MIN_ROUNDS rounds in all (too few to know the spread).

Results saved before passes existed are one pass. Quartiles are NumPy's
default (linear interpolation) everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PASS_TOLERANCE = 0.10  # pass medians more than 10% apart: the passes disagree
AGREEMENT = 0.05  # a pass agrees with the figure when its median is within 5% of it
UNSTABLE_IQR_SHARE = 0.10  # rounds of a pass: IQR over 10% of their median
MIN_ROUNDS = 5


@dataclass(frozen=True)
class PassFigures:
    """A case's round times summarised pass by pass."""

    pass_ids: np.ndarray  # the passes, ascending
    pass_medians: np.ndarray  # median round time of each pass (seconds)
    median: float  # the case's round time: median of the pass medians
    pass_spread: float  # (slowest - fastest pass median) / median
    iqr_share: float  # median over passes of the rounds' IQR / median
    agreeing_share: float  # share of the passes within AGREEMENT of the median
    q1: float  # the case's quartiles: median over passes of each pass's quartile
    q3: float
    rounds: int

    @property
    def unstable(self) -> bool:
        """Too noisy or too few rounds to trust (see the module doc)."""
        return bool(unstable(self.rounds, self.agreeing_share, self.iqr_share))

    @property
    def disagree(self) -> bool:
        """The pass medians are more than PASS_TOLERANCE apart."""
        return self.pass_spread > PASS_TOLERANCE

    @property
    def passes(self) -> int:
        """How many passes the figure rests on."""
        return len(self.pass_ids)


def pass_figures_many(times: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """The figures of many cases at once: rows of round times that share one layout of pass labels.

    Returns arrays with one value per row: median, q1, q3, pass_spread,
    iqr_share, agreeing_share, passes, rounds. (The report summarises thousands of cases; one
    NumPy call per pass of a layout instead of one per case.)
    """
    times = np.atleast_2d(np.asarray(times, dtype=float))
    labels = np.asarray(labels, dtype=int)
    if times.shape[1] == 0 or len(labels) != times.shape[1]:
        raise ValueError("round times and their pass labels must be non-empty and of one length")
    pass_ids = np.unique(labels)
    # quartiles[p] has shape (3, rows): q1, median, q3 of pass p's rounds
    quartiles = np.stack([np.percentile(times[:, labels == p], [25, 50, 75], axis=1) for p in pass_ids])
    q1, medians, q3 = quartiles[:, 0], quartiles[:, 1], quartiles[:, 2]  # each (passes, rows)
    median = np.median(medians, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = np.where(median > 0, (medians.max(axis=0) - medians.min(axis=0)) / median, np.inf)
        iqr_share = np.median((q3 - q1) / medians, axis=0)
        agreeing = np.mean(np.abs(medians - median) <= AGREEMENT * median, axis=0)
    return {
        "median": median,
        "q1": np.median(q1, axis=0),
        "q3": np.median(q3, axis=0),
        "pass_spread": spread,
        "iqr_share": iqr_share,
        "agreeing_share": agreeing,
        "passes": np.full(len(times), len(pass_ids)),
        "rounds": np.full(len(times), times.shape[1]),
        "pass_ids": pass_ids,
        "pass_medians": medians,
    }


def unstable(rounds, agreeing_share, iqr_share):
    """The stability rule of the module doc, element-wise."""
    return (
        (np.asarray(rounds) < MIN_ROUNDS)
        | (np.asarray(agreeing_share) <= 0.5)
        | (np.asarray(iqr_share) > UNSTABLE_IQR_SHARE)
    )


def pass_figures(round_times, round_pass=None) -> PassFigures:
    """Summarise one case's raw round times (seconds) by pass; no pass labels means one pass."""
    times = np.asarray(round_times, dtype=float)
    labels = np.ones(len(times), dtype=int) if round_pass is None else np.asarray(round_pass, dtype=int)
    many = pass_figures_many(times[None, :], labels)
    return PassFigures(
        pass_ids=many["pass_ids"],
        pass_medians=many["pass_medians"][:, 0],
        median=float(many["median"][0]),
        pass_spread=float(many["pass_spread"][0]),
        iqr_share=float(many["iqr_share"][0]),
        agreeing_share=float(many["agreeing_share"][0]),
        q1=float(many["q1"][0]),
        q3=float(many["q3"][0]),
        rounds=len(times),
    )
