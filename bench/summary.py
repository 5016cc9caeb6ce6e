"""The end-of-run table in the terminal: steps/s per case and MLX / NumPy ratios.

pytest-benchmark prints round times; a reader wants throughput and the
comparison the suite exists for, measured in this run. The ratio compares each
case with NumPy's float32 `analytic` case of the same model, size and scenario.
"""

from __future__ import annotations

import pandas as pd

BASELINE = ("numpy", "analytic")
BLOG_BASELINE = ("numpy", "seed")


def summary_frame(benchmarks) -> pd.DataFrame:
    """One row per timed case: its id, K, steps/s, GFLOP/s, GB/s and the ratio to NumPy."""
    rows = []
    for bench in benchmarks:
        info = bench.extra_info
        if "steps_per_s" not in info:
            continue  # failed or untimed
        rows.append(
            {
                "group": f'{info["model"]}-n{info["n_examples"]}-d{info["n_features"]}',
                "scenario": info.get("scenario", "grid"),
                "case": f'{info["backend"]}-{info["variant"]}-{info["barrier"]}-{info["device"]}',
                "backend": info["backend"],
                "variant": info["variant"],
                "K": info["steps_per_round"],
                "steps/s": info["steps_per_s"],
                "GFLOP/s": info["gflops_per_s"],
                "GB/s": info["gb_per_s"],
                "overhead": info.get("harness_overhead_ratio"),
            }
        )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["overhead"] = pd.to_numeric(frame["overhead"])  # None -> NaN where not measured
    baseline = {}
    for (group, scenario), part in frame.groupby(["group", "scenario"]):
        wanted = BLOG_BASELINE if scenario == "blog" else BASELINE
        match = part[(part.backend == wanted[0]) & (part.variant == wanted[1])]
        if len(match):
            baseline[(group, scenario)] = match["steps/s"].iloc[0]
    frame["x NumPy"] = [
        steps / baseline.get(key, float("nan")) for steps, key in zip(frame["steps/s"], zip(frame.group, frame.scenario))
    ]
    return frame.drop(columns=["backend", "variant"])


def format_summary(benchmarks) -> str:
    """The table as text, grouped by model and size."""
    frame = summary_frame(benchmarks)
    if frame.empty:
        return ""
    lines = []
    for (group, scenario), part in frame.groupby(["group", "scenario"], sort=False):
        lines.append(f"{group}{' (blog configuration)' if scenario == 'blog' else ''}")
        part = part.drop(columns=["group", "scenario"]).dropna(axis=1, how="all")
        table = part.to_string(
            index=False,
            na_rep="",
            formatters={
                "steps/s": "{:,.0f}".format,
                "GFLOP/s": "{:.2f}".format,
                "GB/s": "{:.2f}".format,
                "x NumPy": "{:.3f}".format,
                "overhead": "{:.3f}".format,
            },
        )
        lines.extend("  " + line for line in table.splitlines())
    return "\n".join(lines)
