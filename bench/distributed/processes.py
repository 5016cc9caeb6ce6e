"""The processes a rank group starts, each in its own process group: waiting for them and saying how they ended.

A rank (local runs) or mlx.launch runs in a session of its own, so signalling
its process group reaches everything it started (stopping and waiting for the
groups: bench.engine.lifetime.stop_groups, as for every child of the suite);
these helpers turn an exit status and a log's last line into words for a
one-line error.
"""

from __future__ import annotations

import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.distributed import control


@dataclass
class StartedProcess:
    """A process the group started: a rank (local runs) or mlx.launch."""

    label: str
    popen: subprocess.Popen
    log: Path


def exit_words(status: int) -> str:
    """'exited with status 3' or 'was killed by SIGKILL'."""
    if status < 0:
        try:
            return f"was killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"was killed by signal {-status}"
    return f"exited with status {status}"


def last_output(log: Path, whose: str = "its") -> str:
    """'; its last output: ...' from a process's log, or '' when it printed nothing."""
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return f"; {whose} last output: {control.one_line(lines[-1], 200)!r}" if lines else ""
