"""The report step of `--mode runs`: `python -m bench.report` over the saved runs, and its verdict table."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench.releases import version_key
from bench.versions.common import REPO_ROOT, RUNS_DIR, SUITE_DIR


def report_command(results: Path, out: Path, threshold: float, fail_on_regression: bool) -> list[str]:
    """The report's version comparison over the runs of one results folder."""
    # Only runs/: the manifest, logs and the report's own files are not results.
    cmd = [sys.executable, "-m", "bench.report", str(results / RUNS_DIR), "--out", str(out), "--threshold", f"{threshold:g}"]
    return cmd + (["--fail-on-regression"] if fail_on_regression else [])


def run_report(results: Path, out: Path, threshold: float, fail_on_regression: bool) -> int:
    """Run the report from the session's suite snapshot (its output goes to the terminal); return its exit status.

    From the snapshot, not the live checkout: the report must be the code of the
    suite that produced the runs, whatever happened to the checkout since.
    """
    suite = results / SUITE_DIR
    cwd = suite if (suite / "bench" / "report").is_dir() else REPO_ROOT
    return subprocess.run(report_command(results, out, threshold, fail_on_regression), cwd=cwd).returncode


def read_verdicts(csv_path: Path) -> list[dict]:
    """Rows of the report's versions.csv, regressions first; [] if it is not there."""
    import csv

    try:
        with open(csv_path, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError:
        return []
    return sorted(rows, key=lambda row: not is_regression(row))


def is_regression(row: dict) -> bool:
    """Whether a versions.csv row is a regression (its `regression` column is true)."""
    return str(row.get("regression", "")).strip().lower() in ("true", "1", "yes")


def control_regressions(rows: list[dict]) -> list[dict]:
    """Regressions of non-MLX cases: NumPy is pinned to one version everywhere, so these are the machine's noise."""
    return [row for row in rows if is_regression(row) and row.get("backend", "mlx") != "mlx"]


def verdict_table(rows: list[dict]) -> list[str]:
    """Verdict counts per pair of releases (each against the previous one), pairs with regressions first."""
    counts: dict[tuple[str, str], Counter] = {}
    for row in rows:
        if row.get("against", "previous") != "previous":
            continue  # "oldest" rows repeat tests already counted, or span several releases
        pair = (row.get("baseline_version", "?"), row.get("mlx_version", "?"))
        tally = counts.setdefault(pair, Counter())
        tally["regression" if is_regression(row) else row.get("verdict", "?")] += 1
    order = sorted(counts, key=lambda pair: (-counts[pair]["regression"], version_key(pair[1])))
    lines = []
    for base, new in order:
        tally = counts[base, new]
        named = ("regression", "slower", "faster", "same", "undecided")
        parts = [f"{tally[v]} {v}" for v in named] + [f"{n} {v}" for v, n in tally.items() if v not in named]
        lines.append(f"  mlx {base} -> {new}: {', '.join(parts)}")
    return lines

