"""`--history`: every published MLX release in a range, measured all interleaved, and where its speed changed.

One paired run (bench.versions.paired) with every release as a side: per
session one worker per release and group of cases, every release once per
block in a random order, the same K, data and barrier for all, under the
engine's isolation policy. Per case and release it then gives:
- steps/s with a 95% interval over the sessions (the unit of evidence);
- the time relative to the oldest release, with its 95% interval (the paired
  comparison oldest -> release, bench.versions.verdicts);
- the steps over all releases at once (bench.stats.steps): per case the
  release-by-session table of log median round times, a two-way fit so that a
  session's luck cancels, the noise pooled over the table and the backend's
  cases, and a segmentation whose penalty keeps null histories to at most 1%
  with any step. A step beyond the threshold is a change point; the NumPy
  controls go through the same detector, and a step there is a machine change
  that leaves every MLX change point at that release inconclusive;
- as information, the paired verdict of each release against the one before
  it (at alpha / P for P pairs); a `broken` one is a change point too.
Saved as history.json and history.csv beside the run's measurements; the
report shows it as the page's "Release history" (bench.report.html_history).
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from pathlib import Path

import pandas as pd

from bench.stats import steps as step_detector
from bench.stats.intervals import mean_interval
from bench.stats.verdict_engine import CONTROL_TOLERANCE
from bench.stats.verdict_engine import exit_status as engine_exit_status
from bench.versions import confirm, reproducer, verdict_files
from bench.versions.common import EXIT_INCOMPLETE, EXIT_OK, EXIT_USAGE
from bench.versions.compare import (
    confirmation_settings,
    consecutive_pairs,
    install,
    judge,
    machine_label,
    measure_installed,
    settings_record,
)
from bench.versions.environments import installer_of
from bench.versions.index import backend_package, published_releases, releases_in_range
from bench.versions.modes import HistorySettings
from bench.versions.paired import Side
from bench.versions.targets import parse_target

HISTORY_KIND = "mlx-sgd-bench-release-history"
HISTORY_JSON = "history.json"
HISTORY_CSV = "history.csv"
CHANGE_VERDICTS = ("regression", "faster", "broken")
CSV_FIELDS = (
    "machine", "case_id", "model", "backend", "control", "release", "steps_per_s", "steps_per_s_ci_low",
    "steps_per_s_ci_high", "pct_vs_oldest", "ci_low_pct", "ci_high_pct", "verdict_vs_oldest", "change_pct",
    "change_ci_low_pct", "change_ci_high_pct", "change_verdict", "change_p_adjusted", "step_pct", "step_ci_low_pct",
    "step_ci_high_pct", "step_verdict", "noise_pct", "sessions",
)  # fmt: skip
CONTROL_BACKEND = "numpy"
SMALL_STEP = "small"  # a step the detector finds, within the threshold: listed, not a change point


def plan_releases(
    args: HistorySettings, available: list[str] | None = None, backend: list[str] | None = None
) -> tuple[list, dict]:
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
    """(steps/s, 95% low, 95% high) from the sessions' log median round times (bench.stats.intervals.mean_interval)."""
    if not logs:
        return math.nan, math.nan, math.nan
    # In log steps/s (minus the log round time), so the interval's ends are steps/s.
    interval = mean_interval([math.log(steps_per_round) - log for log in logs])
    low, high = interval.low_high
    return math.exp(interval.centre), low, high


def history_rows(
    measurements: dict, labels: list[str], vs_oldest: list[dict], changes: list[dict], machine: str, found=()
):
    """One row per case and release: steps/s, the change against the oldest and against the release before, and
    the detector's step into this release (`found`: the history's step records) with the case's pooled noise."""
    oldest = {(r["case_id"], r["newer"]): r for r in vs_oldest}
    step = {(r["case_id"], r["newer"]): r for r in changes}
    detected = {(r["case_id"], r["newer"]): r for r in found}
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
                row.update(_change_fields("change", change), change_p_adjusted=verdict_files._direction_p(change))
            if (case_id, label) in detected:
                row.update(_change_fields("step", detected[case_id, label]))
            rows.append(row)
    return rows


def detect(measurements: dict, labels: list[str]) -> dict:
    """{backend: bench.stats.steps.Detection} over each backend's cases of the history (a family each)."""
    tables: dict[str, list] = {}
    for case_id, case in measurements["cases"].items():
        table = step_detector.case_table(case_id, case["sessions"], labels)
        if table is not None:
            tables.setdefault(case["case"]["backend"], []).append(table)
    return {backend: step_detector.detect_steps(found) for backend, found in tables.items()}


def _change_fields(prefix: str, change: dict) -> dict:
    """A change's size, interval and verdict as a history row's columns: <prefix>_pct, _ci_low_pct, ... _verdict."""
    return {
        f"{prefix}_pct": change["pct_change"],
        f"{prefix}_ci_low_pct": change["ci_low_pct"],
        f"{prefix}_ci_high_pct": change["ci_high_pct"],
        f"{prefix}_verdict": change["verdict"],
    }


def step_records(detections: dict, threshold: float) -> list[dict]:
    """Every step the detector found, as saved: case, releases, size and interval, verdict, the segments around it.

    Verdict: `regression` or `faster` beyond the threshold, SMALL_STEP within it.
    """
    records = []
    for backend, detection in detections.items():
        for step in detection.steps:
            low, high = step.ci_pct
            change = step.pct_change
            verdict = (
                "regression" if change > 100 * threshold else "faster" if change < -100 * threshold else SMALL_STEP
            )
            records.append(
                {
                    "case_id": step.case_id,
                    "backend": backend,
                    "control": backend == CONTROL_BACKEND,
                    # A control moved (the gate's rule, bench.stats.verdict_engine): significant and beyond
                    # CONTROL_TOLERANCE x the threshold; a smaller step of a control is listed, not a machine change.
                    "machine_change": backend == CONTROL_BACKEND and abs(change) > 100 * CONTROL_TOLERANCE * threshold,
                    "older": step.older,
                    "newer": step.newer,
                    "pct_change": change,
                    "ci_low_pct": low,
                    "ci_high_pct": high,
                    "t": step.log_change / step.se if step.se > 0 else math.inf,
                    "df": step.df,
                    "verdict": verdict,
                    "segment_before": list(step.segment_before),
                    "segment_after": list(step.segment_after),
                }
            )
    return records


def machine_changes(found: list[dict]) -> list[dict]:
    """The NumPy controls' steps beyond the control tolerance: their code is the same in every release, so such a
    step is not MLX's."""
    return [r for r in found if r.get("machine_change", r["control"])]


def change_points(found: list[dict], changes: list[dict]) -> list[dict]:
    """The MLX cases' change points, largest first: the detector's steps beyond the threshold, and `broken` pairs.

    A step at a release where a NumPy control stepped too is kept but
    `inconclusive` (its `reason` names the control): at that release
    something besides MLX changed.
    """
    moved = {}
    for control in machine_changes(found):
        moved.setdefault((control["older"], control["newer"]), control)
    points = []
    for row in found:
        if row["control"] or row["verdict"] == SMALL_STEP:
            continue
        control = moved.get((row["older"], row["newer"]))
        checked = row.get("confirmation") or {}
        reason = ""
        if control:
            reason = (
                f"the NumPy control {control['case_id']} stepped at the same release "
                f"({control['pct_change']:+.1f}%): something besides MLX changed there"
            )
        elif checked.get("verdict") == "inconclusive":
            reason = f"its confirmation: {checked.get('reason', '')}"
        points.append(
            {
                key: row[key]
                for key in ("case_id", "older", "newer", "verdict", "pct_change", "ci_low_pct", "ci_high_pct", "t")
            }
            | {"status": "inconclusive" if reason else "ok", "reason": reason}
            | ({"confirmation": checked} if checked else {})
        )
    for row in changes:
        if row["control"] or row["verdict"] != "broken":
            continue
        points.append(
            {
                "case_id": row["case_id"],
                "older": row["older"],
                "newer": row["newer"],
                "verdict": "broken",
                "pct_change": row["pct_change"],
                "ci_low_pct": row["ci_low_pct"],
                "ci_high_pct": row["ci_high_pct"],
                "status": "ok",
                "reason": row.get("reason", ""),
            }
        )
    return sorted(points, key=lambda p: -abs(p["pct_change"] if p["pct_change"] is not None else 0))


def confirm_steps(args, data, ready, pythons, cases, found, detections, start_worker, settings, budget, identity):
    """Sequential confirmation of the candidate steps: the paired test of each step's two releases on more
    sessions (bench.versions.confirm), at alpha over the pairs confirmed; the steps are updated in place."""
    chosen = confirm.step_candidates(found, detections, args.threshold)
    questions: dict[tuple, list] = {}
    for step in chosen:
        questions.setdefault((step["older"], step["newer"]), []).append(step["case_id"])
    if budget <= 0 or not questions:
        return confirm.Outcome(stopped="off" if budget <= 0 else "nothing to confirm")
    sides = {t.label: Side(t.label, Path(pythons[t.label]), t.version) for t in ready}
    outcome = confirm.confirm(
        data, sides, [confirm.Question(o, n, ids) for (o, n), ids in questions.items()], cases, settings,
        start_worker, args.threshold, args.alpha / len(questions), budget, machine_label(identity),
    )  # fmt: skip
    confirm.apply_to_steps(found, outcome, SMALL_STEP)
    verdict_files.write_json(args.results / verdict_files.MEASUREMENTS_JSON, data)
    return outcome


def detector_record(detections: dict) -> dict:
    """How the steps were found, per backend: the penalty, the noise prior's degrees of freedom, each case's noise."""
    return {
        "method": "two-way fit (session + release) of each session's log median round time; exact optimal "
        "partitioning of the release means with a Gaussian cost and a penalty per step from simulated null histories",
        "false_alarm_rate": step_detector.FALSE_ALARM_RATE,
        "simulations": step_detector.SIMULATIONS,
        "families": {
            backend: {
                "cases": len(detection.noise),
                "penalty": detection.penalty,
                "prior_df": detection.prior_df,
                "noise_pct": {case: 100 * math.expm1(sd) for case, (sd, _) in detection.noise.items()},
                "noise_df": {case: df for case, (_, df) in detection.noise.items()},
            }
            for backend, detection in detections.items()
        },
    }


def history_exit_status(points: list[dict], moved: list[dict], fail_on_regression: bool) -> int:
    """The one exit-code precedence (bench.stats.verdict_engine.exit_status) over the change points: a machine
    change leaves the history inconclusive (its controls cannot vouch for that release)."""
    verdicts = [(p["verdict"], False, p["status"]) for p in points]
    return engine_exit_status(verdicts, ["inconclusive"] if moved else ["ok"], fail_on_regression)


def history_document(identity, record, labels, failures, comparisons, changes, rows, points, found=(), how=None):
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
        "steps": list(found),
        "machine_changes": machine_changes(list(found)),
        "detector": how or {},
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
        f"change points (steps over all releases, beyond {threshold:.0%}; at most "
        f"{step_detector.FALSE_ALARM_RATE:.0%} of histories without any show one): {len(points)}"
    )
    for point in points:
        note = "" if point["status"] == "ok" else f" ({point['status']}: {point.get('reason', '')})"
        lines.append(f"  {_step_line(point)} {point['verdict']}{note}")
        if point.get("confirmation"):
            lines.append(f"    {_confirmation_line(point['confirmation'])}")
        if point.get("reproducer"):
            lines.append(f"    reproducer: {point['reproducer']} (standalone MLX; see {reproducer.FOLDER}/README.md)")
    small = [s for s in document.get("steps", []) if not s["control"] and s["verdict"] == SMALL_STEP]
    if small:
        lines.append(f"steps within ±{threshold:.0%} (real by the same test, too small to be change points):")
        for step in small:
            lines.append(f"  {_step_line(step)}")
            if step.get("confirmation"):
                lines.append(f"    {_confirmation_line(step['confirmation'])}")
    moved = document.get("machine_changes", [])
    tolerance = f"beyond ±{CONTROL_TOLERANCE * threshold:.0%}"
    lines.append(
        f"NumPy controls: {f'no step {tolerance}' if not moved else f'{len(moved)} step(s) {tolerance}, a machine change at that release'}"
    )
    lines.extend(f"  {_step_line(s)}" for s in moved)
    smaller = [s for s in document.get("steps", []) if s["control"] and s not in moved]
    if smaller:
        lines.append(
            f"  within ±{CONTROL_TOLERANCE * threshold:.0%}, listed only: " + "; ".join(_step_line(s) for s in smaller)
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


def _confirmation_line(summary: dict) -> str:
    """A step's confirmation in one line: the paired verdict of its two releases on the sessions added."""
    fmt = verdict_files._fmt
    return (
        f"confirmation: {summary['verdict']}, {fmt(summary.get('pct_change'), '+.1f')}% "
        f"[{fmt(summary.get('ci_low_pct'), '+.1f')}, {fmt(summary.get('ci_high_pct'), '+.1f')}] over "
        f"{summary.get('sessions')} sessions ({summary.get('sessions_added')} added, {summary.get('looks')} look(s) at "
        f"alpha {summary.get('alpha_per_look', float('nan')):.3g} each)"
    )


def _step_line(step: dict) -> str:
    """A step in one terminal line: case, releases, size and 95% interval."""
    fmt = verdict_files._fmt
    return (
        f"{step['case_id'][:58]:<58} {step['older']} -> {step['newer']}: {fmt(step['pct_change'], '+.1f')}% "
        f"[{fmt(step['ci_low_pct'], '+.1f')}, {fmt(step['ci_high_pct'], '+.1f')}]"
    )


def run_history(
    args: HistorySettings, cache, pins, start_worker, settings, ensure, available=None, backend=None
) -> int:
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
    measuring = time.perf_counter()
    measured = measure_installed(args, targets, pythons, start_worker, settings, "no history")
    if measured is None:
        return EXIT_INCOMPLETE
    ready, data, identity, cases = measured
    machine = machine_label(identity)
    labels = [t.label for t in ready]
    pairs = consecutive_pairs(ready)
    comparisons, changes = judge(data, pairs, args.threshold, args.alpha / len(pairs), machine)
    _, vs_oldest = judge(data, [(labels[0], label) for label in labels[1:]], args.threshold, args.alpha, machine)
    detections = detect(data, labels)
    found = step_records(detections, args.threshold)
    measured = copy.deepcopy(data)  # the history's figures: its own sessions, every release in each
    budget = confirm.default_budget(time.perf_counter() - measuring, args.confirm_budget)
    outcome = confirm_steps(
        args, data, ready, pythons, cases, found, detections, start_worker, settings, budget, identity
    )
    rows = history_rows(measured, labels, vs_oldest, changes, machine, found)
    for row in rows:  # each case's pooled noise (the detector's), on every row of the case
        family = detections.get(row["backend"])
        if family and row["case_id"] in family.noise:
            row["noise_pct"] = 100 * math.expm1(family.noise[row["case_id"]][0])
    record = settings_record(args, settings, len(cases))
    record.update(
        releases=[
            {"label": t.label, "version": t.version, "spec": t.spec, "installer": installer_of(Path(pythons[t.label]))}
            for t in ready
        ],
        alpha_per_pair=args.alpha / len(pairs),
        confirmation=confirmation_settings(budget, outcome),
        wall_s=round(time.perf_counter() - started, 1),
    )
    points = change_points(found, changes)
    specs = {t.label: t.spec for t in ready}
    scripts = reproducer.write_reproducers(args.results, points, data, specs, pythons, machine)
    document = history_document(
        identity,
        record,
        labels,
        left_out | failures,
        comparisons,
        changes,
        rows,
        points,
        found,
        detector_record(detections),
    )
    document["reproducers"] = scripts
    json_path, csv_path = write_history(args.results, document)
    for line in history_lines(document, args.threshold):
        print(line)
    print(f"history: {json_path} and {csv_path.name} ({(time.perf_counter() - started) / 60:.1f} min in all)")
    status = history_exit_status(points, document["machine_changes"], args.fail_on_regression)
    # A release the index has but no wheel for this platform is out of reach, not a failure; a failed install is.
    return EXIT_INCOMPLETE if failures and status == EXIT_OK else status
