"""Which case another is compared with, and their ratio pass by pass.

One pairing rule for the terminal summary and the report (docs/reports.md, "Reports:
comparing saved runs", speedup.csv): each warm case of another backend is
compared with the NumPy case of the same run, model, scenario, size, batch
size and hidden width that is

- float32 ``analytic``, the suite's default comparison; in the blog scenario,
  which has no such case, the blog's own NumPy code (float64 ``seed``);
- barrier ``sync`` when the case reads a value back every step (``sync``),
  else ``eager``: NumPy computes as it goes, which is what ``step`` and
  ``round`` rounds are compared against.

Compared cases are timed next to each other in every pass, so their ratio is
taken within each pass (the same moment's luck on both sides) and then
summarised over passes: the median of the per-pass ratios, with a 95%
t-interval of their logarithms across passes (the pass is the unit of
evidence; rounds of one pass are not independent samples).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.stats

BASELINE_BACKEND = "numpy"
# The baseline's (variant, dtype) per scenario; scenarios not listed use "default".
BASELINE_VARIANTS = {"default": ("analytic", "float32"), "blog": ("seed", "float64")}
CONFIDENCE = 0.95


def baseline_of(scenario: str, barrier: str) -> tuple[str, str, str]:
    """The NumPy (variant, dtype, barrier) that a case of this scenario and barrier is compared with."""
    variant, dtype = BASELINE_VARIANTS.get(scenario, BASELINE_VARIANTS["default"])
    return variant, dtype, "sync" if barrier == "sync" else "eager"


@dataclass(frozen=True)
class PassRatio:
    """A ratio measured pass by pass: its median, 95% interval and how many passes it rests on."""

    ratio: float
    low: float  # NaN with fewer than two common passes
    high: float
    passes: int


def pass_ratio(numerator: dict, denominator: dict) -> PassRatio | None:
    """Median over common passes of numerator[p] / denominator[p], with its interval; None without a common pass.

    For a steps/s ratio pass per-step times the other way round: baseline step
    time over case step time.
    """
    common = sorted(set(numerator) & set(denominator))
    if not common:
        return None
    ratios = np.array([numerator[p] / denominator[p] for p in common], dtype=float)
    low = high = float("nan")
    if len(ratios) >= 2:
        logs = np.log(ratios)
        half = scipy.stats.t.ppf((1 + CONFIDENCE) / 2, len(logs) - 1) * logs.std(ddof=1) / np.sqrt(len(logs))
        low, high = float(np.exp(logs.mean() - half)), float(np.exp(logs.mean() + half))
    return PassRatio(float(np.median(ratios)), low, high, len(common))


def faster_side(low: float, high: float, case_side: str, baseline_side: str = BASELINE_BACKEND) -> str:
    """Which side is faster by a steps/s ratio's interval: a side only when the interval excludes 1."""
    if low > 1:
        return case_side
    if high < 1:
        return baseline_side
    return "inconclusive"
