"""How well two runs of the same grid agree: python -m bench.report.agreement RUN_A.json RUN_B.json.

Two back-to-back runs of one command on one machine should give the same
figures within their intervals. First, the calibration of the intervals
(bench.stats.intervals), for steps/s and for the ratio to NumPy (x NumPy): the share
of the cases whose two figures are consistent with their intervals,
|log(x2 / x1)| <= 1.96 * sqrt(se1^2 + se2^2), and the median half-width of the
95% intervals (an interval honest only because it is enormous is no use, so
both are shown). Then, as before, how far the figures differ. Prints,
over the cases both runs hold (warm cases whose round lasts at least
MIN_ROUND_S, since shorter rounds are dominated by timer and call overhead),
the median and 90th percentile of the absolute change in steps/s, the
cases that moved most, the same figures over the cases that neither run
flags unstable, and how far the machine's own probe (bench.engine.steadiness) moved. Exit status: 0, or 2 when the files cannot be compared.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import pandas as pd

from bench.report.row_figures import add_figures
from bench.report.load import read_results, warn_stderr

MIN_ROUND_S = 1e-3


def changes(first: pd.DataFrame, second: pd.DataFrame) -> pd.DataFrame:
    """One row per case in both runs: steps/s in each and the absolute change in %."""
    keep = ["case_id", "steps_per_s", "median_round_s", "unstable"]

    def warm(frame):
        frame = frame[(frame["phase"] == "warm") & (frame["median_round_s"] >= MIN_ROUND_S)]
        return frame[keep].drop_duplicates("case_id")

    both = warm(first).merge(warm(second), on="case_id", suffixes=("_a", "_b")).set_index("case_id")
    both["abs_change_pct"] = 100 * (both["steps_per_s_b"] / both["steps_per_s_a"] - 1).abs()
    return both.sort_values("abs_change_pct", ascending=False)


Z = 1.96  # the consistency rule's multiplier of the combined standard error


def consistency(first: pd.DataFrame, second: pd.DataFrame, key: str, value: str, se: str, low: str, high: str):
    """(cases with intervals in both runs, share consistent, median half-width in %) of one figure, or None."""
    keep = [key, value, se, low, high]
    a = first[keep].dropna().drop_duplicates(key)
    b = second[keep].dropna().drop_duplicates(key)
    both = a.merge(b, on=key, suffixes=("_a", "_b"))
    if both.empty:
        return None
    gap = np.abs(np.log(both[f"{value}_b"] / both[f"{value}_a"]))
    consistent = gap <= Z * np.hypot(both[f"{se}_a"], both[f"{se}_b"])
    halves = np.concatenate(
        [100 * (both[f"{high}_{side}"] / both[f"{value}_{side}"] - 1) for side in ("a", "b")]
    )
    return len(both), float(consistent.mean()), float(np.median(halves))


def calibration_lines(first: pd.DataFrame, second: pd.DataFrame) -> list[str]:
    """The intervals' calibration for steps/s and x NumPy, one line each (runs saved with intervals only)."""
    from bench.report.speedup import speedup_table

    lines = []
    figures = (
        ("steps/s", first, second, "case_id", "steps_per_s", "steps_per_s_se_log", "steps_per_s_ci_low", "steps_per_s_ci_high"),
        ("x NumPy", speedup_table(first), speedup_table(second), "case_id", "speedup", "speedup_se_log",
         "speedup_ci_low", "speedup_ci_high"),
    )  # fmt: skip
    for name, a, b, *columns in figures:
        if not all(c in a and c in b for c in columns):
            lines.append(f"{name}: no intervals saved in both runs (runs saved before intervals existed)")
            continue
        found = consistency(a, b, *columns)
        if found is None:
            lines.append(f"{name}: no case with an interval in both runs")
            continue
        cases, share, half = found
        lines.append(
            f"{name}: {share:.1%} of {cases} cases consistent within their intervals "
            f"(|log(x2/x1)| <= {Z} * sqrt(se1^2 + se2^2)); median 95% half-width {half:.1f}%"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    """Compare two saved runs; print the agreement figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.report.agreement", description=__doc__.splitlines()[0])
    parser.add_argument("first", help="a saved run (pytest-benchmark JSON)")
    parser.add_argument("second", help="another saved run of the same grid")
    parser.add_argument("--show", type=int, default=5, help="how many of the cases that moved most to list")
    args = parser.parse_args(argv)
    frames = []
    for path in (args.first, args.second):
        loaded = read_results([path], warn_stderr)
        if loaded.frame.empty:
            print(f"error: {path}: no usable results", file=sys.stderr)
            return 2
        frames.append(add_figures(loaded.frame))
    for line in calibration_lines(*frames):
        print(line)
    table = changes(*frames)
    if table.empty:
        print("error: the two runs share no warm case with rounds of at least 1 ms", file=sys.stderr)
        return 2
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
    machine = [steadiness_of(path) for path in (args.first, args.second)]
    if all(machine):
        first, second = machine
        print(
            f"the machine itself (bench.engine.steadiness probe): median {first['median_s'] * 1e3:.2f} -> "
            f"{second['median_s'] * 1e3:.2f} ms ({100 * (second['median_s'] / first['median_s'] - 1):+.1f}%), "
            f"moving by {first['spread']:.0%} / {second['spread']:.0%} within each run"
        )
    return 0


def steadiness_of(path: str) -> dict | None:
    """A run's machine_info["machine_steadiness"] (saved since the probe exists), or None."""
    try:
        with open(path, encoding="utf-8") as handle:
            return (json.load(handle).get("machine_info") or {}).get("machine_steadiness")
    except (OSError, ValueError, AttributeError):
        return None


if __name__ == "__main__":
    sys.exit(main())
