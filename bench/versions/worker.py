"""A timing worker: one long-lived process inside one release's environment, driven over JSON lines.

    <env>/bin/python -m bench.versions.worker      (cwd: the suite's snapshot)

It reads one JSON request per line on stdin and answers one JSON line on
stdout. It runs the suite's own code (bench.cases, bench.datasets,
bench.backends, bench.harness.calibrate, bench.checks), so a worker measures
exactly what `pytest --benchmark-only` would, one round at a time, when the
runner asks. Requests:

  {"cmd": "hello"}                     pid, MLX version, CPU affinity, machine identity
  {"cmd": "cases", "sizes", "device"}  the grid's cases (as the suite builds them)
  {"cmd": "setup", "case", "size", "steps", "round_time_s", "slowdown"}
                                       build the trainer, first call, calibrate K
                                       (when steps is null) or warm up at the given K
  {"cmd": "round"}                     one timed round of K steps ending in its barrier
  {"cmd": "finish"}                    the barrier and correctness checks, after timing
  {"cmd": "quit"}

`slowdown` plants a slowdown for the self-test: a busy-wait inside the timed
round, calibrated at setup to that share of this worker's own round time.
Every answer has "ok"; a failed request answers {"ok": false, "error": one line}.
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import sys
import time

# Rounds measured at setup to calibrate a planted slowdown's busy-wait.
_SLOWDOWN_BASE_ROUNDS = 3


def machine_identity() -> dict:
    """What makes two timings comparable: host, CPU model, core count, memory, OS, Python build."""
    from bench.environment import cpu_model

    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = None
    return {
        "host": platform.node(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_bytes": memory,
        "system": f"{platform.system()}-{platform.machine()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }


def _affinity() -> list[int] | None:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:
        return None


class Worker:
    """The state between requests: the current case, its trainer and K."""

    def __init__(self):
        self.case = self.problem = self.trainer = None
        self.steps = 0
        self.spin_s = 0.0
        self.limits = contextlib.ExitStack()
        self.lr = None

    def hello(self, request: dict) -> dict:
        """Who this worker is."""
        from bench.backends.mlx import compat

        return {
            "pid": os.getpid(),
            "mlx": compat.mlx_version(),
            "gpu": compat.gpu_available(),
            "affinity": _affinity(),
            "machine": machine_identity(),
            "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")},
        }

    def cases(self, request: dict) -> dict:
        """The grid's warm cases at the requested sizes, with the suite's own case list and memory rule."""
        from dataclasses import asdict

        from bench.backends import get
        from bench.cases import HIDDEN_SIZES, QUICK_MLP_FULL_BATCH_WORK, GridOptions
        from bench.grid import cases_for, skip_reason
        from bench.releases import COMPARED_BACKENDS
        from bench.sizes import default_memory_budget, estimated_case_bytes, parse_sizes

        grid = request["sizes"].strip().lower()
        options = GridOptions(
            hidden=HIDDEN_SIZES.get(grid, HIDDEN_SIZES["quick"]),
            mlp_full_batch_work=QUICK_MLP_FULL_BATCH_WORK if grid == "quick" else None,
        )
        devices = tuple(request.get("devices") or ("cpu",))
        get("mlx").configure({"mlx_blas": "bundled", "mlx_device": ",".join(devices)}.get)
        backends = tuple(request.get("backends") or COMPARED_BACKENDS)
        budget = default_memory_budget()
        found, skipped = [], []
        for size in parse_sizes(request["sizes"]):
            for model in request.get("models") or ("linear", "logistic", "mlp"):
                for case in cases_for(model, "grid", size, options):
                    if case.backend not in backends or skip_reason(case):
                        continue
                    entry = {"case": asdict(case), "size": asdict(size), "case_id": case.case_id(size)}
                    if estimated_case_bytes(size, case.hidden or 0) > budget:
                        skipped.append(entry["case_id"])
                    else:
                        found.append(entry)
        return {"cases": found, "skipped": skipped}

    def setup(self, request: dict) -> dict:
        """Build the case's trainer, time its first call, then calibrate K or warm up at the given K."""
        from bench import models
        from bench.backends import get, make_trainer
        from bench.cases import Case
        from bench.datasets import make_problem
        from bench.harness import calibrate
        from bench.sizes import Size

        self._drop()
        self.case = Case(**request["case"])
        self.problem = make_problem(self.case.model, Size(**request["size"]), self.case.batch_size, self.case.hidden)
        self.lr = request.get("lr") or models.LEARNING_RATE
        self.trainer = make_trainer(self.case, self.problem, self.lr)
        self.limits.enter_context(get(self.case.backend).case_context(self.case))
        start = time.perf_counter()
        self.trainer.run(1)
        first_s = time.perf_counter() - start
        if request.get("steps"):
            self.steps = int(request["steps"])
            self.trainer.run(self.steps)  # warm-up, as calibration would have been
        else:
            self.steps = calibrate(self.trainer, float(request["round_time_s"]))
        self.spin_s = 0.0
        slowdown = float(request.get("slowdown") or 0.0)
        base = statistics.median(self._plain_round() for _ in range(_SLOWDOWN_BASE_ROUNDS if slowdown else 1))
        self.spin_s = slowdown * base
        return {"steps": self.steps, "first_call_s": first_s, "round_s": base, "spin_s": self.spin_s}

    def _plain_round(self) -> float:
        start = time.perf_counter()
        self.trainer.run(self.steps)
        return time.perf_counter() - start

    def round(self, request: dict) -> dict:
        """One timed round: K steps ending in the case's barrier (plus the planted busy-wait, if any)."""
        if self.trainer is None:
            raise RuntimeError("round before setup")
        start = time.perf_counter()
        done = self.trainer.run(self.steps)
        if self.spin_s:
            until = start + (time.perf_counter() - start) + self.spin_s
            while time.perf_counter() < until:  # busy, like real work: a sleep would free the CPU
                pass
        elapsed = time.perf_counter() - start
        if done != self.steps:
            raise RuntimeError(f"the round did {done} steps, not {self.steps}")
        return {"seconds": elapsed}

    def finish(self, request: dict) -> dict:
        """The suite's barrier and correctness checks, after timing; then the case is dropped."""
        from bench.checks import check_barrier, check_correctness

        try:
            pending = check_barrier(self.trainer, self.case, self.steps)
            checks = check_correctness(self.trainer, self.case, self.problem, self.lr)
        finally:
            self._drop()
        return {"barrier_pending_s": pending, "max_rel_error": checks["max_rel_error"]}

    def _drop(self) -> None:
        self.limits.close()
        self.limits = contextlib.ExitStack()
        self.case = self.trainer = None


def serve(stdin=None, stdout=None) -> None:
    """Answer requests until 'quit' or the end of stdin (bench.json_lines)."""
    from bench import json_lines

    worker = Worker()
    handlers = {cmd: getattr(worker, cmd) for cmd in ("hello", "cases", "setup", "round", "finish")}
    json_lines.serve(handlers, stdin or sys.stdin, stdout or sys.stdout)


if __name__ == "__main__":
    serve()
