"""The end-of-run table in the terminal: steps/s per case and its ratio to NumPy, pass by pass.

pytest-benchmark prints per-step times; a reader wants throughput and the
comparison the suite exists for, measured in this run. The figures follow the
same rules as the report: a case's steps/s is K over the median of its pass
medians, its stability is bench.stability's, and its ratio to NumPy pairs it
with the case bench.pairing names and is taken within each pass, then summarised.
"""

from __future__ import annotations

import pandas as pd

from bench.pairing import BASELINE_BACKEND, baseline_of, pass_ratio
from bench.roofline import roofline_fraction
from bench.stability import AGREEMENT, MIN_ROUNDS, UNSTABLE_IQR_SHARE, pass_figures

SCENARIO_TITLES = {"blog": " (the blog's configuration)", "cold": " (cold start: first step of a new trainer)"}


def _pass_step_times(info: dict) -> dict[int, float]:
    """Median per-step time of each pass of a saved case."""
    figures = pass_figures(info["round_times_s"], info["round_pass"])
    return {int(p): m / info["steps_per_round"] for p, m in zip(figures.pass_ids, figures.pass_medians)}


def _identity(info: dict, variant: str, dtype: str, barrier: str) -> tuple:
    """What a case shares with its baseline: model, size, scenario, batch, width, ranks; and the implementation."""
    return (
        info["model"],
        info["n_examples"],
        info["n_features"],
        info.get("scenario", "grid"),
        info.get("batch_size"),
        info.get("hidden"),
        info.get("n_ranks", 1),
        variant,
        dtype,
        barrier,
    )


def summary_frame(benchmarks, limits: dict | None = None) -> pd.DataFrame:
    """One row per timed case: id, K, steps/s, GFLOP/s, GB/s, roofline share, pass spread, ratio to NumPy."""
    infos = [b.extra_info for b in benchmarks if "steps_per_s" in b.extra_info and "round_times_s" in b.extra_info]
    baselines = {
        _identity(i, i["variant"], i["dtype"], i["barrier"]): _pass_step_times(i)
        for i in infos
        if i["backend"] == BASELINE_BACKEND
    }
    rows = []
    for info in infos:
        figures = pass_figures(info["round_times_s"], info["round_pass"])
        ratio = None
        if info["backend"] != BASELINE_BACKEND:
            base = baselines.get(_identity(info, *baseline_of(info.get("scenario", "grid"), info["barrier"])))
            # steps/s ratio per pass = NumPy's step time over the case's
            ratio = pass_ratio(base, _pass_step_times(info)) if base else None
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
                "roof": (
                    roofline_fraction(info["gflops_per_s"], info["flops_per_step"], info["bytes_per_step"], limits)
                    if limits
                    else None
                ),
                "passes": figures.passes,
                "spread": figures.pass_spread,
                "unstable": "!" if figures.unstable else "",
                "overhead": info.get("harness_overhead_ratio"),
                "x NumPy": ratio.ratio if ratio else None,
            }
        )
    frame = pd.DataFrame(rows)
    for column in ("overhead", "roof", "x NumPy"):
        if column in frame:
            frame[column] = pd.to_numeric(frame[column])  # None -> NaN where not measured
    return frame


def format_summary(benchmarks, limits: dict | None = None, notes: list[str] = ()) -> str:
    """The table as text, grouped by model and size, with what the session's passes found."""
    frame = summary_frame(benchmarks, limits)
    lines = []
    for (group, scenario), part in frame.groupby(["group", "scenario"], sort=False) if not frame.empty else []:
        lines.append(group + SCENARIO_TITLES.get(scenario, ""))
        part = part.drop(columns=["group", "scenario"]).dropna(axis=1, how="all")
        table = part.to_string(
            index=False,
            na_rep="",
            formatters={
                "steps/s": "{:,.0f}".format,
                "GFLOP/s": "{:.2f}".format,
                "GB/s": "{:.2f}".format,
                "x NumPy": "{:.3f}".format,
                "roof": "{:.0%}".format,
                "spread": "{:.1%}".format,
                "overhead": "{:.3f}".format,
            },
        )
        lines.extend("  " + line for line in table.splitlines())
    unstable = int((frame["unstable"] == "!").sum()) if not frame.empty else 0
    if unstable:
        lines.append(
            f"! {unstable} of {len(frame)} figures are unstable (no majority of passes within {AGREEMENT:.0%} of the median, "
            f"rounds' IQR over {UNSTABLE_IQR_SHARE:.0%} of the median, or fewer than {MIN_ROUNDS} rounds): "
            "see README, 'Getting stable numbers'."
        )
    lines.extend(notes)
    return "\n".join(lines)
