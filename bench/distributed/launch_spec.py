"""What a rank group starts and how: LaunchSpec, and the launch tools this machine has.

Local runs need nothing but this Python; hostfile runs and MPI need mlx.launch
beside this interpreter, and MPI an `mpirun` on PATH.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass

from bench.distributed.hostfile import Hostfile


def mlx_launch_command() -> list[str] | None:
    """The argv that runs mlx.launch with this interpreter's MLX, or None if it is not installed."""
    # The console script next to this interpreter belongs to the MLX this process imports.
    beside = os.path.join(os.path.dirname(sys.executable), "mlx.launch")
    if os.access(beside, os.X_OK):
        return [beside]
    found = shutil.which("mlx.launch")
    return [found] if found else None


def mpirun_available() -> bool:
    """Whether an `mpirun` is on PATH (mlx.launch --backend mpi needs it)."""
    return shutil.which("mpirun") is not None


@dataclass(frozen=True)
class LaunchSpec:
    """What to start: N ranks of the worker with these arguments, how, and how long to wait."""

    n_ranks: int
    worker_args: tuple[str, ...]
    backend: str = "ring"
    hostfile: Hostfile | None = None  # a user's hosts: ranks start through mlx.launch
    timeout_s: float = 60.0  # the longest any rank may take to start or to answer one command
    fault: str | None = None  # tests only: bench.distributed.rank --inject-fault

    @property
    def launcher(self) -> str:
        """'local' (the suite starts the ranks) or 'mlx.launch'."""
        return "local" if self.hostfile is None and self.backend == "ring" else "mlx.launch"
