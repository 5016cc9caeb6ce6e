"""The engine's worker process: runs jobs for the main job and the release runner alike.

    <python> -m bench.engine.worker        (cwd: the directory holding `bench`)

It reads one JSON request per line on stdin and answers one JSON line each
(bench.engine.protocol); its own stdout is moved to stderr, so nothing a
library prints can break the protocol. Requests:

  {"cmd": "hello"}                          pid, MLX version (read from the package's metadata: a
                                            NumPy worker never imports MLX), CPU affinity, machine
                                            identity, thread variables
  {"cmd": "configure", "options", "backends"}
                                            each named backend's command-line options, as the session
                                            parsed them (MLX's BLAS before MLX is imported)
  {"cmd": "cases", "sizes", "devices", "backends", "models"}
                                            the warm grid's cases as this environment builds them
  {"cmd": "pass", "job"}                    the leftover check (bench.engine.isolation), then one whole
                                            pass of the job (bench.engine.runner.run_pass)
                                            -> {"result": PassResult} or {"refused": why}
  {"cmd": "open", "job", "keep_open"}      the leftover check (when no case is open), then build the case
                                            and calibrate K (or warm up at the job's K); keep_open: the
                                            cases already open stay open (an interleaved pass), else
                                            they are closed first
  {"cmd": "round", "case_id"}               one timed round of an open case -> {"seconds"}
  {"cmd": "check", "case_id", "last_round_s"}
                                            the barrier (of the last round) and correctness checks, then
                                            the case is closed
  {"cmd": "close", "case_id"}               the case is closed unchecked
                                            (case_id may be left out while one case is open)
  {"cmd": "state"}                          process_state(): idle CPU, resident memory, threads
  {"cmd": "quit"}

A failed request answers {"ok": false, "error": one line}: a failed check
says what failed, as it would in the session; anything else names its type.
"""

from __future__ import annotations

import os
import sys
import time

# MLX_SGD_BENCH_ISOLATION=off turns the leftover check off: a diagnostic switch, to measure what it prevents.
ISOLATION_ENV = "MLX_SGD_BENCH_ISOLATION"


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    if isinstance(error, AssertionError) and text:
        return text[0]
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def _affinity() -> list[int] | None:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:
        return None


def _installed(package: str) -> str | None:
    # Imported here, not at the top: importlib.metadata costs a worker's start 25-35 ms, and only 'hello' needs it.
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


class Worker:
    """The state between requests: the first case's process state (the leftover baseline) and the open cases."""

    def __init__(self):
        self.baseline: dict | None = None
        self.baseline_threads: set[int] | None = None
        self.open_cases: dict = {}  # case id -> bench.engine.runner.CaseRun, between 'open' and 'check'
        self.active = None  # the open case whose environment is entered (bench.engine.runner.CaseRun.suspend)
        self.served = 0

    def hello(self, request: dict) -> dict:
        """Who this worker is."""
        from bench.engine.run_environment import machine_identity

        return {
            "pid": os.getpid(),
            "mlx": _installed("mlx"),
            "affinity": _affinity(),
            "machine": machine_identity(),
            "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")},
        }

    def configure(self, request: dict) -> dict:
        """Configure the named backends (all when none are named) from the session's options."""
        from bench.backends import all_backends

        options = request.get("options") or {}
        names = request.get("backends")
        for backend in all_backends():
            if names is None or backend.name in names:
                backend.configure(options.get)
        return {"pid": os.getpid()}

    def cases(self, request: dict) -> dict:
        """The warm grid's cases at the requested sizes (bench.cases.grid.grid_case_entries)."""
        from bench.cases.grid import grid_case_entries
        from bench.results.releases import COMPARED_BACKENDS

        devices = tuple(request["devices"]) if request.get("devices") else None
        found, skipped = grid_case_entries(
            request["sizes"], devices, tuple(request.get("backends") or COMPARED_BACKENDS), request.get("models")
        )
        return {"cases": found, "skipped": skipped}

    def state(self, request: dict) -> dict:
        """This process at rest (bench.engine.isolation.process_state), and which libraries it has loaded."""
        from bench.engine.isolation import process_state

        return {**process_state(self.baseline_threads), "modules": loaded_libraries()}

    def _leftover(self) -> str | None:
        from bench.engine.isolation import leftover_reason, process_state

        if self.served == 0 or os.environ.get(ISOLATION_ENV) == "off":
            return None  # a fresh worker: nothing was left yet (or the check is off, to see what it prevents)
        return leftover_reason(process_state(self.baseline_threads), self.baseline)

    def _served_one(self) -> None:
        from bench.engine.isolation import process_state, thread_cpu_ticks

        self.served += 1
        if self.baseline is None:
            self.baseline_threads = set(thread_cpu_ticks())
            self.baseline = process_state(self.baseline_threads)

    def pass_(self, request: dict) -> dict:
        """One whole pass of the job, unless this worker carries leftover state."""
        from bench.engine.jobs import Job
        from bench.engine.plants import leave_behind, leftover_of
        from bench.engine.runner import run_pass, warm_up_process

        started = time.perf_counter()
        reason = self._leftover()
        if reason is not None:
            return {"refused": reason}
        job = Job.from_json(request["job"])
        # The worker's own work around the pass, in the session's time breakdown beside the pass's phases.
        around = {"leftover checks": time.perf_counter() - started}
        if self.served == 0 and job.timed and job.scenario != "cold":
            started = time.perf_counter()
            warm_up_process(job)  # the timed case is never the process's first trainer
            around["worker warm-up"] = time.perf_counter() - started
        # Planted leftovers come after the baseline, so the check sees them as what they are.
        left = leftover_of(job.plants)
        result = run_pass(job if left is None else _without_leftover(job))
        started = time.perf_counter()
        result.worker = {"pid": os.getpid(), "served": self.served + 1, "modules": loaded_libraries()}
        around["leftover checks"] += time.perf_counter() - started  # the libraries loaded: the same /proc reading
        result.phases_s = {**(result.phases_s or {}), **around}
        self._served_one()
        leave_behind(left)
        return {"result": result.to_json()}

    def open(self, request: dict) -> dict:
        """Build the job's case (calibrating K unless the job gives it) for round-by-round timing.

        keep_open: the cases already open stay open, so that the rounds of a
        group's cases can be interleaved (bench.engine.interleave); the leftover
        check runs only before the first of them, since the others are open by design.
        """
        from bench.engine.jobs import Job
        from bench.engine.runner import CaseRun, warm_up_process

        if not request.get("keep_open"):
            self._close_all()
        job = Job.from_json(request["job"])
        if job.case_id in self.open_cases:
            raise RuntimeError(f"{job.case_id} is open already")
        phases, started = {}, time.perf_counter()
        if not self.open_cases:
            reason = self._leftover()
            if reason is not None:
                return {"refused": reason}
        phases["leftover checks"] = time.perf_counter() - started
        first = self.served == 0 and not self.open_cases
        self._activate(None)  # the case is built in its own environment alone
        if first:
            started = time.perf_counter()
            warm_up_process(job)  # the timed case is never the process's first trainer
            phases["worker warm-up"] = time.perf_counter() - started
        started = time.perf_counter()
        run = self.open_cases[job.case_id] = self.active = CaseRun(job)
        phases["setup"] = time.perf_counter() - started
        return {
            "steps_per_round": run.steps_per_round,
            "first_step_s": run.info.get("first_step_s"),
            "round_s": run.round_s,
            "probe_s": run.probe_s,
            "pid": os.getpid(),
            "modules": loaded_libraries(),
            "phases_s": phases,
        }

    def _case(self, request: dict):
        """The open case a request names (or the only one open), its environment entered."""
        case_id = request.get("case_id")
        if case_id is None:
            if len(self.open_cases) != 1:
                raise RuntimeError(f"{len(self.open_cases)} cases open: name one")
            run = next(iter(self.open_cases.values()))
        elif case_id not in self.open_cases:
            raise RuntimeError(f"{case_id} is not open")
        else:
            run = self.open_cases[case_id]
        self._activate(run)
        return run

    def _activate(self, run) -> None:
        """Enter `run`'s environment, leaving the one entered before (None: leave it only)."""
        if self.active is run:
            return
        if self.active is not None:
            self.active.suspend()
        self.active = run
        if run is not None:
            run.resume()

    def round(self, request: dict) -> dict:
        """One timed round of an open case."""
        if not self.open_cases:
            raise RuntimeError("round before open")
        run = self._case(request)
        times, steps = run.time_pass(1)
        if steps != run.steps_per_round:
            raise AssertionError(f"the round did {steps} steps, not {run.steps_per_round}")
        planted = run.planted[-1] if run.planted else None
        return {"seconds": times[0], "planted": planted}

    def check(self, request: dict) -> dict:
        """The barrier and correctness checks of an open case, after its rounds; then it is closed."""
        from bench.engine.plants import leave_behind, leftover_of

        if not self.open_cases:
            raise RuntimeError("check before open")
        run = self._case(request)
        started = time.perf_counter()
        try:
            checks = run.check(request.get("last_round_s"))
        finally:
            self._close(run)
        leave_behind(leftover_of(run.job.plants))
        return {"checks": checks, "check_s": time.perf_counter() - started}

    def close(self, request: dict) -> dict:
        """Close an open case without checking it (a session whose checks are off)."""
        if self.open_cases:
            run = self._case(request)
            self._close(run)
            from bench.engine.plants import leave_behind, leftover_of

            leave_behind(leftover_of(run.job.plants))
        return {}

    def _close(self, run) -> None:
        run.close()
        if self.active is run:
            self.active = None
        del self.open_cases[run.job.case_id]
        self._served_one()

    def _close_all(self) -> None:
        for run in list(self.open_cases.values()):
            run.close()
        self.open_cases, self.active = {}, None


def _without_leftover(job):
    """The job with its leftover plant taken off: the worker leaves that state itself, after its baseline."""
    from dataclasses import replace

    from bench.engine.plants import Plants

    return replace(job, plants=Plants.of(job.plants.factor, None, job.plants.broken))


def loaded_libraries() -> list[str]:
    """Which backends' libraries this process has imported (a NumPy worker must not have MLX)."""
    return sorted(name for name in ("mlx", "torch", "jax") if f"{name}.core" in sys.modules or name in sys.modules)


def serve(stdin, stdout) -> None:
    """Answer requests until 'quit' or the end of stdin (bench.engine.protocol)."""
    from bench.engine import protocol

    worker = Worker()
    handlers = {
        "hello": worker.hello,
        "configure": worker.configure,
        "cases": worker.cases,
        "state": worker.state,
        "pass": worker.pass_,
        "open": worker.open,
        "round": worker.round,
        "check": worker.check,
        "close": worker.close,
    }
    protocol.serve(handlers, stdin, stdout, describe_error=_one_line)


def main() -> None:
    """Serve on the process's stdin; answers go to the original stdout, everything else printed to stderr."""
    from bench.engine.lifetime import watch_parent

    watch_parent()  # a worker whose parent was killed ends too (bench.engine.lifetime)
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # C libraries that print cannot reach the protocol
    sys.stdout = sys.stderr
    serve(sys.stdin, answers)
    # Done: end at once. The interpreter's own teardown (modules, the libraries' thread pools) took
    # 22-35 ms a worker, a session starts about 150 of them, and nothing of a worker's outlives it.
    answers.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
