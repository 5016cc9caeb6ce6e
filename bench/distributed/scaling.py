"""Data-parallel figures: steps/s per rank count, speedup, scaling efficiency, all_sum share.

Works on this session's results (the end-of-run table of bench.distributed.pytest_plugin)
and on saved ones from many machines (a bench.report tidy table, whose
`machine` column tells them apart). Speedup and efficiency are computed here
from the rows themselves, pairing each run with the N = 1 run of the same case
on the same machine, so results whose N = 1 ran in another session still get
them:

  speedup            = steps/s at N / steps/s at N = 1 (the session's own, taken pass by pass, where saved)
  scaling_efficiency = speedup / N  (1.0: N ranks are N times as fast; the problem stays the same size)
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

# What an N = 1 run must share with a run at N to be its baseline.
GROUP_KEYS = ("machine", "model", "n_examples", "n_features", "device", "distributed_backend", "launcher")
COLUMNS = (
    "machine",
    "model",
    "size",
    "backend",
    "N",
    "steps/s",
    "speedup",
    "efficiency",
    "compute ms",
    "comm ms",
    "comm share",
    "rel error",
)


def scaling_frame(rows: Iterable[dict] | pd.DataFrame) -> pd.DataFrame:
    """One row per distributed result: steps/s, speedup and efficiency against N = 1, time split.

    `rows` are extra_info dicts (optionally with a `machine` key) or a report
    table; non-distributed and untimed rows are left out. Where a case ran
    more than once, the last row counts.
    """
    frame = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    if frame.empty or "scenario" not in frame or "steps_per_s" not in frame:
        return pd.DataFrame(columns=COLUMNS)
    frame = frame[(frame["scenario"] == "distributed") & frame["steps_per_s"].notna()].copy()
    if frame.empty:
        return pd.DataFrame(columns=COLUMNS)
    for key, default in (("machine", "this run"), ("launcher", "local"), ("distributed_backend", "ring")):
        frame[key] = frame[key].fillna(default) if key in frame else default
    frame["n_ranks"] = pd.to_numeric(frame["n_ranks"]).astype(int)
    frame = frame.drop_duplicates(subset=[*GROUP_KEYS, "n_ranks"], keep="last")
    base = frame[frame["n_ranks"] == 1].set_index(list(GROUP_KEYS))["steps_per_s"]
    baseline = [base.get(key) for key in frame[list(GROUP_KEYS)].itertuples(index=False, name=None)]
    divided = frame["steps_per_s"].to_numpy() / pd.to_numeric(pd.Series(baseline, dtype=float)).to_numpy()
    # The session's own speedup, taken pass by pass, where it was saved; older results: divide the figures.
    saved = pd.to_numeric(frame["speedup"], errors="coerce").to_numpy() if "speedup" in frame else np.nan
    speedup = np.where(np.isfinite(saved), saved, divided)
    compute = pd.to_numeric(frame.get("compute_s_per_step"), errors="coerce")
    collective = pd.to_numeric(frame.get("collective_s_per_step"), errors="coerce")
    out = pd.DataFrame(
        {
            "machine": frame["machine"],
            "model": frame["model"],
            "size": [f"n{n}-d{d}" for n, d in zip(frame["n_examples"], frame["n_features"])],
            "backend": frame["distributed_backend"] + "/" + frame["launcher"],
            "N": frame["n_ranks"],
            "steps/s": frame["steps_per_s"].astype(float),
            "speedup": speedup,
            "efficiency": speedup / frame["n_ranks"].to_numpy(),
            "compute ms": compute * 1e3,
            "comm ms": collective * 1e3,
            "comm share": collective / (compute + collective),
            "rel error": pd.to_numeric(frame.get("max_rel_error"), errors="coerce"),
        }
    )
    return out.sort_values(["machine", "model", "size", "backend", "N"], kind="stable").reset_index(drop=True)


def format_table(frame: pd.DataFrame, markdown: bool = False) -> str:
    """The scaling table as text (or Markdown); the machine column only when there are several."""
    if frame.empty:
        return ""
    if frame["machine"].nunique() == 1:
        frame = frame.drop(columns="machine")
    formats = {
        "steps/s": "{:,.0f}",
        "speedup": "{:.2f}",
        "efficiency": "{:.2f}",
        "compute ms": "{:.3f}",
        "comm ms": "{:.3f}",
        "comm share": "{:.0%}",
        "rel error": "{:.1e}",
    }
    shown = frame.copy()
    for column, spec in formats.items():
        shown[column] = [spec.format(v) if pd.notna(v) else "" for v in shown[column]]
    if markdown:
        header = "| " + " | ".join(shown.columns) + " |"
        rule = "| " + " | ".join("---" for _ in shown.columns) + " |"
        body = ["| " + " | ".join(map(str, row)) + " |" for row in shown.itertuples(index=False)]
        return "\n".join([header, rule, *body])
    return "\n".join("  " + line for line in shown.to_string(index=False).splitlines())
