"""Which files the report reads: every *.json below the given folders, and the given files.

Hidden files (a save or a report in progress: bench.results.files) are never
read; symbolic links to folders are followed and said in one line; a broken
link, a loop, a second link to a folder already read, an unreadable folder
and a copy of the suite's code (the release runner's ``suite/`` snapshot, whose
test data are not results) are each one warning, never skipped silently.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from bench.console.oneline import one_line


def warn_stderr(message: str) -> None:
    """Default warning sink: one line on stderr."""
    print(f"warning: {one_line(message)}", file=sys.stderr)


def _is_suite_copy(folder: Path) -> bool:
    """A copy of this suite's code (the release runner's `suite/` snapshot): its test data are not results.

    Known by what every checkout of the suite has at its root, whatever moves inside the package.
    """
    return (folder / "conftest.py").is_file() and (folder / "bench" / "__init__.py").is_file()


def _hidden(name: str) -> bool:
    """A hidden file: a temporary file of a save or a report in progress (bench.results.files), never a result."""
    return name.startswith(".")


def _json_files_below(folder: Path, problems: list[tuple[str, str]], notes: list[str] | None = None) -> list[Path]:
    """Every *.json file below `folder`, sorted; symbolic links to folders followed and said (in `notes`),
    unreadable folders, broken or looping links and copies of the suite said (in `problems`), not read."""

    def unreadable(error: OSError) -> None:
        problems.append((str(error.filename), f"cannot read this folder ({error.strerror})"))

    notes = [] if notes is None else notes
    seen = {os.path.realpath(folder)}
    found = []
    for root, dirs, files in os.walk(folder, onerror=unreadable, followlinks=True):
        here = Path(root)
        for name in sorted(dirs):
            path = here / name
            if _is_suite_copy(path):
                problems.append((str(path), "a copy of the suite's code, not results"))
                dirs.remove(name)
                continue
            real = os.path.realpath(path)
            if real in seen:  # a link back to a folder already read: reading it again would loop or count twice
                problems.append((str(path), f"a symbolic link to {real}, which is read already"))
                dirs.remove(name)
                continue
            seen.add(real)
            if path.is_symlink():
                notes.append(f"following the symbolic link {path} -> {real}")
        for name in files:
            path = here / name
            if path.is_symlink() and not path.exists():
                problems.append((str(path), f"a symbolic link to {os.readlink(path)}, which does not exist"))
            elif name.endswith(".json") and not _hidden(name) and path.is_file():
                found.append(path)
    return sorted(found)


def find_files(
    paths: Iterable[str | Path], warn: Callable[[str], None] = warn_stderr
) -> tuple[list[Path], list[tuple[str, str]]]:
    """Expand folders (recursively, ``*.json``) and files into a sorted, de-duplicated list."""
    found: dict[Path, Path] = {}
    problems = []
    for raw in paths:
        path = Path(raw)
        try:
            path.stat()
        except OSError as error:
            why = "a symbolic link that loops" if error.errno == errno.ELOOP else "no such file or folder"
            if error.errno not in (errno.ELOOP, errno.ENOENT, errno.ENOTDIR):
                why = f"cannot read it ({error.strerror})"
            problems.append((str(path), why))
            continue
        if path.is_dir():
            notes: list[str] = []
            inside = _json_files_below(path, problems, notes)
            for note in notes:
                warn(note)
            if not inside:
                problems.append((str(path), "folder holds no .json files"))
            for p in inside:
                found.setdefault(p.resolve(), p)
        elif path.is_file():
            found.setdefault(path.resolve(), path)  # any name: the content decides
        else:
            problems.append((str(path), "not a regular file or folder"))
    for where, why in problems:
        warn(f"skipping {where}: {why}")
    return list(found.values()), problems


