"""Run the benchmark suite under several MLX releases and compare them.

    python -m bench.versions 0.29.4 0.31.1 0.32.4 [--sizes quick] [--passes 3] [-- PYTEST_ARGS]

Each release gets its own virtual environment, built once in a cache folder and
reused: `mlx[cpu]==V` on Linux (`mlx==V` on macOS) plus every other package the
suite needs, pinned to the versions installed in the interpreter running this
command, so MLX is the only thing that differs between environments.

Runs are interleaved: pass 1 runs the grid once under every release, then pass 2
again, and so on, with the order of releases rotated from pass to pass. Machine
drift (heat, other load) then lands on every release alike instead of on
whichever release happened to run last. Each run is saved by pytest-benchmark as
`<results>/runs/<machine>/NNNN_mlx-<V>-pass<P>.json` (raw round times kept), and
its `machine_info["mlx_version"]` is checked against the release it was meant
to run; pytest's output goes to `<results>/logs/`, and `<results>/versions-run.json`
records the plan and every outcome. Every run executes `<results>/suite/`, a copy
of the checkout taken when the command starts, so editing the suite while a
session runs cannot change what later passes measure. When all runs are done,
`python -m bench.report <results>/runs` compares the releases and prints its
verdicts.

A release that cannot be installed, or a run that fails, is reported in one
line; the other releases still run and every result already saved stays.

Exit status: 0 all ran; 1 `--fail-on-regression` and some case regressed;
2 bad command line; 3 a release could not be installed, a run or the report
failed (what did run is saved and reported).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from bench.releases import DEFAULT_THRESHOLD, parse_threshold, version_key

REPO_ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = REPO_ROOT / "requirements.txt"
CACHE_ENV_VAR = "MLX_SGD_BENCH_CACHE"
MARKER_NAME = "mlx-sgd-bench-env.json"  # written last: its presence means "fully built"
MANIFEST_NAME = "versions-run.json"
RUNS_DIR = "runs"  # pytest-benchmark storage inside the results folder: all the report reads
SUITE_DIR = "suite"  # the copy of the suite every run executes
# Never part of the suite copy: top-level folders of results, environments and VCS data...
_NOT_SUITE = ("results", "report", ".git", ".venv", ".pytest_cache", ".whl")
# ...and byte code wherever it is. (bench/report/ is the report package: only the top level counts.)
_NEVER_COPIED = ("__pycache__",)


def _outside_suite(relative: Path) -> bool:
    """Whether a path (relative to the checkout) is not part of the suite."""
    return relative.parts[0] in _NOT_SUITE or bool(set(relative.parts) & set(_NEVER_COPIED))
ORDERS = ("rotate", "shuffle", "fixed")
DEFAULT_PASSES = 3

EXIT_OK, EXIT_REGRESSION, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3

# mlx, mlx-cpu, mlx-metal, mlx-cuda-12...: the packages that *are* the release under test.
_MLX_DIST = re.compile(r"^mlx(-|$)")
_PYTEST_SUMMARY = re.compile(r"^=+ (.+?) in [0-9.]+s(?: \([^)]*\))? =+$")
_COMMENT = re.compile(r"(^|\s)#.*$")


class InstallError(Exception):
    """A release whose environment could not be built; the message is one line."""


# --------------------------------------------------------------------------- pins


@dataclass(frozen=True)
class PinSet:
    """What every environment installs besides MLX, and what could not be pinned."""

    pins: tuple[str, ...]
    notes: tuple[str, ...] = ()


def _installed_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _installed_requires(name: str) -> list[str]:
    try:
        return importlib.metadata.requires(name) or []
    except importlib.metadata.PackageNotFoundError:
        return []


def is_mlx_distribution(name: str) -> bool:
    """Whether a distribution belongs to MLX itself (mlx, mlx-cpu, mlx-metal, ...)."""
    return bool(_MLX_DIST.match(canonicalize_name(name)))


def read_requirements(text: str) -> list[Requirement]:
    """The requirements of a requirements.txt, comments and pip options dropped."""
    found = []
    for raw in text.splitlines():
        line = _COMMENT.sub("", raw).strip()  # pip's rule: '#' at the start or after a space
        if not line or line.startswith("-"):  # blank, comment, or an option like -r / --index-url
            continue
        found.append(Requirement(line))
    return found


def _applies(req: Requirement, extras: frozenset[str], marker_env: dict) -> bool:
    if req.marker is None:
        return True
    # A dependency behind an extra applies only when that extra was asked for.
    return any(req.marker.evaluate({**marker_env, "extra": extra}) for extra in (extras or {""}))


def pin_set(
    requirements_text: str,
    version_of=_installed_version,
    requires_of=_installed_requires,
    marker_env: dict | None = None,
) -> PinSet:
    """`name==version` for every non-MLX requirement and its dependencies, as installed here.

    Dependencies are followed too (pandas -> python-dateutil, pytest-benchmark
    -> py-cpuinfo2, ...): a transitive package left to float could differ
    between environments built on different days. A top-level requirement not
    installed here is kept as written, with a note.
    """
    env = dict(default_environment() if marker_env is None else marker_env)
    pins: dict[str, str] = {}
    notes: list[str] = []
    queue = [(req, True) for req in read_requirements(requirements_text) if _applies(req, frozenset(), env)]
    while queue:
        req, top_level = queue.pop(0)
        name = canonicalize_name(req.name)
        if is_mlx_distribution(name) or name in pins:
            continue
        version = version_of(name)
        if version is None:
            if top_level:
                spec = f"{name}{req.specifier}"
                pins[name] = spec
                notes.append(f"{name} is not installed in {sys.executable}: every environment installs {spec!r}, unpinned")
            continue  # a missing optional dependency: pip resolves it if anything needs it
        pins[name] = f"{name}=={version}"
        for dep_text in requires_of(name):
            try:
                dep = Requirement(dep_text)
            except InvalidRequirement:
                continue  # a malformed line in someone's metadata: pip will complain if it matters
            if _applies(dep, frozenset(req.extras), env):
                queue.append((dep, False))
    return PinSet(tuple(pins[k] for k in sorted(pins)), tuple(notes))


def mlx_spec(release: str, system: str | None = None) -> str:
    """The pip requirement for one MLX release on this OS."""
    system = system or sys.platform
    # Linux wheels need the [cpu] extra for a CPU backend (it pulls mlx-cpu of the same version).
    return f"mlx[cpu]=={release}" if system.startswith("linux") else f"mlx=={release}"


# --------------------------------------------------------------------------- environments


def default_cache_dir() -> Path:
    """Where environments live: $MLX_SGD_BENCH_CACHE, else the user's cache folder."""
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "mlx-sgd-bench" / "envs"


def env_python(env_dir: Path) -> Path:
    """The interpreter of a virtual environment."""
    return env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


@dataclass
class EnvCache:
    """The folder of per-release environments: mlx-<version>/ each, with a marker when complete."""

    root: Path

    def path(self, release: str) -> Path:
        """The environment folder of one release."""
        return self.root / f"mlx-{release}"

    def marker(self, release: str) -> dict | None:
        """The marker of a fully built environment, or None."""
        try:
            return json.loads((self.path(release) / MARKER_NAME).read_text())
        except (OSError, ValueError):
            return None

    def is_ready(self, release: str, wanted: dict) -> bool:
        """Whether the environment exists, finished installing, and has exactly the wanted pins."""
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
            if not path.is_dir():
                continue
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

    def clear(self, releases: list[str] | None = None) -> list[Path]:
        """Delete the named environments (all when None); return what was deleted."""
        targets = [e["path"] for e in self.entries()] if not releases else [self.path(r) for r in releases]
        removed = []
        for path in targets:
            if path.is_dir():
                shutil.rmtree(path)
                removed.append(path)
            log = path.with_name(path.name + ".install.log")
            if log.exists():
                log.unlink()
        return removed


def _folder_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def _call(cmd: list[str], cwd: Path | None = None, env: dict | None = None) -> tuple[int, str]:
    """Run a short command, return (exit status, stdout+stderr); the one seam the tests replace."""
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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
def _env_lock(cache: EnvCache, release: str):
    """Hold an exclusive lock while one release's environment is checked or built.

    Several people share this machine and may start runs at once; two pip
    processes writing one environment would corrupt it.
    """
    cache.root.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # no fcntl (Windows): MLX has no wheels there anyway
        yield
        return
    with open(cache.root / f".mlx-{release}.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"mlx {release}: waiting for another process building this environment", flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def wanted_marker(release: str, pins: PinSet) -> dict:
    """The marker fields an environment must match to be reused."""
    return {
        "release": release,
        "spec": mlx_spec(release),
        "pins": list(pins.pins),
        "python": platform.python_version(),
        "platform": f"{sys.platform}-{platform.machine()}",
    }


def ensure_env(release: str, cache: EnvCache, pins: PinSet) -> tuple[Path, str]:
    """The interpreter of a ready environment for `release`, building it if needed; (python, what was done).

    Raises InstallError with a one-line reason. A half-built environment has no
    marker, so it is rebuilt from scratch, never reused; a failed build is
    removed so it does not sit in the cache.
    """
    wanted = wanted_marker(release, pins)
    path = cache.path(release)
    with _env_lock(cache, release):
        if cache.is_ready(release, wanted):
            return env_python(path), "ready"
        done = "built"
        if path.exists():
            why = "its pinned packages changed" if cache.marker(release) else "an earlier build did not finish"
            done = f"rebuilt ({why})"
            shutil.rmtree(path)
        log = path.with_name(path.name + ".install.log")
        start = time.perf_counter()
        try:
            _build_env(release, path, wanted, log)
        except InstallError:
            shutil.rmtree(path, ignore_errors=True)
            raise
    return env_python(path), f"{done} in {time.perf_counter() - start:.0f} s"


def _build_env(release: str, path: Path, wanted: dict, log: Path) -> None:
    transcript = []

    def step(what: str, cmd: list[str]) -> str:
        """Run one install step, keep its output in the log, raise InstallError on failure."""
        rc, output = _call(cmd)
        transcript.append(f"$ {shlex.join(cmd)}\n{output}")
        log.write_text("\n".join(transcript))
        if rc != 0:
            raise InstallError(f"{what}: {_last_error_line(output)}; log: {log}")
        return output

    # Fully isolated (no --system-site-packages): nothing from the host can leak in.
    step("python -m venv failed", [sys.executable, "-m", "venv", str(path)])
    python = str(env_python(path))
    # MLX first on the command line; one pip call so the resolver sees MLX and the pins together.
    step("pip install failed", [python, "-m", "pip", "install", "--no-input", "--progress-bar", "off", wanted["spec"], *wanted["pins"]])
    names = ["mlx"] + [Requirement(p).name for p in wanted["pins"] if "==" in p]
    found = json.loads(step("import mlx.core failed", [python, "-c", _VERIFY_SCRIPT, json.dumps(names)]).strip().splitlines()[-1])
    if Version(found["mlx"]) != Version(release):
        raise InstallError(f"mlx.core.__version__ is {found['mlx']}, not {release}; log: {log}")
    wrong = [p for p in wanted["pins"] if "==" in p and found["dists"].get(Requirement(p).name) != p.split("==", 1)[1]]
    if wrong:
        raise InstallError(f"pins not honoured ({', '.join(wrong)}); log: {log}")
    marker = dict(wanted, created=dt.datetime.now().isoformat(timespec="seconds"), mlx_import_version=found["mlx"])
    (path / MARKER_NAME).write_text(json.dumps(marker, indent=2))


# --------------------------------------------------------------------------- plan


def run_order(releases: list[str], passes: int, order: str = "rotate", seed: int = 0) -> list[tuple[int, str]]:
    """(pass, release) in the order they run: every release once per pass, passes one after another.

    rotate: pass p starts at release p (A B C, B C A, C A B), so with as many
    passes as releases each release runs in every position exactly once;
    shuffle: a seeded random order per pass; fixed: the same order every pass.
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}, not {order!r}")
    rng = random.Random(seed)
    plan = []
    for index in range(passes):
        if order == "rotate":
            shift = index % len(releases) if releases else 0
            this_pass = releases[shift:] + releases[:shift]
        elif order == "shuffle":
            this_pass = list(releases)
            rng.shuffle(this_pass)
        else:
            this_pass = list(releases)
        plan.extend((index + 1, release) for release in this_pass)
    return plan


def save_name(release: str, pass_no: int) -> str:
    """The --benchmark-save name of one run; the saved file is NNNN_<name>.json."""
    return f"mlx-{release}-pass{pass_no}"


def pytest_command(python: Path, release: str, pass_no: int, sizes: str, storage: Path, extra: list[str]) -> list[str]:
    """The pytest command of one run; the user's pytest arguments come last, so they win."""
    return [
        str(python),
        "-m",
        "pytest",
        "--benchmark-only",
        f"--sizes={sizes}",
        f"--benchmark-storage=file://{storage.resolve()}",
        f"--benchmark-save={save_name(release, pass_no)}",
        *extra,
    ]


def child_environment(env_dir: Path) -> dict:
    """os.environ for a run inside `env_dir`, with everything that could leak the host's packages removed."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", CACHE_ENV_VAR)}
    # CACHE_ENV_VAR starts with MLX_, and bench.environment records every MLX_* variable as
    # performance-relevant: a cache path is not, so it stays out of the results.
    env["VIRTUAL_ENV"] = str(env_dir)
    env["PATH"] = f"{env_python(env_dir).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONNOUSERSITE"] = "1"
    return env


# --------------------------------------------------------------------------- runs


def _git(root: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def snapshot_suite(dest: Path, root: Path = REPO_ROOT) -> dict:
    """Copy the suite as it is now (tracked and untracked, not ignored, files) to `dest`; describe it.

    Every run executes this copy, not the live checkout: a session lasts long
    enough for someone to edit a benchmark or switch branches half-way, and
    then the code, not MLX, would differ between passes.
    """
    listed = _git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    if listed is not None:
        files = [root / name for name in listed.split("\0") if name]
    else:  # not a git checkout: everything but the obvious non-suite folders
        files = [p for p in root.rglob("*") if p.is_file() and not _outside_suite(p.relative_to(root))]
    copied = 0
    for path in files:
        relative = path.relative_to(root)
        if _outside_suite(relative) or not path.is_file():
            continue  # results of earlier sessions, or a tracked file deleted in the working tree
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
        copied += 1
    status = _git(root, "status", "--porcelain")
    return {
        "source": str(root),
        "path": str(dest),
        "files": copied,
        "commit": (_git(root, "rev-parse", "HEAD") or "").strip() or None,
        "dirty": bool(status.strip()) if status is not None else None,
    }


@dataclass
class RunRecord:
    """What happened to one (pass, release) run."""

    pass_no: int
    release: str
    status: str = "pending"  # ok | failed | skipped | rejected
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
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
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
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(grace_s)
            return
        except subprocess.TimeoutExpired:
            continue


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
        pytest_command(python, release, pass_no, sizes, storage, extra), suite, child_environment(env_dir), log, echo, timeout
    )
    record.seconds = time.perf_counter() - start
    if timeout and record.exit_code == -signal.SIGTERM:
        record.summary = f"stopped after --timeout {timeout:g} s"
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
    if record.exit_code == 0 and record.files:
        record.status = "ok"
    else:
        record.status = "failed"
    return record


def _recorded_mlx_version(path: Path) -> str | None:
    try:
        return json.loads(path.read_text()).get("machine_info", {}).get("mlx_version")
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------- report


def report_command(results: Path, out: Path, threshold: float, fail_on_regression: bool) -> list[str]:
    """The report's version comparison over the runs of one results folder."""
    # Only runs/: the manifest, logs and the report's own files are not results.
    cmd = [sys.executable, "-m", "bench.report", str(results / RUNS_DIR), "--out", str(out), "--threshold", f"{threshold:g}"]
    return cmd + (["--fail-on-regression"] if fail_on_regression else [])


def run_report(results: Path, out: Path, threshold: float, fail_on_regression: bool) -> int:
    """Run the report (its output goes to the terminal); return its exit status."""
    return subprocess.run(report_command(results, out, threshold, fail_on_regression), cwd=REPO_ROOT).returncode


def read_verdicts(csv_path: Path) -> list[dict]:
    """Rows of the report's versions.csv, regressions first; [] if it is not there."""
    import csv

    try:
        with open(csv_path, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError:
        return []
    return sorted(rows, key=lambda row: not is_regression(row))


def is_regression(row: dict) -> bool:
    """Whether a versions.csv row is a regression (its `regression` column is true)."""
    return str(row.get("regression", "")).strip().lower() in ("true", "1", "yes")


def control_regressions(rows: list[dict]) -> list[dict]:
    """Regressions of non-MLX cases: NumPy is pinned to one version everywhere, so these are the machine's noise."""
    return [row for row in rows if is_regression(row) and row.get("backend", "mlx") != "mlx"]


def verdict_table(rows: list[dict]) -> list[str]:
    """Verdict counts per pair of releases (each against the previous one), pairs with regressions first."""
    counts: dict[tuple[str, str], Counter] = {}
    for row in rows:
        if row.get("against", "previous") != "previous":
            continue  # "oldest" rows repeat tests already counted, or span several releases
        pair = (row.get("baseline_version", "?"), row.get("mlx_version", "?"))
        tally = counts.setdefault(pair, Counter())
        tally["regression" if is_regression(row) else row.get("verdict", "?")] += 1
    order = sorted(counts, key=lambda pair: (-counts[pair]["regression"], version_key(pair[1])))
    lines = []
    for base, new in order:
        tally = counts[base, new]
        named = ("regression", "slower", "faster", "same", "undecided")
        parts = [f"{tally[v]} {v}" for v in named] + [f"{n} {v}" for v, n in tally.items() if v not in named]
        lines.append(f"  mlx {base} -> {new}: {', '.join(parts)}")
    return lines


# --------------------------------------------------------------------------- command line


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command line of python -m bench.versions."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.versions",
        usage="%(prog)s RELEASE [RELEASE ...] [options] [-- PYTEST_ARGS]\n"
        "       %(prog)s --list-envs | --clear-envs [RELEASE ...]",
        description="Run the benchmark suite under several MLX releases, interleaved, then compare them.",
        epilog="Arguments after -- go to every pytest run, e.g. -- -k 'linear and not blog' --rounds 5. "
        "Exit status: 0 ok, 1 regression (with --fail-on-regression), 2 usage, "
        "3 a release did not install or a run/the report failed (the rest is saved).",
    )
    parser.add_argument("releases", nargs="*", metavar="RELEASE", help="MLX releases, e.g. 0.29.4 0.31.1 0.32.4")
    parser.add_argument("--sizes", default="quick", help="size grid for every run: quick (default), full, or 5000x50,...")
    parser.add_argument(
        "--passes",
        type=_positive_int,
        default=DEFAULT_PASSES,
        help=f"times the grid runs under each release, interleaved (default {DEFAULT_PASSES})",
    )
    parser.add_argument(
        "--order",
        choices=ORDERS,
        default="rotate",
        help="order of releases within a pass: rotate (default; shifts by one each pass), shuffle (seeded), fixed",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of --order shuffle (default 0)")
    parser.add_argument(
        "--threshold",
        type=parse_threshold,
        default=DEFAULT_THRESHOLD,
        help="a regression is slower by more than this, and significant: 10%% or 0.1 (default 10%%)",
    )
    parser.add_argument("--fail-on-regression", action="store_true", help="exit 1 when any case regresses")
    parser.add_argument("--results", type=Path, help="folder for saved runs (default results/versions/<timestamp>)")
    parser.add_argument("--out", type=Path, help="folder for the report (default <results>/report)")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        help=f"folder of the per-release environments (default ${CACHE_ENV_VAR}, else ~/.cache/mlx-sgd-bench/envs)",
    )
    parser.add_argument("--timeout", type=float, help="seconds one pytest run may take before it is stopped (default none)")
    parser.add_argument("--dry-run", action="store_true", help="print the environments and the order of runs; run nothing")
    parser.add_argument("-v", "--verbose", action="store_true", help="show pytest's output as it runs (it is always logged)")
    parser.add_argument("--list-envs", action="store_true", help="list the cached environments and exit")
    parser.add_argument(
        "--clear-envs", action="store_true", help="delete cached environments (only the RELEASEs named, if any) and exit"
    )
    return parser


def split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    """(our arguments, pytest's): everything after the first -- belongs to pytest."""
    if "--" in argv:
        index = argv.index("--")
        return argv[:index], argv[index + 1 :]
    return argv, []


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse the command line; pytest arguments end up in .pytest_args."""
    ours, theirs = split_argv(argv)
    parser = build_parser()
    args, unknown = parser.parse_known_args(ours)
    if unknown:
        parser.error(f"unrecognized arguments: {shlex.join(unknown)} (pytest's options go after --, e.g. -- -k linear)")
    args.pytest_args = theirs
    if not args.releases and not (args.list_envs or args.clear_envs):
        parser.error("name at least one MLX release, e.g. 0.29.4 0.31.1 0.32.4")
    # Validate the grid here, before minutes of installing: bench.sizes is plain Python.
    from bench.sizes import SizeError, parse_sizes

    try:
        parse_sizes(args.sizes)
    except SizeError as error:
        parser.error(str(error))
    args.releases = list(dict.fromkeys(args.releases))  # a release named twice runs once per pass
    args.cache_dir = args.cache_dir or default_cache_dir()
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    args.results = (args.results or REPO_ROOT / "results" / "versions" / stamp).resolve()
    args.out = (args.out or args.results / "report").resolve()
    return args


def _size_text(nbytes: int) -> str:
    return f"{nbytes / 2**20:,.0f} MiB"


def list_envs(cache: EnvCache, pins: PinSet) -> int:
    """Print the cached environments, one line each."""
    entries = cache.entries()
    if not entries:
        print(f"no environments in {cache.root}")
        return EXIT_OK
    print(f"environments in {cache.root}:")
    for entry in entries:
        marker = entry["marker"]
        if not entry["complete"]:
            state = "incomplete (will be rebuilt)"
        elif marker.get("pins") != list(pins.pins) or marker.get("python") != platform.python_version():
            state = f"stale pins (will be rebuilt), built {marker.get('created', '?')}"
        else:
            state = f"ready, built {marker.get('created', '?')}"
        print(f"  mlx {entry['release']:<10} {_size_text(entry['bytes']):>10}  {state}  {entry['path']}")
    return EXIT_OK


def clear_envs(cache: EnvCache, releases: list[str]) -> int:
    """Delete cached environments and say which."""
    removed = cache.clear(releases or None)
    for path in removed:
        print(f"removed {path}")
    if not removed:
        print(f"nothing to remove in {cache.root}")
    return EXIT_OK


class Manifest:
    """versions-run.json in the results folder: the plan and every run's outcome, rewritten as they happen."""

    def __init__(self, results: Path, plan: dict):
        self.path = results / MANIFEST_NAME
        self.data = dict(plan, runs=[], install_failures={})
        self.write()

    def write(self) -> None:
        """Save it now, so an interrupted session still says what it did."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=2, default=str))


def print_plan(args, cache: EnvCache, pins: PinSet, order: list[tuple[int, str]]) -> None:
    """What a run would do: environments, pins and the order of runs."""
    print(f"plan: {len(args.releases)} releases x {args.passes} passes = {len(order)} runs, sizes {args.sizes}, order {args.order}")
    print(f"environments in {cache.root}:")
    for release in args.releases:
        state = "ready" if cache.is_ready(release, wanted_marker(release, pins)) else "to build"
        print(f"  mlx {release}: {cache.path(release)} ({state}), installs {mlx_spec(release)} + {len(pins.pins)} pinned packages")
    print(f"suite: a copy of {REPO_ROOT} in {args.results / SUITE_DIR}, where every run executes")
    print(f"pinned: {' '.join(pins.pins)}")
    for note in pins.notes:
        print(f"note: {note}")
    for index, (pass_no, release) in enumerate(order, 1):
        storage = args.results / RUNS_DIR
        cmd = pytest_command(env_python(cache.path(release)), release, pass_no, args.sizes, storage, args.pytest_args)
        print(f"  [{index}/{len(order)}] pass {pass_no} mlx {release}: {shlex.join(cmd)}")
    print(f"then: {shlex.join(report_command(args.results, args.out, args.threshold, args.fail_on_regression))}")


def _valid_release(release: str) -> str | None:
    """None if `release` reads as a version number, else why not."""
    try:
        Version(release)
    except InvalidVersion:
        return "not a release number"
    return None


def install_all(releases: list[str], cache: EnvCache, pins: PinSet, manifest: Manifest) -> dict[str, Path]:
    """Every release's interpreter, building environments as needed; one line per release, whatever happens."""
    pythons: dict[str, Path] = {}
    print(f"environments in {cache.root} (a new one downloads MLX and the pinned packages):", flush=True)
    for release in releases:
        problem = _valid_release(release)
        try:
            if problem:
                raise InstallError(problem)
            pythons[release], done = ensure_env(release, cache, pins)
            print(f"mlx {release}: environment {done}", flush=True)
        except InstallError as error:
            print(f"mlx {release}: could not install ({error})", flush=True)
            manifest.data["install_failures"][release] = str(error)
            manifest.write()
    return pythons


def run_all(args: argparse.Namespace, order: list[tuple[int, str]], pythons: dict[str, Path], manifest: Manifest) -> None:
    """Run the grid in `order`; a failing run is one line and the loop goes on."""
    for index, (pass_no, release) in enumerate(order, 1):
        label = f"[{index}/{len(order)}] pass {pass_no} mlx {release}"
        print(f"{label}: running ...", flush=True)
        try:
            record = run_once(
                pythons[release],
                release,
                pass_no,
                args.sizes,
                args.results,
                args.pytest_args,
                args.verbose,
                args.timeout,
                suite=args.results / SUITE_DIR,
            )
        except OSError as error:  # the interpreter vanished, the disk is full...: report it, go on
            record = RunRecord(pass_no, release, status="failed", summary=f"could not run: {error}")
        manifest.data["runs"].append(asdict(record))
        manifest.write()
        saved = f" -> {Path(record.files[0]).name}" if record.files else ""
        code = "" if record.exit_code in (0, None) else f" (pytest exit {record.exit_code}; log {record.log})"
        print(f"{label}: {record.status}, {record.summary}, {record.seconds:.0f} s{saved}{code}", flush=True)


def compare(args: argparse.Namespace, manifest: Manifest) -> tuple[int, bool]:
    """Run the report's version comparison; (report exit status, whether any case regressed)."""
    print(f"report: {shlex.join(report_command(args.results, args.out, args.threshold, args.fail_on_regression))}", flush=True)
    csv_path = args.out / "versions.csv"
    csv_path.unlink(missing_ok=True)  # a stale table from an earlier report must not pass for this one's
    status = run_report(args.results, args.out, args.threshold, args.fail_on_regression)
    verdicts = read_verdicts(csv_path)
    regressions = [row for row in verdicts if is_regression(row)]
    manifest.data.update(report_exit=status, regressions=len(regressions))
    manifest.write()
    if verdicts:
        # The report printed each regression; this is the whole picture, one line per pair of releases.
        print(f"verdicts per case ({csv_path}; 'slower' below the {args.threshold:.0%} threshold is not a regression):")
        for line in verdict_table(verdicts):
            print(line)
        what = f"REGRESSION in {len(regressions)} comparison(s)" if regressions else "no regression"
        print(f"versions: {what} (slower by more than {args.threshold:.0%} and significant after correction)")
        controls = control_regressions(verdicts)
        if controls:
            # Every environment has the same NumPy: a NumPy "regression" is drift or load the test took for MLX's doing.
            names = sorted({row.get("case", "?") for row in controls})
            print(
                f"warning: {len(controls)} regression(s) of NumPy cases ({', '.join(names)}), whose code is identical "
                "in every environment: the machine was too noisy for these verdicts; rerun with more --passes on a quiet machine"
            )
    # Exit 1 from Python also means "crashed": the report's 1 is a regression only if it wrote its table.
    return status, bool(regressions) or (status == EXIT_REGRESSION and csv_path.exists())


def main(argv: list[str] | None = None) -> int:
    """Install, run interleaved, report; see the module docstring for exit statuses."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    cache = EnvCache(Path(args.cache_dir))
    pins = pin_set(REQUIREMENTS.read_text())
    if args.list_envs:
        return list_envs(cache, pins)
    if args.clear_envs:
        return clear_envs(cache, args.releases)
    if args.dry_run:
        print_plan(args, cache, pins, run_order(args.releases, args.passes, args.order, args.seed))
        return EXIT_OK

    for note in pins.notes:
        print(f"note: {note}")
    plan = {
        "releases": args.releases,
        "passes": args.passes,
        "order": args.order,
        "seed": args.seed,
        "sizes": args.sizes,
        "pytest_args": args.pytest_args,
        "pins": list(pins.pins),
        "started": dt.datetime.now().isoformat(timespec="seconds"),
    }
    manifest = Manifest(args.results, plan)
    manifest.data["suite"] = snapshot_suite(args.results / SUITE_DIR)
    manifest.write()

    # Every environment first: installs are heavy, and no run should follow one more closely than another.
    pythons = install_all(args.releases, cache, pins, manifest)
    order = run_order([r for r in args.releases if r in pythons], args.passes, args.order, args.seed)
    manifest.data["run_order"] = order
    print(f"results: {args.results}")
    try:
        run_all(args, order, pythons, manifest)
    except KeyboardInterrupt:
        # The run's process group is already stopped; what was saved stays, and the manifest says so.
        manifest.data["interrupted"] = True
        manifest.write()
        print(f"\ninterrupted: the runs saved so far are in {args.results / RUNS_DIR}")
        return 130

    incomplete = bool(manifest.data["install_failures"]) or any(r["status"] != "ok" for r in manifest.data["runs"])
    if not any(r["files"] for r in manifest.data["runs"]):
        print("no results were saved: nothing to compare")
        return EXIT_INCOMPLETE
    report_status, regressed = compare(args, manifest)
    if args.fail_on_regression and regressed:
        return EXIT_REGRESSION
    if report_status != EXIT_OK and not regressed:
        print(f"the report failed (exit {report_status}); the runs are saved in {args.results / RUNS_DIR}")
        incomplete = True
    return EXIT_INCOMPLETE if incomplete else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
