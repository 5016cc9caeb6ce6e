"""The release verdicts as tables: verdict rows of any age in one format, regressions, counts.

From versions.csv and the release runner's verdict files, older or newer:
the verdict columns in reading order, which rows are regressions (NumPy
controls and comparisons whose controls moved never are), and how many cases
got each verdict.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.stats import verdict_engine
from bench.report import regression
from bench.report.schema import BASELINE_BACKEND
from bench.report.table_formats import P_VALUE, PCT, SIGNED_PCT, YES

# The verdict-row columns (docs/releases.md, "Compare MLX releases"), with the yes/no `regression` flag after the verdict,
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
    # Older frames carry a yes/no `regression` flag; newer ones the verdict itself (bench.stats.verdict_engine).
    verdict = rows["verdict"] if "verdict" in rows else pd.Series("", index=rows.index)
    if "regression" in rows:
        verdict = verdict.where(rows["regression"].astype(str).str.lower() != "true", "regression")
    control = rows["control"] if "control" in rows else pd.Series(False, index=rows.index)
    status = rows["comparison_status"] if "comparison_status" in rows else pd.Series("ok", index=rows.index)
    flagged = [verdict_engine.is_regression(v, c, s) for v, c, s in zip(verdict, control, status)]
    return pd.Series(flagged, index=rows.index, dtype=bool)


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
    order = [v for v in ("broken", "regression", "inconclusive", "slower", "faster", "same", "undecided") if v in counts]
    counts = counts[order + [c for c in counts.columns if c not in order]]
    return counts.rename(columns=lambda verdict: f"{verdict} (cases)").reset_index()
