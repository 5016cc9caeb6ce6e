"""The machine's probe as a covariate of the figures: how much of their variance it explains, measured.

Every pass of a case is preceded by the probe (bench.engine.steadiness: the same NumPy kernel on
the same data), so each pass has a figure and the machine's speed just before it. Regression
adjustment (CUPED, in online experiments) would subtract slope x the probe's deviation from
each figure. Whether that helps is an empirical question, answered here on saved runs:

1. **Within a run**: per cell (backend and size class), the slope of a pass's log steps/s on its
   log probe time, both centred within their case, and the share of the pass-to-pass variance it
   explains.
2. **Between runs**, what matters for a figure's reproducibility: for each pair of runs of the
   same grid, each pair left out in turn, the slopes estimated from the other pairs' runs, each
   figure adjusted by its cell's slope times its case's median log probe time in that run; the
   mean squared difference d = log(x2/x1) of the two runs, raw and adjusted, per cell and per pair.

`python -m bench.report.calibration probe A1.json A2.json B1.json B2.json ...` prints both
(docs/stable-numbers.md, "Intervals").
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from bench.stats.figures import pass_logs
from bench.stats.run_terms import size_class


@dataclass(frozen=True)
class ProbedCase:
    """A grid case of one run: its cell, the log steps/s and log probe time of each pass, and its figure's log."""

    cell: tuple[str, str]
    passes: np.ndarray
    probes: np.ndarray
    figure: float


def probed_cases(records: list[dict]) -> dict[str, ProbedCase]:
    """The warm grid cases of one run with at least two passes, each with a probe, by case id."""
    cases = {}
    for record in records:
        if record.get("scenario", "grid") != "grid" or record.get("phase", "warm") != "warm":
            continue
        probes = record.get("pass_probe_s")
        if isinstance(probes, str):
            probes = json.loads(probes)  # the report's loader keeps some list fields as their JSON text
        passes = pass_logs(record)
        if not isinstance(probes, list) or len(passes) < 2 or len(probes) != len(passes):
            continue
        if any(not isinstance(p, (int, float)) or not p > 0 for p in probes):
            continue
        figure = record.get("steps_per_s")
        centre = math.log(figure) if isinstance(figure, (int, float)) and figure > 0 else float(np.median(passes))
        cell = (str(record.get("backend")), size_class(record.get("n_examples"), record.get("n_features")))
        cases[str(record.get("case_id"))] = ProbedCase(cell, passes, np.log(probes), centre)
    return cases


def within_run_slopes(runs: list[dict[str, ProbedCase]]) -> dict[tuple, tuple[float, float]]:
    """Per cell: (slope of log steps/s on log probe time within cases, share of pass variance it explains)."""
    sums: dict[tuple, list[float]] = {}
    for run in runs:
        for case in run.values():
            y, p = case.passes - case.passes.mean(), case.probes - case.probes.mean()
            acc = sums.setdefault(case.cell, [0.0, 0.0, 0.0])
            acc[0] += float(y @ p)
            acc[1] += float(p @ p)
            acc[2] += float(y @ y)
    return {cell: (xy / xx, (xy * xy / xx) / yy if yy > 0 else 0.0) for cell, (xy, xx, yy) in sums.items() if xx > 0}


@dataclass
class BetweenRuns:
    """Mean squared log difference of figures between the two runs of pairs, raw and probe-adjusted."""

    figures: int = 0
    raw: float = 0.0  # sums of d^2
    adjusted: float = 0.0

    def add(self, raw_d: float, adjusted_d: float) -> None:
        self.figures += 1
        self.raw += raw_d * raw_d
        self.adjusted += adjusted_d * adjusted_d

    def means(self) -> tuple[float, float]:
        """(mean d^2 raw, adjusted)."""
        return self.raw / max(self.figures, 1), self.adjusted / max(self.figures, 1)


def held_out_adjustment(
    pairs: list[tuple[dict[str, ProbedCase], dict[str, ProbedCase]]],
) -> tuple[dict[tuple, BetweenRuns], list[BetweenRuns]]:
    """Each pair left out in turn, slopes from the other pairs' runs: d^2 raw and adjusted, per cell and per pair."""
    by_cell: dict[tuple, BetweenRuns] = {}
    by_pair = []
    for held, (first, second) in enumerate(pairs):
        others = [run for i, pair in enumerate(pairs) if i != held for run in pair]
        slopes = within_run_slopes(others)
        this_pair = BetweenRuns()
        for case_id in sorted(first.keys() & second.keys()):
            a, b = first[case_id], second[case_id]
            slope = slopes.get(a.cell, (0.0, 0.0))[0]
            d = b.figure - a.figure
            adjusted = d - slope * (float(np.median(b.probes)) - float(np.median(a.probes)))
            by_cell.setdefault(a.cell, BetweenRuns()).add(d, adjusted)
            this_pair.add(d, adjusted)
        by_pair.append(this_pair)
    return by_cell, by_pair


def describe(runs: list[dict[str, ProbedCase]], pairs) -> list[str]:
    """The two measurements as lines for the terminal."""
    lines = [
        "within a run: the slope of a pass's log steps/s on its log probe time, and the share of the pass-to-pass "
        "variance it explains, per backend and size class"
    ]
    for (backend, size), (slope, share) in sorted(within_run_slopes(runs).items()):
        lines.append(f"  {backend}/{size}: slope {slope:+.2f}, explains {share:.0%}")
    if len(pairs) < 2:
        lines.append("between runs: needs two pairs or more (slopes from the others, each pair left out in turn)")
        return lines
    by_cell, by_pair = held_out_adjustment(pairs)
    lines.append("between runs, each pair left out in turn: mean d^2 of log(x2/x1), raw -> adjusted by the probe")
    for (backend, size), result in sorted(by_cell.items()):
        raw, adjusted = result.means()
        change = adjusted / raw - 1 if raw > 0 else 0.0
        lines.append(
            f"  {backend}/{size}: {result.figures} figures, {raw * 1e4:.1f} -> {adjusted * 1e4:.1f} (x 1e-4, {change:+.0%})"
        )
    better = sum(r.means()[1] < r.means()[0] for r in by_pair)
    lines.append(
        f"  pair by pair: lower after adjustment in {better} of {len(by_pair)}; "
        + ", ".join(f"{i + 1}: {r.means()[0] * 1e4:.1f} -> {r.means()[1] * 1e4:.1f}" for i, r in enumerate(by_pair))
    )
    return lines
