"""The float64 reference's weights, computed once per session and shared by every worker of it.

Every pass checks its kernel against the float64 reference (docs/measurement.md,
"Measurement rules", rule 5), and every pass runs in new worker processes. The
reference of one problem is the same in all of them (same seeded data, same start,
same steps), but computing it costs up to a second (an MLP at 100,000 x 100) in
every worker of every pass. So the first worker that needs it saves it here and
the others read it: the check itself still runs after every timed kernel.

The folder is private to the session: made by the session with mkdtemp (mode 0700),
named to its workers by the REFERENCE_CACHE_ENV variable they inherit, and removed
when the session ends. Without the variable (a single process, the unit tests)
nothing is cached on disk. A file that is missing, unreadable or of the wrong shape
is computed again, never trusted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

REFERENCE_CACHE_ENV = "MLX_SGD_BENCH_REFERENCE_CACHE"


@contextlib.contextmanager
def session_cache() -> Iterator[Path]:
    """A private folder for the session's references, named to the workers started meanwhile; removed at the end."""
    folder = Path(tempfile.mkdtemp(prefix="mlx-sgd-bench-reference-"))
    previous = os.environ.get(REFERENCE_CACHE_ENV)
    os.environ[REFERENCE_CACHE_ENV] = str(folder)
    try:
        yield folder
    finally:
        if previous is None:
            os.environ.pop(REFERENCE_CACHE_ENV, None)
        else:
            os.environ[REFERENCE_CACHE_ENV] = previous
        shutil.rmtree(folder, ignore_errors=True)


def _folder() -> Path | None:
    """The session's folder, where it is one this user owns and no one else can write; else None (no cache)."""
    value = os.environ.get(REFERENCE_CACHE_ENV)
    if not value:
        return None
    folder = Path(value)
    try:
        status = folder.lstat()
    except OSError:
        return None
    if not folder.is_dir() or folder.is_symlink() or status.st_uid != os.getuid() or status.st_mode & 0o077:
        return None
    return folder


def cached(key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """The array saved under `key` in the session's folder, else compute() (saved there for the next worker)."""
    folder = _folder()
    if folder is None:
        return compute()
    path = folder / f"{key}.npy"
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        pass
    value = np.asarray(compute())
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".", suffix=".npy")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, value, allow_pickle=False)
        os.replace(tmp, path)  # another worker may write the same value at the same time: either is whole
    except OSError:
        Path(tmp).unlink(missing_ok=True)
    return value
