"""The one client of the engine's worker processes: start one, send it requests, stop it.

A worker (bench.engine.worker) speaks JSON lines (bench.engine.protocol). Every
request has a deadline: a worker that misses it is killed with its whole
process group and reported as a timeout, never waited on for ever. A worker
that dies is reported with the last line it wrote to its log. The main job
starts workers with this interpreter in this checkout; the release runner
starts them with a release environment's interpreter in the suite's snapshot,
pinned to the session's CPUs. Every worker dies with the process that started
it (bench.engine.lifetime), and answers are read as raw bytes cut into lines
(bench.engine.protocol.LineBuffer), so the deadline holds whatever arrives.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import selectors
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.engine import lifetime
from bench.engine.errors import WorkerError, WorkerRefused, WorkerTimeout  # noqa: F401 - re-exported
from bench.engine.isolation import worker_environment
from bench.engine.protocol import LineBuffer, answer_of, request_line

WORKER_MODULE = "bench.engine.worker"
ROOT = Path(__file__).resolve().parents[2]  # the directory that holds the `bench` package
START_TIMEOUT_S = 120.0  # importing the libraries on a cold, busy machine
# A deadline further away than this is taken as this (a day): select() cannot wait 1e308 s.
MAX_TIMEOUT_S = 86_400.0
READ_CHUNK = 1 << 16
# Thread-count variables set to the size of a pinned worker's CPU set: more threads than CPUs only contend.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")

_pycache: Path | None = None


def private_pycache() -> Path | None:
    """This process's folder for its workers' compiled bytecode: made once, private (0700, ours), removed at exit.

    Workers keep their bytecode outside the user's tree: a session starts a
    worker per group of cases, and each would otherwise compile NumPy's and
    MLX's Python sources again where bytecode is not written. The folder is
    new (mkdtemp), not a fixed name another local user could have made first
    and filled with bytecode of their own. None when it cannot be made safely:
    the workers then compile as usual.
    """
    global _pycache
    if _pycache is None:
        try:
            path = Path(tempfile.mkdtemp(prefix="mlx-sgd-bench-pycache-"))
        except OSError:
            return None
        info = os.lstat(path)
        mine = not hasattr(os, "getuid") or info.st_uid == os.getuid()
        if not stat.S_ISDIR(info.st_mode) or not mine or info.st_mode & 0o077:
            return None
        atexit.register(shutil.rmtree, path, ignore_errors=True)
        _pycache = path
    return _pycache


def clamp_timeout(timeout: float | None) -> float | None:
    """A request's timeout as a wait select() can take: None (no deadline) stays, NaN and huge ones become a day."""
    if timeout is None:
        return None
    if math.isnan(timeout) or timeout > MAX_TIMEOUT_S:
        return MAX_TIMEOUT_S
    return max(0.0, float(timeout))


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
        pycache = private_pycache()
        if pycache is not None:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(pycache)
        else:  # never a shared folder in its place
            env.pop("PYTHONPYCACHEPREFIX", None)
        lifetime.child_environment(env)
        if cpus:
            for name in THREAD_VARS:
                env[name] = str(len(cpus))
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(log, "a+")
        else:
            self._log = tempfile.TemporaryFile(mode="w+")
        with lifetime.spawning():  # a Ctrl-C during the fork is delivered after it, never lost
            self.proc = subprocess.Popen(
                cmd or worker_command(),
                cwd=cwd or ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._log,
                bufsize=0,  # raw pipes: every byte read is in self._lines, none in a hidden buffer
                # Its own process group (a kill stops it and nothing else), pinned from its start, and it
                # dies with this process (bench.engine.lifetime).
                **lifetime.start_options(cpus),
            )
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.proc.stdout, selectors.EVENT_READ)
        self._lines = LineBuffer()
        self._ready: list[bytes] = []  # whole lines read but not looked at yet
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
            self.proc.stdin.write(request_line(**message))
            self.proc.stdin.flush()
        except (OSError, ValueError):
            raise WorkerError(self._died("could not be sent a request")) from None
        timeout = clamp_timeout(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            while self._ready:
                answer = answer_of(self._ready.pop(0))
                if answer is None:
                    continue  # a blank line or a stray print that reached the protocol: not an answer
                if not answer.get("ok"):
                    raise WorkerError(answer.get("error") or f"the {self.label} failed without a reason")
                return answer
            wait = MAX_TIMEOUT_S if deadline is None else max(0.0, deadline - time.monotonic())
            if not self._selector.select(wait):
                if deadline is None:
                    continue
                self.kill()
                raise WorkerTimeout(
                    f"timeout: {message.get('cmd')} took over {timeout:g} s; the {self.label} (pid {self.pid}) was stopped"
                )
            try:
                data = os.read(self.proc.stdout.fileno(), READ_CHUNK)
            except OSError:
                data = b""
            if not data:
                raise WorkerError(self._died("ended without an answer"))
            self._ready += self._lines.feed(data)

    def close(self, grace_s: float = 10.0) -> None:
        """Ask the worker to quit; kill it if it does not."""
        if self.alive:
            with contextlib.suppress(OSError, ValueError):
                self.proc.stdin.write(request_line("quit"))
                self.proc.stdin.flush()
            try:
                self.proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.kill()
        self._finish()

    def kill(self) -> None:
        """Stop the worker's process group at once (SIGKILL, bench.engine.lifetime.stop_groups)."""
        lifetime.stop_groups([self.proc], term_grace_s=0, kill_grace_s=10)
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
