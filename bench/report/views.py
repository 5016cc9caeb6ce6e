"""The report's tables as DataFrames, shared by summary.md and index.html.

Each function turns the report's computed tables (throughput rows, speedup.csv,
versions.csv, release-verdict files) into the frame a reader sees: chosen
columns in reading order, raw numbers (so that a page can sort them) and the
formatter of each column (so that every output shows them alike). Long tables
keep the newest run per machine and MLX version; the CSVs hold every run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from bench.releases import version_key
from bench.report import regression
from bench.report.filters import latest_runs
from bench.report.schema import case_labels


def fmt(spec: str) -> Callable:
    """A formatter that leaves missing values blank."""

    def format_value(value):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return ""
        try:
            return spec.format(value)
        except (TypeError, ValueError):  # text where a number was expected: show it as it is
            return str(value)

    return format_value


COUNT = fmt("{:,.0f}")
RATIO = fmt("{:.3g}")
FIXED2 = fmt("{:.2f}")
MS = fmt("{:.3f}")
PCT = fmt("{:.1f}%")
SIGNED_PCT = fmt("{:+.1f}%")
P_VALUE = fmt("{:.2g}")
YES = lambda value: "yes" if str(value).lower() == "true" else ""  # noqa: E731

# Column names as a reader wants them in a table header (units included).
HEADERS = {
    "mlx_version": "MLX",
    "baseline_version": "baseline MLX",
    "steps_per_round": "K (steps/round)",
    "n_rounds": "rounds",
    "median_round_ms": "median round (ms)",
    "iqr_pct_of_median": "IQR (% of median)",
    "n_passes": "passes",
    "pass_spread_pct": "pass spread (% of median)",
    "steps_per_s": "steps/s",
    "samples_per_s": "samples/s",
    "gflops_per_s": "GFLOP/s",
    "gb_per_s": "GB/s",
    "peak_memory_mib": "peak memory (MiB)",
    "arithmetic_intensity": "intensity (flop/byte)",
    "roofline_pct": "% of roofline",
    "bandwidth_pct": "% of bandwidth",
    "mlx_steps_per_s": "MLX steps/s",
    "numpy_steps_per_s": "NumPy steps/s",
    "speedup": "speedup (×, >1: MLX faster)",
    "pct_change_median_time": "median time change (%)",
    "pct_change": "change (%, + slower)",
    "ci_low_pct": "95% CI low (%)",
    "ci_high_pct": "95% CI high (%)",
    "min_detectable_pct": "min. detectable (%)",
    "passes_needed": "passes needed",
    "n_older": "n older",
    "n_newer": "n newer",
    "p_value": "p",
    "p_value_adjusted": "adjusted p",
    "median_first_step_ms": "median first step (ms)",
    "first_in_process_ms": "first in process (ms)",
    "bare_loop_steps_per_s": "bare loop steps/s",
    "harness_overhead_ratio": "suite ÷ bare loop time",
    "n_ranks": "ranks",
    "scaling_efficiency": "scaling efficiency",
    "compute_s_per_step": "compute (s/step)",
    "collective_s_per_step": "collective (s/step)",
}


def size_text(n_examples, n_features) -> list[str]:
    """Sizes as ``1,000×100`` (examples × features)."""
    return [f"{int(n):,}×{int(d):,}" for n, d in zip(n_examples, n_features)]


def with_case(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in reading order (machine, MLX release order, scenario, model, size) with case and size labels."""
    frame = frame.copy()
    frame["case"] = case_labels(frame)
    frame["size"] = size_text(frame["n_examples"], frame["n_features"])
    order = sorted(
        range(len(frame)),
        key=lambda i: (
            str(frame["machine"].iloc[i]),
            version_key(frame["mlx_version"].iloc[i]),
            str(frame["scenario"].iloc[i]),
            str(frame["model"].iloc[i]),
            int(frame["n_examples"].iloc[i]),
            int(frame["n_features"].iloc[i]),
        ),
    )
    return frame.iloc[order]


def newest_version(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of each machine's newest MLX version (the answer a reader wants first)."""
    keep = []
    for _, part in frame.groupby("machine", sort=True):
        versions = part["mlx_version"].dropna().unique()
        keep.append(part if not len(versions) else part[part["mlx_version"] == max(versions, key=version_key)])
    return pd.concat(keep) if keep else frame


def speedup_cells(speedup: pd.DataFrame) -> pd.DataFrame:
    """The headline's data: newest run of each machine's newest MLX version, grid and blog scenarios, one row
    per MLX case and size with its speedup and which side the interval favours."""
    if speedup.empty:
        return speedup.assign(case=[], size=[])
    usable = speedup[np.isfinite(pd.to_numeric(speedup["speedup"], errors="coerce"))]
    if usable.empty:
        return usable.assign(case=[], size=[])
    shown = with_case(latest_runs(newest_version(usable)).assign(backend="mlx"))
    shown["case"] = [c.removeprefix("mlx-") for c in shown["case"]]
    return shown


def headline_sentence(cells: pd.DataFrame) -> str:
    """One line: how many MLX cases beat NumPy, the best and the worst, for one machine and model."""
    if cells.empty:
        return "no MLX case with a NumPy baseline in the same run"
    counts = cells["faster"].value_counts()
    best = cells.loc[cells["speedup"].idxmax()]
    worst = cells.loc[cells["speedup"].idxmin()]
    return (
        f"MLX faster in {counts.get('mlx', 0)} of {len(cells)} (case, size) pairs, NumPy faster in "
        f"{counts.get('numpy', 0)}, too close to call in {counts.get('inconclusive', 0)}; "
        f"best {best['speedup']:.3g}× ({best['case']} at {best['size']}), "
        f"worst {worst['speedup']:.3g}× ({worst['case']} at {worst['size']})"
    )


def headline_by_size(cells: pd.DataFrame) -> pd.DataFrame:
    """Per machine, model and size: the best and worst MLX case against NumPy, and the count MLX wins."""
    rows = []
    for (machine, version, model, scenario, size), part in cells.groupby(
        ["machine", "mlx_version", "model", "scenario", "size"], sort=False
    ):
        best, worst = part.loc[part["speedup"].idxmax()], part.loc[part["speedup"].idxmin()]
        rows.append(
            {
                "machine": machine,
                "MLX": version,
                "model": model,
                "scenario": scenario,
                "size": size,
                "MLX faster (cases)": f"{int((part['faster'] == 'mlx').sum())} of {len(part)}",
                "best MLX case": best["case"],
                "best ×": best["speedup"],
                "worst MLX case": worst["case"],
                "worst ×": worst["speedup"],
            }
        )
    return pd.DataFrame(rows)


def backends_by_size(frame: pd.DataFrame) -> pd.DataFrame:
    """Best steps/s of each backend (MLX, NumPy and any peer present) per machine, model and size."""
    warm = frame[(frame["phase"] == "warm") & (frame["scenario"] == "grid")]
    if warm.empty:
        return pd.DataFrame()
    warm = with_case(latest_runs(newest_version(warm)))
    best = warm.loc[
        warm.groupby(["machine", "mlx_version", "model", "size", "backend"], sort=False)["steps_per_s"].idxmax()
    ]
    return best[["machine", "mlx_version", "model", "size", "backend", "case", "steps_per_s", "unstable"]]


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
    """Every MLX case against NumPy, newest run per machine and MLX version."""
    if speedup.empty:
        return pd.DataFrame()
    shown = with_case(latest_runs(speedup).assign(backend="mlx"))
    shown["vs NumPy"] = shown["numpy_variant"] + " " + shown["numpy_dtype"] + " " + shown["numpy_barrier"]
    columns = [
        "machine",
        "mlx_version",
        "scenario",
        "model",
        "size",
        "case",
        "variant",
        "device",
        "vs NumPy",
        "mlx_steps_per_s",
        "numpy_steps_per_s",
        "speedup",
        "speedup_ci_low",
        "speedup_ci_high",
        "faster",
    ]
    return shown[columns].rename(columns={"speedup_ci_low": "95% CI low (×)", "speedup_ci_high": "95% CI high (×)"})


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
        "samples_per_s",
        "gflops_per_s",
        "gb_per_s",
    ]
    if "peak_memory_bytes" in shown and shown["peak_memory_bytes"].notna().any():
        shown["peak_memory_mib"] = pd.to_numeric(shown["peak_memory_bytes"], errors="coerce") / 2**20
        columns.append("peak_memory_mib")
    if shown["roofline_fraction"].notna().any():
        shown["roofline_pct"] = 100 * shown["roofline_fraction"]
        shown["bandwidth_pct"] = 100 * shown["bandwidth_fraction"]
        columns += ["arithmetic_intensity", "roofline_pct", "bandwidth_pct"]
    return shown[columns + ["unstable"]]


THROUGHPUT_FORMATS = {
    "median_round_ms": MS,
    "iqr_pct_of_median": PCT,
    "steps_per_s": COUNT,
    "samples_per_s": COUNT,
    "gflops_per_s": FIXED2,
    "gb_per_s": FIXED2,
    "peak_memory_mib": fmt("{:,.1f}"),
    "arithmetic_intensity": fmt("{:.3g}"),
    "roofline_pct": PCT,
    "bandwidth_pct": PCT,
    "unstable": YES,
}

# The verdict-row columns (README, "Compare MLX releases"), with the yes/no `regression` flag after the verdict,
# and the older versions.csv names they replace.
_VERDICT = regression.VERDICT_COLUMNS.index("verdict") + 1
VERDICT_COLUMNS = (*regression.VERDICT_COLUMNS[:_VERDICT], "regression", *regression.VERDICT_COLUMNS[_VERDICT:])
_VERDICT_ALIASES = {
    "case": "case_id",
    "baseline_version": "older",
    "mlx_version": "newer",
    "pct_change_median_time": "pct_change",
    "baseline_n_runs": "n_older",
    "n_runs": "n_newer",
}
VERDICT_FORMATS = {
    "pct_change": SIGNED_PCT,
    "ci_low_pct": SIGNED_PCT,
    "ci_high_pct": SIGNED_PCT,
    "p_value": P_VALUE,
    "p_value_adjusted": P_VALUE,
    "min_detectable_pct": PCT,
    "regression": YES,
    "control": YES,
}


def verdict_rows(versions: pd.DataFrame) -> pd.DataFrame:
    """Verdict rows in the shared format, from versions.csv of any age: the columns that exist, in order.

    Older frames name the columns as versions.csv did (case, baseline_version,
    pct_change_median_time...) and compare against both the previous and the
    oldest release; only the adjacent pairs are kept, as a release runner reports them.
    """
    if versions is None or versions.empty:
        return pd.DataFrame()
    rows = versions.copy()
    if "against" in rows:
        rows = rows[rows["against"].astype(str) == "previous"]
    rows = rows.rename(columns={k: v for k, v in _VERDICT_ALIASES.items() if v not in rows})
    if "control" not in rows and "backend" in rows:
        rows["control"] = rows["backend"] == "numpy"
    if "regression" not in rows and "verdict" in rows:
        rows["regression"] = rows["verdict"] == "regression"
    for column in ("pct_change", "ci_low_pct", "ci_high_pct", "p_value", "p_value_adjusted", "min_detectable_pct"):
        if column in rows:
            rows[column] = pd.to_numeric(rows[column], errors="coerce")
    columns = [c for c in VERDICT_COLUMNS if c in rows]
    return rows[columns].reset_index(drop=True)


def is_regression(rows: pd.DataFrame) -> pd.Series:
    """Which verdict rows are regressions (the regression flag, or the verdict itself in the newer format)."""
    flagged = pd.Series(False, index=rows.index)
    if "regression" in rows:
        flagged |= rows["regression"].astype(str).str.lower() == "true"
    if "verdict" in rows:
        flagged |= rows["verdict"].astype(str) == "regression"
    # NumPy controls and comparisons whose controls moved never count as regressions
    if "control" in rows:
        flagged &= rows["control"].astype(str).str.lower() != "true"
    if "comparison_status" in rows:
        flagged &= rows["comparison_status"].astype(str) != "inconclusive"
    return flagged


def verdict_counts(rows: pd.DataFrame) -> pd.DataFrame:
    """Per machine and pair of releases: how many cases got each verdict, controls apart."""
    if rows.empty or "verdict" not in rows:
        return pd.DataFrame()
    keys = [k for k in ("machine", "older", "newer") if k in rows]
    rows = rows.assign(
        regressions=is_regression(rows), side=np.where(rows.get("control", False) == True, "NumPy (control)", "MLX")
    )  # noqa: E712
    counts = rows.groupby([*keys, "side", "verdict"]).size().unstack(fill_value=0)
    if "regression" not in counts:  # older frames: regressions are "slower" rows with the flag set
        counts["regression"] = rows.groupby([*keys, "side"])["regressions"].sum()
        if "slower" in counts:  # disjoint counts, as in the newer verdicts: slower but not a regression
            counts["slower"] -= counts["regression"]
    order = [v for v in ("regression", "slower", "faster", "same", "undecided") if v in counts]
    counts = counts[order + [c for c in counts.columns if c not in order]]
    return counts.rename(columns=lambda verdict: f"{verdict} (cases)").reset_index()


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
    "mlx_steps_per_s": COUNT,
    "numpy_steps_per_s": COUNT,
    "speedup": RATIO,
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


def machines(frame: pd.DataFrame) -> pd.DataFrame:
    """Each machine and MLX version: what ran where, how many runs, when."""
    columns = {
        "machine": "machine",
        "mlx_version": "MLX",
        "cpu_model": "CPU",
        "usable_cpus": "CPUs",
        "mlx_default_device": "MLX device",
        "mlx_blas_source": "MLX BLAS",
        "numpy_blas": "NumPy BLAS",
        "numpy_blas_threads": "BLAS threads",
        "numpy_version": "NumPy",
        "env": "env",
    }
    present = {k: v for k, v in columns.items() if k in frame}
    groups = frame.groupby(["machine", "mlx_version"], dropna=False, sort=True)
    summary = groups[list(present)[2:]].first()
    summary.insert(0, "runs", groups["source_file"].nunique())
    first, last = groups["run_datetime"].min(), groups["run_datetime"].max()
    summary.insert(1, "dates", [f"{a:%Y-%m-%d} – {b:%Y-%m-%d}" if pd.notna(a) else "" for a, b in zip(first, last)])
    summary = summary.reset_index()
    order = sorted(
        range(len(summary)), key=lambda i: (summary["machine"].iloc[i], version_key(summary["mlx_version"].iloc[i]))
    )
    return summary.iloc[order].rename(columns=present)


def reference_blas_machines(frame: pd.DataFrame) -> list[str]:
    """Machines whose MLX calls the reference (netlib) BLAS of the Linux mlx[cpu] wheel."""
    if "mlx_blas_source" not in frame:
        return []
    return list(frame[frame["mlx_blas_source"].fillna("").str.contains("reference")]["machine"].unique())


REFERENCE_BLAS_NOTE = (
    "calls the reference (netlib) BLAS bundled with the Linux `mlx[cpu]` wheel: "
    "its matrix products are far slower than an optimized BLAS."
)


def runs_read(frame: pd.DataFrame) -> tuple[str, str]:
    """The MLX versions read (release order) and "runs from ... to ... UTC" ("" without dates), for a report's header."""
    dates = frame["run_datetime"].dropna()
    span = f"runs from {dates.min():%Y-%m-%d %H:%M} to {dates.max():%Y-%m-%d %H:%M} UTC" if len(dates) else ""
    return ", ".join(sorted(frame["mlx_version"].dropna().unique(), key=version_key)), span
