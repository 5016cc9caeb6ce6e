"""The mx.distributed and mlx.launch spellings that differ between MLX releases, in one place.

bench.compat guards the rest of MLX; this module does the same for the
distributed API so that the rank program never tests for an attribute itself:

- `mx.distributed.init(strict, backend)`: releases from before the ring
  backend know no `backend` argument (MPI was their only backend), and
  `is_available` does not take one everywhere either; the newer spelling is
  tried first and the older one is the fallback.
- A group of size 1 is what a single process gets without a hostfile; N = 1
  uses it, and its all_sum is a copy.
- mlx.launch is found as the console script beside this interpreter (its
  Python module is private), else on PATH.

MLX is imported on first use, never at import time (see bench.blas).
"""

from __future__ import annotations

import functools
import os
import shutil
import sys

BACKENDS = ("ring", "mpi")


@functools.cache
def _mx():
    """mlx.core, imported on first call."""
    import mlx.core

    return mlx.core


def distributed_available(backend: str) -> bool:
    """Whether this MLX build can start `backend` ('ring' or 'mpi') at all."""
    dist = getattr(_mx(), "distributed", None)
    if dist is None:
        return False
    try:
        return bool(dist.is_available(backend))
    except TypeError:  # older releases: is_available() without a backend (MPI only)
        return backend == "mpi" and bool(dist.is_available())


def init_group(backend: str, strict: bool):
    """mx.distributed.init for one backend; strict raises where it cannot start."""
    dist = _mx().distributed
    try:
        return dist.init(strict=strict, backend=backend)
    except TypeError:  # before `backend=`: MPI was the only backend
        if backend != "mpi":
            raise RuntimeError(f"MLX {_mx().__version__} has no {backend!r} distributed backend") from None
        return dist.init(strict=strict)


def all_sum(x, group):
    """mx.distributed.all_sum over `group` (the keyword has been `group` in every release with it)."""
    return _mx().distributed.all_sum(x, group=group)


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
