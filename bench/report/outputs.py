"""Writing report files atomically (bench.results.files), all of one report together.

An interrupted report (Ctrl-C, a full disk) leaves each output either as it
was before or complete, never half-written: readers such as a CI job that
parses versions.csv never see a torn file. Inside ``all_or_nothing()`` the
renames wait until every file of the report was written: one that fails
half-way leaves the previous report as it was, never new CSVs beside an old
index.html.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import IO

import pandas as pd

from bench.report.schema import OBJECT_COLUMNS
from bench.results import files


# (temporary file, final path) of each file written inside all_or_nothing(), renamed at its end.
_PENDING: ContextVar[list[tuple[str, Path]] | None] = ContextVar("pending_outputs", default=None)


@contextlib.contextmanager
def all_or_nothing(out: Path) -> Iterator[Path]:
    """Create `out` if needed; the files written inside replace the old ones together, or none does.

    On any failure the temporary files are removed, and `out` too when this
    call created it and it is still empty.
    """
    out = Path(out)
    created = not out.exists()
    prepare_out_dir(out)
    pending: list[tuple[str, Path]] = []
    token = _PENDING.set(pending)
    done = False
    try:
        yield out
        _PENDING.reset(token)
        token = None
        for tmp, path in pending:
            os.replace(tmp, path)
        pending.clear()
        done = True
    finally:
        if token is not None:
            _PENDING.reset(token)
        for tmp, _ in pending:
            Path(tmp).unlink(missing_ok=True)
        if not done and created:
            with contextlib.suppress(OSError):
                out.rmdir()  # only when empty: never anything but the folder this call made


def read_output(path: Path) -> bytes:
    """The content of an output written by this report, renamed into place or (inside all_or_nothing) not yet."""
    path = Path(path)
    for tmp, final in reversed(_PENDING.get() or []):
        if final == path:
            return Path(tmp).read_bytes()
    return path.read_bytes()


def write_atomic(path: Path, write: Callable[[IO], None], binary: bool = False) -> Path:
    """Call write(handle) on a temporary file beside `path`, then move it into place (at the end of all_or_nothing)."""
    path = Path(path)
    pending = _PENDING.get()
    if pending is None:
        return files.write_atomic(path, write, binary)
    pending.append((files.stage(path, write, binary), path))
    return path


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Plain CSV with a header row; raw-time arrays are left out (they stay in the JSON)."""
    frame = frame.drop(
        columns=[c for c in frame.columns if any(c == o or c.startswith(f"{o}_") for o in OBJECT_COLUMNS)]
    )
    return write_atomic(path, lambda handle: frame.to_csv(handle, index=False, lineterminator="\n"))


def write_text(text: str, path: Path) -> Path:
    """A UTF-8 text file (summary.md, index.html)."""
    return write_atomic(path, lambda handle: handle.write(text))


def write_figure(figure, path: Path, dpi: int = 110) -> Path:
    """A matplotlib figure as PNG."""
    return write_atomic(path, lambda handle: figure.savefig(handle, format="png", dpi=dpi), binary=True)


def prepare_out_dir(out: Path) -> Path:
    """Create the output folder if needed; raise NotADirectoryError when it is a file."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} is a file, not a folder")
    out.mkdir(parents=True, exist_ok=True)
    return out
