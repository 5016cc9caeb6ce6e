"""Child processes that die with their parent: every process the suite starts ends when the suite does.

Workers, ranks, release runs and installs run in sessions of their own (so a
kill of their process group stops them and nothing else), which also means a
SIGKILL of the parent, or a runner that stops pytest on its --timeout, reaches
none of them. Two mechanisms, both used by every spawn path:

1. Parent side, Linux: start_options() gives Popen a preexec_fn that asks the
   kernel (prctl PR_SET_PDEATHSIG) to SIGKILL the child when its parent dies,
   before the child runs anything, so it holds even in native code or during
   imports; a parent that died before that call is noticed at once.
2. Child side, everywhere: watch_parent() starts a thread that ends the
   process when it is re-parented (its parent is gone), for systems without
   prctl; bench.engine.worker and bench.distributed.rank call it first thing.

And one way to stop them on purpose (stop_groups): SIGTERM to each child's
process group, SIGKILL to whatever is left after a grace period, and a wait
until every group is gone. The engine's workers, the data-parallel rank groups
and the release runner's pytest runs all stop that way.

docs/measurement.md, "Isolation".
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

# The spawner's pid, for a child to tell "my parent died before I started" from "a launcher sits between us".
PARENT_ENV = "MLX_SGD_BENCH_PARENT_PID"
ORPHAN_STATUS = 70  # exit status of a child that ended because its parent went away
WATCH_INTERVAL_S = 0.25  # how often the watch looks; a stray child lives at most about this long
_PR_SET_PDEATHSIG = 1


def _set_death_signal() -> bool:
    """Ask the kernel to SIGKILL this process when its parent thread ends (Linux); whether it was set."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) == 0
    except (OSError, AttributeError):
        return False


def start_options(cpus: list[int] | None = None, own_session: bool = True) -> dict:
    """Popen keyword arguments for a child that dies with this process: its own session, the death signal set.

    cpus: pin the child to these CPUs from its start as well (Linux).
    own_session=False keeps the child in this process group (a short install
    step that the terminal's Ctrl-C should reach as well).
    The death signal follows the thread that starts the child: the suite starts
    its children from the main thread, which lives as long as the process.
    """
    parent = os.getpid()
    pin = bool(cpus) and hasattr(os, "sched_setaffinity")

    def before_exec() -> None:  # runs in the child between fork and exec: async-signal-safe calls only
        _set_death_signal()
        if os.getppid() != parent:  # the parent died before the death signal was set: nobody would send it
            os._exit(ORPHAN_STATUS)
        if pin:
            os.sched_setaffinity(0, cpus)

    return {"start_new_session": own_session, "preexec_fn": before_exec}


@contextlib.contextmanager
def spawning() -> Iterator[None]:
    """Defer Ctrl-C while a child is started with start_options(): it is delivered once the child has started.

    A preexec_fn makes subprocess run the interpreter's at-fork callbacks in the
    parent, and a KeyboardInterrupt raised inside one of them is reported as
    "ignored" and lost (seen with Python 3.13: a Ctrl-C during a later pass let
    the run go on to its end). Meanwhile SIGINT's handler only notes the signal;
    the handler it replaced then runs, where it stops the run as it should.
    Blocking the signal would not do: another thread (a BLAS pool's) would take it.
    """
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield  # signal handlers belong to the main thread; an ignored or default SIGINT has nothing to defer
        return
    caught: list = []
    signal.signal(signal.SIGINT, lambda signum, frame: caught.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            previous(signal.SIGINT, caught[-1])


def child_environment(env: dict) -> dict:
    """`env` with this process's pid named as the parent, for the child's watch_parent()."""
    env[PARENT_ENV] = str(os.getpid())
    return env


def _alive(pid: int) -> bool:
    return _reachable(os.kill, pid)


def _reachable(kill: Callable[[int, int], None], target: int) -> bool:
    """Whether signal 0 reaches `target` (a pid with os.kill, a process group with os.killpg): it exists."""
    try:
        kill(target, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, and is another user's
    return True


def watch_parent(
    interval_s: float = WATCH_INTERVAL_S, on_orphan: Callable[[], None] | None = None, kernel: bool = True
) -> int:
    """End this process (status ORPHAN_STATUS) once its parent is gone; returns the parent pid watched.

    The portable half of the mechanism: a daemon thread that looks every
    interval_s whether this process was re-parented. Where the spawner named
    itself (PARENT_ENV) and is already dead, the process ends at once.
    kernel: also set the death signal here (Linux), for a child that a
    launcher not of this suite started (mlx.launch's ranks); False tests the
    watch alone.
    """
    if kernel:
        _set_death_signal()
    exit_now = on_orphan or (lambda: os._exit(ORPHAN_STATUS))
    named = os.environ.pop(PARENT_ENV, "")  # not passed on to this process's own children
    parent = os.getppid()
    if named.isdigit() and int(named) != parent and not _alive(int(named)):
        exit_now()
        return parent

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval_s)
        exit_now()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
    return parent


def group_alive(pgid: int) -> bool:
    """Whether any process is left in process group `pgid`, an exit status not yet reaped included (signal 0)."""
    return _reachable(os.killpg, pgid)


def wait_for(processes: list[subprocess.Popen], grace_s: float) -> None:
    """Wait up to grace_s for every process, and its process group, to be gone; reaps exit statuses."""
    deadline = time.monotonic() + grace_s
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
    while time.monotonic() < deadline and any(group_alive(p.pid) for p in processes):
        time.sleep(0.02)


def stop_groups(processes: list[subprocess.Popen], term_grace_s: float, kill_grace_s: float = 5.0) -> None:
    """Stop each process's group: SIGTERM, then SIGKILL to what is left after term_grace_s; wait for all.

    term_grace_s 0: SIGKILL at once (a worker past its deadline). Every process
    here was started in a session of its own (start_options), so its group is
    its pid and the signal reaches all it started, and nothing else.
    """
    stages = [(signal.SIGTERM, term_grace_s)] if term_grace_s > 0 else []
    for sig, grace in [*stages, (signal.SIGKILL, kill_grace_s)]:
        alive = [p for p in processes if p.poll() is None or group_alive(p.pid)]
        if not alive:
            return
        for process in alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, sig)
        wait_for(alive, grace)
