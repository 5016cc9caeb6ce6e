"""The report step of `--mode runs`: `python -m bench.report` over the saved runs, and its verdict table."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench.results.releases import version_key
from bench.stats import verdict_engine
from bench.versions.common import REPO_ROOT, RUNS_DIR, SUITE_DIR


def report_command(results: Path, out: Path, threshold: float, fail_on_regression: bool) -> list[str]:
    """The report's version comparison over the runs of one results folder."""
    # Only runs/: the manifest, logs and the report's own files are not results.
    cmd = [
        sys.executable,
        "-m",
        "bench.report",
        str(results / RUNS_DIR),
        "--out",
        str(out),
        "--threshold",
        f"{threshold:g}",
    ]
    return cmd + (["--fail-on-regression"] if fail_on_regression else [])


def run_report(results: Path, out: Path, threshold: float, fail_on_regression: bool) -> int:
    """Run the report from the session's suite snapshot (its output goes to the terminal); return its exit status.

    From the snapshot, not the live checkout: the report must be the code of the
    suite that produced the runs, whatever happened to the checkout since.
    """
    suite = results / SUITE_DIR
    cwd = suite if (suite / "bench" / "report").is_dir() else REPO_ROOT
    return subprocess.run(report_command(results, out, threshold, fail_on_regression), cwd=cwd).returncode


def file_identity(path: Path) -> tuple[int, int, int] | None:
    """(device, inode, modification time in ns) of `path`, or None when it is not there: a replaced file has another."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_dev, info.st_ino, info.st_mtime_ns


def read_verdicts(csv_path: Path) -> list[dict]:
    """Rows of the report's versions.csv (the verdict record), regressions first; [] if it is not there."""
    import csv

    try:
        with open(csv_path, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError:
        return []
    return sorted(rows, key=lambda row: not is_regression(row))


def _true(value) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes")


def is_regression(row: dict) -> bool:
    """Whether a versions.csv row is a regression (bench.stats.verdict_engine.is_regression)."""
    return verdict_engine.is_regression(row.get("verdict"), row.get("control", ""), row.get("comparison_status", "ok"))


def moved_controls(rows: list[dict]) -> list[dict]:
    """NumPy controls that came out changed: their code is the same in every release, so the machine moved them."""
    return [row for row in rows if _true(row.get("control", "")) and row.get("verdict") in ("regression", "faster")]


def verdict_table(rows: list[dict]) -> list[str]:
    """Verdict counts of the MLX cases per pair of releases (each against the previous one), regressions first."""
    counts: dict[tuple[str, str], Counter] = {}
    for row in rows:
        if row.get("against", "previous") != "previous" or _true(row.get("control", "")):
            continue  # "oldest" rows repeat tests already counted, or span several releases; controls apart
        pair = (row.get("older", "?"), row.get("newer", "?"))
        counts.setdefault(pair, Counter())[row.get("verdict", "?")] += 1
    order = sorted(counts, key=lambda pair: (-counts[pair]["regression"], version_key(pair[1])))
    lines = []
    for older, newer in order:
        tally = counts[older, newer]
        named = ("regression", "faster", "same", "undecided")
        parts = [f"{tally[v]} {v}" for v in named] + [f"{n} {v}" for v, n in tally.items() if v not in named]
        lines.append(f"  mlx {older} -> {newer}: {', '.join(parts)}")
    return lines
