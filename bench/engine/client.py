"""The one client of the engine's worker processes: start one, send it requests, stop it.

A worker (bench.engine.worker) speaks JSON lines (bench.engine.protocol). Every
request has a deadline: a worker that misses it is killed with its whole
process group and reported as a timeout, never waited on for ever. A worker
that dies is reported with the last line it wrote to its log. The main job
starts workers with this interpreter in this checkout; the release runner
starts them with a release environment's interpreter in the suite's snapshot,
pinned to the session's CPUs.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.engine.errors import WorkerError, WorkerRefused, WorkerTimeout  # noqa: F401 - re-exported
from bench.engine.isolation import worker_environment

WORKER_MODULE = "bench.engine.worker"
ROOT = Path(__file__).resolve().parents[2]  # the directory that holds the `bench` package
START_TIMEOUT_S = 120.0  # importing the libraries on a cold, busy machine
# Workers keep their compiled bytecode here, outside the user's tree: a session starts a worker
# per group of cases, and each would otherwise compile NumPy's and MLX's Python sources again
# where bytecode is not written (PYTHONDONTWRITEBYTECODE, or a package installed without it).
PYCACHE = Path(tempfile.gettempdir()) / f"mlx-sgd-bench-pycache-{os.getuid() if hasattr(os, 'getuid') else 0}"
# Thread-count variables set to the size of a pinned worker's CPU set: more threads than CPUs only contend.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


def worker_command(python: Path | str | None = None) -> list[str]:
    """The command that starts a worker with `python` (default: this interpreter)."""
    return [str(python or sys.executable), "-m", WORKER_MODULE]


class WorkerClient:
    """One running worker; `request` sends a JSON object and returns the answer.

    cpus: pin the whole process to these CPUs from its start (and size the
    thread pools to them); None leaves placement to each job.
    log: where the worker's stderr goes (default: a temporary file, read back
    when the worker fails).
    """

    def __init__(
        self,
        label: str = "worker",
        cmd: list[str] | None = None,
        cwd: Path | None = None,
        env: dict | None = None,
        cpus: list[int] | None = None,
        log: Path | None = None,
    ):
        self.label, self.cpus, self.log = label, cpus, log
        env = worker_environment(dict(os.environ if env is None else env))
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
        if cpus:
            for name in THREAD_VARS:
                env[name] = str(len(cpus))
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(log, "a+")
        else:
            self._log = tempfile.TemporaryFile(mode="w+")
        pin = cpus and hasattr(os, "sched_setaffinity")
        self.proc = subprocess.Popen(
            cmd or worker_command(),
            cwd=cwd or ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            bufsize=1,
            start_new_session=True,  # its own process group: a kill stops it and nothing else
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if pin else None,
        )
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.proc.stdout, selectors.EVENT_READ)
        self.hello: dict = {}

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self.proc.pid

    @property
    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.proc.poll() is None

    def request(self, message: dict, timeout: float | None = None) -> dict:
        """Send one request and wait for its answer; WorkerError on an error answer, WorkerTimeout past `timeout`."""
        if not self.alive:
            raise WorkerError(self._died("exited before the request"))
        try:
            self.proc.stdin.write(json.dumps(message) + "\n")
            self.proc.stdin.flush()
        except (OSError, ValueError):
            raise WorkerError(self._died("could not be sent a request")) from None
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self._selector.select(wait):
                self.kill()
                raise WorkerTimeout(
                    f"timeout: {message.get('cmd')} took over {timeout:g} s; the {self.label} (pid {self.pid}) was stopped"
                )
            line = self.proc.stdout.readline()
            if not line:
                raise WorkerError(self._died("ended without an answer"))
            line = line.strip()
            if not line:
                continue
            try:
                answer = json.loads(line)
            except ValueError:
                continue  # a stray print that reached the protocol: not an answer
            if not answer.get("ok"):
                raise WorkerError(answer.get("error") or f"the {self.label} failed without a reason")
            return answer

    def close(self, grace_s: float = 10.0) -> None:
        """Ask the worker to quit; kill it if it does not."""
        if self.alive:
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

    def __enter__(self) -> WorkerClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _finish(self) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(self.proc.stdout)
        for handle in (self.proc.stdin, self.proc.stdout, self._log):
            with contextlib.suppress(OSError, ValueError):
                handle.close()

    def _died(self, what: str) -> str:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        last = ""
        with contextlib.suppress(OSError, ValueError):
            self._log.flush()
            self._log.seek(0)
            lines = [line.strip() for line in self._log.read().splitlines() if line.strip()]
            last = f": {lines[-1]}" if lines else ""
        where = f"; log {self.log}" if self.log is not None else ""
        return f"the {self.label} (pid {self.pid}) {what}, exit status {self.proc.returncode}{last}{where}"
