"""The detail tables: every case, newest run per machine and MLX version, with their formats.

The blog's cases beside the blog's figures, every case against NumPy, every
pair of backends, throughput, cold starts, harness overhead, distributed runs
and unstable rows; DETAIL_FORMATS formats the columns of all of them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.report.filters import latest_runs
from bench.report.schema import backend_label
from bench.report.table_formats import COUNT, FIXED2, MS, PCT, RATIO, YES, fmt
from bench.report.table_rows import size_text, with_case
from bench.report.verdict_tables import VERDICT_FORMATS


def blog_rows(frame: pd.DataFrame, published: dict) -> pd.DataFrame:
    """The blog scenario's warm rows (newest run per machine and version) beside the blog's steps/s."""
    blog = frame[(frame["scenario"] == "blog") & (frame["phase"] == "warm")]
    if blog.empty:
        return pd.DataFrame()
    blog = with_case(latest_runs(blog))
    blog["steps/s in the blog"] = [published.get((m, b), np.nan) for m, b in zip(blog["model"], blog["backend"])]
    blog["here ÷ blog"] = blog["steps_per_s"] / blog["steps/s in the blog"]
    return blog[
        [
            "machine",
            "mlx_version",
            "model",
            "case",
            "dtype",
            "n_rounds",
            "steps_per_s",
            "steps/s in the blog",
            "here ÷ blog",
            "unstable",
        ]
    ].rename(columns={"steps_per_s": "steps/s here"})


def blog_ratios(blog: pd.DataFrame, published: dict) -> pd.DataFrame:
    """The blog's own comparison, MLX over NumPy per model, there and here."""
    ratios = []
    if blog.empty:
        return pd.DataFrame()
    for (machine, version, model), part in blog.groupby(["machine", "mlx_version", "model"], dropna=False):
        numpy = part[part["case"].str.startswith("numpy")]["steps/s here"]
        blog_ratio = published.get((model, "mlx"), np.nan) / published.get((model, "numpy"), np.nan)
        for _, row in part[part["case"].str.startswith("mlx")].iterrows():
            ratios.append(
                {
                    "machine": machine,
                    "MLX": version,
                    "model": model,
                    "MLX case": row["case"],
                    "MLX ÷ NumPy here": row["steps/s here"] / numpy.iloc[0] if len(numpy) else np.nan,
                    "MLX ÷ NumPy in the blog": blog_ratio,
                }
            )
    return pd.DataFrame(ratios)


def speedup_detail(speedup: pd.DataFrame) -> pd.DataFrame:
    """Every non-NumPy case against NumPy, newest run per machine and MLX version."""
    if speedup.empty:
        return pd.DataFrame()
    shown = with_case(latest_runs(speedup))
    shown["vs NumPy"] = shown["baseline_variant"] + " " + shown["baseline_dtype"] + " " + shown["baseline_barrier"]
    columns = [
        "machine",
        "mlx_version",
        "scenario",
        "model",
        "size",
        "case",
        "backend",
        "variant",
        "device",
        "vs NumPy",
        "steps_per_s",
        "baseline_steps_per_s",
        "speedup",
        "speedup_ci_low",
        "speedup_ci_high",
        "faster",
        "case_id",
    ]
    return shown[columns].rename(columns={"speedup_ci_low": "95% CI low (×)", "speedup_ci_high": "95% CI high (×)"})


def backends_detail(backends: pd.DataFrame) -> pd.DataFrame:
    """Every pair of backends (backends.csv), fastest case against fastest case, newest run per machine and MLX
    version."""
    if backends is None or backends.empty:
        return pd.DataFrame()
    shown = latest_runs(backends).copy()
    shown["size"] = size_text(shown["n_examples"], shown["n_features"])
    shown["backend"] = shown["backend"].map(backend_label)
    shown["other_backend"] = shown["other_backend"].map(backend_label)
    columns = [
        "machine", "mlx_version", "scenario", "model", "size", "batch_size", "hidden", "dtype", "device_class",
        "backend", "case_id", "steps_per_s", "other_backend", "other_case_id", "other_steps_per_s",
        "ratio", "ratio_ci_low", "ratio_ci_high", "faster",
    ]  # fmt: skip
    return shown[columns].rename(
        columns={"ratio_ci_low": "95% CI low (×)", "ratio_ci_high": "95% CI high (×)", "other_backend": "against"}
    )


def throughput_detail(warm: pd.DataFrame) -> pd.DataFrame:
    """Throughput per case (warm rows, newest run per machine and MLX version), with memory and roofline columns
    when the results have them."""
    if warm.empty:
        return pd.DataFrame()
    shown = with_case(latest_runs(warm))
    shown["median_round_ms"] = shown["median_round_s"] * 1e3
    columns = [
        "machine",
        "mlx_version",
        "scenario",
        "model",
        "size",
        "case",
        "backend",
        "variant",
        "device",
        "steps_per_round",
        "n_rounds",
        "median_round_ms",
        "iqr_pct_of_median",
        "steps_per_s",
    ]
    if "steps_per_s_half_width_pct" in shown:  # the 95% interval, saved since intervals exist (bench.stats.intervals)
        shown["±95% (%)"] = pd.to_numeric(shown["steps_per_s_half_width_pct"], errors="coerce")
        columns.append("±95% (%)")
    columns += ["samples_per_s", "gflops_per_s", "gb_per_s"]
    if "peak_memory_bytes" in shown and shown["peak_memory_bytes"].notna().any():
        shown["peak_memory_mib"] = pd.to_numeric(shown["peak_memory_bytes"], errors="coerce") / 2**20
        columns.append("peak_memory_mib")
    if shown["roofline_fraction"].notna().any():
        shown["roofline_pct"] = 100 * shown["roofline_fraction"]
        shown["bandwidth_pct"] = 100 * shown["bandwidth_fraction"]
        columns += ["arithmetic_intensity", "roofline_level", "roofline_pct", "bandwidth_pct"]
        if (shown["roofline_note"] != "").any():  # a share above 100% is shown with its reason (bench.stats.roofline)
            columns.append("roofline_note")
    return shown[columns + ["unstable"]]


THROUGHPUT_FORMATS = {
    "median_round_ms": MS,
    "iqr_pct_of_median": PCT,
    "pass_spread_pct": PCT,  # one decimal, as every other percentage of the tables
    "steps_per_s": COUNT,
    "±95% (%)": fmt("{:.1f}"),
    "samples_per_s": COUNT,
    "gflops_per_s": FIXED2,
    "gb_per_s": FIXED2,
    "peak_memory_mib": fmt("{:,.1f}"),
    "arithmetic_intensity": fmt("{:.3g}"),
    "roofline_pct": PCT,
    "bandwidth_pct": PCT,
    "unstable": YES,
}


def cold_detail(frame: pd.DataFrame) -> pd.DataFrame:
    """Cold starts: the first step of a fresh trainer."""
    cold = frame[frame["phase"] == "cold"]
    if cold.empty:
        return pd.DataFrame()
    shown = with_case(latest_runs(cold))
    shown["median_first_step_ms"] = shown["median_step_s"] * 1e3
    columns = ["machine", "mlx_version", "model", "size", "case", "n_rounds", "median_first_step_ms"]
    if "first_round_s" in shown:
        shown["first_in_process_ms"] = pd.to_numeric(shown["first_round_s"], errors="coerce") * 1e3
        columns.append("first_in_process_ms")
    return shown[columns]


def overhead_detail(warm: pd.DataFrame) -> pd.DataFrame:
    """Harness overhead: the suite's round time against a bare loop of the same kernel."""
    if "harness_overhead_ratio" not in warm or warm["harness_overhead_ratio"].isna().all():
        return pd.DataFrame()
    shown = with_case(latest_runs(warm[warm["harness_overhead_ratio"].notna()]))
    columns = [
        "machine",
        "mlx_version",
        "model",
        "size",
        "case",
        "steps_per_s",
        "bare_loop_steps_per_s",
        "harness_overhead_ratio",
    ]
    return shown[[c for c in columns if c in shown]]


def distributed_detail(warm: pd.DataFrame) -> pd.DataFrame:
    """Distributed runs: throughput, scaling efficiency, communication against computation."""
    runs = warm[warm["scenario"] == "distributed"]
    if runs.empty:
        return pd.DataFrame()
    shown = with_case(latest_runs(runs))
    columns = [
        "machine",
        "mlx_version",
        "model",
        "size",
        "case",
        "n_ranks",
        "steps_per_s",
        "scaling_efficiency",
        "compute_s_per_step",
        "collective_s_per_step",
    ]
    return shown[[c for c in columns if c in shown]]


DETAIL_FORMATS = {
    "median_first_step_ms": MS,
    "first_in_process_ms": MS,
    "bare_loop_steps_per_s": COUNT,
    "harness_overhead_ratio": fmt("{:.3f}"),
    "scaling_efficiency": FIXED2,
    "compute_s_per_step": fmt("{:.3g}"),
    "collective_s_per_step": fmt("{:.3g}"),
    "baseline_steps_per_s": COUNT,
    "other_steps_per_s": COUNT,
    "speedup": RATIO,
    "ratio": RATIO,
    "95% CI low (×)": RATIO,
    "95% CI high (×)": RATIO,
    "steps/s here": COUNT,
    "steps/s in the blog": COUNT,
    "here ÷ blog": RATIO,
    "MLX ÷ NumPy here": RATIO,
    "MLX ÷ NumPy in the blog": RATIO,
    "best ×": RATIO,
    "worst ×": RATIO,
    **THROUGHPUT_FORMATS,
    **VERDICT_FORMATS,
}


def unstable_detail(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows whose spread is too wide, or rounds too few, to trust their median (newest run per machine and version)."""
    unstable = frame[frame["unstable"]]
    if unstable.empty:
        return pd.DataFrame()
    shown = with_case(latest_runs(unstable))
    shown["run"] = [Path(f).name for f in shown["source_file"]]
    columns = [
        "machine",
        "mlx_version",
        "run",
        "phase",
        "scenario",
        "model",
        "size",
        "case",
        "n_passes",
        "n_rounds",
        "pass_spread_pct",
        "iqr_pct_of_median",
    ]
    return shown[columns]
