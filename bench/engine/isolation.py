"""The isolation policy: which worker process runs which job (docs/measurement.md, "How a case is timed", "Isolation").

A process keeps what its earlier cases left: MLX's allocator cache and
threads, compiled kernels, a library's thread pool, memory it holds. Measured
in this suite's release runner, one long-lived worker per release that ran
the whole grid slowed a NumPy control by 70% (+127% on another VM) under one
MLX release and not the other. So:

1. **Backend-pure groups, a fresh worker each.** A worker serves one group:
   one scenario, one backend, one model, one size (Job.group). When the next
   job belongs to another group, its worker is ended and a new one started.
   NumPy's cases never share a process with MLX (or PyTorch, or JAX): a worker
   imports only the library of the backend it serves, so a NumPy control is
   timed the same way under every MLX release.
2. **A leftover check before every case.** Before a job, the worker looks at
   itself (process_state): whether a thread started after its first case
   keeps a CPU busy while the worker waits (the libraries' own pools, which
   spin for a while after each call, started with the first case and are not
   counted), and how far its resident memory grew past what it held after its
   first case. Either beyond its bound (leftover_reason) and
   the worker is replaced before the case is timed; the result says so
   (``worker.replaced``).
3. **The allocator's state fixed.** glibc's malloc moves its mmap and trim
   thresholds up when a process frees a large block, so a process that once
   handled large arrays keeps its mid-size temporaries on the heap, while a
   fresh one maps and unmaps them (with their page faults) at every step.
   Measured here: `mlp-numpy-analytic-eager-cpu-h256-b256-n10000-d100` ran
   982 and 1,402 steps/s as the only case of a fresh worker and 2,575 after
   the NumPy case before it in the same worker; with the thresholds fixed,
   2,466 and 2,566 alone. So every worker starts with them fixed
   (MALLOC_SETTINGS: where a process that handled large arrays ends up),
   unless the user set them; they are recorded with every result.
4. **Warm-up and probe.** Every pass builds its trainer afresh, warms it up
   (one round; in the first pass the calibration) and times the machine's
   probe first (bench.engine.steadiness), as before.

Cases of one group share their worker: they are the cases compared with each
other (MLX's variants at one size, NumPy's beside them in their own worker,
both alive while the two take turns), and a worker per case would cost a
process start (0.15-0.5 s with NumPy and MLX imported) per case per pass. What one case leaves for the next of its group
the leftover check catches where it is a busy thread or held memory. In an
interleaved pass (bench.engine.interleave) a group's cases are open in its
worker together, by design: the leftover check runs before the first of them,
and each runs in its own environment only (bench.engine.runner.CaseRun.suspend).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from bench.engine.errors import WorkerError

IDLE_WINDOW_S = 0.05  # with new threads alive, the worker sleeps this long and measures their CPU time meanwhile
IDLE_CPU_SHARE = 0.25  # more CPU than this share of the window while idle: something kept running
RSS_GROWTH_BYTES = 512 * 2**20  # resident memory past the first case's by this much: something was kept
RSS_GROWTH_SHARE = 0.5  # ... and by this share of it (a large case's own caches stay under it)


# glibc's malloc thresholds, fixed in every worker (point 3 above); ignored by other C libraries.
MALLOC_SETTINGS = {"MALLOC_MMAP_THRESHOLD_": str(32 * 2**20), "MALLOC_TRIM_THRESHOLD_": str(64 * 2**20)}


def worker_environment(env: dict) -> dict:
    """A worker's environment: `env` with the allocator's thresholds fixed where the user did not set them."""
    for name, value in MALLOC_SETTINGS.items():
        env.setdefault(name, value)
    return env


def describe() -> dict:
    """The policy as saved in every result's machine_info["isolation"]."""
    return {
        "workers": "a fresh, backend-pure worker per (scenario, backend, model, size) group",
        "leftover_check": {
            "new_thread_cpu_share": IDLE_CPU_SHARE,
            "rss_growth_bytes": RSS_GROWTH_BYTES,
            "rss_growth_share": RSS_GROWTH_SHARE,
        },
        "allocator": worker_environment({k: os.environ[k] for k in MALLOC_SETTINGS if k in os.environ}),
    }


def resident_bytes() -> int | None:
    """This process's resident memory (Linux /proc; None elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def thread_cpu_ticks() -> dict[int, int]:
    """CPU time (clock ticks, user + system) of each thread of this process (Linux /proc; empty elsewhere)."""
    ticks = {}
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return ticks
    for task in tasks:
        try:
            fields = Path(f"/proc/self/task/{task}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the thread ended while we looked
        ticks[int(task)] = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks


def process_state(baseline_threads: set[int] | None = None) -> dict:
    """How this process looks between cases: resident memory, threads, and how busy the threads are that
    did not exist at the baseline (after the worker's first case).

    The libraries' own threads (OpenBLAS's pool, MLX's stream thread) start
    with the first case and may spin for a while after each call: they are in
    the baseline and not counted. A thread started later that keeps a CPU busy
    while the worker waits is leftover state. Where there is no new thread the
    check costs no waiting at all.
    """
    ticks = thread_cpu_ticks()
    new = sorted(set(ticks) - set(baseline_threads or ticks))
    share = 0.0
    if new:
        time.sleep(IDLE_WINDOW_S)
        after = thread_cpu_ticks()
        used = sum(after.get(tid, ticks[tid]) - ticks[tid] for tid in new) / os.sysconf("SC_CLK_TCK")
        share = used / IDLE_WINDOW_S
    return {
        "rss_bytes": resident_bytes(),
        "threads": len(ticks),
        "new_threads": len(new),
        "new_thread_cpu_share": share,
    }


def leftover_reason(state: dict, baseline: dict | None) -> str | None:
    """Why a worker in `state` should not time the next case, or None; baseline: its state after its first case."""
    if state.get("new_thread_cpu_share", 0.0) > IDLE_CPU_SHARE:
        return (
            f"{state['new_threads']} thread(s) started after its first case kept "
            f"{state['new_thread_cpu_share']:.0%} of a CPU busy while the worker was idle"
        )
    if baseline and state.get("rss_bytes") and baseline.get("rss_bytes"):
        grown = state["rss_bytes"] - baseline["rss_bytes"]
        if grown > RSS_GROWTH_BYTES and grown > RSS_GROWTH_SHARE * baseline["rss_bytes"]:
            return f"its resident memory grew by {grown / 2**20:.0f} MiB past its first case's"
    return None


class WorkerPool:
    """The session's workers under the policy: one live worker per backend-pure group.

    The cases compared with each other (NumPy's and MLX's at one size) take
    turns, so the workers of one (scenario, model, size) stay alive together,
    one per backend; when the jobs move on to another model or size, every
    live worker is ended. start(job) returns a new client for the job's group
    (bench.engine.client.WorkerClient, or a fake in tests).
    """

    def __init__(self, start: Callable[[object], object]):
        self._start = start
        self.live: dict[tuple, object] = {}  # group -> its worker
        self.started: list[int] = []  # pids of every worker this pool started
        self.replaced: list[str] = []  # one line per worker replaced for leftover state

    @staticmethod
    def _neighbourhood(group: tuple) -> tuple:
        scenario, _backend, model, size = group
        return scenario, model, size

    def worker_for(self, job):
        """The live worker of the job's group, started now if there is none (or it died)."""
        group = job.group
        if any(self._neighbourhood(g) != self._neighbourhood(group) for g in self.live):
            self.close()  # another model or size: no process outlives its cases
        worker = self.live.get(group)
        if worker is None or not worker.alive:
            if worker is not None:
                worker.close()
            worker = self.live[group] = self._start(job)
            self.started.append(worker.pid)
        return worker

    def retire(self, job) -> None:
        """End the worker of the job's group (it timed out, died, or kept leftover state)."""
        worker = self.live.pop(job.group, None)
        if worker is not None:
            worker.close()

    def send(self, job, cmd: str, timeout_s: float | None, **fields):
        """Send `cmd` ("pass" or "open", with `fields`) for `job` to its group's worker, replacing a worker that refuses it.

        A worker refuses a job when it finds leftover state in itself; the
        pool then ends it, starts a fresh one and asks again, once.
        Returns (worker, answer, why the previous worker was replaced or None).
        """
        replaced = None
        for _ in range(2):
            worker = self.worker_for(job)
            answer = worker.request({"cmd": cmd, "job": job.to_json(), **fields}, timeout_s)
            if not answer.get("refused"):
                return worker, answer, replaced
            replaced = f"worker {worker.pid} replaced: {answer['refused']}"
            self.replaced.append(f"{job.case_id}: {replaced}")
            self.retire(job)
        raise WorkerError(f"{job.case_id}: a fresh worker still refused the job: {answer['refused']}")

    def run(self, job, timeout_s: float | None):
        """One whole pass of `job` in its group's worker (a PassResult); raises WorkerError."""
        from bench.engine.jobs import PassResult

        _, answer, replaced = self.send(job, "pass", timeout_s)
        result = PassResult.from_json(answer["result"])
        if replaced:
            result.worker["replaced"] = replaced
        return result

    def open(self, job, timeout_s: float | None, keep_open: bool = False):
        """Open `job` in its group's worker for round-by-round timing; (worker, answer).

        keep_open: the worker keeps the cases it has open (an interleaved pass).
        """
        worker, answer, replaced = self.send(job, "open", timeout_s, **({"keep_open": True} if keep_open else {}))
        if replaced:
            answer["replaced"] = replaced
        return worker, answer

    def close(self) -> None:
        """End every live worker."""
        for worker in self.live.values():
            worker.close()
        self.live = {}
