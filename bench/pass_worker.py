"""Later passes in fresh processes: the process is a unit of the noise (README, "How a case is timed").

Where a process lands (its threads' CPUs, where its arrays sit in memory) can
move a case by 10-30% for as long as the process lives, and passes taken in
one process share that luck: they agree with each other and still differ from
the next run's. So passes 2..P each run in a new worker process, started for
that pass and ended after it, and a case's figure is the median over passes
taken in different processes.

The session (parent) side is PassWorker; the worker is this module run as

    python -m bench.pass_worker          (cwd: the directory holding `bench`)

reading one JSON request per line on stdin and answering one JSON line each
(bench.json_lines):

  {"cmd": "configure", "options": {...}}   each backend's command-line options, as the session parsed them
  {"cmd": "pass", "job": {...}}            the machine's probe (bench.steadiness), then one pass of one
                                           case (bench.harness.later_pass_job)
                                           -> {"ok": true, "times": [seconds per round], "probe_s", "pid"}
  {"cmd": "quit"}

A failed request answers {"ok": false, "error": one line}. The worker's own
stdout is moved to stderr, so nothing a library prints can break the protocol.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the directory that holds the `bench` package
START_TIMEOUT_S = 120.0  # importing the libraries of a cold machine
# How long a pass of one case may take before the worker counts as hung:
# generous against a busy machine, short against a deadlock.
PASS_TIMEOUT_FLOOR_S = 120.0
PASS_TIMEOUT_FACTOR = 20


class WorkerError(AssertionError):
    """A pass could not be taken in the worker: the case's check failed, or the worker died or hung."""


class PassWorker:
    """One worker process, started on creation; `time(job)` takes one pass of one case in it."""

    def __init__(self, options: dict):
        self._log = tempfile.TemporaryFile(mode="w+")  # the worker's stderr, read back when it fails
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.pass_worker"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            bufsize=1,
        )
        self.pid = self.process.pid
        self._request({"cmd": "configure", "options": options}, START_TIMEOUT_S)

    def time(self, job: dict, expected_s: float) -> tuple[list[float], float]:
        """Round times of one pass of `job`, and the probe before it; raises WorkerError with a one-line reason."""
        timeout = PASS_TIMEOUT_FLOOR_S + PASS_TIMEOUT_FACTOR * expected_s
        answer = self._request({"cmd": "pass", "job": job}, timeout)
        return answer["times"], answer["probe_s"]

    @property
    def alive(self) -> bool:
        """Whether the worker can take another request."""
        return self.process.poll() is None

    def close(self) -> None:
        """Ask the worker to quit; kill it if it does not."""
        if self.alive:
            with contextlib.suppress(OSError, ValueError):
                self.process.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.process.stdin.flush()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self._log):
            with contextlib.suppress(OSError, ValueError):
                stream.close()

    def __enter__(self) -> PassWorker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _request(self, request: dict, timeout_s: float) -> dict:
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        except (OSError, ValueError):
            raise WorkerError(self._died("could not be sent a request")) from None
        # One answer per request, so at most one line is ever waiting: select, then readline, is safe.
        ready, _, _ = select.select([self.process.stdout], [], [], timeout_s)
        if not ready:
            self.process.kill()
            self.process.wait()
            raise WorkerError(f"the pass worker (pid {self.pid}) did not answer within {timeout_s:.0f} s")
        line = self.process.stdout.readline()
        if not line:
            raise WorkerError(self._died("ended without an answer"))
        answer = json.loads(line)
        if not answer.get("ok"):
            raise WorkerError(answer.get("error") or "the pass worker failed without a reason")
        return answer

    def _died(self, what: str) -> str:
        self.process.wait()
        self._log.seek(0)
        lines = [line.strip() for line in self._log.read().splitlines() if line.strip()]
        last = f": {lines[-1]}" if lines else ""
        return f"the pass worker (pid {self.pid}) {what}, exit status {self.process.returncode}{last}"


def _one_line(error: BaseException) -> str:
    """A failed check says what failed, as it would in the session; anything else names its type too."""
    text = str(error).strip().splitlines()
    if isinstance(error, AssertionError) and text:
        return text[0]
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def serve(stdin, stdout) -> None:
    """Answer requests until 'quit' or the end of stdin (bench.json_lines)."""
    from bench import json_lines
    from bench.backends import all_backends
    from bench.harness import time_later_pass
    from bench.steadiness import probe_seconds

    def configure(request: dict) -> dict:
        options = request["options"]
        for backend in all_backends():  # as the session did: MLX's BLAS before MLX is imported
            backend.configure(options.get)
        return {"pid": os.getpid()}

    def one_pass(request: dict) -> dict:
        probe_s = probe_seconds()  # outside the case's thread limits and pinning, as in the session
        return {"times": time_later_pass(request["job"]), "probe_s": probe_s, "pid": os.getpid()}

    json_lines.serve({"configure": configure, "pass": one_pass}, stdin, stdout, describe_error=_one_line)


def main() -> None:
    """Serve on the process's stdin; answers go to the original stdout, everything else printed to stderr."""
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # C libraries that print cannot reach the protocol
    sys.stdout = sys.stderr
    serve(sys.stdin, answers)


if __name__ == "__main__":
    main()
