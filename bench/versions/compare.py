"""The paired comparison of releases (the default mode), and its building blocks shared with the self-test and bisect.

Install every release's environment, snapshot the suite, ask a worker for the
grid's cases, time them interleaved in sessions of fresh pinned workers
(bench.versions.paired), judge each consecutive pair of releases
(bench.versions.verdicts), write release-verdicts.json/.csv and print a table.
"""

from __future__ import annotations

import fnmatch
import platform
import time
from collections.abc import Callable
from pathlib import Path

from bench.engine.client import WorkerClient, WorkerError, worker_command
from bench.engine.run_environment import machine_identity
from bench.results.releases import version_key
from bench.stats import verdict_engine
from bench.versions import confirm, verdict_files, verdicts
from bench.versions.common import EXIT_INCOMPLETE, EXIT_OK, InstallError
from bench.versions.common import EXIT_INCONCLUSIVE as EXIT_INCONCLUSIVE
from bench.versions.environments import EnvCache, ensure_env, installer_of
from bench.versions.modes import CompareSettings, RunnerSettings
from bench.versions.paired import PairedSettings, Side, run_paired
from bench.versions.pins import PinSet
from bench.versions.plan import child_environment
from bench.versions.targets import Target

WORKER_LOGS = "workers"


def machine_label(identity: dict) -> str:
    """One readable string that differs whenever the identity does: host, CPU model, cores, memory."""
    memory = identity.get("memory_bytes")
    gib = f"{memory / 2**30:.0f} GiB" if memory else "? GiB"
    return f"{identity.get('host')} | {identity.get('cpu_model')} | {identity.get('cpu_count')} CPUs | {gib}"


def same_machine(a: dict, b: dict) -> bool:
    """Whether two identities may be pooled: every field equal (CPU model, cores and memory included, not only the host)."""
    keys = ("host", "cpu_model", "cpu_count", "memory_bytes", "system", "python")
    return all(a.get(k) == b.get(k) for k in keys)


def install(targets: list[Target], cache: EnvCache, pins: PinSet, ensure=ensure_env) -> tuple[dict, dict]:
    """({label: python}, {label: one-line failure}); one printed line per release."""
    pythons, failures = {}, {}
    print(f"environments in {cache.root} (a new one downloads MLX and the pinned packages):", flush=True)
    for number, target in enumerate(targets, 1):
        count = f"[{number}/{len(targets)}] " if len(targets) > 2 else ""  # progress where there are many to build
        try:
            pythons[target.label], done = ensure(target.key, cache, pins, spec=target.spec, version=target.version)
            print(f"{count}mlx {target.label}: environment {done}", flush=True)
        except InstallError as error:
            print(f"{count}mlx {target.label}: could not install ({error})", flush=True)
            failures[target.label] = str(error)
    return pythons, failures


def worker_factory(suite: Path, logs: Path) -> Callable:
    """start_worker(side, cpus, session) for real workers: the side's interpreter, running the suite snapshot."""

    def start(side: Side, cpus: list, session: int) -> WorkerClient:
        env = child_environment(side.python.parent.parent)
        log = logs / f"session{session + 1}-mlx-{side.label}.log"
        return WorkerClient(f"worker of mlx {side.label}", worker_command(side.python), suite, env, cpus, log)

    return start


def select_cases(cases: list[dict], patterns: list[str] | None) -> list[dict]:
    """The cases whose id matches any of the glob patterns (all when there are none)."""
    if not patterns:
        return cases
    return [c for c in cases if any(fnmatch.fnmatchcase(c["case_id"], p) for p in patterns)]


def grid_cases(
    start_worker: Callable, side: Side, sizes: str, devices: list[str] | None, timeout: float | None
) -> tuple[list[dict], dict]:
    """(the grid's cases as the suite snapshot builds them, the worker's hello) from one worker of `side`."""
    worker = start_worker(side, [], -1)
    try:
        hello = worker.request({"cmd": "hello"}, timeout)
        answer = worker.request({"cmd": "cases", "sizes": sizes, "devices": devices}, timeout)
    finally:
        worker.close()
    return answer["cases"], hello


def judge(
    measurements: dict, pairs: list[tuple[str, str]], threshold: float, alpha: float, machine: str
) -> tuple[list, list]:
    """(comparisons, rows) for every older/newer pair."""
    comparisons, rows = [], []
    for older, newer in pairs:
        comparison, pair_rows = verdicts.compare_pair(measurements, older, newer, threshold, alpha, machine)
        comparisons.append(comparison)
        rows.extend(pair_rows)
    return comparisons, rows


def consecutive_pairs(targets: list[Target]) -> list[tuple[str, str]]:
    """Each release against the one before it, in version order."""
    ordered = sorted(targets, key=lambda t: version_key(t.version))
    return [(a.label, b.label) for a, b in zip(ordered, ordered[1:])]


def settings_record(args: RunnerSettings, settings: PairedSettings, cases: int) -> dict:
    """The settings saved with the verdicts."""
    return {
        "mode": "paired",
        "sizes": args.sizes,
        "cases": cases,
        "case_patterns": list(args.cases),
        "sessions": settings.sessions,
        "pairs": settings.pairs,
        "round_time_s": settings.round_time_s,
        "cpu_sets": settings.cpu_sets,
        "threshold": args.threshold,
        "alpha": args.alpha,
        "seed": settings.seed,
        "checks": "every session" if settings.check_every_session else "first session",
        "case_order": "shuffle" if settings.shuffle_cases else ("reversed" if settings.reverse_cases else "grid"),
        "isolation": "a fresh backend-pure worker per (model, size) group and release, leftover check before each case, "
        "no live worker of the other backend of its release while a case is timed",
        "python": platform.python_version(),
    }


def measure(
    args: RunnerSettings, sides: list[Side], start_worker: Callable, settings: PairedSettings, save_to: Path
) -> tuple[dict, dict, list]:
    """(measurements, machine identity, cases): list the cases, check the machine, run the paired sessions."""
    cases, hello = grid_cases(start_worker, sides[-1], args.sizes, args.mlx_device, settings.timeout_s)
    cases = select_cases(cases, args.cases)
    if not cases:
        raise WorkerError(f"no case of the grid {args.sizes} matches {' '.join(args.cases or [])}")
    identity = machine_identity()
    if not same_machine(identity, hello.get("machine") or {}):
        raise WorkerError("the workers report another machine than the runner's; timings cannot be pooled")
    print(
        f"paired: {len(cases)} cases x {settings.sessions} sessions, up to {settings.pairs} blocks each, "
        f"CPU sets {settings.cpu_sets}; machine {machine_label(identity)}",
        flush=True,
    )
    data = run_paired(
        sides, cases, settings, start_worker,
        save=lambda d: verdict_files.write_json(save_to, dict(d, machine=identity)),
        verbose=args.verbose,
    )  # fmt: skip
    data["machine"] = identity
    verdict_files.write_json(save_to, data)
    return data, identity, cases


def exit_status(comparisons: list[dict], rows: list[dict], fail_on_regression: bool) -> int:
    """The one exit-code precedence (bench.stats.verdict_engine.exit_status) over a paired run's rows and comparisons."""
    status = {(c["older"], c["newer"]): c["status"] for c in comparisons}
    verdicts = ((r["verdict"], r["control"], status.get((r["older"], r["newer"]), "ok")) for r in rows)
    return verdict_engine.exit_status(verdicts, status.values(), fail_on_regression)


def measure_installed(
    args: RunnerSettings, targets: list[Target], pythons: dict, start_worker: Callable, settings, outcome: str
):
    """(the installed targets, their measurements, machine identity, cases), all timed interleaved and saved;
    None, after saying "fewer than two releases installed: {outcome}", when fewer than two installed."""
    ready = [t for t in targets if t.label in pythons]
    if len(ready) < 2:
        print(f"fewer than two releases installed: {outcome}")
        return None
    sides = [Side(t.label, Path(pythons[t.label]), t.version) for t in ready]
    return ready, *measure(args, sides, start_worker, settings, args.results / verdict_files.MEASUREMENTS_JSON)


def _open(row: dict, comparison: dict) -> bool:
    """Whether a verdict row is an MLX case of this comparison left `undecided` with sessions to add to."""
    return (
        row["older"] == comparison["older"]
        and row["newer"] == comparison["newer"]
        and not row["control"]
        and row["verdict"] == "undecided"
        and (row.get("n_newer") or 0) > 0
    )


def confirm_rows(
    args, data, ready, pythons, cases, questions, rows, start_worker, settings, budget, identity, alpha=None
):
    """Sequential confirmation (bench.versions.confirm) of `questions`, its verdicts written into `rows` in place.

    A confirmed row takes the verdict on every session so far, keeps the
    run's own verdict as `first_verdict`, and says in `confirmation` (and in
    its reason) how many looks and sessions it took. The measurements with the
    added sessions are saved again. Returns the outcome.
    """
    if budget <= 0 or not any(q.case_ids for q in questions):
        return confirm.Outcome(stopped="off" if budget <= 0 else "nothing to confirm")
    sides = {t.label: Side(t.label, Path(pythons[t.label]), t.version) for t in ready}
    outcome = confirm.confirm(
        data, sides, questions, cases, settings, start_worker, args.threshold,
        args.alpha if alpha is None else alpha, budget, machine_label(identity),
    )  # fmt: skip
    for index, row in enumerate(rows):
        key = (row["older"], row["newer"], row["case_id"])
        if key in outcome.rows:
            summary = outcome.record(key)
            note = (
                f"confirmation: {summary['verdict']} after {summary['sessions_added']} added session(s), "
                f"{summary['looks']} look(s) at alpha {summary['alpha_per_look']:.3g} each"
            )
            reason = outcome.rows[key].get("reason") or ""
            rows[index] = dict(outcome.rows[key], first_verdict=row["verdict"], confirmation=summary,
                               reason=f"{reason}; {note}" if reason else note)  # fmt: skip
    verdict_files.write_json(args.results / verdict_files.MEASUREMENTS_JSON, data)
    return outcome


def confirmation_settings(budget: float, outcome) -> dict:
    """The confirmation's settings and outcome, saved with the run's settings."""
    return {
        "budget_s": round(budget, 1),
        "seconds": round(outcome.seconds, 1),
        "stopped": outcome.stopped,
        "max_looks": confirm.MAX_LOOKS,
        "sessions_per_look": confirm.SESSIONS_PER_LOOK,
        "rule": confirm.RULE,
        "cases": len(outcome.rows),
        "decided": sum(1 for row in outcome.rows.values() if row["verdict"] != "undecided"),
    }


def run_compare(
    args: CompareSettings,
    targets: list[Target],
    pythons: dict,
    failures: dict,
    start_worker: Callable,
    settings: PairedSettings,
) -> int:
    """Time the installed releases paired, judge consecutive pairs, write and print the verdicts."""
    began = time.perf_counter()
    measured = measure_installed(args, targets, pythons, start_worker, settings, "nothing to compare")
    if measured is None:
        return EXIT_INCOMPLETE
    ready, data, identity, cases = measured
    comparisons, rows = judge(data, consecutive_pairs(ready), args.threshold, args.alpha, machine_label(identity))
    budget = confirm.default_budget(time.perf_counter() - began, args.confirm_budget)
    questions = [
        confirm.Question(c["older"], c["newer"], [r["case_id"] for r in rows if _open(r, c)])
        for c in comparisons
        if c["status"] == "ok"
    ]
    outcome = confirm_rows(args, data, ready, pythons, cases, questions, rows, start_worker, settings, budget, identity)
    record = settings_record(args, settings, len(cases))
    record["confirmation"] = confirmation_settings(budget, outcome)
    record["releases"] = [
        {"label": t.label, "version": t.version, "spec": t.spec, "sha256": t.sha256,
         "installer": installer_of(Path(pythons[t.label]))}
        for t in ready
    ]  # fmt: skip
    document = verdict_files.verdicts_document(identity, record, comparisons, rows)
    json_path, csv_path = verdict_files.write_verdicts(args.results, document)
    for line in verdict_files.verdict_table(comparisons, rows, args.threshold):
        print(line)
    print(f"verdicts: {json_path} and {csv_path.name}")
    status = exit_status(comparisons, rows, args.fail_on_regression)
    return EXIT_INCOMPLETE if failures and status == EXIT_OK else status
