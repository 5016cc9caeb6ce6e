"""How well two runs of the same grid agree: python -m bench.report.agreement RUN_A.json RUN_B.json.

Two back-to-back runs of one command on one machine should give the same
figures within their intervals (bench.stats.intervals). It prints, for steps/s
and for the ratio to NumPy (x NumPy):

- the share of the cases whose two figures are consistent with the intervals
  shown, |log(x2 / x1)| <= sqrt(h1^2 + h2^2) with h each 95% interval's
  half-width in log, and the share by the normal rule
  |log(x2 / x1)| <= 1.96 * sqrt(se1^2 + se2^2); the median half-width (an
  interval honest only because it is enormous is no use, so both are shown);
- for x NumPy, the NumPy baselines of the ratios that fell outside;
- when the machine's own probe (bench.engine.steadiness) moved by more than
  MACHINE_CHANGE between the runs, that it did, and the steps/s consistency
  once the second run is scaled by that change.

Then how far the figures differ, over the cases both runs hold (warm cases
whose round lasts at least MIN_ROUND_S, since shorter rounds are dominated by
timer and call overhead): the median and 90th percentile of the absolute
change in steps/s, the cases that moved most, the same figures over the cases
that neither run flags unstable, and how far the probe moved. Exit status: 0,
or 2 when the files cannot be compared.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.console import exit_codes
from bench.console.entry import run
from bench.report.row_figures import add_figures
from bench.report.load import read_results, warn_stderr

MIN_ROUND_S = 1e-3
# The probe's median moving more than this between two runs means the machine changed speed: in four pairs of
# back-to-back main-job runs on a 2-core Intel Xeon VM it moved by -1.5% to +2.1%; in a fifth by +13%, and the
# cases' steps/s with it (median change 11.5%). docs/stable-numbers.md, "Intervals".
MACHINE_CHANGE = 0.05


def changes(first: pd.DataFrame, second: pd.DataFrame) -> pd.DataFrame:
    """One row per case in both runs: steps/s in each and the absolute change in %."""
    keep = ["case_id", "steps_per_s", "median_round_s", "unstable"]

    def warm(frame):
        frame = frame[(frame["phase"] == "warm") & (frame["median_round_s"] >= MIN_ROUND_S)]
        return frame[keep].drop_duplicates("case_id")

    both = warm(first).merge(warm(second), on="case_id", suffixes=("_a", "_b")).set_index("case_id")
    both["abs_change_pct"] = 100 * (both["steps_per_s_b"] / both["steps_per_s_a"] - 1).abs()
    return both.sort_values("abs_change_pct", ascending=False)


Z = 1.96  # the normal approximation's multiplier of the combined standard error
# A steps/s figure with its interval, as the runner saves it: (key, value, se, low, high) of consistency().
STEPS_COLUMNS = ("case_id", "steps_per_s", "steps_per_s_se_log", "steps_per_s_ci_low", "steps_per_s_ci_high")


@dataclass(frozen=True)
class Consistency:
    """How one figure's intervals held between two runs."""

    cases: int  # cases with an interval in both runs
    within_intervals: float  # share with |log(x2/x1)| <= sqrt(h1^2 + h2^2), h: each run's 95% half-width in log
    within_normal: float  # share with |log(x2/x1)| <= Z * sqrt(se1^2 + se2^2)
    half_width_pct: float  # median 95% half-width over both runs' intervals, in %
    outside: pd.DataFrame  # the pairs of rows outside their intervals (columns suffixed _a and _b)


def consistency(first: pd.DataFrame, second: pd.DataFrame, key: str, value: str, se: str, low: str, high: str,
                extra: tuple = ()) -> Consistency | None:  # fmt: skip
    """How far one figure's intervals held between two runs (None without a case having one in both).

    An interval is t_df * se wide, and with a few passes t_df is well above 1.96:
    two figures are consistent with the intervals shown when their gap is within
    the two half-widths combined (the Welch test of their difference at 5%).
    The rule with 1.96 in place of each t_df, which takes the standard errors as
    known, is given beside it. extra: columns kept with the rows outside (their _a and _b).
    """
    keep = [key, value, se, low, high]
    a = first[keep + list(extra)].dropna(subset=keep).drop_duplicates(key)
    b = second[keep + list(extra)].dropna(subset=keep).drop_duplicates(key)
    both = a.merge(b, on=key, suffixes=("_a", "_b"))
    if both.empty:
        return None
    gap = np.abs(np.log(both[f"{value}_b"] / both[f"{value}_a"]))
    # the intervals are symmetric in log: value * exp(+-h)
    halves = {side: np.log(both[f"{high}_{side}"] / both[f"{value}_{side}"]) for side in ("a", "b")}
    within = gap <= np.hypot(halves["a"], halves["b"])
    normal = gap <= Z * np.hypot(both[f"{se}_a"], both[f"{se}_b"])
    pct = 100 * np.expm1(np.concatenate([halves["a"], halves["b"]]))
    return Consistency(len(both), float(within.mean()), float(normal.mean()), float(np.median(pct)), both[~within])


def calibration_lines(first: pd.DataFrame, second: pd.DataFrame, show: int = 5) -> list[str]:
    """The intervals' calibration for steps/s and x NumPy (runs saved with intervals only); for x NumPy, which
    NumPy baselines the ratios outside their intervals share, and how far each baseline itself moved."""
    from bench.report.speedup import speedup_table

    lines = []
    figures = (
        ("steps/s", first, second, *STEPS_COLUMNS),
        ("x NumPy", speedup_table(first), speedup_table(second), "case_id", "speedup", "speedup_se_log",
         "speedup_ci_low", "speedup_ci_high"),
    )  # fmt: skip
    for name, a, b, *columns in figures:
        if not all(c in a and c in b for c in columns):
            lines.append(f"{name}: no intervals saved in both runs (runs saved before intervals existed)")
            continue
        extra = ("baseline_case_id", "baseline_steps_per_s", "steps_per_s") if name == "x NumPy" else ()
        found = consistency(a, b, *columns, extra=extra)
        if found is None:
            lines.append(f"{name}: no case with an interval in both runs")
            continue
        lines.append(
            f"{name}: {found.within_intervals:.1%} of {found.cases} cases consistent within their 95% intervals "
            f"(|log(x2/x1)| <= sqrt(h1^2 + h2^2), h: each interval's half-width in log), "
            f"{found.within_normal:.1%} by {Z} * sqrt(se1^2 + se2^2); median 95% half-width {found.half_width_pct:.1f}%"
        )
        if extra and not found.outside.empty:
            lines.extend(shared_baselines(found.outside, show))
    return lines


def shared_baselines(outside: pd.DataFrame, show: int) -> list[str]:
    """The NumPy baselines of the ratios outside their intervals, most shared first: how far each baseline's
    steps/s moved between the runs, and how far its cases' own did.

    Ratios to one baseline move together when the baseline moves: a handful of
    NumPy figures can put many ratios outside at once.
    """
    lines = []
    for baseline, rows in sorted(outside.groupby("baseline_case_id_a"), key=lambda item: -len(item[1]))[:show]:
        change = 100 * (rows["baseline_steps_per_s_b"].iloc[0] / rows["baseline_steps_per_s_a"].iloc[0] - 1)
        own = 100 * (rows["steps_per_s_b"] / rows["steps_per_s_a"] - 1)
        moved = f"{own.iloc[0]:+.1f}%" if len(rows) == 1 else f"{own.min():+.1f}% to {own.max():+.1f}%"
        lines.append(
            f"  outside: {len(rows)} ratio(s) to {baseline}: the baseline's steps/s moved {change:+.1f}%, "
            f"the cases' own {moved}"
        )
    return lines


def build_parser() -> argparse.ArgumentParser:
    """The command line of python -m bench.report.agreement (docs/reference/agreement.md is made from it)."""
    parser = argparse.ArgumentParser(prog="python -m bench.report.agreement", description=__doc__.splitlines()[0])
    parser.add_argument("first", help="a saved run (pytest-benchmark JSON)")
    parser.add_argument("second", help="another saved run of the same grid")
    parser.add_argument("--show", type=int, default=5, help="how many of the cases that moved most to list (default 5)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Compare two saved runs; print the agreement figures."""
    args = build_parser().parse_args(argv)
    frames = []
    for path in (args.first, args.second):
        loaded = read_results([path], warn_stderr)
        if loaded.frame.empty:
            print(f"error: {path}: no usable results", file=sys.stderr)
            return exit_codes.USAGE
        frames.append(add_figures(loaded.frame))
    for line in calibration_lines(*frames, args.show):
        print(line)
    machine = [steadiness_of(path) for path in (args.first, args.second)]
    for line in machine_change_lines(*frames, *machine):
        print(line)
    table = changes(*frames)
    if table.empty:
        print("error: the two runs share no warm case with rounds of at least 1 ms", file=sys.stderr)
        return exit_codes.USAGE
    change = table["abs_change_pct"].to_numpy()
    print(
        f"{len(table)} cases in both runs (rounds >= {MIN_ROUND_S * 1e3:g} ms): absolute change in steps/s "
        f"median {np.median(change):.1f}%, 90th percentile {np.percentile(change, 90):.1f}%, "
        f"max {change.max():.1f}%; unstable {int(table['unstable_a'].sum())} / {int(table['unstable_b'].sum())}"
    )
    for case, row in table.head(args.show).iterrows():
        print(
            f"  {case}: {row['steps_per_s_a']:,.0f} -> {row['steps_per_s_b']:,.0f} steps/s ({row['abs_change_pct']:.1f}%)"
        )
    # Does the unstable flag tell a reader which figures to doubt? Then the figures
    # it leaves unflagged in both runs agree better than the rest.
    stable = table.loc[~table["unstable_a"] & ~table["unstable_b"], "abs_change_pct"].to_numpy()
    if len(stable):
        print(
            f"stable in both runs: {len(stable)} cases, median {np.median(stable):.1f}%, "
            f"90th percentile {np.percentile(stable, 90):.1f}%"
        )
    change = probe_change(*machine)
    if change is not None:
        first, second = machine
        print(
            f"the machine itself (bench.engine.steadiness probe): median {first['median_s'] * 1e3:.2f} -> "
            f"{second['median_s'] * 1e3:.2f} ms ({100 * change:+.1f}%), "
            f"moving by {first['spread']:.0%} / {second['spread']:.0%} within each run"
        )
    return exit_codes.OK


def probe_change(first: dict | None, second: dict | None) -> float | None:
    """How far the machine's probe median moved from the first run to the second (0.13: 13% slower), or None."""
    try:
        change = second["median_s"] / first["median_s"] - 1
    except (TypeError, KeyError, ZeroDivisionError):
        return None
    return change if np.isfinite(change) else None


def machine_change_lines(first: pd.DataFrame, second: pd.DataFrame, steady_a, steady_b) -> list[str]:
    """When the machine's own speed changed between the runs (MACHINE_CHANGE): say so, and how the steps/s
    intervals hold once the second run is scaled by the probe's change.

    A run's intervals describe the machine as that run found it. When the
    probe, the same kernel every time, runs 13% slower in the second run, the
    cases run slower with it, and a figure's change says more about the
    machine than about its interval.
    """
    change = probe_change(steady_a, steady_b)
    if change is None or abs(change) <= MACHINE_CHANGE:
        return []
    lines = [
        f"the machine itself changed between the runs: its probe's median moved {100 * change:+.1f}% "
        f"({steady_a['median_s'] * 1e3:.2f} -> {steady_b['median_s'] * 1e3:.2f} ms); each run's intervals describe "
        "the machine as that run found it"
    ]
    if all(c in first and c in second for c in STEPS_COLUMNS):
        scaled = second.copy()
        for column in ("steps_per_s", "steps_per_s_ci_low", "steps_per_s_ci_high"):
            scaled[column] = scaled[column] * (1 + change)  # back to the first run's machine speed
        found = consistency(first, scaled, *STEPS_COLUMNS)
        if found is not None:
            lines.append(
                f"  with the second run's steps/s scaled by the probe's change: {found.within_intervals:.1%} of "
                f"{found.cases} cases consistent within their 95% intervals, {found.within_normal:.1%} by the normal rule"
            )
    return lines


def steadiness_of(path: str) -> dict | None:
    """A run's machine_info["machine_steadiness"] (saved since the probe exists), or None."""
    try:
        with open(path, encoding="utf-8") as handle:
            return (json.load(handle).get("machine_info") or {}).get("machine_steadiness")
    except (OSError, ValueError, AttributeError):
        return None


if __name__ == "__main__":
    run(main)
