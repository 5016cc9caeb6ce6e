"""The runner's side of a timing worker: start it pinned to CPUs, send requests, stop it.

A worker (bench.versions.worker) is a long-lived process in one release's
environment, executing the suite's snapshot. Requests and answers are JSON
lines; every request has a deadline, and a worker that misses it is killed
and reported as a timeout, never waited on for ever.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import time
from pathlib import Path

WORKER_MODULE = "bench.versions.worker"
# Thread-count variables set to the size of the worker's CPU set: more threads than CPUs only contend.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


class WorkerError(Exception):
    """A request the worker answered with an error, or a worker that died; one line."""


class WorkerTimeout(WorkerError):
    """A worker that did not answer within its deadline (it has been killed)."""


def worker_command(python: Path) -> list[str]:
    """The command that starts a worker in an environment."""
    return [str(python), "-m", WORKER_MODULE]


class WorkerProcess:
    """One running worker; `request` sends a JSON object and returns the answer."""

    def __init__(self, label: str, cmd: list[str], cwd: Path, env: dict, cpus: list[int] | None, log: Path):
        self.label, self.cmd, self.cwd, self.cpus, self.log = label, cmd, cwd, cpus, log
        env = dict(env)
        if cpus:
            for name in THREAD_VARS:
                env[name] = str(len(cpus))
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log_handle = open(log, "a")
        self.proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log_handle,
            text=True,
            bufsize=1,
            start_new_session=True,  # its own process group: a kill stops it and nothing else
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus and hasattr(os, "sched_setaffinity") else None,
        )
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.proc.stdout, selectors.EVENT_READ)

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self.proc.pid

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.proc.poll() is None

    def request(self, message: dict, timeout: float | None = None) -> dict:
        """Send one request and wait for its answer; WorkerError on an error answer, WorkerTimeout past `timeout`."""
        if not self.alive():
            raise WorkerError(f"worker {self.label} exited with status {self.proc.returncode}; log {self.log}")
        try:
            self.proc.stdin.write(json.dumps(message) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as error:
            raise WorkerError(f"worker {self.label} is gone ({error}); log {self.log}") from None
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self._selector.select(wait):
                self.kill()
                raise WorkerTimeout(
                    f"timeout: {message.get('cmd')} took over {timeout:g} s; worker {self.label} stopped"
                )
            line = self.proc.stdout.readline()
            if not line:
                self.proc.wait()
                raise WorkerError(f"worker {self.label} exited with status {self.proc.returncode}; log {self.log}")
            line = line.strip()
            if not line:
                continue
            try:
                answer = json.loads(line)
            except ValueError:
                continue  # a stray print from an imported library: not an answer
            if not answer.get("ok"):
                raise WorkerError(answer.get("error") or "failed without a reason")
            return answer

    def close(self, grace_s: float = 5.0) -> None:
        """Ask the worker to quit; kill it if it does not."""
        if self.alive():
            with contextlib.suppress(OSError, ValueError):
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.flush()
            try:
                self.proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.kill()
        self._finish()

    def kill(self) -> None:
        """Stop the worker's process group at once."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        self._finish()

    def _finish(self) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(self.proc.stdout)
        for handle in (self.proc.stdin, self.proc.stdout, self._log_handle):
            with contextlib.suppress(OSError, ValueError):
                handle.close()


def cpu_sets(spec: str | None, available: list[int] | None = None) -> list[list[int]]:
    """The CPU sets sessions are pinned to, in turn: 'auto' (each usable CPU alone, in turn), 'none', or '0' / '0,1' / '0;1'.

    A ';' separates sets that sessions take in turn; ',' or '-' lists the CPUs of one set.
    """
    if available is None:
        available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    text = (spec or "auto").strip().lower()
    if text == "none" or not available:
        return [[]]
    if text == "auto":
        return [[cpu] for cpu in available]
    sets = []
    for part in text.split(";"):
        cpus: list[int] = []
        for piece in part.split(","):
            piece = piece.strip()
            if "-" in piece:
                low, high = (int(x) for x in piece.split("-", 1))
                cpus.extend(range(low, high + 1))
            elif piece:
                cpus.append(int(piece))
        missing = sorted(set(cpus) - set(available))
        if not cpus or missing:
            raise ValueError(f"--cpus {spec!r}: CPUs {missing or '(none)'} are not usable here (usable: {available})")
        sets.append(sorted(set(cpus)))
    return sets
