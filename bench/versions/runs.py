"""Whole-grid runs (`--mode runs`): pytest under one release, its output logged, its saved file checked."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from packaging.version import Version

from bench.engine import lifetime
from bench.versions.common import REPO_ROOT, RUNS_DIR
from bench.versions.plan import child_environment, pytest_command, save_name

_PYTEST_SUMMARY = re.compile(r"^=+ (.+?) in [0-9.]+s(?: \([^)]*\))? =+$")
# Never part of the suite copy: top-level folders of results, environments and VCS data...
_NOT_SUITE = ("results", "report", ".git", ".venv", ".pytest_cache", ".whl")
# ...and byte code wherever it is. (bench/report/ is the report package: only the top level counts.)
_NEVER_COPIED = ("__pycache__",)
# What the suite needs to run besides the files git tracks: the files a user may be editing in the
# suite's own folders (a new benchmark not committed yet). Nothing else untracked: a venv/ or data
# of the user's at the top level is theirs, not the suite's. Without git, only these are copied.
SUITE_PARTS = (
    "bench",
    "benchmarks",
    "conftest.py",
    "pyproject.toml",
    "pytest.ini",
    "requirements.txt",
    "requirements-dev.txt",
    "requirements-peers.txt",
)
# The suite itself is about 2 MiB; a copy this large holds something that is not the suite.
SNAPSHOT_CAP_BYTES = 64 * 2**20


class SnapshotError(RuntimeError):
    """The suite snapshot cannot be made (over its size cap); the message is one line."""


def _outside_suite(relative: Path) -> bool:
    """Whether a path (relative to the checkout) is not part of the suite."""
    return relative.parts[0] in _NOT_SUITE or bool(set(relative.parts) & set(_NEVER_COPIED))


def _git(root: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def _in_a_venv(relative: Path, root: Path, seen: dict[Path, bool]) -> bool:
    """Whether a path lies inside a virtual environment (a folder holding pyvenv.cfg) of the checkout."""
    for depth in range(1, len(relative.parts)):
        folder = relative.parents[len(relative.parts) - 1 - depth]
        if folder not in seen:
            seen[folder] = os.path.lexists(root / folder / "pyvenv.cfg")
        if seen[folder]:
            return True
    return False


def suite_files(root: Path = REPO_ROOT) -> tuple[list[Path], int]:
    """The files the snapshot copies (relative paths) and their total size; SnapshotError past the cap.

    What git tracks, plus the untracked, not ignored files of SUITE_PARTS;
    without git, the files of SUITE_PARTS. Links count as links (never
    followed), and nothing inside a virtual environment is copied.
    """
    tracked = _git(root, "ls-files", "-z", "--cached")
    if tracked is not None:
        extra = _git(root, "ls-files", "-z", "--others", "--exclude-standard", "--", *SUITE_PARTS) or ""
        names = {name for name in (tracked + "\0" + extra).split("\0") if name}
        candidates = sorted(Path(name) for name in names)
    else:
        candidates = []
        for part in SUITE_PARTS:
            top = root / part
            if top.is_file() or top.is_symlink():
                candidates.append(Path(part))
            elif top.is_dir():
                for folder, dirs, files in os.walk(top):  # followlinks=False: a linked folder is not entered...
                    here = Path(folder).relative_to(root)
                    candidates += [here / name for name in files]
                    candidates += [here / d for d in dirs if (Path(folder) / d).is_symlink()]  # ...but copied as a link
        candidates.sort()
    chosen, total, seen = [], 0, {}
    for relative in candidates:
        if _outside_suite(relative) or _in_a_venv(relative, root, seen):
            continue
        try:
            info = os.lstat(root / relative)
        except OSError:
            continue  # a tracked file deleted in the working tree
        if not (stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode)):
            continue  # a fifo or a device is no file of the suite
        chosen.append(relative)
        total += info.st_size if stat.S_ISREG(info.st_mode) else 0
        if total > SNAPSHOT_CAP_BYTES:
            raise SnapshotError(
                f"the suite snapshot of {root} would pass {SNAPSHOT_CAP_BYTES // 2**20} MiB (at {relative}); "
                "commit or move what is not the suite, or add it to .gitignore"
            )
    return chosen, total


def snapshot_suite(dest: Path, root: Path = REPO_ROOT) -> dict:
    """Copy the suite as it is now (suite_files) to `dest`; describe it. SnapshotError past the size cap.

    Every run executes this copy, not the live checkout: a session lasts long
    enough for someone to edit a benchmark or switch branches half-way, and
    then the code, not MLX, would differ between passes. A link is copied as
    the link it is, never as what it leads to.
    """
    files, total = suite_files(root)
    for relative in files:
        source, target = root / relative, dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            os.symlink(os.readlink(source), target)
        else:
            shutil.copy2(source, target, follow_symlinks=False)
    status = _git(root, "status", "--porcelain")
    return {
        "source": str(root),
        "path": str(dest),
        "files": len(files),
        "bytes": total,
        "commit": (_git(root, "rev-parse", "HEAD") or "").strip() or None,
        "dirty": bool(status.strip()) if status is not None else None,
    }


@dataclass
class RunRecord:
    """What happened to one (pass, release) run."""

    pass_no: int
    release: str
    status: str = "pending"  # ok | failed | timeout | skipped | rejected
    exit_code: int | None = None
    summary: str = ""
    files: list[str] = field(default_factory=list)
    seconds: float = 0.0
    log: str = ""


def _stream(cmd: list[str], cwd: Path, env: dict, log: Path, echo: bool, timeout: float | None) -> int:
    """Run a long command, copying its output to `log` (and the terminal with echo); return its status.

    The child gets its own process group, so a timeout or Ctrl-C stops pytest
    and anything it started, and nothing else.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        out.write(f"$ {shlex.join(cmd)}\n")
        out.flush()
        with lifetime.spawning():  # a Ctrl-C during the fork is delivered after it, never lost
            proc = subprocess.Popen(
                cmd,
                cwd=cwd,
                env=lifetime.child_environment(dict(os.environ if env is None else env)),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                **lifetime.start_options(),  # and it dies with this process (bench.engine.lifetime)
            )
        timer = None
        if timeout:
            timer = threading.Timer(timeout, _stop_group, args=(proc,))
            timer.start()
        try:
            for line in proc.stdout:
                out.write(line)
                if echo:
                    sys.stdout.write(line)
            return proc.wait()
        except BaseException:  # Ctrl-C above all: never leave a benchmark running behind us
            _stop_group(proc)
            raise
        finally:
            if timer is not None:
                timer.cancel()


def _stop_group(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM to the run's process group (pytest ends cleanly on it), SIGKILL if it is still there after `grace_s`."""
    lifetime.stop_groups([proc], term_grace_s=grace_s, kill_grace_s=grace_s)


def _saved_files(results: Path, name: str) -> set[Path]:
    return set(results.glob(f"*/[0-9][0-9][0-9][0-9]_{name}.json"))


def _pytest_summary(log: Path) -> str:
    """pytest's closing line ('12 passed, 2 skipped'), or ''."""
    try:
        lines = log.read_text().splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        match = _PYTEST_SUMMARY.match(line.strip())
        if match:
            return match.group(1)
    return ""


def _last_line(log: Path, width: int = 160) -> str:
    """The last non-empty line of a log (a usage error, a crash), shortened to one terminal line."""
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no output"
    last = lines[-1] if lines else "no output"
    return last if len(last) <= width else last[: width - 3] + "..."


def run_once(
    python: Path,
    release: str,
    pass_no: int,
    sizes: str,
    results: Path,
    extra: list[str],
    echo: bool,
    timeout: float | None,
    suite: Path = REPO_ROOT,
) -> RunRecord:
    """Run the grid once under one release; its saved file is checked to hold that release."""
    record = RunRecord(pass_no, release)
    name = save_name(release, pass_no)
    log = results / "logs" / f"{name}.log"
    record.log = str(log)
    storage = results / RUNS_DIR
    before = _saved_files(storage, name)
    start = time.perf_counter()
    env_dir = python.parent.parent
    record.exit_code = _stream(
        pytest_command(python, release, pass_no, sizes, storage, extra),
        suite,
        child_environment(env_dir),
        log,
        echo,
        timeout,
    )
    record.seconds = time.perf_counter() - start
    # Stopped by the timer: SIGTERM, or SIGKILL when it did not end in the grace period.
    timed_out = bool(timeout) and record.exit_code != 0 and record.seconds >= timeout
    if timed_out:
        record.summary = f"timeout: stopped after --timeout {timeout:g} s"
    else:
        record.summary = _pytest_summary(log) or _last_line(log)
    new_files = sorted(_saved_files(storage, name) - before)
    for path in new_files:
        recorded = _recorded_mlx_version(path)
        if recorded is None or Version(recorded) != Version(release):
            # A file that says it is one release but measured another must never be pooled with it.
            rejected = path.with_suffix(".json.rejected")
            path.rename(rejected)
            record.status = "rejected"
            record.summary = f"saved results report mlx {recorded}, not {release}; moved to {rejected.name}"
            return record
        record.files.append(str(path))
    if timed_out:
        record.status = "timeout"
    elif record.exit_code == 0 and record.files:
        record.status = "ok"
    else:
        record.status = "failed"
    return record


def _recorded_mlx_version(path: Path) -> str | None:
    try:
        return json.loads(path.read_text()).get("machine_info", {}).get("mlx_version")
    except (OSError, ValueError):
        return None
