"""The command line of `python -m bench.versions`: parse, build the mode's settings once, then run that mode.

Listing or clearing the environment cache, or one of the modes (bench.versions.modes):
compare (paired here, or whole-grid pytest runs below), history, bisect, self-test.
"""

from __future__ import annotations

import datetime as dt
import platform
import shlex
import sys
from dataclasses import asdict
from pathlib import Path

from packaging.version import InvalidVersion, Version

from bench.engine.client import WorkerError
from bench.engine.run_environment import machine_identity
from bench.results import files
from bench.versions import run_reports
from bench.versions.arguments import build_parser, claim_results, fail, parse_args, split_argv  # noqa: F401 - re-exported
from bench.versions.common import (
    EXIT_INCOMPLETE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_REGRESSION,
    EXIT_USAGE,
    MANIFEST_NAME,
    REPO_ROOT,
    REQUIREMENTS,
    RUNS_DIR,
    SUITE_DIR,
    InstallError,
)
from bench.versions.environments import EnvCache, ensure_env, env_python, wanted_marker
from bench.versions.modes import (  # noqa: F401 - paired_settings re-exported
    BisectSettings,
    CompareSettings,
    HistorySettings,
    RunnerSettings,
    SelfTestSettings,
    mode_settings,
    paired_settings,
)
from bench.versions.pins import PinSet, mlx_spec, pin_set
from bench.versions.plan import pytest_command, run_order
from bench.versions.runs import RunRecord, SnapshotError, run_once, snapshot_suite, suite_files
from bench.versions.targets import ReleaseError, parse_target, twin


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
    """Delete cached environments and say which, and which were left and why (one line each)."""
    try:
        removed = cache.clear(releases or None, on_skip=lambda path, why: print(f"left {path}: {why}"))
    except InstallError as error:  # a lock file that is a link: refused, never followed
        print(f"python -m bench.versions: {error}", file=sys.stderr)
        return EXIT_USAGE
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
        # Atomic: on a full disk the previous complete record stays (bench.results.files).
        files.write_json(self.path, self.data, default=str)


def print_plan(args: CompareSettings, cache: EnvCache, pins: PinSet, order: list[tuple[int, str]]) -> None:
    """What a run would do: environments, pins and the order of runs."""
    print(
        f"plan: {len(args.releases)} releases x {args.passes} passes = {len(order)} runs, sizes {args.sizes}, order {args.order}"
    )
    print(f"environments in {cache.root}:")
    for release in args.releases:
        state = "ready" if cache.is_ready(release, wanted_marker(release, pins)) else "to build"
        print(
            f"  mlx {release}: {cache.path(release)} ({state}), installs {mlx_spec(release)} + {len(pins.pins)} pinned packages"
        )
    print(f"suite: a copy of {REPO_ROOT} in {args.results / SUITE_DIR}, where every run executes")
    print(f"pinned: {' '.join(pins.pins)}")
    for note in pins.notes:
        print(f"note: {note}")
    for index, (pass_no, release) in enumerate(order, 1):
        storage = args.results / RUNS_DIR
        cmd = pytest_command(env_python(cache.path(release)), release, pass_no, args.sizes, storage, args.pytest_args)
        print(f"  [{index}/{len(order)}] pass {pass_no} mlx {release}: {shlex.join(cmd)}")
    print(
        f"then: {shlex.join(run_reports.report_command(args.results, args.out, args.threshold, args.fail_on_regression))}"
    )


def _valid_release(release: str) -> str | None:
    """None if `release` reads as a version number, else why not."""
    try:
        Version(release)
    except InvalidVersion:
        return "not a release number"
    return None


def install_all(
    releases: list[str], cache: EnvCache, pins: PinSet, manifest: Manifest, extra: str | None = None
) -> dict[str, Path]:
    """Every release's interpreter, building environments as needed; one line per release, whatever happens."""
    pythons: dict[str, Path] = {}
    print(f"environments in {cache.root} (a new one downloads MLX and the pinned packages):", flush=True)
    for release in releases:
        problem = _valid_release(release)
        try:
            if problem:
                raise InstallError(problem)
            target = parse_target(release, extra)
            pythons[release], done = ensure_env(target.key, cache, pins, spec=target.spec, version=target.version)
            print(f"mlx {release}: environment {done}", flush=True)
        except (InstallError, ReleaseError) as error:
            print(f"mlx {release}: could not install ({error})", flush=True)
            manifest.data["install_failures"][release] = str(error)
            manifest.write()
    return pythons


def run_all(args: CompareSettings, order: list[tuple[int, str]], pythons: dict[str, Path], manifest: Manifest) -> None:
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
                list(args.pytest_args),
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


def compare(args: CompareSettings, manifest: Manifest) -> tuple[int, bool]:
    """Run the report's version comparison; (report exit status, whether any case regressed)."""
    print(
        f"report: {shlex.join(run_reports.report_command(args.results, args.out, args.threshold, args.fail_on_regression))}",
        flush=True,
    )
    csv_path = args.out / "versions.csv"
    # A stale table from an earlier report must not pass for this one's, yet it is kept until the
    # report replaces it: the report writes its files together or not at all (bench.report.outputs),
    # so one that fails leaves the earlier page whole, with its table. A table counts as this
    # report's only when the file was replaced (another inode or time).
    before = run_reports.file_identity(csv_path)
    status = run_reports.run_report(args.results, args.out, args.threshold, args.fail_on_regression)
    fresh = run_reports.file_identity(csv_path) not in (None, before)
    verdicts = run_reports.read_verdicts(csv_path) if fresh else []
    regressions = [row for row in verdicts if run_reports.is_regression(row)]
    manifest.data.update(report_exit=status, regressions=len(regressions))
    manifest.write()
    if verdicts:
        # The report printed each regression; this is the whole picture, one line per pair of releases.
        print(f"verdicts of the MLX cases ({csv_path}):")
        for line in run_reports.verdict_table(verdicts):
            print(line)
        what = f"REGRESSION in {len(regressions)} comparison(s)" if regressions else "no regression"
        print(f"versions: {what} (slower by more than {args.threshold:.0%} and significant after correction)")
        controls = run_reports.moved_controls(verdicts)
        if controls:
            # Every environment has the same NumPy: a NumPy case that moved is drift or load, not MLX's doing.
            names = sorted({row.get("case_id", "?") for row in controls})
            print(
                f"warning: {len(controls)} NumPy control(s) changed ({', '.join(names)}), whose code is identical "
                "in every environment: the machine was too noisy for these verdicts; rerun with more --passes on a quiet machine"
            )
    # Exit 1 from Python also means "crashed": the report's 1 is a regression only if it wrote its table.
    return status, bool(regressions) or (status == EXIT_REGRESSION and fresh)


def main(argv: list[str] | None = None) -> int:
    """Install, run interleaved, report; see the module docstring for exit statuses."""
    try:
        return _main(argv)
    except OSError as error:
        # A full disk, a folder made read-only: one line; every record written so far is whole
        # (bench.results.files), the one being written is as it was before.
        print(f"python -m bench.versions: error: cannot write: {files.describe_error(error)}", file=sys.stderr)
        return EXIT_INCOMPLETE


def _main(argv: list[str] | None) -> int:
    parsed = parse_args(sys.argv[1:] if argv is None else argv)
    cache = EnvCache(Path(parsed.cache_dir))
    pins = pin_set(REQUIREMENTS.read_text())
    if parsed.list_envs:
        return list_envs(cache, pins)
    if parsed.clear_envs:
        return clear_envs(cache, parsed.releases)
    args = mode_settings(parsed)  # built once: every mode reads its typed settings from here on
    if not isinstance(args, CompareSettings) or args.mode == "paired":
        return paired_main(args, cache, pins)
    return runs_main(args, cache, pins)


def runs_main(args: CompareSettings, cache: EnvCache, pins: PinSet) -> int:
    """compare --mode runs: install, run the whole grid under pytest interleaved, report."""
    if args.dry_run:
        print_plan(args, cache, pins, run_order(list(args.releases), args.passes, args.order, args.seed))
        return EXIT_OK

    for note in pins.notes:
        print(f"note: {note}")
    plan = {
        "releases": list(args.releases),
        "passes": args.passes,
        "order": args.order,
        "seed": args.seed,
        "sizes": args.sizes,
        "pytest_args": list(args.pytest_args),
        "pins": list(pins.pins),
        "started": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": machine_identity(),  # runs are only ever compared within one machine identity
    }
    check_snapshot()
    args = claim_results(args)
    manifest = Manifest(args.results, plan)
    manifest.data["suite"] = take_snapshot(args.results / SUITE_DIR)
    manifest.write()

    # Every environment first: installs are heavy, and no run should follow one more closely than another.
    pythons = install_all(list(args.releases), cache, pins, manifest, args.mlx_extra)
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
        return EXIT_INTERRUPTED

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


def check_snapshot() -> None:
    """Refuse, in one line and before a results folder is made, a suite that is too large to snapshot."""
    try:
        suite_files()
    except SnapshotError as error:
        fail(str(error))


def take_snapshot(dest: Path) -> dict:
    """snapshot_suite, with its size cap as one line and the usage status, never a traceback."""
    try:
        return snapshot_suite(dest)
    except SnapshotError as error:
        fail(str(error))


def paired_main(args: RunnerSettings, cache: EnvCache, pins: PinSet, start_worker=None, ensure=None) -> int:
    """The paired comparison, the history, the self-test or the bisection, by the type of `args`; the seams are for tests."""
    from bench.versions import bisect, compare, history, selftest

    settings = args.paired
    if isinstance(args, SelfTestSettings):
        targets = [parse_target(args.release, args.mlx_extra)]
        targets.append(twin(targets[0], "b"))
    else:
        targets = list(args.targets)
    if args.dry_run and isinstance(args, HistorySettings):
        releases, left_out = history.plan_releases(args)
        print(
            f"plan: history of {len(releases)} releases ({', '.join(releases) or 'none'}), all interleaved; "
            f"{settings.sessions} sessions x up to {settings.pairs} blocks per case, grid {args.sizes}; environments in {cache.root}"
        )
        for release, why in left_out.items():
            print(f"  left out: mlx {release}: {why}")
        return EXIT_OK
    if args.dry_run:
        print(
            f"plan: paired, {', '.join(t.label for t in targets)}; {settings.sessions} sessions x up to {settings.pairs} "
            f"blocks per case, sizes {args.sizes}, CPU sets {settings.cpu_sets}; environments in {cache.root}"
        )
        return EXIT_OK
    check_snapshot()
    args = claim_results(args)
    suite = take_snapshot(args.results / SUITE_DIR)
    print(
        f"results: {args.results} (suite snapshot: {suite['files']} files at {suite['commit'] or '?'}{', dirty' if suite['dirty'] else ''})"
    )
    start_worker = start_worker or compare.worker_factory(args.results / SUITE_DIR, args.results / compare.WORKER_LOGS)
    try:
        if isinstance(args, BisectSettings):
            return bisect.run_bisect(args, cache, pins, start_worker, settings, ensure=ensure or ensure_env)
        if isinstance(args, HistorySettings):
            return history.run_history(args, cache, pins, start_worker, settings, ensure or ensure_env)
        pythons, failures = compare.install(targets, cache, pins, ensure=ensure or ensure_env)
        if isinstance(args, SelfTestSettings):
            if len(pythons) < 2:
                return EXIT_INCOMPLETE
            return selftest.run_self_test(args, targets[0], targets[1], pythons, start_worker, settings)
        return compare.run_compare(args, targets, pythons, failures, start_worker, settings)
    except WorkerError as error:
        print(f"python -m bench.versions: {error}", file=sys.stderr)
        return EXIT_INCOMPLETE
    except KeyboardInterrupt:
        print(f"\ninterrupted: what was measured so far is in {args.results}")
        return EXIT_INTERRUPTED
