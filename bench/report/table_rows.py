"""Which rows the report's tables show and how they label them.

Case and size labels, rows in reading order, each machine's newest MLX
version, and which rows belong to one machine and MLX version: shared by
every table of bench.report.views.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.results.releases import version_key
from bench.report.schema import case_labels


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


def mlx_text(version) -> str:
    """``MLX 0.30.0`` for a heading, ``no MLX`` for a run that recorded no MLX version (a machine without it)."""
    return "no MLX" if version is None or (isinstance(version, float) and np.isnan(version)) else f"MLX {version}"


def same_run(frame: pd.DataFrame, machine, version) -> pd.Series:
    """Which rows are of this machine and MLX version (no version matches no version)."""
    versions = frame["mlx_version"]
    mine = versions.isna() if mlx_text(version) == "no MLX" else versions == version
    return (frame["machine"] == machine) & mine
