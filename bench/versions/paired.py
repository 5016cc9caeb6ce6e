"""Interleaved, paired timing (the default mode): rounds of one case alternate between releases.

Every round is timed by the measurement engine (bench.engine): the same job
record, the same worker, the same timing loop and checks as the main job. Per
session, each release's workers are pinned to the same CPU set and follow the
engine's isolation policy (bench.engine.isolation): a fresh, backend-pure
worker per group of cases (so a NumPy control never shares a process with
MLX), checked for leftover state before every case, and no case timed while
a worker of the other backend of its release is alive (end_other_backends).
Per case: K is calibrated once (by the first release's worker in the first
session) and then fixed for
every release and session; every worker trains on the same seeded data and
ends each round in the same barrier. Rounds then run in blocks, every release
once per block in a random order (A B / B A), so a burst on the machine hits
neighbouring rounds of every release alike. After timing, each worker runs the
suite's barrier and correctness checks (every session unless told otherwise).
Sessions run one after another with fresh processes, because each process
keeps its own lasting offset per case: the process, not the round, is the
unit the verdict averages (see bench.versions.verdicts).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.cases.case import Case
from bench.cases.sizes import Size
from bench.engine import defaults
from bench.engine.client import WorkerError, WorkerRefused, WorkerTimeout
from bench.engine.isolation import WorkerPool
from bench.engine.jobs import Job
from bench.engine.plants import Plants
from bench.engine.progress import Progress
from bench.engine.turns import OpenCase, take_turns

DEFAULT_SESSIONS = 4
DEFAULT_PAIRS = 6
DEFAULT_REQUEST_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Side:
    """One release as the paired runner sees it: a label, its interpreter, planted slowdowns (self-test)."""

    label: str
    python: Path
    version: str  # what the worker's mlx must report
    slowdown: dict = field(default_factory=dict)  # case_id -> fraction (self-test only): rounds take 1 + it as long
    leave_behind: dict = field(default_factory=dict)  # case_id -> "spin" | "memory" (self-test only)
    broken: dict = field(default_factory=dict)  # case_id -> "weights" | "barrier" (self-test only)


@dataclass(frozen=True)
class PairedSettings:
    """How hard to measure (frozen: part of every mode's settings, bench.versions.modes)."""

    sessions: int = DEFAULT_SESSIONS
    pairs: int = DEFAULT_PAIRS
    round_time_s: float = defaults.ROUND_TIME_S
    cpu_sets: list = field(default_factory=lambda: [[]])
    timeout_s: float | None = DEFAULT_REQUEST_TIMEOUT_S
    seed: int = 0
    check_every_session: bool = True  # False: the checks run in the first session's workers only
    shuffle_cases: bool = False  # a new case order per session: what a case inherits from the one before it varies
    reverse_cases: bool = False  # the grid's order reversed in every session
    alternate_order: bool = False  # grid order in even sessions, reversed in odd ones (the self-test's order check)
    first_session: int = 0  # the number of the first session: sessions added to a run's record go on from its last


def pairs_for(round_s: float, settings: PairedSettings) -> int:
    """Blocks of rounds for a case: `pairs`, fewer where a round is long (bench.engine.defaults), never under MIN_BLOCKS."""
    if not defaults.is_long_round(round_s, settings.round_time_s):
        return settings.pairs
    # A case whose single step outlasts the round time: keep its time near pairs x the long-round limit.
    affordable = int(settings.pairs * defaults.LONG_ROUND_FACTOR * settings.round_time_s / round_s)
    return min(settings.pairs, max(defaults.MIN_BLOCKS, affordable))


def new_measurements(cases: list[dict], sides: list[Side]) -> dict:
    """The empty record of a paired run: per case, K and one entry per session."""
    return {
        "sides": [s.label for s in sides],
        "cases": {
            c["case_id"]: {"case": c["case"], "size": c["size"], "steps_per_round": None, "sessions": []} for c in cases
        },
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
    timeout), close(), alive and pid: a bench.engine.client.WorkerClient, or a
    fake in tests. Each release's workers of a session follow the isolation
    policy: a new one per group of cases (bench.engine.isolation.WorkerPool).
    """
    rng = random.Random(settings.seed)
    data = measurements or new_measurements(cases, sides)
    run_start = time.perf_counter()
    for session in range(settings.first_session, settings.first_session + settings.sessions):
        cpus = settings.cpu_sets[session % len(settings.cpu_sets)]
        started = time.perf_counter()
        session_record = {"session": session, "cpus": cpus, "workers": {s.label: [] for s in sides}}
        data["sessions"].append(session_record)
        pools = {
            side.label: WorkerPool(_starter(side, cpus, session, start_worker, settings, session_record))
            for side in sides
        }
        try:
            problems = 0
            order = list(cases)
            if settings.reverse_cases or (settings.alternate_order and session % 2 == 1):
                order.reverse()
            if settings.shuffle_cases:
                rng.shuffle(order)
            session_record["case_order"] = [entry["case_id"] for entry in order]
            stage = Progress(len(order), PROGRESS_EVERY_S, started)
            for index, entry in enumerate(order):
                case_start = time.perf_counter()
                record = _run_case(entry, sides, pools, data["cases"][entry["case_id"]], settings, rng, session)
                record["cpus"] = cpus
                record["seconds"] = time.perf_counter() - case_start
                if verbose:
                    blocks = len(record["orders"])
                    steps_per_round = data["cases"][entry["case_id"]]["steps_per_round"]
                    progress(
                        f"  [{index + 1}/{len(cases)}] {entry['case_id']}: K {steps_per_round}, {blocks} blocks, {record['seconds']:.1f} s"
                    )
                due = stage.step()
                if due and not verbose:
                    sessions = settings.first_session + settings.sessions
                    progress(_progress_line(session, sessions, stage, run_start))
                problems += bool(record.get("errors"))
                for label, error in record.get("errors", {}).items():
                    progress(f"  session {session + 1}: {entry['case_id']} mlx {label}: {error}")
                    # A worker that timed out was killed, and one may have died: the next case needs a fresh one.
                    pools[label].retire(case_job(entry, sides[0], None, settings, False))
        finally:
            for pool in pools.values():
                pool.close()
            session_record["replaced"] = [line for pool in pools.values() for line in pool.replaced]
        session_record["seconds"] = time.perf_counter() - started
        check_s = sum(
            record.get("check_s", 0.0)
            for entry in cases
            for record in data["cases"][entry["case_id"]]["sessions"]
            if record["session"] == session
        )
        session_record["check_s"] = check_s
        progress(
            f"session {session + 1}/{settings.first_session + settings.sessions} (CPUs {','.join(map(str, cpus)) or 'any'}): "
            f"{len(cases)} cases in {time.perf_counter() - started:.0f} s (checks {check_s:.0f} s)"
            + (f", {problems} with errors" if problems else "")
        )
        if save:
            save(data)
    return data


PROGRESS_EVERY_S = 30.0  # a progress line at most this often (every case with --verbose)


def _progress_line(session: int, sessions: int, stage: Progress, run_start: float) -> str:
    """Where the run stands: session, cases done, and the time left at this session's pace (bench.engine.progress)."""
    _, left = stage.left(stages_after=sessions - session - 1)
    return (
        f"  session {session + 1}/{sessions}: {stage.done}/{stage.total} cases, {stage.spent_s:.0f} s; "
        f"about {left / 60:.0f} min left ({(time.perf_counter() - run_start) / 60:.0f} min so far)"
    )


def _starter(side: Side, cpus, session: int, start_worker, settings: PairedSettings, session_record: dict):
    """A WorkerPool's start(job): a new worker of `side`, its release and machine checked, recorded in the session."""

    def start(job):
        worker = start_worker(side, cpus, session)
        try:
            hello = worker.request({"cmd": "hello"}, settings.timeout_s)
        except BaseException:
            worker.close()
            raise
        if hello.get("mlx") != side.version:
            worker.close()
            raise WorkerRefused(f"the worker of {side.label} runs mlx {hello.get('mlx')}, not {side.version}")
        machines = session_record.setdefault("machines", [])
        machine = hello.get("machine") or {}
        if machines and machine != machines[0]:
            worker.close()
            raise WorkerRefused("the workers report different machines; timings from them cannot be paired")
        if not machines:
            machines.append(machine)
        info = {k: hello.get(k) for k in ("pid", "mlx", "affinity", "threads")}
        session_record["workers"][side.label].append(dict(info, group=list(job.group)))
        worker.hello = hello
        return worker

    return start


def case_job(entry: dict, side: Side, steps_per_round: int | None, settings: PairedSettings, check: bool) -> Job:
    """The engine job of one case for one release: K given or calibrated, the side's plants, the checks."""
    case_id = entry["case_id"]
    return Job(
        case=Case(**entry["case"]),
        size=Size(**entry["size"]),
        steps_per_round=steps_per_round,
        round_time_s=settings.round_time_s,
        rounds=settings.pairs,
        first_pass=True,
        check_correctness=check,
        plants=Plants.of(
            1.0 + float(side.slowdown.get(case_id, 0.0)), side.leave_behind.get(case_id), side.broken.get(case_id)
        ),
    )


def end_other_backends(pool: WorkerPool, job: Job) -> int:
    """End the pool's live workers of another backend than the job's; how many were ended.

    The engine's pool keeps a release's NumPy and MLX workers of one model
    and size alive together, taking turns. Then a NumPy control is timed
    beside an idle MLX process of that release on the same CPUs, with
    whatever it keeps running (MLX's threads, its allocator's cache), which
    differs between releases: the control moves though NumPy did not. So no
    case is timed while a worker of another backend of its release is alive
    (docs/releases.md, "How releases are timed").
    """
    backend = job.group[1]
    ended = 0
    for group in [g for g in pool.live if g[1] != backend]:
        pool.live.pop(group).close()
        ended += 1
    return ended


def _run_case(entry, sides, pools, store, settings, rng, session) -> dict:
    """One case in one session: open it in every release's worker, interleaved blocks of rounds, checks."""
    record = {
        "session": session,
        "times": {s.label: [] for s in sides},
        "planted": {},
        "orders": [],
        "errors": {},
        "pids": {},
    }
    store["sessions"].append(record)
    labels = [s.label for s in sides]
    check = settings.check_every_session or session == 0
    record["checked"] = check
    ready, workers = [], {}
    round_s = 0.0
    for side in sides:  # the first side calibrates K the first time; everyone else uses it
        job = case_job(entry, side, store["steps_per_round"], settings, check)
        record.setdefault("ended_other_backend", 0)
        record["ended_other_backend"] += end_other_backends(pools[side.label], job)
        try:
            worker, answer = pools[side.label].open(job, settings.timeout_s)
        except WorkerRefused:
            raise  # a worker of another release or machine: nothing it measures can be paired
        except WorkerError as error:
            record["errors"][side.label] = str(error)
            continue
        workers[side.label] = worker
        record["pids"][side.label] = worker.pid
        if store["steps_per_round"] is None:
            store["steps_per_round"] = answer["steps_per_round"]
        round_s = max(round_s, answer.get("round_s") or 0.0)
        ready.append(side.label)
    if len(ready) < len(labels):
        _close_all(workers, ready, record, settings)
        return record
    blocks = pairs_for(round_s, settings)
    orders = []
    for _ in range(blocks):
        order = list(labels)
        rng.shuffle(order)
        orders.append(order)
    opened = {label: OpenCase(workers[label], settings.timeout_s) for label in ready}
    # Every release once per block in a random order; a release that fails a round ends the case's rounds
    # (nothing is paired with it), and the checks follow once every round is done.
    asked = take_turns(
        opened,
        [label for order in orders for label in order],
        check=check,
        check_right_after=False,
        stop_on_failure=True,
    )
    record["orders"] = orders[: -(-asked // len(labels))]  # the blocks begun
    _record_turns(opened, record, check)
    return record


def _close_all(workers: dict, labels: list[str], record: dict, settings: PairedSettings) -> None:
    """Close the case in the releases that opened it, untimed and unchecked (another release could not open it)."""
    opened = {label: OpenCase(workers[label], settings.timeout_s) for label in labels}
    take_turns(opened, [], check=False)
    _record_turns(opened, record, checked=False)


def _record_turns(opened: dict[str, OpenCase], record: dict, checked: bool) -> None:
    """The rounds, plants, checks and errors of each release into the case's session record."""
    for label, case in opened.items():
        record["times"][label] = case.times
        if case.planted:
            record["planted"][label] = case.planted
        if case.failed is not None:
            step, error = case.failed
            late = step == "check" and not isinstance(error, WorkerTimeout)
            record["errors"][label] = f"check failed: {error}" if late else str(error)
        elif checked:
            record.setdefault("checks", {})[label] = (case.checked or {}).get("checks")
    record["check_s"] = sum(case.check_s for case in opened.values())
