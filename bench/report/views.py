"""The report's tables as DataFrames, shared by summary.md and index.html.

Each function turns the report's computed tables (throughput rows, speedup.csv,
backends.csv, versions.csv, release-verdict files) into the frame a reader
sees: chosen columns in reading order, raw numbers (so that a page can sort
them) and the formatter of each column (so that every output shows them
alike). Long tables keep the newest run per machine and MLX version; the CSVs
hold every run. Backends are names in the data: every backend with a NumPy
baseline gets its speedup rows, and when peers of MLX (PyTorch, JAX...) are
present, ``side_by_side`` puts each backend's fastest case next to the others'.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from bench.releases import version_key
from bench.report import regression
from bench.report.filters import latest_runs
from bench.report.schema import (
    BACKEND_LABELS,
    BASELINE_BACKEND,
    FOCUS_BACKEND,
    backend_label,
    backend_order,
    case_labels,
)
from bench.report.speedup import backends_table, fastest_cases


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
    "baseline_steps_per_s": f"{backend_label(BASELINE_BACKEND)} steps/s",
    "other_steps_per_s": "against: steps/s",
    "other_case_id": "against: case_id",
    "ratio": "ratio (×, >1: backend faster)",
    "speedup": f"speedup (×, >1: faster than {backend_label(BASELINE_BACKEND)})",
    "device_class": "device class",
    "batch_size": "batch",
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


def _without_backend(cases, backends) -> list[str]:
    """Case labels without their leading backend name (the table or heading says it)."""
    return [str(c).removeprefix(f"{b}-") for c, b in zip(cases, backends)]


def speedup_cells(speedup: pd.DataFrame) -> pd.DataFrame:
    """The headline's data: newest run of each machine's newest MLX version, grid and blog scenarios, one row
    per non-NumPy case and size with its speedup and which side the interval favours."""
    if speedup.empty:
        return speedup.assign(case=[], size=[])
    usable = speedup[np.isfinite(pd.to_numeric(speedup["speedup"], errors="coerce"))]
    if usable.empty:
        return usable.assign(case=[], size=[])
    shown = with_case(latest_runs(newest_version(usable)))
    shown["case"] = _without_backend(shown["case"], shown["backend"])
    return shown


def compared_backends(cells: pd.DataFrame) -> list[str]:
    """The backends of speedup rows, in the suite's order."""
    return backend_order(cells["backend"]) if len(cells) and "backend" in cells else []


def answer_title(cells: pd.DataFrame) -> str:
    """The headline's title: "MLX against NumPy" with one backend compared (or none), else "Backends against NumPy"."""
    backends = compared_backends(cells) or [FOCUS_BACKEND]
    subject = backend_label(backends[0]) if len(backends) == 1 else "Backends"
    return f"{subject} against {backend_label(BASELINE_BACKEND)}"


def headline_sentence(cells: pd.DataFrame) -> str:
    """One line: how many cases of one backend beat NumPy, the best and the worst, for one machine and model."""
    if cells.empty:
        return (
            f"no {backend_label(FOCUS_BACKEND)} case with a {backend_label(BASELINE_BACKEND)} baseline in the same run"
        )
    backend = compared_backends(cells)[0]
    counts = cells["faster"].value_counts()
    best = cells.loc[cells["speedup"].idxmax()]
    worst = cells.loc[cells["speedup"].idxmin()]
    return (
        f"{backend_label(backend)} faster in {counts.get(backend, 0)} of {len(cells)} (case, size) pairs, "
        f"{backend_label(BASELINE_BACKEND)} faster in {counts.get(BASELINE_BACKEND, 0)}, too close to call in "
        f"{counts.get('inconclusive', 0)}; "
        f"best {best['speedup']:.3g}× ({best['case']} at {best['size']}), "
        f"worst {worst['speedup']:.3g}× ({worst['case']} at {worst['size']})"
    )


def headline_by_size(cells: pd.DataFrame) -> pd.DataFrame:
    """Per machine, model, size (and backend, when several): the best and worst case against NumPy, and the
    count that beat it. With one backend its name is in the headers ("best MLX case"), as it always was."""
    backends = compared_backends(cells)
    several = len(backends) > 1
    one = f"{backend_label(backends[0])} " if len(backends) == 1 else ""  # "best MLX case"; "best case" when several
    rows = []
    # dropna=False: a run on a machine without MLX has no MLX version, and its rows still count.
    for (machine, version, model, scenario, size, backend), part in cells.groupby(
        ["machine", "mlx_version", "model", "scenario", "size", "backend"], sort=False, dropna=False
    ):
        best, worst = part.loc[part["speedup"].idxmax()], part.loc[part["speedup"].idxmin()]
        row = {"machine": machine, "MLX": version, "model": model, "scenario": scenario, "size": size}
        if several:
            row["backend"] = backend_label(backend)
        row[f"{one}faster (cases)" if one else f"faster than {backend_label(BASELINE_BACKEND)} (cases)"] = (
            f"{int((part['faster'] == backend).sum())} of {len(part)}"
        )
        row[f"best {one}case"] = best["case"]
        row["best ×"] = best["speedup"]
        row[f"worst {one}case"] = worst["case"]
        row["worst ×"] = worst["speedup"]
        rows.append(row)
    frame = pd.DataFrame(rows)
    if several and rows:  # within each size, the backends in the suite's order
        rank = {backend_label(b): i for i, b in enumerate(backends)}
        group = frame.groupby(["machine", "MLX", "model", "scenario", "size"], sort=False, dropna=False).ngroup()
        frame = frame.assign(_g=group, _b=frame["backend"].map(rank)).sort_values(["_g", "_b"], kind="stable")
        frame = frame.drop(columns=["_g", "_b"]).reset_index(drop=True)
    return frame


def mlx_text(version) -> str:
    """``MLX 0.30.0`` for a heading, ``no MLX`` for a run that recorded no MLX version (a machine without it)."""
    return "no MLX" if version is None or (isinstance(version, float) and np.isnan(version)) else f"MLX {version}"


def same_run(frame: pd.DataFrame, machine, version) -> pd.Series:
    """Which rows are of this machine and MLX version (no version matches no version)."""
    versions = frame["mlx_version"]
    mine = versions.isna() if mlx_text(version) == "no MLX" else versions == version
    return (frame["machine"] == machine) & mine


def _grid_runs(frame: pd.DataFrame) -> pd.DataFrame:
    """Warm grid rows of the newest run per machine and its newest MLX version."""
    warm = frame[(frame["phase"] == "warm") & (frame["scenario"] == "grid")]
    return latest_runs(newest_version(warm)) if len(warm) else warm


# The columns that place a row of the side-by-side table (what its backends' fastest cases share).
SIDE_KEYS = ("machine", "mlx_version", "model", "size", "batch_size", "hidden", "device_class", "dtype")


def side_by_side(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Backends side by side: (table, backends, ratio columns).

    One row per machine, model, size, batch size, hidden width, device class
    (cpu or accelerator) and dtype of the newest grid run (with its n_examples,
    which says whether the batch is full); per backend present, ``<Label>
    steps/s`` and ``<Label> case`` (its fastest case there: variant, barrier and
    device), then ``MLX ÷ <peer>`` and ``MLX ÷ <peer> faster`` (the side the 95%
    interval favours) for each peer, from backends_table. Rows where only one
    backend ran are left out: there is nothing beside it.
    """
    runs = _grid_runs(frame)
    if runs.empty:
        return pd.DataFrame(), [], []
    best = fastest_cases(runs)
    backends = backend_order(best["backend"])
    if len(backends) < 2:
        return pd.DataFrame(), backends, []
    best = best.assign(
        size=size_text(best["n_examples"], best["n_features"]),
        shown=best["variant"] + "-" + best["barrier"] + "-" + best["device"],
        _order=best["n_examples"] * best["n_features"],
    )
    keys = list(SIDE_KEYS)
    best = best.drop_duplicates([*keys, "backend"])  # one run per machine and version: one case per key
    wide = best.set_index([*keys, "backend"])[["steps_per_s", "shown"]].unstack("backend")
    table = wide.index.to_frame(index=False)
    for backend in backends:
        label = backend_label(backend)
        if ("steps_per_s", backend) in wide:
            table[f"{label} steps/s"] = wide[("steps_per_s", backend)].to_numpy(dtype=float)
            table[f"{label} case"] = wide[("shown", backend)].to_numpy(dtype=object)
    present = table[[f"{backend_label(b)} steps/s" for b in backends]].notna().sum(axis=1)
    ratios = []
    peers = [b for b in backends if b not in (FOCUS_BACKEND, BASELINE_BACKEND)]
    if FOCUS_BACKEND in backends and peers:
        pairs = backends_table(runs)
        pairs = pairs[(pairs["backend"] == FOCUS_BACKEND) & pairs["other_backend"].isin(peers)]
        pairs = pairs.assign(size=size_text(pairs["n_examples"], pairs["n_features"]))
        for peer in peers:
            mine = pairs[pairs["other_backend"] == peer].drop_duplicates(keys)
            column = f"{backend_label(FOCUS_BACKEND)} ÷ {backend_label(peer)}"
            found = table[keys].merge(mine[[*keys, "ratio", "faster"]], on=keys, how="left")
            table[column] = found["ratio"].to_numpy(dtype=float)
            table[f"{column} faster"] = found["faster"].to_numpy(dtype=object)
            ratios.append(column)
    order = best.drop_duplicates(["size"]).set_index("size")[["_order", "n_examples"]]  # n_examples: batch "full"
    table = table.join(order, on="size").assign(_cpu_last=table["device_class"] != "cpu")
    table = table.sort_values(
        ["machine", "mlx_version", "model", "_order", "n_examples", "batch_size", "hidden", "_cpu_last", "dtype"],
        kind="stable",
    )
    table = table[present.reindex(table.index) >= 2].drop(columns=["_order", "_cpu_last"])
    return table.reset_index(drop=True), backends, ratios


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
        rows["control"] = rows["backend"] == BASELINE_BACKEND
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
    control = rows.get("control", False) == True  # noqa: E712  (elementwise, on a column)
    rows = rows.assign(regressions=is_regression(rows), side=np.where(control, "NumPy (control)", "MLX"))
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
        # Every backend's version, where a run recorded it (MLX's and NumPy's keep their places above).
        **{f"{name}_version": backend_label(name) for name in BACKEND_LABELS},
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
