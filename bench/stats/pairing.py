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
summarised over passes: the median of the per-pass log ratios, with a 95%
interval built like every ratio's (bench.stats.intervals: a t interval of
their logarithms across passes, with the between-run term; the pass is the
unit of evidence, rounds of one pass are not independent samples).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bench.stats.intervals import NO_RUN_TERM, RunTerm, log_intervals, ratio_centre
from bench.stats.stability import pass_figures

BASELINE_BACKEND = "numpy"
# faster_side's word where a ratio's interval contains 1 (not `inconclusive`, which means a moved control).
NEITHER = "neither"
# The baseline's (variant, dtype) per scenario; scenarios not listed use "default".
BASELINE_VARIANTS = {"default": ("analytic", "float32"), "blog": ("seed", "float64")}


def baseline_of(scenario: str, barrier: str) -> tuple[str, str, str]:
    """The NumPy (variant, dtype, barrier) that a case of this scenario and barrier is compared with."""
    variant, dtype = BASELINE_VARIANTS.get(scenario, BASELINE_VARIANTS["default"])
    return variant, dtype, "sync" if barrier == "sync" else "eager"


def identity(info: dict, variant: str, dtype: str, barrier: str) -> tuple:
    """What a case shares with the case it is compared with (model, size, scenario, batch, width, ranks), and an
    implementation (variant, dtype, barrier): equal for a case's baseline_identity and its baseline's case_identity."""
    return (
        info.get("model"),
        info.get("n_examples"),
        info.get("n_features"),
        info.get("scenario", "grid"),
        info.get("batch_size"),
        info.get("hidden"),
        info.get("n_ranks", 1),
        variant,
        dtype,
        barrier,
    )


def case_identity(info: dict) -> tuple:
    """A case's own identity (bench.stats.pairing.identity with its variant, dtype and barrier)."""
    return identity(info, info.get("variant"), info.get("dtype"), info.get("barrier"))


def baseline_identity(info: dict) -> tuple | None:
    """The identity of the NumPy case a case is compared with; None for a NumPy case."""
    if info.get("backend") == BASELINE_BACKEND:
        return None
    return identity(info, *baseline_of(info.get("scenario", "grid"), info.get("barrier")))


def compared_with(infos: list[dict], chosen: set[int]) -> set[int]:
    """The indices of `infos` compared with any chosen one (a case's NumPy baseline; the cases a NumPy case is the
    baseline of), the chosen ones included."""
    baselines = {case_identity(info): i for i, info in enumerate(infos) if info.get("backend") == BASELINE_BACKEND}
    found = set(chosen)
    for i, info in enumerate(infos):
        base = baselines.get(baseline_identity(info))
        if base is None:
            continue
        if i in chosen:
            found.add(base)
        if base in chosen:
            found.add(i)
    return found


@dataclass(frozen=True)
class PassRatio:
    """A ratio measured pass by pass: its median, 95% interval and how many passes it rests on."""

    ratio: float
    low: float  # NaN with fewer than two common passes
    high: float
    passes: int


def pass_step_times(round_times, round_pass, steps_per_round: int) -> dict[int, float]:
    """Median per-step time of each pass of a case, by pass: one side of pass_log_ratios."""
    figures = pass_figures(round_times, round_pass)
    return {int(p): m / steps_per_round for p, m in zip(figures.pass_ids, figures.pass_medians)}


def pass_log_ratios(numerator: dict, denominator: dict) -> np.ndarray:
    """log(numerator[p] / denominator[p]) over the passes both sides have, in pass order (empty without one).

    For a steps/s ratio pass per-step times the other way round: baseline step
    time over case step time.
    """
    common = sorted(set(numerator) & set(denominator))
    return np.log([numerator[p] / denominator[p] for p in common]) if common else np.array([])


def pass_ratio(numerator: dict, denominator: dict, run_term: RunTerm = NO_RUN_TERM) -> PassRatio | None:
    """The ratio of numerator[p] / denominator[p] over their common passes, with its interval; None without one.

    Its centre and interval are bench.stats.intervals' for one ratio (ratio_centre,
    log_intervals): the per-pass log ratios' t interval, with the between-run term given.
    """
    logs = pass_log_ratios(numerator, denominator)
    if not len(logs):
        return None
    centre = ratio_centre(logs)
    (interval,) = log_intervals([logs], [centre], [run_term])
    low, high = interval.low_high
    return PassRatio(math.exp(centre), low, high, len(logs))


def faster_side(low: float, high: float, case_side: str, baseline_side: str = BASELINE_BACKEND) -> str:
    """Which side is faster by a steps/s ratio's interval: a side only when the interval excludes 1, else NEITHER."""
    if low > 1:
        return case_side
    if high < 1:
        return baseline_side
    return NEITHER


def remeasure_groups(infos: list[dict], flagged: list[int]) -> list[list[int]]:
    """The cases to re-measure, as groups re-measured whole: each flagged case with the cases compared with it.

    Groups that share a case are one group (an MLX case and its NumPy baseline
    both flagged); each group in the order of pass 1, the groups in the order of
    their first case, so compared cases stay next to each other as in every pass.
    """
    groups: list[set[int]] = []
    for index in flagged:
        group = compared_with(infos, {index})
        for other in [g for g in groups if g & group]:
            group |= other
            groups.remove(other)
        groups.append(group)
    return sorted((sorted(g) for g in groups), key=lambda g: g[0])
