"""RankGroup: start N ranks, command them under a timeout, and always stop them.

Local runs (the default): the suite starts every rank itself, each
`python -m bench.distributed.rank` on 127.0.0.1 with the ring backend,
MLX_RANK set and MLX_HOSTFILE naming free ports. mlx.launch is not used here
because its output loop busy-waits: on a small machine it takes a core from
the ranks and the timings with it.

Hostfile runs (`--dist-hostfile`) and MPI: the suite runs mlx.launch, which
starts the ranks on the user's hosts (over ssh, except for 127.0.0.1) with the
backend's own variables.

Either way each rank connects back to a TCP port the parent listens on, and
presents the group's random token (made per group, passed in the environment,
never on the command line) in its first message: with a hostfile that port
listens on a routable address, and a
connection without the token is closed unread, so nobody who merely reaches the
port can pose as a rank; one that says nothing is dropped after HELLO_DEADLINE_S. The parent sends commands to all ranks and waits for every answer until a
deadline. A rank that exits, closes its connection, reports an error or does
not answer within the timeout ends the whole group at once with a
DistributedError whose message is one line. Every process the group starts
runs in its own session (process group); close() always runs (use the group
as a context manager): a polite quit, then SIGTERM, then SIGKILL to each
process group, and it waits for them, so no rank outlives its group.

What to start is a LaunchSpec (launch_spec.py, with the launch tools this
machine has); stopping the process groups and waiting for them is
bench.engine.lifetime.stop_groups, as for the engine's workers; processes.py
says how a process ended.
"""

from __future__ import annotations

import os
import secrets
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.distributed import control
from bench.distributed.hostfile import (
    LOOPBACK,
    PORT_RANGE,
    PortError,
    control_address,
    free_ports,
    ring_hostfile,
)
from bench.distributed.launch_spec import (
    LaunchSpec,
    mlx_launch_command,
    mpirun_available,  # noqa: F401  (re-exported: bench.distributed.measure imports it here)
)
from bench.distributed.processes import StartedProcess, exit_words, last_output
from bench.engine import lifetime
from bench.engine.protocol import LineBuffer, answer_of, request_line

WORKER_MODULE = "bench.distributed.rank"

REPO_ROOT = Path(__file__).resolve().parents[2]
QUIT_GRACE_S = 2.0  # a healthy rank exits this fast after "quit"
TERM_GRACE_S = 1.0  # then SIGTERM, and SIGKILL for whoever ignores it
KILL_GRACE_S = 5.0  # how long to wait for the groups after SIGKILL
START_ATTEMPTS = 3  # new ports for each attempt when a rank finds its port taken
POLL_S = 0.05  # how often a waiting parent looks at its processes when no rank speaks
MAX_HELLO_BYTES = 4096  # a first line longer than this is no hello of ours
HELLO_DEADLINE_S = 2.0  # a connection that has not said hello with the token by then is dropped


class DistributedError(RuntimeError):
    """A distributed run failed; its message is one line that says which rank and what happened."""


class AddressInUse(DistributedError):
    """A rank could not listen on its port: another process took it after it was chosen."""


@dataclass
class _Rank:
    """The parent's view of one rank's connection."""

    sock: socket.socket
    rank: int | None = None
    pid: int | None = None
    host: str = ""
    ready: dict | None = None
    lines: LineBuffer = field(default_factory=LineBuffer)  # its bytes cut into lines, as the worker client's
    trusted: bool = False  # it presented the group's token in its first message
    accepted: float = field(default_factory=time.monotonic)

    @property
    def name(self) -> str:
        who = f"rank {self.rank}" if self.rank is not None else "a rank"
        return f"{who} (pid {self.pid})" if self.pid else who


class RankGroup:
    """N ranks of bench.distributed.rank, started together and stopped together."""

    def __init__(self, spec: LaunchSpec, port_picker=free_ports, keep_logs_on_failure: bool = True):
        self.spec = spec
        self.port_picker = port_picker  # tests hand in a picker that returns a taken port first
        self.keep_logs_on_failure = keep_logs_on_failure
        self.pids: list[int] = []  # every process this group started or heard from, for orphan checks
        self.pgids: list[int] = []
        self.token = secrets.token_hex(16)  # what a rank must present in its hello (see the module docstring)
        self.startup_s: float | None = None
        self.attempts = 0
        self.log_dir: Path | None = None
        self._processes: list[StartedProcess] = []
        self._ranks: list[_Rank] = []
        self._listener: socket.socket | None = None
        self._selector: selectors.BaseSelector | None = None
        self._failed = False
        self._closed = True

    # -- life cycle ---------------------------------------------------------------------

    def __enter__(self) -> RankGroup:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        """Start every rank and wait until all are ready; DistributedError if any is not."""
        started = time.perf_counter()
        self._closed = False
        self.log_dir = Path(tempfile.mkdtemp(prefix="mlx-sgd-dist-"))
        last = None
        try:
            for self.attempts in range(1, START_ATTEMPTS + 1):
                try:
                    self._start_once()
                    self.startup_s = time.perf_counter() - started
                    return
                except AddressInUse as error:
                    last = error
                    self._stop_processes(polite=False)  # the others wait for a peer that will never listen
            raise DistributedError(
                f"{self.spec.n_ranks} ranks could not start: their ports were taken on {START_ATTEMPTS} attempts ({last})"
            )
        except BaseException:
            self._failed = True
            self.close()
            raise

    def close(self) -> None:
        """Stop every process of the group (quit, SIGTERM, SIGKILL) and wait for them; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stop_processes(polite=not self._failed)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self.log_dir is not None and not (self._failed and self.keep_logs_on_failure):
            shutil.rmtree(self.log_dir, ignore_errors=True)

    # -- commands -----------------------------------------------------------------------

    def run(self, steps: int) -> int:
        """Every rank runs `steps` steps (each ending in mx.eval); returns `steps`."""
        self.command("run", f"run {_steps(steps)}", steps=steps)
        return steps

    def profile(self, steps: int) -> list[dict]:
        """Every rank runs `steps` steps timing compute and all_sum apart; one dict per rank."""
        return self.command("profile", f"profile {_steps(steps)}", steps=steps)

    def reset(self) -> None:
        """Every rank goes back to the shared start point w0."""
        self.command("reset", "reset")

    def weights(self) -> list[np.ndarray]:
        """Each rank's weights, float64 vectors in rank order."""
        return [np.asarray(answer["w"], dtype=np.float64) for answer in self.command("weights", "send weights")]

    def ping(self, count: int = 50) -> float:
        """Median seconds for a message to reach every rank and all answers to come back."""
        times = []
        for _ in range(count):
            start = time.perf_counter()
            self.command("ping", "ping")
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    @property
    def ready_info(self) -> list[dict]:
        """Each rank's "ready" message (rank, size, init_s, its rows), in rank order."""
        return [r.ready for r in self._ranks]

    def command(self, op: str, what: str, **fields) -> list[dict]:
        """Send one command to every rank; return their answers in rank order."""
        if self._closed or self._failed:
            raise DistributedError(f"the rank group is stopped; cannot {what}")
        message = request_line(op, **fields)
        deadline = time.monotonic() + self.spec.timeout_s
        try:
            for r in self._ranks:
                try:
                    r.sock.sendall(message)
                except OSError:
                    raise self._ended(r, what) from None
            return self._collect(what, deadline)
        except BaseException:
            self._failed = True
            self.close()
            raise

    # -- starting -----------------------------------------------------------------------

    def _start_once(self) -> None:
        spec = self.spec
        hosts = spec.hostfile.first(spec.n_ranks).hosts if spec.hostfile else None
        host = control_address(hosts)
        if self._listener is None:
            self._listener = socket.create_server((host, 0), backlog=max(8, spec.n_ranks))
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._ranks = []
        control = f"{host}:{self._listener.getsockname()[1]}"
        args = [sys.executable, "-m", WORKER_MODULE, "--control", control, "--ranks", str(spec.n_ranks)]
        args += ["--backend", spec.backend, "--timeout", str(spec.timeout_s), *spec.worker_args]
        if spec.fault:
            args += ["--inject-fault", spec.fault]
        if spec.launcher == "local":
            self._spawn_local(args)
        else:
            self._spawn_mlx_launch(args)
        self._wait_ready(time.monotonic() + spec.timeout_s)

    def _popen(self, label: str, argv: list[str], env: dict) -> None:
        log = self.log_dir / f"{label.replace(' ', '-').replace('.', '-')}-{self.attempts}.log"
        with open(log, "wb") as out:
            with lifetime.spawning():  # a Ctrl-C during the fork is delivered after it, never lost
                popen = subprocess.Popen(
                    argv,
                    cwd=REPO_ROOT,
                    env=lifetime.child_environment(env),
                    stdin=subprocess.PIPE,  # never written; closed at the end
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    # Its own process group (killed as one, never by pytest's Ctrl-C alone), and it dies with
                    # this process even when this one is SIGKILLed (bench.engine.lifetime).
                    **lifetime.start_options(),
                )
        self._processes.append(StartedProcess(label, popen, log))
        self.pids.append(popen.pid)
        self.pgids.append(popen.pid)

    def _spawn_local(self, args: list[str]) -> None:
        n = self.spec.n_ranks
        env = dict(os.environ, PYTHONUNBUFFERED="1", **{control.TOKEN_ENV: self.token})
        for name in ("MLX_RANK", "MLX_HOSTFILE"):  # pytest itself may run under a launcher
            env.pop(name, None)
        if n > 1:
            try:
                ports = self.port_picker(n)
            except PortError as error:
                raise DistributedError(str(error)) from None
            path = self.log_dir / f"ring-hostfile-{self.attempts}.json"
            path.write_text(ring_hostfile(ports))
            env["MLX_HOSTFILE"] = str(path)
        for rank in range(n):
            if n > 1:
                env["MLX_RANK"] = str(rank)
            self._popen(f"rank {rank}", args, dict(env))

    def _spawn_mlx_launch(self, args: list[str]) -> None:
        spec = self.spec
        launch = mlx_launch_command()
        if launch is None:
            raise DistributedError("mlx.launch is not installed beside this Python; it starts hostfile and MPI runs")
        argv = [*launch, "--backend", spec.backend, "--cwd", str(REPO_ROOT)]
        if spec.hostfile is not None:
            hostfile = spec.hostfile.first(spec.n_ranks)
            path = hostfile.write_private(self.log_dir / "hostfile.json", f"{control.TOKEN_ENV}={self.token}")
            argv += ["--hostfile", str(path)]
            if spec.backend == "ring" and (hostfile.is_local or self.attempts > 1):
                # Local hosts: ports known free here. Remote ones: mlx.launch's default
                # first, another range after a port turned out taken.
                try:
                    first = self.port_picker(spec.n_ranks, consecutive=True)[0] if hostfile.is_local else None
                except PortError as error:
                    raise DistributedError(str(error)) from None
                argv += ["--starting-port", str(first or PORT_RANGE[0] + 100 * self.attempts)]
        else:  # MPI on this machine
            argv += ["--hosts", LOOPBACK, "-n", str(spec.n_ranks)]
        env = dict(os.environ, PYTHONUNBUFFERED="1", **{control.TOKEN_ENV: self.token})  # local ranks inherit it
        for name in ("MLX_RANK", "MLX_HOSTFILE"):
            env.pop(name, None)
        self._popen("mlx.launch", [*argv, "--", *args], env)

    def _wait_ready(self, deadline: float) -> None:
        n = self.spec.n_ranks
        what = f"start ({n} rank{'s' if n > 1 else ''}, {self.spec.backend} backend)"
        while sum(r.ready is not None for r in self._ranks) < n:
            for r in [r for r in self._ranks if not r.trusted and time.monotonic() - r.accepted > HELLO_DEADLINE_S]:
                self._drop(r)  # silent past its deadline: none of ours, and the start-up goes on
            events = self._selector.select(timeout=POLL_S)
            for key, _ in events:
                if key.data is None:
                    self._accept()
                else:
                    for message in self._read(key.data, what):
                        self._on_start_message(key.data, message, what)
            if not events:
                self._check_processes(what)
                if time.monotonic() > deadline:
                    waiting = [r.name for r in self._ranks if r.ready is None and r.trusted]
                    missing = n - sum(r.trusted for r in self._ranks)
                    who = ", ".join(waiting + ([f"{missing} that never connected"] if missing else []))
                    raise DistributedError(
                        f"{n - len(waiting) - missing} of {n} ranks ready after {self.spec.timeout_s:g} s "
                        f"(waiting for {who}); all stopped{self._logs_hint()}"
                    )
        for r in [r for r in self._ranks if r.ready is None]:
            self._drop(r)  # a connection still silent when every rank is up: none of ours
        ranks = sorted(r.ready["rank"] for r in self._ranks)
        if ranks != list(range(n)):
            raise DistributedError(f"ranks came up as {ranks}, expected 0 to {n - 1}")
        self._ranks.sort(key=lambda r: r.ready["rank"])

    def _accept(self) -> None:
        sock, _ = self._listener.accept()
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # see control.Channel
        rank = _Rank(sock)
        self._ranks.append(rank)
        self._selector.register(sock, selectors.EVENT_READ, rank)

    def _on_start_message(self, r: _Rank, message: dict, what: str) -> None:
        if message.get("op") == "hello":  # .get: an answer has none, and has no place here
            r.pid, r.rank, r.host = message.get("pid"), message.get("rank"), message.get("host", "")
            if r.pid and r.pid not in self.pids:
                self.pids.append(r.pid)
        elif message.get("op") == "ready":
            r.rank, r.ready = message["rank"], message
        else:
            raise DistributedError(f"{r.name} sent {message.get('op', 'an answer')!r} during {what}")

    # -- waiting ------------------------------------------------------------------------

    def _collect(self, what: str, deadline: float) -> list[dict]:
        answers: dict[int, dict] = {}
        while len(answers) < len(self._ranks):
            events = self._selector.select(timeout=POLL_S)
            for key, _ in events:
                r = key.data
                if r is None:  # a connection after every rank is up: none of ours, closed at once
                    self._listener.accept()[0].close()
                    continue
                for message in self._read(r, what):
                    answers[r.ready["rank"]] = message
            if not events:
                self._check_processes(what)
                if time.monotonic() > deadline:
                    silent = [r.name for r in self._ranks if r.ready["rank"] not in answers]
                    raise DistributedError(
                        f"{', '.join(silent)} did not answer {what!r} within {self.spec.timeout_s:g} s "
                        f"(hung?); all ranks stopped{self._logs_hint()}"
                    )
        return [answers[rank] for rank in sorted(answers)]

    def _read(self, r: _Rank, what: str) -> list[dict]:
        """Messages that arrived from one rank; raises if it reported an error or went away."""
        try:
            data = r.sock.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return []
        except OSError:
            data = b""
        if not data and not r.trusted:
            self._drop(r)  # a stranger hung up: nothing of ours ended
            return []
        if not data:
            self._selector.unregister(r.sock)
            raise self._ended(r, what)
        lines = r.lines.feed(data)
        if not r.trusted and not lines and len(r.lines.partial) > MAX_HELLO_BYTES:
            self._drop(r)
            return []
        messages = []
        for line in lines:
            if not r.trusted:
                if not self._presents_token(line):
                    self._drop(r)
                    return []
                r.trusted = True
            answer = answer_of(line)
            if answer is not None:  # an answer to a request (bench.engine.protocol)
                if not answer["ok"]:
                    raise DistributedError(
                        f"{r.name} failed during {what!r}: {answer.get('error', '')}{self._logs_hint()}"
                    )
                messages.append(answer)
                continue
            message = control.decode(line)  # a start-up message, or unreadable
            if message["op"] == "error":
                if message.get("kind") == control.ADDRESS_IN_USE:
                    raise AddressInUse(f"{r.name}: {message.get('message', '')}")
                if self.spec.launcher == "local":  # a dead peer makes the others' all_sum fail too: name it
                    self._check_processes(what, grace_s=0.5, besides=r.pid)
                raise DistributedError(
                    f"{r.name} failed during {what!r}: {message.get('message', '')}{self._logs_hint()}"
                )
            messages.append(message)
        return messages

    def _presents_token(self, line: bytes) -> bool:
        """Whether a connection's first line is a hello carrying this group's token."""
        try:
            message = control.decode(line)
        except control.ProtocolError:
            return False
        token = message.get("token")
        return (
            message["op"] == "hello"
            and isinstance(token, str)
            and secrets.compare_digest(token.encode(), self.token.encode())
        )

    def _drop(self, r: _Rank) -> None:
        """Close a connection that did not present the token: it is no rank of this group."""
        self._selector.unregister(r.sock)
        r.sock.close()
        self._ranks.remove(r)

    def _check_processes(self, what: str, grace_s: float = 0.0, besides: int | None = None) -> None:
        """Fail at once when a process of the group (other than `besides`) has exited, waiting up to grace_s."""
        deadline = time.monotonic() + grace_s
        while True:
            for process in self._processes:
                status = process.popen.poll() if process.popen.pid != besides else None
                if status is not None:
                    raise DistributedError(
                        f"{process.label} (pid {process.popen.pid}) {exit_words(status)} during {what!r}"
                        f"{last_output(process.log)}{self._logs_hint()}"
                    )
            if time.monotonic() >= deadline:
                return
            time.sleep(0.02)

    def _ended(self, r: _Rank, what: str) -> DistributedError:
        """The error for a rank whose connection closed: says how its process ended, if known."""
        for process in self._processes:
            if process.popen.pid == r.pid:  # started by us: its own exit status and output
                try:  # a dead rank's socket closes a moment before its exit status is known
                    status = process.popen.wait(timeout=0.5)
                except subprocess.TimeoutExpired:
                    status = None
                how = exit_words(status) if status is not None else "closed its control connection"
                return DistributedError(f"{r.name} {how} during {what!r}{last_output(process.log)}{self._logs_hint()}")
        # Started by mlx.launch, whose log interleaves every rank's output.
        tail = last_output(self._processes[0].log, "mlx.launch's") if self._processes else ""
        return DistributedError(
            f"{r.name} ended (closed its control connection) during {what!r}{tail}{self._logs_hint()}"
        )

    def _logs_hint(self) -> str:
        return f" (logs: {self.log_dir})" if self.keep_logs_on_failure and self.log_dir else ""

    # -- stopping -----------------------------------------------------------------------

    def _stop_processes(self, polite: bool) -> None:
        """Quit (if polite), then SIGTERM and SIGKILL each process group; wait for every process."""
        if polite:
            for r in self._ranks:
                try:
                    r.sock.sendall(request_line("quit"))
                except OSError:
                    pass
            lifetime.wait_for([p.popen for p in self._processes], QUIT_GRACE_S)
        lifetime.stop_groups([p.popen for p in self._processes], TERM_GRACE_S, KILL_GRACE_S)
        for process in self._processes:
            if process.popen.stdin:
                process.popen.stdin.close()
        for r in self._ranks:
            r.sock.close()
        if self._selector is not None:
            self._selector.close()
            self._selector = None
        self._processes, self._ranks = [], []


def _steps(count: int) -> str:
    return f"{count} step{'' if count == 1 else 's'}"
