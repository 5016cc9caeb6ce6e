"""The one way the suite writes a file it keeps: complete or not at all, with the mode a plain open() gives.

Every output (pytest-benchmark's saved run, the release runner's records,
the report's tables and pages) goes through ``stage`` and ``os.replace``: the
content is written to a hidden temporary file in the destination's own folder,
flushed and fsync'd, given the mode the umask allows (0666 & ~umask: mkstemp
alone makes 0600), and only then renamed over the destination. A reader sees
the old file or the new one, never half of either; a full disk or a Ctrl-C
leaves the previous file as it was and removes the temporary one (and nothing
else). No hard links are used, so this works on file systems without them
(FAT/exFAT, many network and sync mounts). ``save_numbered`` adds
pytest-benchmark's ``NNNN_name.json`` numbering for several runs saving into
one folder at once (docs/results-schema.md, "Results files").
"""

from __future__ import annotations

import errno
import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

TEMP_PREFIX = "."  # temporary files are hidden: bench.report.load never reads a hidden file
NUMBERED = re.compile(r"^(\d{4})_")
SAVE_ATTEMPTS = 1000  # each failed attempt means another run took that number meanwhile

Content = bytes | str | Callable[[IO], None]


def umask() -> int:
    """The process umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def plain_mode() -> int:
    """The mode open(path, "w") gives a new file under the current umask."""
    return 0o666 & ~umask()


def _write(handle: IO, content: Content) -> None:
    if callable(content):
        content(handle)
    else:
        handle.write(content)


def stage(path: Path, content: Content, binary: bool | None = None) -> str:
    """Write `content` (bytes, text, or a function of the open handle) to a hidden temporary file beside `path`.

    Returns the temporary file's name; the caller renames it into place
    (``os.replace``). On any failure it is removed and the error raised.
    """
    path = Path(path)
    binary = isinstance(content, bytes) if binary is None else binary
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{TEMP_PREFIX}{path.name}.", suffix=".tmp")
    try:
        mode, text_options = ("wb", {}) if binary else ("w", {"encoding": "utf-8", "newline": ""})
        with os.fdopen(fd, mode, **text_options) as handle:
            _write(handle, content)
            handle.flush()
            os.fsync(handle.fileno())  # the data is on disk before the name points at it
        os.chmod(tmp, plain_mode())
    except BaseException:
        # Whatever stopped us (a full disk, KeyboardInterrupt), leave no temporary file behind.
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def write_atomic(path: Path, content: Content, binary: bool | None = None) -> Path:
    """Replace `path` by `content` in one step: the old file stays whole until the new one is complete."""
    path = Path(path)
    tmp = stage(path, content, binary)
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: Path, document, **dumps_options) -> Path:
    """`document` as JSON (indent 2, a final newline), written atomically."""
    options = {"indent": 2, **dumps_options}
    return write_atomic(path, json.dumps(document, **options) + "\n")


def next_number(folder: Path) -> int:
    """One past the highest NNNN_ of the saved files in `folder` (1 for none)."""
    numbers = [int(m.group(1)) for name in os.listdir(folder) if (m := NUMBERED.match(name))]
    return max(numbers, default=0) + 1


def save_numbered(folder: Path, name: str, data: bytes) -> Path:
    """Save `data` as `folder`/NNNN_`name` with the next free number, never over another run's file.

    The number is claimed by creating the name exclusively (O_EXCL: of two
    runs racing for one number one gets it, the other takes the next); the
    complete content then replaces the claimed empty file. A reader that
    looks in between sees an empty file, which the report skips as such.
    """
    folder = Path(folder)
    tmp = stage(folder / name, data, binary=True)
    try:
        for _ in range(SAVE_ATTEMPTS):
            target = folder / f"{next_number(folder):04d}_{name}"
            try:
                os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, plain_mode()))
            except FileExistsError:
                continue
            try:
                os.replace(tmp, target)
            except BaseException:
                target.unlink(missing_ok=True)  # only the empty name this call claimed
                raise
            return target
        raise FileExistsError(errno.EEXIST, f"no free NNNN_ number for {name} after {SAVE_ATTEMPTS} tries", str(folder))
    finally:
        Path(tmp).unlink(missing_ok=True)


def describe_error(error: OSError) -> str:
    """An OSError as a short phrase: its reason and the file it concerns ("No space left on device: x.json")."""
    reason = error.strerror or str(error)
    return f"{reason}: {error.filename}" if error.filename else reason
