"""Row filters of the report's command line: --machine, --model, --latest (the last complete run)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

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


def _runs(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per run (saved file), oldest first: its date orders runs, its file name (NNNN_...) breaks ties."""
    columns = ["machine", "mlx_version", "source_file", "run_datetime", "run_complete", "run_incomplete_why"]
    runs = frame.reindex(columns=columns).drop_duplicates("source_file")
    marked = runs["run_complete"].astype(object)
    runs["run_complete"] = marked.where(marked.notna(), True).astype(bool)  # a frame read before runs were marked
    return runs.sort_values(["run_datetime", "source_file"], na_position="first")


def latest_choice(frame: pd.DataFrame) -> tuple[set[str], list[tuple[str, str]]]:
    """(the file of the chosen run per machine and MLX version, [(file, why) of each newer run passed over]).

    The chosen run is the newest complete one; an interrupted run (Ctrl-C, -x:
    bench.results.run_state) is chosen only where no complete run exists.
    """
    if frame.empty:
        return set(), []
    chosen, passed_over = set(), []
    for _, group in _runs(frame).groupby(["machine", "mlx_version"], dropna=False, sort=False):
        complete = group[group["run_complete"]]
        pick = (complete if len(complete) else group).iloc[-1]
        chosen.add(pick["source_file"])
        newer = group.iloc[list(group["source_file"]).index(pick["source_file"]) + 1 :]
        passed_over += [(row.source_file, str(row.run_incomplete_why)) for row in newer.itertuples()]
    return chosen, passed_over


def latest_runs(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of the newest complete run (saved file) per machine and MLX version (the newest run where none is)."""
    if frame.empty:
        return frame
    chosen, _ = latest_choice(frame)
    return frame[frame["source_file"].isin(chosen)]


def latest_note(frame: pd.DataFrame) -> str | None:
    """One line on the runs --latest and --export passed over or had to use although not complete, or None."""
    if frame.empty:
        return None
    chosen, passed_over = latest_choice(frame)
    runs = _runs(frame)
    used_incomplete = runs[runs["source_file"].isin(chosen) & ~runs["run_complete"]]
    parts = []
    if passed_over:
        shown = "; ".join(f"{Path(f).name} ({why})" for f, why in passed_over[:3])
        more = f"; and {len(passed_over) - 3} more" if len(passed_over) > 3 else ""
        parts.append(f"skipped {len(passed_over)} newer run(s) that are not complete: {shown}{more}")
    if len(used_incomplete):
        shown = "; ".join(f"{Path(r.source_file).name} ({r.run_incomplete_why})" for r in used_incomplete.itertuples())
        parts.append(f"used {len(used_incomplete)} run(s) that are not complete, for want of a complete one: {shown}")
    return "; ".join(parts) or None


def apply_filters(
    frame: pd.DataFrame, machines: Iterable[str] = (), models: Iterable[str] = (), latest: bool = False
) -> pd.DataFrame:
    """The rows the command line asked for, in their original order."""
    frame = by_model(by_machine(frame, machines), models)
    return latest_runs(frame) if latest else frame
