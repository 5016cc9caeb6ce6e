"""`--history`: every published MLX release in a range, measured all interleaved, and where its speed changed.

One paired run (bench.versions.paired) with every release as a side: per
session one worker per release and group of cases, every release once per
block in a random order, the same K, data and barrier for all, under the
engine's isolation policy. Per case and release it then gives:
- steps/s with a 95% interval over the sessions (the unit of evidence);
- the time relative to the oldest release, with its 95% interval (the paired
  comparison oldest -> release, bench.versions.verdicts);
- the verdict of each release against the one before it; a confirmed
  regression or speed-up there is a change point. With P consecutive pairs
  the verdicts use alpha / P (Holm within each pair over the MLX cases, as in
  every comparison), so the chance of one false change point anywhere in the
  history stays at most alpha.
Saved as history.json and history.csv beside the run's measurements; the
report shows it as the page's "Release history" (bench.report.html_history).
"""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.stats.intervals import Interval
from bench.versions import verdict_files
from bench.versions.common import EXIT_INCOMPLETE, EXIT_OK, EXIT_USAGE
from bench.versions.compare import (
    consecutive_pairs,
    exit_status,
    install,
    judge,
    machine_label,
    measure_installed,
    settings_record,
)
from bench.versions.index import backend_package, published_releases, releases_in_range
from bench.versions.targets import parse_target

HISTORY_KIND = "mlx-sgd-bench-release-history"
HISTORY_JSON = "history.json"
HISTORY_CSV = "history.csv"
CHANGE_VERDICTS = ("regression", "faster", "broken")
CSV_FIELDS = (
    "machine", "case_id", "model", "backend", "control", "release", "steps_per_s", "steps_per_s_ci_low",
    "steps_per_s_ci_high", "pct_vs_oldest", "ci_low_pct", "ci_high_pct", "verdict_vs_oldest", "change_pct",
    "change_ci_low_pct", "change_ci_high_pct", "change_verdict", "change_p_adjusted", "sessions",
)  # fmt: skip


def plan_releases(args, available: list[str] | None = None, backend: list[str] | None = None) -> tuple[list, dict]:
    """(the releases to measure, {release: why it is left out}) from the command line and the package index.

    One or two RELEASEs are the range's ends (FROM [TO]); three or more are the
    list itself; none is every release the index has.
    """
    named = list(args.releases)
    if len(named) >= 3:
        return named, {}
    package = backend_package(args.mlx_extra)
    if available is None:
        available = published_releases("mlx")
        backend = published_releases(package) if package else None
    first = named[0] if named else None
    last = named[1] if len(named) > 1 else None
    return releases_in_range(available, backend or None, first, last, package or "mlx")


def _session_logs(record_sessions: list[dict], label: str) -> list[float]:
    """Per session without an error of this release: the log of its median round time."""
    logs = []
    for record in record_sessions:
        times = [t for t in record["times"].get(label, []) if t > 0]
        if times and label not in record.get("errors", {}):
            logs.append(math.log(statistics.median(times)))
    return logs


def steps_per_s_interval(logs: list[float], steps_per_round: int) -> tuple[float, float, float]:
    """(steps/s, 95% low, 95% high) from the sessions' log median round times: a t interval over sessions."""
    if not logs:
        return math.nan, math.nan, math.nan
    se = float(np.std(logs, ddof=1) / math.sqrt(len(logs))) if len(logs) > 1 else math.nan
    # In log steps/s (minus the log round time), so the interval's ends are steps/s.
    interval = Interval(math.log(steps_per_round) - float(np.mean(logs)), se, len(logs) - 1)
    low, high = interval.low_high
    return math.exp(interval.centre), low, high


def history_rows(measurements: dict, labels: list[str], vs_oldest: list[dict], changes: list[dict], machine: str):
    """One row per case and release: steps/s, the change against the oldest and against the release before."""
    oldest = {(r["case_id"], r["newer"]): r for r in vs_oldest}
    step = {(r["case_id"], r["newer"]): r for r in changes}
    rows = []
    for case_id, case in measurements["cases"].items():
        steps_per_round = case.get("steps_per_round") or 0
        for label in labels:
            logs = _session_logs(case["sessions"], label)
            rate, low, high = steps_per_s_interval(logs, steps_per_round)
            row = {
                "machine": machine,
                "case_id": case_id,
                "model": case["case"]["model"],
                "backend": case["case"]["backend"],
                "control": case["case"]["backend"] == "numpy",
                "release": label,
                "steps_per_s": rate,
                "steps_per_s_ci_low": low,
                "steps_per_s_ci_high": high,
                "sessions": len(logs),
            }
            if label == labels[0]:
                row.update(pct_vs_oldest=0.0, ci_low_pct=0.0, ci_high_pct=0.0, verdict_vs_oldest="baseline")
            elif (case_id, label) in oldest:
                base = oldest[case_id, label]
                row.update(
                    pct_vs_oldest=base["pct_change"],
                    ci_low_pct=base["ci_low_pct"],
                    ci_high_pct=base["ci_high_pct"],
                    verdict_vs_oldest=base["verdict"],
                )
            if (case_id, label) in step:
                change = step[case_id, label]
                row.update(
                    change_pct=change["pct_change"],
                    change_ci_low_pct=change["ci_low_pct"],
                    change_ci_high_pct=change["ci_high_pct"],
                    change_verdict=change["verdict"],
                    change_p_adjusted=verdict_files._direction_p(change),
                )
            rows.append(row)
    return rows


def change_points(changes: list[dict], comparisons: list[dict]) -> list[dict]:
    """The MLX cases' confirmed steps between consecutive releases (regression, faster, broken), largest first.

    A step in a comparison whose NumPy controls moved as a whole is kept but
    marked unconfirmed (its `status` says why).
    """
    status = {(c["older"], c["newer"]): c for c in comparisons}
    points = []
    for row in changes:
        if row["control"] or row["verdict"] not in CHANGE_VERDICTS:
            continue
        comparison = status.get((row["older"], row["newer"]), {})
        points.append(
            {
                "case_id": row["case_id"],
                "older": row["older"],
                "newer": row["newer"],
                "verdict": row["verdict"],
                "pct_change": row["pct_change"],
                "ci_low_pct": row["ci_low_pct"],
                "ci_high_pct": row["ci_high_pct"],
                "p_value_adjusted": verdict_files._direction_p(row),
                "status": comparison.get("status", "ok"),
                "reason": row.get("reason", "") if row["verdict"] == "broken" else comparison.get("reason", ""),
            }
        )
    return sorted(points, key=lambda p: -abs(p["pct_change"] if p["pct_change"] is not None else 0))


def history_document(identity, record, labels, failures, comparisons, changes, rows, points) -> dict:
    """history.json: the releases, what could not be measured, and every figure with its interval."""
    return {
        "kind": HISTORY_KIND,
        "schema_version": 1,
        "created": verdict_files.now(),
        "machine": identity,
        "settings": record,
        "releases": labels,
        "not_measured": failures,
        "comparisons": comparisons,
        "change_points": points,
        "pair_rows": changes,
        "rows": rows,
    }


def write_history(folder: Path, document: dict) -> tuple[Path, Path]:
    """history.json and history.csv in `folder` (atomically); their paths."""
    json_path, csv_path = folder / HISTORY_JSON, folder / HISTORY_CSV
    verdict_files.write_json(json_path, document)
    frame = pd.DataFrame(document["rows"]).reindex(columns=CSV_FIELDS)
    verdict_files.write_atomic(csv_path, frame.to_csv(index=False, float_format="%.6g"))
    return json_path, csv_path


def history_lines(document: dict, threshold: float) -> list[str]:
    """What the terminal shows: the releases, the change points, and each MLX case's last release against its first."""
    labels = document["releases"]
    lines = [f"history: {len(labels)} releases, {labels[0]} to {labels[-1]}"]
    for release, why in document["not_measured"].items():
        lines.append(f"  not measured: mlx {release}: {why}")
    points = document["change_points"]
    lines.append(
        f"change points (a step of more than {threshold:.0%} between consecutive releases, significant after correction): {len(points)}"
    )
    for point in points:
        note = "" if point["status"] == "ok" else f" (unconfirmed: comparison {point['status']})"
        lines.append(
            f"  {point['case_id'][:58]:<58} {point['older']} -> {point['newer']}: {verdict_files._fmt(point['pct_change'], '+.1f')}% "
            f"[{verdict_files._fmt(point['ci_low_pct'], '+.1f')}, {verdict_files._fmt(point['ci_high_pct'], '+.1f')}] {point['verdict']}{note}"
        )
    frame = pd.DataFrame(document["rows"])
    if len(frame):
        last = frame[(frame["release"] == labels[-1]) & ~frame["control"]]
        lines.append(f"{labels[-1]} against {labels[0]}, time per step (MLX cases):")
        for _, row in last.iterrows():
            lines.append(
                f"  {row['case_id'][:58]:<58} {verdict_files._fmt(row.get('pct_vs_oldest'), '+7.1f')}% "
                f"[{verdict_files._fmt(row.get('ci_low_pct'), '+.1f')}, {verdict_files._fmt(row.get('ci_high_pct'), '+.1f')}] "
                f"{row.get('verdict_vs_oldest', '')}"
            )
    return lines


def run_history(args, cache, pins, start_worker, settings, ensure, available=None, backend=None) -> int:
    """Install every release of the range, measure them all interleaved, judge, write and print the history."""
    started = time.perf_counter()
    releases, left_out = plan_releases(args, available, backend)
    if len(releases) < 2:
        print(
            "python -m bench.versions: error: --history needs at least two releases that install here; found "
            f"{', '.join(releases) or 'none'}",
            flush=True,
        )
        return EXIT_USAGE
    targets = [parse_target(release, args.mlx_extra) for release in releases]
    print(
        f"history: {len(targets)} releases ({targets[0].label} to {targets[-1].label}), grid {args.sizes}", flush=True
    )
    for release, why in left_out.items():
        print(f"mlx {release}: left out ({why})", flush=True)
    pythons, failures = install(targets, cache, pins, ensure=ensure)
    print(f"environments ready in {time.perf_counter() - started:.0f} s", flush=True)
    measured = measure_installed(args, targets, pythons, start_worker, settings, "no history")
    if measured is None:
        return EXIT_INCOMPLETE
    ready, data, identity, cases = measured
    machine = machine_label(identity)
    labels = [t.label for t in ready]
    pairs = consecutive_pairs(ready)
    comparisons, changes = judge(data, pairs, args.threshold, args.alpha / len(pairs), machine)
    _, vs_oldest = judge(data, [(labels[0], label) for label in labels[1:]], args.threshold, args.alpha, machine)
    rows = history_rows(data, labels, vs_oldest, changes, machine)
    record = settings_record(args, settings, len(cases))
    record.update(
        releases=[{"label": t.label, "version": t.version, "spec": t.spec} for t in ready],
        alpha_per_pair=args.alpha / len(pairs),
        wall_s=round(time.perf_counter() - started, 1),
    )
    points = change_points(changes, comparisons)
    document = history_document(identity, record, labels, left_out | failures, comparisons, changes, rows, points)
    json_path, csv_path = write_history(args.results, document)
    for line in history_lines(document, args.threshold):
        print(line)
    print(f"history: {json_path} and {csv_path.name} ({(time.perf_counter() - started) / 60:.1f} min in all)")
    status = exit_status(comparisons, changes, args.fail_on_regression)
    # A release the index has but no wheel for this platform is out of reach, not a failure; a failed install is.
    return EXIT_INCOMPLETE if failures and status == EXIT_OK else status
