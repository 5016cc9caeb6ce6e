"""Interleaved, paired timing (the default mode): rounds of one case alternate between releases.

Per session, one fresh worker per release, all pinned to the same CPU set.
Per case: K is calibrated once (by the first release's worker in the first
session) and then fixed for every release and session; every worker trains on
the same seeded data and ends each round in the same barrier. Rounds then run
in blocks, every release once per block in a random order (A B / B A), so a
burst on the machine hits neighbouring rounds of every release alike. After
timing, each worker runs the suite's barrier and correctness checks. Sessions
run one after another with fresh processes, because each process keeps its own
lasting offset per case: the process, not the round, is the unit the verdict
averages (see bench.versions.verdicts).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.versions.workers import WorkerError, WorkerTimeout

DEFAULT_SESSIONS = 4
DEFAULT_PAIRS = 6
MIN_PAIRS = 3
DEFAULT_ROUND_TIME_S = 0.02
DEFAULT_REQUEST_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Side:
    """One release as the paired runner sees it: a label, its interpreter, planted slowdowns (self-test)."""

    label: str
    python: Path
    version: str  # what the worker's mlx must report
    slowdown: dict = field(default_factory=dict)  # case_id -> fraction (self-test only)


@dataclass
class PairedSettings:
    """How hard to measure."""

    sessions: int = DEFAULT_SESSIONS
    pairs: int = DEFAULT_PAIRS
    round_time_s: float = DEFAULT_ROUND_TIME_S
    cpu_sets: list = field(default_factory=lambda: [[]])
    timeout_s: float | None = DEFAULT_REQUEST_TIMEOUT_S
    seed: int = 0
    check_every_session: bool = False
    shuffle_cases: bool = False  # a new case order per session: what a case inherits from the one before it varies


def pairs_for(round_s: float, settings: PairedSettings) -> int:
    """Blocks of rounds for a case: `pairs`, fewer where a round is much longer than planned, never under MIN_PAIRS."""
    if round_s <= 2 * settings.round_time_s:
        return settings.pairs
    # A case whose single step outlasts the round time: keep its time near pairs x round time.
    affordable = int(settings.pairs * 2 * settings.round_time_s / round_s)
    return min(settings.pairs, max(MIN_PAIRS, affordable))


def new_measurements(cases: list[dict], sides: list[Side]) -> dict:
    """The empty record of a paired run: per case, K and one entry per session."""
    return {
        "sides": [s.label for s in sides],
        "cases": {c["case_id"]: {"case": c["case"], "size": c["size"], "steps": None, "sessions": []} for c in cases},
        "sessions": [],
    }


def run_paired(
    sides: list[Side],
    cases: list[dict],
    settings: PairedSettings,
    start_worker: Callable[[Side, list, int], object],
    progress: Callable[[str], None] = print,
    measurements: dict | None = None,
    save: Callable[[dict], None] | None = None,
    verbose: bool = False,
) -> dict:
    """Time every case in `settings.sessions` sessions of fresh workers; return the measurements.

    start_worker(side, cpus, session) returns an object with request(message,
    timeout), close() and pid: a WorkerProcess, or a fake in tests.
    """
    rng = random.Random(settings.seed)
    data = measurements or new_measurements(cases, sides)
    for session in range(settings.sessions):
        cpus = settings.cpu_sets[session % len(settings.cpu_sets)]
        started = time.perf_counter()
        workers, info = _start_session(sides, cpus, session, start_worker, settings, rng)
        data["sessions"].append({"session": session, "cpus": cpus, "workers": info})
        try:
            problems = 0
            order = list(cases)
            if settings.shuffle_cases:
                rng.shuffle(order)
            data["sessions"][-1]["case_order"] = [entry["case_id"] for entry in order]
            for index, entry in enumerate(order):
                case_start = time.perf_counter()
                record = _run_case(entry, sides, workers, data["cases"][entry["case_id"]], settings, rng, session)
                record["cpus"] = cpus
                record["seconds"] = time.perf_counter() - case_start
                if verbose:
                    blocks = len(record["orders"])
                    progress(
                        f"  [{index + 1}/{len(cases)}] {entry['case_id']}: K {data['cases'][entry['case_id']]['steps']}, {blocks} blocks, {record['seconds']:.1f} s"
                    )
                problems += bool(record.get("errors"))
                for label, error in record.get("errors", {}).items():
                    progress(f"  session {session + 1}: {entry['case_id']} mlx {label}: {error}")
                    # A worker that timed out was killed, and one may have died: the next case needs a fresh one.
                    if error.startswith(("timeout", "worker")) or not getattr(workers[label], "alive", lambda: True)():
                        workers[label].close()
                        workers[label] = _start_worker(sides, label, cpus, session, start_worker, settings)
        finally:
            for worker in workers.values():
                worker.close()
        data["sessions"][-1]["seconds"] = time.perf_counter() - started
        progress(
            f"session {session + 1}/{settings.sessions} (CPUs {','.join(map(str, cpus)) or 'any'}): "
            f"{len(cases)} cases in {time.perf_counter() - started:.0f} s"
            + (f", {problems} with errors" if problems else "")
        )
        if save:
            save(data)
    return data


def _start_worker(sides, label, cpus, session, start_worker, settings):
    side = next(s for s in sides if s.label == label)
    worker = start_worker(side, cpus, session)
    hello = worker.request({"cmd": "hello"}, settings.timeout_s)
    if hello.get("mlx") != side.version:
        worker.close()
        raise WorkerError(f"the worker of {label} runs mlx {hello.get('mlx')}, not {side.version}")
    worker.hello = hello
    return worker


def _start_session(sides, cpus, session, start_worker, settings, rng):
    """Fresh workers for every side, started in a random order; their hello answers."""
    order = list(sides)
    rng.shuffle(order)
    workers, info = {}, {}
    try:
        for side in order:
            worker = _start_worker(sides, side.label, cpus, session, start_worker, settings)
            workers[side.label] = worker
            info[side.label] = {k: worker.hello.get(k) for k in ("pid", "mlx", "affinity", "machine", "threads")}
    except BaseException:
        for worker in workers.values():
            worker.close()
        raise
    machines = {str(sorted((v.get("machine") or {}).items())) for v in info.values()}
    if len(machines) > 1:
        raise WorkerError("the workers report different machines; timings from them cannot be paired")
    return workers, info


def _run_case(entry, sides, workers, store, settings, rng, session) -> dict:
    """One case in one session: setup on every worker, interleaved blocks of rounds, checks."""
    case_id = entry["case_id"]
    record = {"session": session, "times": {s.label: [] for s in sides}, "orders": [], "errors": {}}
    store["sessions"].append(record)
    labels = [s.label for s in sides]
    ready = []
    round_s = 0.0
    for side in sides:  # the first side calibrates K the first time; everyone else uses it
        request = {
            "cmd": "setup",
            "case": entry["case"],
            "size": entry["size"],
            "steps": store["steps"],
            "round_time_s": settings.round_time_s,
            "slowdown": side.slowdown.get(case_id, 0.0),
        }
        try:
            answer = workers[side.label].request(request, settings.timeout_s)
        except WorkerError as error:
            record["errors"][side.label] = str(error)
            continue
        if store["steps"] is None:
            store["steps"] = answer["steps"]
        round_s = max(round_s, answer.get("round_s") or 0.0)
        ready.append(side.label)
    if len(ready) < len(labels):
        _finish(workers, ready, record, settings, check=False)
        return record
    blocks = pairs_for(round_s, settings)
    try:
        for _ in range(blocks):
            order = list(labels)
            rng.shuffle(order)
            record["orders"].append(order)
            for label in order:
                record["times"][label].append(workers[label].request({"cmd": "round"}, settings.timeout_s)["seconds"])
    except WorkerError as error:
        record["errors"][label] = str(error)
        ready.remove(label)
    _finish(workers, ready, record, settings, check=settings.check_every_session or session == 0)
    return record


def _finish(workers, labels, record, settings, check: bool) -> None:
    """The checks after timing; a failed check is an error of that release. (Unchecked, the next setup drops the case.)"""
    record["checked"] = check
    for label in labels if check else ():
        try:
            if check:
                answer = workers[label].request({"cmd": "finish"}, settings.timeout_s)
                record.setdefault("checks", {})[label] = {
                    k: answer.get(k) for k in ("max_rel_error", "barrier_pending_s")
                }
        except WorkerTimeout as error:
            record["errors"][label] = str(error)
        except WorkerError as error:
            record["errors"][label] = f"check failed: {error}"
