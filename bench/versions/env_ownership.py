"""What makes a folder of the environment cache the suite's own, and who is using it.

The cache folder is shared: other sessions (with other pins), the user's own
environments that happen to be named mlx-*, and anything another local user
could plant there. So, before anything is deleted or reused (docs/releases.md,
"Environments"):

- Ownership: a folder is the suite's only when it holds OWNER_NAME, a regular
  file (never a link) written when the suite started building it, naming the
  suite (SUITE_IDENTITY); environments built before that file existed are
  known by their completion marker, also a regular file of the suite's form.
- Use: a session holds a shared flock on the environment's lock file while
  its workers may run from it; whoever would delete the folder takes that
  lock exclusively without waiting, and leaves the folder when it cannot.
- Links: the lock, log and marker files are opened with O_NOFOLLOW; a link in
  their place is refused in one line, never followed, truncated or written.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import stat
from pathlib import Path

from bench.versions.common import MARKER_NAME, InstallError

SUITE_IDENTITY = "mlx-sgd-bench"
OWNER_NAME = "mlx-sgd-bench-owner.json"  # written first, before python -m venv: "the suite is building this"
_LEGACY_MARKER_KEYS = {"release", "spec", "pins", "created"}  # a completion marker written before OWNER_NAME
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)

try:
    import fcntl
except ImportError:  # no fcntl (Windows): MLX has no wheels there anyway
    fcntl = None


class Refused(InstallError):
    """A file of the cache that is a link, or not a regular file: refused, never followed; one line."""


def open_private(path: Path, flags: int, mode: int = 0o644) -> int:
    """os.open without following a link at `path`; Refused, in one line, for a link or a non-regular file."""
    try:
        fd = os.open(path, flags | _NOFOLLOW, mode)
    except OSError as error:
        if path.is_symlink():
            raise Refused(f"{path} is a symbolic link; refused, not followed (remove it)") from None
        raise InstallError(f"{path}: cannot open it ({error.strerror})") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
        os.close(fd)
        raise Refused(f"{path} is not a regular file of its own (a device, a folder or a hard link); refused")
    return fd


def write_private(path: Path, text: str) -> None:
    """Replace a small file's contents, never through a link at `path` (the install log, the markers)."""
    fd = open_private(path, os.O_WRONLY | os.O_CREAT)
    with os.fdopen(fd, "w") as handle:
        handle.truncate(0)  # only after the checks: a link or another file's hard link is never emptied
        handle.write(text)


def read_json_file(path: Path) -> dict | None:
    """A JSON object from a regular file that is not a link, or None (missing, a link, unreadable)."""
    try:
        info = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    try:
        with os.fdopen(os.open(path, os.O_RDONLY | _NOFOLLOW)) as handle:
            data = json.loads(handle.read())
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def owner_record(release: str) -> dict:
    """What OWNER_NAME says: the suite, the release, when and by whom the build started."""
    return {
        "suite": SUITE_IDENTITY,
        "release": release,
        "started": dt.datetime.now().isoformat(timespec="seconds"),
        "uid": os.getuid() if hasattr(os, "getuid") else None,
    }


def claim(path: Path, release: str) -> None:
    """Make `path` (which must not exist) and mark it as the suite's before anything is installed into it."""
    path.mkdir()
    write_private(path / OWNER_NAME, json.dumps(owner_record(release), indent=2))


def linked_markers(path: Path) -> list[Path]:
    """The owner or completion marker files of `path` that are symbolic links (planted: never read)."""
    return [path / name for name in (OWNER_NAME, MARKER_NAME) if (path / name).is_symlink()]


def owned(path: Path) -> bool:
    """Whether `path` is a real folder (not a link) that the suite built, or is building."""
    try:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            return False
    except OSError:
        return False
    if linked_markers(path):
        return False
    owner = read_json_file(path / OWNER_NAME)
    if owner is not None:
        return owner.get("suite") == SUITE_IDENTITY
    marker = read_json_file(path / MARKER_NAME)
    release = path.name.removeprefix("mlx-")
    return marker is not None and (
        marker.get("suite") == SUITE_IDENTITY
        or (_LEGACY_MARKER_KEYS <= set(marker) and marker.get("release") == release)
    )


# Use locks this process holds: environment folder -> the open lock file (released at exit).
_held: dict[Path, int] = {}


def lock_path(env_dir: Path) -> Path:
    """The lock file of an environment, beside it in the cache."""
    return env_dir.with_name(f".{env_dir.name}.in-use")


def hold(env_dir: Path) -> None:
    """Mark the environment as in use by this process until it exits (a shared lock; several sessions may hold it)."""
    if fcntl is None or env_dir in _held:
        return
    fd = open_private(lock_path(env_dir), os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_SH)
    _held[env_dir] = fd


def let_go(env_dir: Path) -> None:
    """Release this process's own use of the environment (before it deletes or rebuilds it)."""
    fd = _held.pop(env_dir, None)
    if fd is not None:
        os.close(fd)


@contextlib.contextmanager
def exclusive(env_dir: Path):
    """Hold the environment's lock alone while it is deleted; yields False (and deletes nothing) when in use.

    Another session whose workers run from the environment holds the lock
    shared; this never waits for it.
    """
    if fcntl is None:
        yield True
        return
    let_go(env_dir)
    fd = open_private(lock_path(env_dir), os.O_RDWR | os.O_CREAT)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
