"""The end-of-run table in the terminal: steps/s per case and its ratio to NumPy, pass by pass.

pytest-benchmark prints per-step times; a reader wants throughput and the
comparison the suite exists for, measured in this run. The figures follow the
same rules as the report: a case's steps/s is K over the median of its pass
medians, its stability is bench.stats.stability's, and its ratio to NumPy pairs it
with the case bench.stats.pairing names and is taken within each pass, then summarised.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench.cases.models import working_set_of
from bench.stats.figures import baseline_pairs
from bench.stats.figures import ratio_intervals as figure_ratios
from bench.stats.intervals import UNSTABLE_HALF_WIDTH, Interval
from bench.stats.roofline import above_bound_note, flat_limits, roofline_bound
from bench.stats.stability import pass_figures

SCENARIO_TITLES = {"blog": " (the blog's configuration)", "cold": " (cold start: first step of a new trainer)"}


def ratio_intervals(infos: list[dict]) -> dict[str, Interval]:
    """Each case's steps/s ratio to its NumPy baseline, pass by pass, with its interval (bench.stats.figures), by case id."""
    pairs = baseline_pairs(infos)
    return {case["case_id"]: found for (case, _), found in zip(pairs, figure_ratios(pairs)) if found is not None}


def roofline_of(info: dict, limits: dict | None) -> tuple[float, str, str]:
    """A case's share of its cache-aware roofline bound, the level its data is read from, and why the share
    exceeds 100% where it does (bench.stats.roofline). NaN where there is no bound: no limits, or not a CPU case
    (the limits are the CPU's)."""
    if not limits or info.get("device", "cpu") != "cpu":
        return math.nan, "", ""
    bound = roofline_bound(info["flops_per_step"], info["bytes_per_step"], working_set_of(info), flat_limits(limits))
    if bound is None:
        return math.nan, "", ""
    fraction = info["gflops_per_s"] / bound.gflops_per_s
    return fraction, bound.label, above_bound_note(fraction, bound, info["gflops_per_s"], info["gb_per_s"])


def summary_frame(benchmarks, limits: dict | None = None) -> pd.DataFrame:
    """One row per timed case: id, K, steps/s with its interval, GFLOP/s, GB/s, roofline share and level, ratio to
    NumPy."""
    infos = [b.extra_info for b in benchmarks if "steps_per_s" in b.extra_info and "round_times_s" in b.extra_info]
    ratios = ratio_intervals(infos)
    rows = []
    for info in infos:
        roof, level, note = roofline_of(info, limits)
        figures = pass_figures(info["round_times_s"], info["round_pass"])
        ratio = ratios.get(info["case_id"])
        low, high = ratio.low_high if ratio is not None else (math.nan, math.nan)
        half = info.get("steps_per_s_half_width_pct")
        rows.append(
            {
                "group": f"{info['model']}-n{info['n_examples']}-d{info['n_features']}",
                "scenario": info.get("scenario", "grid"),
                # case_id without its model prefix and size suffix: the group says those
                "case": info["case_id"].removeprefix(info["model"] + "-").rsplit("-n", 1)[0],
                "K": info["steps_per_round"],
                "steps/s": info["steps_per_s"],
                "GFLOP/s": info["gflops_per_s"],
                "GB/s": info["gb_per_s"],
                "roof": roof,
                "from": level or None,
                "roof_note": note,
                "passes": figures.passes,
                "±95%": half if half is not None else math.nan,
                "unstable": "!" if info.get("unstable") else "",
                "overhead": info.get("harness_overhead_ratio"),
                "x NumPy": math.exp(ratio.centre) if ratio is not None else None,
                "x NumPy 95%": f"{low:.3g}-{high:.3g}" if np.isfinite(low) and np.isfinite(high) else None,
                "x NumPy ±95%": ratio.half_width_pct if ratio is not None and np.isfinite(ratio.half) else math.nan,
                "x unstable": "!" if ratio is not None and ratio.unstable else "",
            }
        )
    frame = pd.DataFrame(rows)
    for column in ("overhead", "roof", "x NumPy"):
        if column in frame:
            frame[column] = pd.to_numeric(frame[column])  # None -> NaN where not measured
    return frame


def _roof_text(share: float) -> str:
    """A roofline share as shown: ``^`` marks one above 100%, whose reason follows the table."""
    if not math.isfinite(share):
        return ""
    return f"{share:.0%}" + ("^" if share > 1 else "")


def format_summary(benchmarks, limits: dict | None = None, notes: list[str] = ()) -> str:
    """The table as text, grouped by model and size, with what the session's passes found."""
    frame = summary_frame(benchmarks, limits)
    lines = []
    for (group, scenario), part in frame.groupby(["group", "scenario"], sort=False) if not frame.empty else []:
        lines.append(group + SCENARIO_TITLES.get(scenario, ""))
        part = part.drop(columns=["group", "scenario", "roof_note"]).dropna(axis=1, how="all")
        table = part.to_string(
            index=False,
            na_rep="",
            formatters={
                "steps/s": "{:,.0f}".format,
                "GFLOP/s": "{:.2f}".format,
                "GB/s": "{:.2f}".format,
                "x NumPy": "{:.3f}".format,
                "roof": _roof_text,
                "±95%": "{:.1f}%".format,
                "x NumPy ±95%": "{:.1f}%".format,
                "overhead": "{:.3f}".format,
            },
        )
        lines.extend("  " + line for line in table.splitlines())
    for _, row in frame[frame["roof_note"] != ""].iterrows() if not frame.empty else []:
        # A share above 100% is never shown without its reason (docs/stable-numbers.md, "The machine's own limits").
        lines.append(f"^ {row['group']} {row['case']}: {row['roof_note']}")
    figures = (("steps/s", "steps/s", "±95%", "unstable"), ("x NumPy", "x NumPy", "x NumPy ±95%", "x unstable"))
    for name, value, width, flag in figures if not frame.empty else ():
        shown = frame[frame[value].notna()]
        half = shown[width].dropna()
        if half.empty:
            continue
        lines.append(
            f"95% intervals of {name}: half-width {half.median():.1f}% at the median, {half.quantile(0.9):.1f}% at the "
            f"90th percentile; {int((shown[flag] == '!').sum())} of {len(shown)} figures unstable (their interval "
            f"reaches more than {UNSTABLE_HALF_WIDTH:.0%} either side, or there is none): "
            "see README, 'Getting stable numbers'."
        )
    lines.extend(notes)
    return "\n".join(lines)
