"""The command line of `python -m bench.versions`: parse, then list/clear environments or run a session."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import shlex
import sys
from dataclasses import asdict
from pathlib import Path

from packaging.version import InvalidVersion, Version

from bench.releases import DEFAULT_THRESHOLD, parse_threshold
from bench.versions import reporting, verdicts
from bench.versions.common import (
    CACHE_ENV_VAR,
    DEFAULT_PASSES,
    EXIT_INCOMPLETE,
    EXIT_OK,
    EXIT_REGRESSION,
    EXIT_USAGE,
    MANIFEST_NAME,
    ORDERS,
    REPO_ROOT,
    REQUIREMENTS,
    RUNS_DIR,
    SUITE_DIR,
    InstallError,
)
from bench.versions.environments import EnvCache, default_cache_dir, ensure_env, env_python, wanted_marker
from bench.versions.paired import DEFAULT_PAIRS, DEFAULT_ROUND_TIME_S, DEFAULT_SESSIONS, PairedSettings
from bench.versions.pins import PinSet, mlx_spec, pin_set
from bench.versions.plan import pytest_command, run_order
from bench.versions.runs import RunRecord, run_once, snapshot_suite
from bench.versions.targets import MLX_EXTRAS, ReleaseError, check_env_name, parse_target, twin
from bench.versions.worker import machine_identity
from bench.versions.workers import WorkerError, cpu_sets


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command line of python -m bench.versions."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.versions",
        usage="%(prog)s RELEASE [RELEASE ...] [options]\n"
        "       %(prog)s --self-test RELEASE [options]\n"
        "       %(prog)s --bisect CASE OLD NEW [options]\n"
        "       %(prog)s RELEASE [RELEASE ...] --mode runs [options] [-- PYTEST_ARGS]\n"
        "       %(prog)s --list-envs | --clear-envs [RELEASE ...]",
        description="Compare MLX releases on this machine: by default interleaved, paired rounds of the grid's cases in "
        "long-lived worker processes, one per release, pinned to the same CPUs, in several sessions of fresh processes.",
        epilog="A RELEASE is a published version (0.32.4) or a local MLX wheel file (labelled <version>+<sha256[:12]>). "
        "Exit status: 0 ok / self-test pass; 1 regression (with --fail-on-regression; self-test: a false regression); "
        "2 usage; 3 a release did not install or a run failed (the rest is saved); "
        "4 inconclusive: a NumPy control moved (with --fail-on-regression, and always for the self-test); "
        "5 self-test: the planted 30% slowdown was missed (unfit). "
        "--mode runs: arguments after -- go to every pytest run.",
    )
    parser.add_argument(
        "releases", nargs="*", metavar="RELEASE", help="MLX releases (0.29.4 0.31.1 0.32.4) or MLX .whl files"
    )
    parser.add_argument(
        "--mode",
        choices=("paired", "runs"),
        default="paired",
        help="paired (default): interleaved rounds in worker processes; runs: the whole grid per release under pytest, --passes times",
    )
    parser.add_argument(
        "--self-test", metavar="RELEASE", help="A/A test of the gate on this machine, with planted slowdowns"
    )
    parser.add_argument(
        "--bisect",
        nargs=3,
        metavar=("CASE", "OLD", "NEW"),
        help="first published release after OLD, up to NEW, where CASE regressed against OLD",
    )
    parser.add_argument(
        "--sessions",
        type=_positive_int,
        default=DEFAULT_SESSIONS,
        help=f"paired: sessions of fresh worker processes, the unit of the verdict (default {DEFAULT_SESSIONS})",
    )
    parser.add_argument(
        "--pairs",
        type=_positive_int,
        default=DEFAULT_PAIRS,
        help=f"paired: blocks of rounds (every release once) per case and session (default {DEFAULT_PAIRS}; fewer for long rounds)",
    )
    parser.add_argument(
        "--round-time",
        type=float,
        default=DEFAULT_ROUND_TIME_S,
        help=f"paired: target seconds per round, K calibrated once to it (default {DEFAULT_ROUND_TIME_S})",
    )
    parser.add_argument(
        "--cpus",
        default="auto",
        help="paired: CPUs the workers are pinned to: auto (default: one CPU, a different one each session in turn), none, "
        "or sets like 0 / 0,1 / '0;1' (';' separates sets taken in turn)",
    )
    parser.add_argument(
        "--cases",
        action="append",
        metavar="GLOB",
        help="paired: only case ids matching this glob, e.g. 'linear-*-b32-n1000-d10' (repeatable)",
    )
    parser.add_argument(
        "--alpha",
        type=float,
        default=verdicts.DEFAULT_ALPHA,
        help="paired: family-wise error rate of Holm's correction over the MLX cases (default 0.01)",
    )
    parser.add_argument(
        "--mlx-extra", choices=MLX_EXTRAS, help="the MLX extra to install: cpu (Linux default), cuda12 or cuda13"
    )
    parser.add_argument(
        "--mlx-device",
        choices=("cpu", "gpu", "all"),
        help="paired: where MLX cases run (default: the GPU if MLX has one)",
    )
    parser.add_argument(
        "--case-order",
        choices=("grid", "shuffle"),
        default="grid",
        help="paired: cases in grid order in every session (default), or shuffled anew per session, so what a "
        "case inherits from the case before it in a worker process varies between sessions",
    )
    parser.add_argument(
        "--check-every-session",
        action="store_true",
        help="paired: run the correctness checks in every session's workers (default: the first session's)",
    )
    parser.add_argument(
        "--sizes", default="quick", help="size grid for every run: quick (default), full, or 5000x50,..."
    )
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
    parser.add_argument(
        "--timeout", type=float, help="seconds one pytest run may take before it is stopped (default none)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the environments and the order of runs; run nothing"
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show pytest's output as it runs (it is always logged)"
    )
    parser.add_argument("--list-envs", action="store_true", help="list the cached environments and exit")
    parser.add_argument(
        "--clear-envs",
        action="store_true",
        help="delete cached environments (only the RELEASEs named, if any) and exit",
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
    if args.pytest_args and args.mode != "runs":
        parser.error("arguments after -- go to pytest, which runs only with --mode runs (paired mode: --cases GLOB)")
    if not args.releases and not (args.list_envs or args.clear_envs or args.self_test or args.bisect):
        parser.error("name at least one MLX release, e.g. 0.29.4 0.31.1 0.32.4")
    if (
        args.mode == "paired"
        and not (args.list_envs or args.clear_envs or args.self_test or args.bisect)
        and len(args.releases) < 2
    ):
        parser.error("paired mode compares releases: name at least two (or use --self-test RELEASE)")
    if not 0 < args.alpha < 1 or args.round_time <= 0:
        parser.error("--alpha must be between 0 and 1 and --round-time positive")
    # Every release name is checked before anything touches the disk: a name becomes a folder in the cache.
    try:
        names = args.releases + ([args.self_test] if args.self_test else []) + (args.bisect[1:] if args.bisect else [])
        if args.clear_envs:
            args.targets = [check_env_name(name) for name in names]
        else:
            args.targets = [parse_target(name, args.mlx_extra) for name in dict.fromkeys(names)]
        if args.mode == "runs" and any(t.wheel for t in args.targets):
            raise ReleaseError("a wheel file can be compared in the paired mode only")
        args.cpu_sets = cpu_sets(args.cpus)
    except (ReleaseError, ValueError) as error:
        _fail(str(error))
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


def _fail(message: str) -> None:
    """One line on stderr and the usage exit status: bad input is never a traceback."""
    print(f"python -m bench.versions: error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_USAGE)


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
        f"then: {shlex.join(reporting.report_command(args.results, args.out, args.threshold, args.fail_on_regression))}"
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


def run_all(
    args: argparse.Namespace, order: list[tuple[int, str]], pythons: dict[str, Path], manifest: Manifest
) -> None:
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
    print(
        f"report: {shlex.join(reporting.report_command(args.results, args.out, args.threshold, args.fail_on_regression))}",
        flush=True,
    )
    csv_path = args.out / "versions.csv"
    csv_path.unlink(missing_ok=True)  # a stale table from an earlier report must not pass for this one's
    status = reporting.run_report(args.results, args.out, args.threshold, args.fail_on_regression)
    verdicts = reporting.read_verdicts(csv_path)
    regressions = [row for row in verdicts if reporting.is_regression(row)]
    manifest.data.update(report_exit=status, regressions=len(regressions))
    manifest.write()
    if verdicts:
        # The report printed each regression; this is the whole picture, one line per pair of releases.
        print(f"verdicts of the MLX cases ({csv_path}):")
        for line in reporting.verdict_table(verdicts):
            print(line)
        what = f"REGRESSION in {len(regressions)} comparison(s)" if regressions else "no regression"
        print(f"versions: {what} (slower by more than {args.threshold:.0%} and significant after correction)")
        controls = reporting.moved_controls(verdicts)
        if controls:
            # Every environment has the same NumPy: a NumPy case that moved is drift or load, not MLX's doing.
            names = sorted({row.get("case_id", "?") for row in controls})
            print(
                f"warning: {len(controls)} NumPy control(s) changed ({', '.join(names)}), whose code is identical "
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
    if args.mode == "paired" or args.self_test or args.bisect:
        return paired_main(args, cache, pins)
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
        "machine": machine_identity(),  # runs are only ever compared within one machine identity
    }
    manifest = Manifest(args.results, plan)
    manifest.data["suite"] = snapshot_suite(args.results / SUITE_DIR)
    manifest.write()

    # Every environment first: installs are heavy, and no run should follow one more closely than another.
    pythons = install_all(args.releases, cache, pins, manifest, args.mlx_extra)
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


def paired_settings(args) -> PairedSettings:
    """The paired runner's settings from the command line."""
    return PairedSettings(
        sessions=args.sessions,
        pairs=args.pairs,
        round_time_s=args.round_time,
        cpu_sets=args.cpu_sets,
        timeout_s=args.timeout or PairedSettings.timeout_s,
        seed=args.seed,
        check_every_session=args.check_every_session,
        shuffle_cases=args.case_order == "shuffle",
    )


def paired_main(args, cache: EnvCache, pins: PinSet, start_worker=None, ensure=None) -> int:
    """The paired comparison, the self-test or the bisection; the seams are for tests."""
    from bench.versions import bisect, compare, selftest

    targets = list(args.targets)
    if args.self_test:
        targets = [parse_target(args.self_test, args.mlx_extra)]
        targets.append(twin(targets[0], "b"))
    settings = paired_settings(args)
    if args.dry_run:
        print(
            f"plan: paired, {', '.join(t.label for t in targets)}; {settings.sessions} sessions x up to {settings.pairs} "
            f"blocks per case, sizes {args.sizes}, CPU sets {settings.cpu_sets}; environments in {cache.root}"
        )
        return EXIT_OK
    args.results.mkdir(parents=True, exist_ok=True)
    suite = snapshot_suite(args.results / SUITE_DIR)
    print(
        f"results: {args.results} (suite snapshot: {suite['files']} files at {suite['commit'] or '?'}{', dirty' if suite['dirty'] else ''})"
    )
    start_worker = start_worker or compare.worker_factory(args.results / SUITE_DIR, args.results / compare.WORKER_LOGS)
    try:
        if args.bisect:
            return bisect.run_bisect(args, cache, pins, start_worker, settings, ensure=ensure or ensure_env)
        pythons, failures = compare.install(targets, cache, pins, ensure=ensure or ensure_env)
        if args.self_test:
            if len(pythons) < 2:
                return EXIT_INCOMPLETE
            return selftest.run_self_test(args, targets[0], targets[1], pythons, start_worker, settings)
        return compare.run_compare(args, targets, pythons, failures, start_worker, settings)
    except WorkerError as error:
        print(f"python -m bench.versions: {error}", file=sys.stderr)
        return EXIT_INCOMPLETE
    except KeyboardInterrupt:
        print(f"\ninterrupted: what was measured so far is in {args.results}")
        return 130
