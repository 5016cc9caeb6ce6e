"""Figures for other tools: github-action-benchmark's ``customBiggerIsBetter`` JSON.

github-action-benchmark charts a list of ``{"name", "unit", "value", "range",
"extra"}`` entries per commit. Its pytest mode reads pytest-benchmark's ``ops``;
this export gives it steps/s directly, one entry per case of the newest run per
machine and MLX version, named by the case id (with the machine and MLX version
when the inputs hold several), so a chart line is one case.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from bench.report.filters import latest_runs
from bench.report.outputs import write_atomic

FORMATS = ("github-action-benchmark",)


def _case_name(row) -> str:
    return str(row["case_id"]) if isinstance(row.get("case_id"), str) and row["case_id"] else str(row["benchmark"])


def github_action_benchmark(frame: pd.DataFrame) -> list[dict]:
    """One customBiggerIsBetter entry per case (steps/s) of the newest run per machine and MLX version."""
    rows = latest_runs(frame)
    rows = rows[np.isfinite(pd.to_numeric(rows["steps_per_s"], errors="coerce"))]  # no figure, no point on a chart
    several = rows[["machine", "mlx_version"]].drop_duplicates().shape[0] > 1
    entries = []
    for _, row in rows.iterrows():
        name = _case_name(row)
        if several:
            name += f" [{row['machine']}, mlx {row['mlx_version']}]"
        entries.append(
            {
                "name": name,
                "unit": "steps/s",
                "value": float(row["steps_per_s"]),
                # half the spread of the pass medians: the band the passes fell in
                "range": f"± {row['pass_spread_pct'] / 2:.1f}%",
                "extra": (
                    f"K={int(row['steps_per_round'])} steps per round, {int(row['n_passes'])} pass(es), "
                    f"{int(row['n_rounds'])} rounds{', unstable' if row['unstable'] else ''}; "
                    f"machine {row['machine']}, mlx {row['mlx_version']}"
                ),
            }
        )
    return sorted(entries, key=lambda entry: entry["name"])


def write_export(frame: pd.DataFrame, kind: str, path) -> None:
    """Write one export format to `path`, atomically."""
    if kind not in FORMATS:
        raise ValueError(f"unknown export format {kind!r} (known: {', '.join(FORMATS)})")
    entries = github_action_benchmark(frame)
    text = json.dumps(entries, indent=1, allow_nan=False)  # NaN/Infinity are not JSON; the tool could not read them
    write_atomic(path, lambda handle: handle.write(text + "\n"))
