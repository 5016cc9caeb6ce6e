"""Row filters of the report's command line: --machine, --model, --latest."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd


def by_machine(frame: pd.DataFrame, names: Iterable[str]) -> pd.DataFrame:
    """Rows whose machine id (node/results folder) contains any of `names` (case-insensitive)."""
    names = [n.lower() for n in names]
    if not names:
        return frame
    machine = frame["machine"].str.lower()
    return frame[[any(n in m for n in names) for m in machine]]


def by_model(frame: pd.DataFrame, models: Iterable[str]) -> pd.DataFrame:
    """Rows of the given models (exact names: linear, logistic, mlp...)."""
    models = set(models)
    return frame[frame["model"].isin(models)] if models else frame


def latest_runs(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of the newest run (saved file) per machine and MLX version."""
    if frame.empty:
        return frame
    # A run is a saved file; its date orders runs, its file name (NNNN_...) breaks ties.
    runs = frame[["machine", "mlx_version", "source_file", "run_datetime"]].drop_duplicates("source_file")
    runs = runs.sort_values(["run_datetime", "source_file"], na_position="first")
    newest = runs.groupby(["machine", "mlx_version"], dropna=False).tail(1)["source_file"]
    return frame[frame["source_file"].isin(set(newest))]


def apply_filters(
    frame: pd.DataFrame, machines: Iterable[str] = (), models: Iterable[str] = (), latest: bool = False
) -> pd.DataFrame:
    """The rows the command line asked for, in their original order."""
    frame = by_model(by_machine(frame, machines), models)
    return latest_runs(frame) if latest else frame
