"""What a paired session writes: release-verdicts.json, release-verdicts.csv, self-test.json, and the printed tables.

Every file is written atomically (a temporary file, then a rename), so a
reader never sees half a file, and an interrupted session leaves the last
complete one.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from pathlib import Path

from bench.results import files

VERDICTS_KIND = "mlx-sgd-bench-release-verdicts"
SELF_TEST_KIND = "mlx-sgd-bench-self-test"
SCHEMA_VERSION = 1
VERDICTS_JSON = "release-verdicts.json"
VERDICTS_CSV = "release-verdicts.csv"
SELF_TEST_JSON = "self-test.json"
MEASUREMENTS_JSON = "paired-measurements.json"
ROW_FIELDS = (
    "machine", "case_id", "model", "backend", "control", "older", "newer", "pct_change", "ci_low_pct", "ci_high_pct",
    "p_value", "p_value_adjusted", "verdict", "min_detectable_pct", "passes_needed", "n_older", "n_newer", "method",
    "reason", "noise_pct", "steps_per_round", "p_faster_adjusted",
)  # fmt: skip


def _clean(value):
    """JSON has no NaN: missing figures are null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` atomically (bench.results.files), creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    files.write_atomic(path, text)


def write_json(path: Path, data: dict) -> None:
    """Atomic JSON, NaN written as null."""
    write_atomic(path, json.dumps(_clean(data), indent=2, default=str) + "\n")


def now() -> str:
    """The current time, ISO 8601 with the UTC offset."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def verdicts_document(machine: dict, settings: dict, comparisons: list[dict], rows: list[dict]) -> dict:
    """release-verdicts.json in the verdict format of docs/releases.md, "Compare MLX releases"."""
    return {
        "kind": VERDICTS_KIND,
        "schema_version": SCHEMA_VERSION,
        "created": now(),
        "machine": machine,
        "settings": settings,
        "comparisons": comparisons,
        "rows": rows,
    }


def write_verdicts(folder: Path, document: dict) -> tuple[Path, Path]:
    """release-verdicts.json and .csv in `folder`; their paths."""
    json_path, csv_path = folder / VERDICTS_JSON, folder / VERDICTS_CSV
    write_json(json_path, document)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=ROW_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for row in document["rows"]:
        writer.writerow(
            {k: ("" if v is None or (isinstance(v, float) and not math.isfinite(v)) else v) for k, v in row.items()}
        )
    write_atomic(csv_path, buffer.getvalue())
    return json_path, csv_path


def _fmt(value, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format(value, spec)


def _direction_p(row: dict):
    """The adjusted p-value of the test in the direction of the change (slower or faster)."""
    faster = row.get("pct_change") is not None and row["pct_change"] < 0
    return row.get("p_faster_adjusted") if faster else row["p_value_adjusted"]


def verdict_table(comparisons: list[dict], rows: list[dict], threshold: float, limit: int = 25) -> list[str]:
    """A short table per comparison: counts of each verdict, then the regressions, faster and undecided cases."""
    lines = []
    for comp in comparisons:
        mine = [r for r in rows if r["older"] == comp["older"] and r["newer"] == comp["newer"]]
        mlx = [r for r in mine if not r["control"]]
        counts = {
            v: sum(r["verdict"] == v for r in mlx)
            for v in ("broken", "regression", "faster", "same", "undecided", "inconclusive")
        }
        controls = [r for r in mine if r["control"]]
        moved = sum(r["verdict"] != "same" for r in controls)
        lines.append(
            f"mlx {comp['older']} -> {comp['newer']}: {comp['status'].upper()}"
            + (f" ({comp['reason']})" if comp["reason"] else "")
        )
        lines.append(
            f"  MLX cases: {counts['broken']} broken, {counts['regression']} regression, {counts['faster']} faster, {counts['same']} same, "
            f"{counts['undecided']} undecided, {counts['inconclusive']} inconclusive (threshold {threshold:.0%}); NumPy controls: {len(controls)}, {moved} not 'same'"
        )
        shown = sorted(
            (r for r in mine if r["verdict"] != "same"),
            key=lambda r: (
                ("broken", "regression").index(r["verdict"]) if r["verdict"] in ("broken", "regression") else 2,
                -abs(r["pct_change"] if r["pct_change"] == r["pct_change"] else 0),
            ),
        )
        if shown:
            lines.append(f"  {'case':<58} {'change':>8} {'95% interval':>18} {'p adj':>9} {'noise':>6}  verdict")
        for row in shown[:limit]:
            interval = f"[{_fmt(row['ci_low_pct'], '+.1f')}, {_fmt(row['ci_high_pct'], '+.1f')}]"
            lines.append(
                f"  {row['case_id'][:58]:<58} {_fmt(row['pct_change'], '+7.1f')}% {interval:>18} "
                f"{_fmt(_direction_p(row), '9.2g')} {_fmt(row['noise_pct'], '5.1f')}%  {row['verdict']}"
                + (" (control)" if row["control"] else "")
                + (f": {row['reason']}" if row["verdict"] == "broken" else "")
            )
        if len(shown) > limit:
            lines.append(f"  ... {len(shown) - limit} more in {VERDICTS_CSV}")
    return lines
