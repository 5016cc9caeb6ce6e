"""Per-release virtual environments: built once in a cache folder, verified, reused, listed, cleared.

Only folders the suite built are ever reused or deleted, never one another
session is using, and no link in the cache is followed (bench.versions.env_ownership).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

from bench.engine import lifetime
from bench.results.releases import version_key
from bench.versions import env_ownership
from bench.versions.common import CACHE_ENV_VAR, MARKER_NAME, InstallError
from bench.versions.pins import PinSet, mlx_spec
from bench.versions.targets import ReleaseError, safe_key


def default_cache_dir() -> Path:
    """Where environments live: $MLX_SGD_BENCH_CACHE, else the user's cache folder."""
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "mlx-sgd-bench" / "envs"


def is_environment(path: Path) -> bool:
    """Whether `path` is one of this suite's environments: a real folder (not a link) the suite built or is building."""
    return env_ownership.owned(path)


def env_python(env_dir: Path) -> Path:
    """The interpreter of a virtual environment."""
    return env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


@dataclass
class EnvCache:
    """The folder of per-release environments: mlx-<version>/ each, with a marker when complete."""

    root: Path

    def path(self, release: str) -> Path:
        """The environment folder of one release (its cache key); ReleaseError for a key that could leave the cache."""
        path = self.root / f"mlx-{safe_key(release)}"
        # Belt and braces: the name itself stays in the cache. Not path.resolve(): a symbolic link at
        # that name is no environment of ours (is_environment), to be refused by name, not followed.
        if path.parent.resolve() != self.root.resolve() or path.name in (".", ".."):
            raise ReleaseError(f"{release!r} would name a folder outside {self.root}")
        return path

    def marker(self, release: str) -> dict | None:
        """The marker of a fully built environment, or None (never read through a link)."""
        return env_ownership.read_json_file(self.path(release) / MARKER_NAME)

    def is_ready(self, release: str, wanted: dict) -> bool:
        """Whether the environment is the suite's, finished installing, and has exactly the wanted pins."""
        if not is_environment(self.path(release)):
            return False
        marker = self.marker(release)
        if marker is None or not env_python(self.path(release)).exists():
            return False
        return all(marker.get(key) == value for key, value in wanted.items())

    def entries(self) -> list[dict]:
        """One dict per environment folder: release, path, complete or not, size, marker."""
        if not self.root.is_dir():
            return []
        found = []
        for path in sorted(self.root.glob("mlx-*")):
            if not is_environment(path):
                continue  # another project's folder that happens to be named mlx-*: never ours to list or delete
            release = path.name.removeprefix("mlx-")
            found.append(
                {
                    "release": release,
                    "path": path,
                    "complete": self.marker(release) is not None,
                    "bytes": _folder_bytes(path),
                    "marker": self.marker(release) or {},
                }
            )
        return sorted(found, key=lambda e: version_key(e["release"]))

    def clear(self, releases: list[str] | None = None, on_skip=None) -> list[Path]:
        """Delete the named environments (all when None); return what was deleted.

        Only this suite's environments (env_ownership.owned), and none that
        another session's workers run from or that is being built: those are
        left, and on_skip(path, why) says so in one line.
        """
        targets = [e["path"] for e in self.entries()] if not releases else [self.path(r) for r in releases]
        removed = []
        for path in targets:
            if not is_environment(path):
                if (path.exists() or path.is_symlink()) and on_skip:
                    on_skip(path, "not one of this suite's environments")
                continue
            why = _delete(self, path)
            if why:
                if on_skip:
                    on_skip(path, why)
                continue
            removed.append(path)
        return removed


def _delete(cache: EnvCache, path: Path) -> str | None:
    """Delete one of the suite's environments and its install log; why not, when it was left."""
    with _build_lock(cache, path.name, wait=False) as free:
        if not free:
            return "another process is building it"
        with env_ownership.exclusive(path) as alone:
            if not alone:
                return "another session's workers are running from it"
            shutil.rmtree(path)
    log = path.with_name(path.name + ".install.log")
    if log.is_file() or log.is_symlink():
        log.unlink()  # a link is removed, never what it leads to
    return None


def _folder_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def _call(cmd: list[str], cwd: Path | None = None, env: dict | None = None) -> tuple[int, str]:
    """Run a short command, return (exit status, stdout+stderr); the one seam the tests replace."""
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **lifetime.start_options(own_session=False),  # no install goes on after the suite was killed
    )
    return proc.returncode, proc.stdout


def _last_error_line(output: str) -> str:
    """The line of a pip (or Python) failure worth showing: its last ERROR, else its last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line.removeprefix("ERROR: ") for line in lines if line.startswith("ERROR:")]
    if errors:
        return errors[-1]
    return lines[-1] if lines else "no output"


# Runs inside a new environment: what it really imports, not what pip says it installed.
_VERIFY_SCRIPT = """
import importlib.metadata as m, json, sys
import mlx.core
names = json.loads(sys.argv[1])
def version(name):
    try:
        return m.version(name)
    except m.PackageNotFoundError:
        return None
print(json.dumps({"mlx": mlx.core.__version__, "dists": {n: version(n) for n in names}}))
"""


@contextlib.contextmanager
def _build_lock(cache: EnvCache, name: str, wait: bool = True):
    """Hold an exclusive lock while one environment is checked, built or deleted; yields whether it was taken.

    Several people share this machine and may start runs at once; two pip
    processes writing one environment would corrupt it. wait=False: give up
    at once when another process holds it. The lock file is never a link.
    """
    cache.root.mkdir(parents=True, exist_ok=True)
    if env_ownership.fcntl is None:
        yield True
        return
    fcntl = env_ownership.fcntl
    fd = env_ownership.open_private(cache.root / f".{name}.lock", os.O_RDWR | os.O_CREAT)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                yield False
                return
            print(f"{name}: waiting for another process building this environment", flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield True
    finally:
        os.close(fd)


def wanted_marker(release: str, pins: PinSet, spec: str | None = None) -> dict:
    """The marker fields an environment must match to be reused."""
    return {
        "release": release,
        "spec": spec or mlx_spec(release),
        "pins": list(pins.pins),
        "python": platform.python_version(),
        "platform": f"{sys.platform}-{platform.machine()}",
    }


def ensure_env(
    release: str, cache: EnvCache, pins: PinSet, spec: str | None = None, version: str | None = None
) -> tuple[Path, str]:
    """The interpreter of a ready environment for `release`, building it if needed; (python, what was done).

    Raises InstallError with a one-line reason. A half-built environment has no
    marker, so it is rebuilt from scratch, never reused; a failed build is
    removed so it does not sit in the cache.
    """
    wanted = wanted_marker(release, pins, spec)
    path = cache.path(release)
    with _build_lock(cache, path.name):
        if cache.is_ready(release, wanted):
            env_ownership.hold(path)  # in use until this process ends: no other session deletes it meanwhile
            return env_python(path), "ready"
        done = "built"
        links = env_ownership.linked_markers(path)
        if links:
            raise env_ownership.Refused(f"{links[0]} is a symbolic link; refused, not followed (remove it)")
        if (path.exists() or path.is_symlink()) and not is_environment(path):
            # Someone else's folder (or a link) under our name: never ours to delete.
            raise InstallError(f"{path} exists and is not one of this suite's environments; move it or use --cache-dir")
        if path.exists():
            why = "its pinned packages changed" if cache.marker(release) else "an earlier build did not finish"
            done = f"rebuilt ({why})"
            with env_ownership.exclusive(path) as alone:
                if not alone:
                    raise InstallError(
                        f"{path} needs a rebuild ({why}) but another session's workers are running from it; "
                        "try again when it ends, or use --cache-dir"
                    )
                shutil.rmtree(path)
        log = path.with_name(path.name + ".install.log")
        start = time.perf_counter()
        try:
            env_ownership.claim(path, release)
            _build_env(version or release, path, wanted, log)
        except InstallError:
            if is_environment(path):
                shutil.rmtree(path, ignore_errors=True)
            raise
        env_ownership.hold(path)
    return env_python(path), f"{done} in {time.perf_counter() - start:.0f} s"


def find_uv() -> str | None:
    """The uv that builds environments: beside this interpreter (the README's set-up installs it there), else on PATH.

    A virtual environment's bin/ is on PATH only when activated; the suite run
    as `.venv/bin/python -m bench.versions` still finds the uv installed with it.
    """
    beside = Path(sys.executable).parent / ("uv.exe" if os.name == "nt" else "uv")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("uv")


def installer_of(python: Path) -> str | None:
    """Which tool built the environment of this interpreter ("uv" or "pip"), from its marker; None if unknown."""
    marker = env_ownership.read_json_file(Path(python).parent.parent / MARKER_NAME)
    return marker.get("installer") if marker else None


def _build_env(release: str, path: Path, wanted: dict, log: Path) -> None:
    transcript = []

    def step(what: str, cmd: list[str]) -> str:
        """Run one install step, keep its output in the log, raise InstallError on failure."""
        rc, output = _call(cmd)
        transcript.append(f"$ {shlex.join(cmd)}\n{output}")
        env_ownership.write_private(log, "\n".join(transcript))  # never through a link planted at its name
        if rc != 0:
            raise InstallError(f"{what}: {_last_error_line(output)}; log: {log}")
        return output

    # Fully isolated (no --system-site-packages): nothing from the host can leak in.
    # Into the folder claim() made (venv accepts an existing folder): the owner file is there first.
    step("python -m venv failed", [sys.executable, "-m", "venv", str(path)])
    python = str(env_python(path))
    # MLX first on the command line; one install call so the resolver sees MLX and the pins together.
    # uv, where installed, resolves and installs the same pins in seconds instead of tens of seconds.
    uv = find_uv()
    if uv:
        install = [uv, "pip", "install", "--python", python, "--compile-bytecode", "--no-progress"]
    else:
        install = [python, "-m", "pip", "install", "--no-input", "--progress-bar", "off"]
    step(f"{'uv pip' if uv else 'pip'} install failed", [*install, wanted["spec"], *wanted["pins"]])
    names = ["mlx"] + [Requirement(p).name for p in wanted["pins"] if "==" in p]
    found = json.loads(
        step("import mlx.core failed", [python, "-c", _VERIFY_SCRIPT, json.dumps(names)]).strip().splitlines()[-1]
    )
    if Version(found["mlx"]) != Version(release):
        raise InstallError(f"mlx.core.__version__ is {found['mlx']}, not {release}; log: {log}")
    wrong = [p for p in wanted["pins"] if "==" in p and found["dists"].get(Requirement(p).name) != p.split("==", 1)[1]]
    if wrong:
        raise InstallError(f"pins not honoured ({', '.join(wrong)}); log: {log}")
    marker = dict(
        wanted,
        suite=env_ownership.SUITE_IDENTITY,
        created=dt.datetime.now().isoformat(timespec="seconds"),
        mlx_import_version=found["mlx"],
        installer="uv" if uv else "pip",
    )
    env_ownership.write_private(path / MARKER_NAME, json.dumps(marker, indent=2))
