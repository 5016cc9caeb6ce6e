"""summary.md: the report's comparisons as Markdown tables a person reads top to bottom.

Regressions come first (what a release tracker looks for), then the machines
and their environment, the blog's cases beside the blog's published figures,
MLX against NumPy, throughput, MLX versions, and the tables that appear only
when the results carry their fields: cold starts, harness overhead,
distributed runs. Unstable rows and skipped files close it. Long tables show
the newest run per machine and MLX version; the CSVs hold every run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from bench.report.filters import latest_runs
from bench.stability import AGREEMENT, MIN_ROUNDS, UNSTABLE_IQR_SHARE
from bench.releases import version_key
from bench.report.regression import ALPHA, MIN_RUNS, inconclusive, regressions
from bench.report.schema import case_labels
from reference import load_blog_figures


def _fmt(spec: str) -> Callable:
    """A formatter that leaves missing values blank."""
    return lambda value: "" if value is None or (isinstance(value, float) and np.isnan(value)) else spec.format(value)


COUNT = _fmt("{:,.0f}")
RATIO = _fmt("{:.3g}")
FIXED2 = _fmt("{:.2f}")
PCT = _fmt("{:.1f}%")
SIGNED_PCT = _fmt("{:+.1f}%")
P_VALUE = _fmt("{:.2g}")


# Column names as a reader wants them in a table header (units included).
HEADERS = {
    "mlx_version": "MLX",
    "baseline_version": "baseline MLX",
    "steps_per_round": "K",
    "n_rounds": "rounds",
    "median_round_ms": "median round (ms)",
    "iqr_pct_of_median": "IQR (% of median)",
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
    "pct_change": "per-step time change",
    "ci_low_pct": "95% interval from",
    "ci_high_pct": "to",
    "older": "older MLX",
    "newer": "newer MLX",
    "min_detectable_pct": "detectable change",
    "passes_needed": "runs needed",
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
    "iqr_pct": "IQR (% of median)",
}


def table(frame: pd.DataFrame, formats: dict | None = None) -> str:
    """A Markdown table of `frame`, columns formatted by `formats` (column -> function), headers readable."""
    if frame.empty:
        return "_(none)_"
    frame = frame.copy()
    for column, format_value in (formats or {}).items():
        if column in frame:
            frame[column] = frame[column].map(format_value)
    frame = frame.astype(object).where(frame.notna(), "").rename(columns=HEADERS)
    return frame.to_markdown(index=False, disable_numparse=True)


def _ms(seconds: pd.Series) -> pd.Series:
    return seconds * 1e3


def _size(frame: pd.DataFrame) -> pd.Series:
    return [f"{n:,}×{d:,}" for n, d in zip(frame["n_examples"], frame["n_features"])]


def _with_case(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in reading order (machine, MLX release order, scenario, model, size) with case and size labels."""
    frame = frame.copy()
    frame["case"] = case_labels(frame)
    frame["size"] = _size(frame)
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


def section_regressions(versions: pd.DataFrame, threshold: float, correction: str) -> str:
    """Regressions: run-level, significantly slower by more than the threshold; then inconclusive comparisons."""
    method = {"holm": "Holm", "bh": "Benjamini-Hochberg"}.get(correction, correction)
    tested = int((versions["p_value"].notna() & ~versions["control"].astype(bool)).sum()) if len(versions) else 0
    rule = (
        f"an MLX case whose per-step time, run by run and normalised by the NumPy controls of the same run, "
        f"is slower by more than {100 * threshold:g}%, with a one-sided {method}-adjusted p ≤ {ALPHA} over "
        f"{tested} MLX test(s) and at least {MIN_RUNS} runs on each side"
    )
    found = regressions(versions) if len(versions) else versions
    moved = inconclusive(versions)
    notes = "".join(
        f"\n**Inconclusive**: {row.machine} MLX {row.older} -> {row.newer}: {row.reason}.\n"
        for row in moved.itertuples()
    )
    if found.empty:
        compared = "no case was measured under two MLX versions" if versions.empty else "none found"
        return f"## Regressions\n\nA regression is {rule}: {compared}.\n{notes}"
    shown = found[["machine", "case", "older", "newer", "pct_change", "ci_low_pct", "ci_high_pct", "p_value_adjusted"]]
    body = table(
        shown,
        {"pct_change": SIGNED_PCT, "ci_low_pct": SIGNED_PCT, "ci_high_pct": SIGNED_PCT, "p_value_adjusted": P_VALUE},
    )
    return f"## Regressions\n\n**{len(found)} regression(s)**; a regression is {rule}.\n{notes}\n{body}\n"


def section_machines(frame: pd.DataFrame) -> str:
    """Each machine and MLX version: what ran where (DESIGN rule 7)."""
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
    machines = frame.groupby(["machine", "mlx_version"], dropna=False, sort=True)
    summary = machines[list(present)[2:]].first()
    summary.insert(0, "runs", machines["source_file"].nunique())
    first, last = machines["run_datetime"].min(), machines["run_datetime"].max()
    summary.insert(1, "dates", [f"{a:%Y-%m-%d} – {b:%Y-%m-%d}" if pd.notna(a) else "" for a, b in zip(first, last)])
    summary = summary.reset_index()
    summary = summary.iloc[
        sorted(
            range(len(summary)), key=lambda i: (summary["machine"].iloc[i], version_key(summary["mlx_version"].iloc[i]))
        )
    ]
    notes = ""
    reference_blas = frame[frame["mlx_blas_source"].fillna("").str.contains("reference")]["machine"].unique()
    if len(reference_blas):
        notes = (
            "\n\nMLX on "
            + ", ".join(f"`{m}`" for m in reference_blas)
            + " calls the reference (netlib) BLAS bundled with "
            "the Linux `mlx[cpu]` wheel: its matrix products are far slower than an optimized BLAS."
        )
    return f"## Machines\n\n{table(summary.rename(columns=present))}{notes}\n"


def section_blog(frame: pd.DataFrame) -> str:
    """The blog's configurations: this machine's steps/s beside the blog's published figures."""
    blog = frame[(frame["scenario"] == "blog") & (frame["phase"] == "warm")]
    figures = load_blog_figures()
    published = {(f["model"], f["backend"]): f["steps_per_s"] for f in figures["figures"]}
    if blog.empty:
        return "## The blog's cases\n\n_(no results of the blog scenario; run `pytest --benchmark-only bench/test_blog.py`)_\n"
    blog = _with_case(latest_runs(blog))
    blog["blog_steps_per_s"] = [published.get((m, b), np.nan) for m, b in zip(blog["model"], blog["backend"])]
    blog["here_vs_blog"] = blog["steps_per_s"] / blog["blog_steps_per_s"]
    rows = blog[
        [
            "machine",
            "mlx_version",
            "model",
            "case",
            "dtype",
            "n_rounds",
            "steps_per_s",
            "blog_steps_per_s",
            "here_vs_blog",
        ]
    ]
    body = table(
        rows.rename(
            columns={
                "steps_per_s": "steps/s here",
                "blog_steps_per_s": "steps/s in the blog",
                "here_vs_blog": "here ÷ blog",
            }
        ),
        {"steps/s here": COUNT, "steps/s in the blog": COUNT, "here ÷ blog": RATIO},
    )
    # The blog's own comparison: MLX over NumPy per model, there and here.
    ratios = []
    for (machine, version, model), part in blog.groupby(["machine", "mlx_version", "model"], dropna=False):
        numpy = part[part["backend"] == "numpy"]["steps_per_s"]
        blog_ratio = published.get((model, "mlx"), np.nan) / published.get((model, "numpy"), np.nan)
        for _, row in part[part["backend"] == "mlx"].iterrows():
            here = row["steps_per_s"] / numpy.iloc[0] if len(numpy) else np.nan
            ratios.append(
                {
                    "machine": machine,
                    "MLX": version,
                    "model": model,
                    "MLX case": row["case"],
                    "MLX ÷ NumPy here": here,
                    "MLX ÷ NumPy in the blog": blog_ratio,
                }
            )
    ratio_table = table(pd.DataFrame(ratios), {"MLX ÷ NumPy here": RATIO, "MLX ÷ NumPy in the blog": RATIO})
    return (
        f"## The blog's cases\n\nThe blog: {figures['machine']}. Its figures are one timing each; "
        f"here, the median of the rounds (newest run per machine and MLX version).\n\n{body}\n\n{ratio_table}\n"
    )


def section_speedup(speedup: pd.DataFrame) -> str:
    """MLX over NumPy, newest run per machine and MLX version."""
    if speedup.empty:
        return "## MLX against NumPy\n\n_(no MLX case with a NumPy baseline in the same run)_\n"
    shown = _with_case(latest_runs(speedup).assign(backend="mlx"))
    shown["vs NumPy"] = shown["numpy_variant"] + " " + shown["numpy_dtype"] + " " + shown["numpy_barrier"]
    shown["95% CI"] = [
        "" if np.isnan(lo) else f"{lo:.3g} – {hi:.3g}"
        for lo, hi in zip(shown["speedup_ci_low"], shown["speedup_ci_high"])
    ]
    columns = [
        "machine",
        "mlx_version",
        "scenario",
        "model",
        "size",
        "case",
        "vs NumPy",
        "mlx_steps_per_s",
        "numpy_steps_per_s",
        "speedup",
        "95% CI",
        "faster",
    ]
    body = table(shown[columns], {"mlx_steps_per_s": COUNT, "numpy_steps_per_s": COUNT, "speedup": RATIO})
    return (
        "## MLX against NumPy\n\nspeedup = MLX steps/s ÷ NumPy steps/s in the same run (> 1: MLX faster); "
        "each MLX case against NumPy float32 `analytic` (`eager` for step/round barriers, `sync` for sync), "
        "in the blog scenario against the blog's NumPy code. `faster` names a side only when the bootstrap "
        f"interval excludes 1. Newest run per machine and MLX version; every run is in speedup.csv.\n\n{body}\n"
    )


def section_throughput(warm: pd.DataFrame) -> str:
    """Throughput per case (warm rows), with memory and roofline columns when the results have them."""
    shown = _with_case(latest_runs(warm))
    shown["median_round_ms"] = _ms(shown["median_round_s"])
    columns = [
        "machine",
        "mlx_version",
        "scenario",
        "model",
        "size",
        "case",
        "steps_per_round",
        "n_rounds",
        "median_round_ms",
        "iqr_pct_of_median",
        "steps_per_s",
        "samples_per_s",
        "gflops_per_s",
        "gb_per_s",
    ]
    formats = {
        "median_round_ms": _fmt("{:.3f}"),
        "iqr_pct_of_median": PCT,
        "steps_per_s": COUNT,
        "samples_per_s": COUNT,
        "gflops_per_s": FIXED2,
        "gb_per_s": FIXED2,
    }
    if "peak_memory_bytes" in shown and shown["peak_memory_bytes"].notna().any():
        shown["peak_memory_mib"] = pd.to_numeric(shown["peak_memory_bytes"], errors="coerce") / 2**20
        columns.insert(columns.index("median_round_ms") + 2, "peak_memory_mib")
        formats["peak_memory_mib"] = _fmt("{:,.1f}")
    if shown["roofline_fraction"].notna().any():
        shown["roofline_pct"] = 100 * shown["roofline_fraction"]
        shown["bandwidth_pct"] = 100 * shown["bandwidth_fraction"]
        columns += ["arithmetic_intensity", "roofline_pct", "bandwidth_pct"]
        formats.update(arithmetic_intensity=_fmt("{:.3g}"), roofline_pct=PCT, bandwidth_pct=PCT)
    shown["unstable"] = np.where(shown["unstable"], "yes", "")
    columns.append("unstable")
    return (
        "## Throughput\n\nWarm rounds, newest run per machine and MLX version (all runs: throughput.csv). "
        "K = steps per round; IQR as % of the median round time; steps/s = K ÷ median round time."
        + (
            " roofline_pct: GFLOP/s as % of min(bandwidth × intensity, peak); bandwidth_pct: GB/s as % of the machine's bandwidth."
            if "roofline_pct" in columns
            else ""
        )
        + f"\n\n{table(shown[columns], formats)}\n"
    )


def section_versions(versions: pd.DataFrame) -> str:
    """MLX versions: verdict counts, then every MLX comparison that is not `same`."""
    if versions.empty:
        return "## MLX versions\n\n_(no case was measured under more than one MLX version on the same machine)_\n"
    counts = versions.groupby(["older", "newer", "control", "verdict"]).size().unstack(fill_value=0).reset_index()
    changed = versions[(versions["verdict"] != "same") & ~versions["control"].astype(bool)]
    changed = changed.sort_values(["verdict", "pct_change"], ascending=[True, False])
    shown = changed[
        [
            "machine",
            "case",
            "older",
            "newer",
            "pct_change",
            "p_value_adjusted",
            "verdict",
            "min_detectable_pct",
            "passes_needed",
            "reason",
        ]
    ]
    formats = {"pct_change": SIGNED_PCT, "p_value_adjusted": P_VALUE, "min_detectable_pct": PCT}
    return (
        "## MLX versions\n\nEach version of a case against the previous version and the oldest, on the same machine, "
        "run by run (each run normalised by its NumPy controls; `control` rows are those NumPy cases, which must "
        "come out `same`). Verdict counts:\n\n"
        f"{table(counts)}\n\nEvery MLX comparison whose verdict is not `same` (all of them: versions.csv):\n\n"
        f"{table(shown, formats)}\n"
    )


def section_cold(frame: pd.DataFrame) -> str:
    """Cold starts: the first step of a fresh trainer, its own measurement."""
    cold = frame[frame["phase"] == "cold"]
    if cold.empty:
        return ""
    shown = _with_case(latest_runs(cold))
    shown["median_first_step_ms"] = _ms(shown["median_step_s"])
    columns = ["machine", "mlx_version", "model", "size", "case", "n_rounds", "median_first_step_ms"]
    if "first_round_s" in shown:
        shown["first_in_process_ms"] = _ms(pd.to_numeric(shown["first_round_s"], errors="coerce"))
        columns.append("first_in_process_ms")
    body = table(shown[columns], {"median_first_step_ms": _fmt("{:.3f}"), "first_in_process_ms": _fmt("{:.3f}")})
    return f"## Cold start\n\nFirst step of a freshly built trainer (tracing, compilation, page faults), apart from steady state.\n\n{body}\n"


def section_overhead(warm: pd.DataFrame) -> str:
    """Harness overhead: the suite's round time against a bare loop of the same kernel."""
    if "harness_overhead_ratio" not in warm or warm["harness_overhead_ratio"].isna().all():
        return ""
    shown = _with_case(latest_runs(warm[warm["harness_overhead_ratio"].notna()]))
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
    body = table(
        shown[[c for c in columns if c in shown]],
        {"steps_per_s": COUNT, "bare_loop_steps_per_s": COUNT, "harness_overhead_ratio": _fmt("{:.3f}")},
    )
    return f"## Harness overhead\n\nSuite round time ÷ bare `perf_counter` loop of the same kernel (1.000: the harness costs nothing).\n\n{body}\n"


def section_distributed(warm: pd.DataFrame) -> str:
    """Distributed runs: throughput, scaling efficiency, communication against computation."""
    runs = warm[warm["scenario"] == "distributed"]
    if runs.empty:
        return ""
    shown = _with_case(latest_runs(runs))
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
    formats = {
        "steps_per_s": COUNT,
        "scaling_efficiency": _fmt("{:.2f}"),
        "compute_s_per_step": _fmt("{:.3g}"),
        "collective_s_per_step": _fmt("{:.3g}"),
    }
    return f"## Distributed runs\n\n{table(shown[[c for c in columns if c in shown]], formats)}\n"


def section_unstable(frame: pd.DataFrame) -> str:
    """Rows whose spread is too wide, or whose rounds too few, to trust their median."""
    unstable = frame[frame["unstable"]]
    rule = (
        f"no majority of passes within {AGREEMENT:.0%} of the median, rounds' IQR above {UNSTABLE_IQR_SHARE:.0%} of the median, "
        f"or fewer than {MIN_ROUNDS} rounds"
    )
    if unstable.empty:
        return f"## Unstable rows\n\nNone ({rule}).\n"
    shown = _with_case(latest_runs(unstable))
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
    return (
        f"## Unstable rows\n\n{len(unstable)} row(s) over all runs with {rule} (column `unstable` of throughput.csv); "
        f"those of the newest run per machine and MLX version:\n\n{table(shown[columns], {'iqr_pct_of_median': PCT, 'pass_spread_pct': PCT})}\n"
    )


def build_summary(
    frame: pd.DataFrame,
    speedup: pd.DataFrame,
    versions: pd.DataFrame,
    *,
    files: int,
    skipped: list[tuple[str, str]],
    plots: list[Path],
    threshold: float,
    correction: str,
    command: str,
) -> str:
    """The whole summary.md text."""
    warm = frame[frame["phase"] == "warm"]
    dates = frame["run_datetime"].dropna()
    span = f", runs from {dates.min():%Y-%m-%d %H:%M} to {dates.max():%Y-%m-%d %H:%M} UTC" if len(dates) else ""
    head = (
        "# MLX SGD Bench report\n\n"
        f"`{command}`: {files} result file(s) read, {len(skipped)} skipped; {len(frame):,} rows from "
        f"{frame['machine'].nunique()} machine(s), MLX {', '.join(sorted(frame['mlx_version'].dropna().unique(), key=version_key))}{span}.\n"
    )
    plot_list = "\n".join(f"- [{p.name}]({p.name})" for p in plots) or "_(none)_"
    skip_list = "\n".join(f"- `{path}`: {why}" for path, why in skipped) or "_(none)_"
    sections = [
        head,
        section_regressions(versions, threshold, correction),
        section_machines(frame),
        section_blog(frame),
        section_speedup(speedup),
        section_throughput(warm),
        section_versions(versions),
        section_cold(frame),
        section_overhead(warm),
        section_distributed(warm),
        section_unstable(frame),
        f"## Plots\n\n{plot_list}\n",
        f"## Skipped files\n\n{skip_list}\n",
    ]
    return "\n".join(s for s in sections if s)
