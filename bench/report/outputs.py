"""Writing report files atomically: a temporary file in the same folder, then os.replace.

An interrupted report (Ctrl-C, a full disk) leaves each output either as it
was before or complete, never half-written: readers such as a CI job that
parses versions.csv never see a torn file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pandas as pd

from bench.report.schema import OBJECT_COLUMNS


def _umask() -> int:
    """The process umask (reading it means setting it, so set it straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: Path, write: Callable[[IO], None], binary: bool = False) -> Path:
    """Call write(handle) on a temporary file beside `path`, then move it into place."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(
            fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8", "newline": ""})
        ) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())  # the data is on disk before the name points at it
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the mode a plain open() would
        os.replace(tmp, path)
    except BaseException:
        # Whatever stopped us (KeyboardInterrupt included), leave no temporary file behind.
        Path(tmp).unlink(missing_ok=True)
        raise
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
