"""What ran where: the machines and MLX versions read, and the report's header line.

Each machine and MLX version with its CPU, BLAS and library versions, the
machines whose MLX calls the reference BLAS, and the versions and dates a
report's header names.
"""

from __future__ import annotations

import pandas as pd

from bench.results.releases import version_key
from bench.report.schema import BACKEND_LABELS, backend_label


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
