"""The end-of-run table in the terminal: steps/s per case and MLX / NumPy ratios.

pytest-benchmark prints round times; a reader wants throughput and the
comparison the suite exists for, measured in this run. The ratio compares each
case with NumPy's float32 `analytic` case of the same model, size and scenario.
"""

from __future__ import annotations

import pandas as pd

from bench.roofline import MIN_ROUNDS, UNSTABLE_IQR_SHARE, is_unstable, relative_spread, roofline_fraction

SCENARIO_TITLES = {"blog": " (the blog's configuration)", "cold": " (cold start: first step of a new trainer)"}
BASELINE = ("numpy", "analytic")  # same model, size, batch size and MLP width
BLOG_BASELINE = ("numpy", "seed")


def summary_frame(benchmarks, limits: dict | None = None) -> pd.DataFrame:
    """One row per timed case: id, K, steps/s, GFLOP/s, GB/s, roofline share, spread, ratio to NumPy."""
    rows = []
    for bench in benchmarks:
        info = bench.extra_info
        if "steps_per_s" not in info:
            continue  # failed or untimed
        stats = bench.stats
        rows.append(
            {
                "group": f'{info["model"]}-n{info["n_examples"]}-d{info["n_features"]}',
                "scenario": info.get("scenario", "grid"),
                # NumPy's baseline must train the same thing: same batch size and MLP width.
                "batch_key": f'{info.get("batch_size")}-{info.get("hidden")}',
                # case_id without its model prefix and size suffix: the group says those
                "case": info["case_id"].removeprefix(info["model"] + "-").rsplit("-n", 1)[0],
                "backend": info["backend"],
                "variant": info["variant"],
                "K": info["steps_per_round"],
                "steps/s": info["steps_per_s"],
                "GFLOP/s": info["gflops_per_s"],
                "GB/s": info["gb_per_s"],
                "roof": (
                    roofline_fraction(info["gflops_per_s"], info["flops_per_step"], info["bytes_per_step"], limits)
                    if limits
                    else None
                ),
                "spread": relative_spread(stats.iqr, stats.median),
                "unstable": "!" if is_unstable(stats.iqr, stats.median, stats.rounds) else "",
                "overhead": info.get("harness_overhead_ratio"),
            }
        )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    for column in ("overhead", "roof"):
        frame[column] = pd.to_numeric(frame[column])  # None -> NaN where not measured
    keys = list(zip(frame["group"], frame["scenario"], frame["batch_key"]))
    baseline = {}
    for key, backend, variant, steps in zip(keys, frame.backend, frame.variant, frame["steps/s"]):
        wanted = BLOG_BASELINE if key[1] == "blog" else BASELINE
        if (backend, variant) == wanted:
            baseline.setdefault(key, steps)
    frame["x NumPy"] = [steps / baseline.get(key, float("nan")) for steps, key in zip(frame["steps/s"], keys)]
    return frame.drop(columns=["backend", "variant", "batch_key"])


def format_summary(benchmarks, limits: dict | None = None) -> str:
    """The table as text, grouped by model and size, with a note on unstable figures."""
    frame = summary_frame(benchmarks, limits)
    if frame.empty:
        return ""
    lines = []
    for (group, scenario), part in frame.groupby(["group", "scenario"], sort=False):
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
    unstable = int((frame["unstable"] == "!").sum())
    if unstable:
        lines.append(
            f"! {unstable} of {len(frame)} figures are unstable (IQR over {UNSTABLE_IQR_SHARE:.0%} of the median, "
            f"or fewer than {MIN_ROUNDS} rounds): see README, 'Getting stable numbers'."
        )
    return "\n".join(lines)
