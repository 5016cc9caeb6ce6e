"""The command line of `python -m bench.versions`: its subcommands, options, and the checks run before installing.

The modes are subcommands (``compare``, ``history``, ``bisect``, ``self-test``;
docs/releases.md, "Subcommands"); the flags of older command lines (``RELEASE
...``, ``--history``, ``--bisect``, ``--self-test``) are aliases that parse to
the same arguments, checked by the same code. Both forms take every option.

Every check that can fail is made here, in well under a second, before an
environment is built or a worker started: releases, numbers, CPU sets, the
grid, --cases and --bisect's CASE against the case ids this checkout's grid
names (the workers run a snapshot of this checkout, so they list the same
ids), and --bisect's OLD before NEW. Each failure is one line on stderr and
exit status 2. The default results folder is claimed only when a run starts
(claim_results): a new folder, with a suffix when another session of the
same second took the name; a folder named with --results must be new or empty.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fnmatch
import math
import shlex
import sys
from dataclasses import replace
from pathlib import Path

from packaging.version import InvalidVersion, Version

from bench.console.oneline import one_line
from bench.engine.affinity import cpu_sets
from bench.engine.defaults import ROUND_TIME_S as DEFAULT_ROUND_TIME_S
from bench.results.releases import DEFAULT_THRESHOLD, THRESHOLD_HELP, parse_threshold
from bench.versions import verdicts
from bench.versions.common import CACHE_ENV_VAR, DEFAULT_PASSES, EXIT_USAGE, ORDERS, REPO_ROOT
from bench.versions.environments import default_cache_dir
from bench.versions.modes import BISECT, COMPARE, HISTORY, SELF_TEST, RunnerSettings, mode_of
from bench.versions.paired import DEFAULT_PAIRS, DEFAULT_REQUEST_TIMEOUT_S, DEFAULT_SESSIONS
from bench.versions.targets import MLX_EXTRAS, ReleaseError, check_env_name, parse_target


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the usage stays in --help)."""

    def error(self, message: str):
        fail(message)


PROG = "python -m bench.versions"
EXIT_STATUSES = (
    "Exit status: 0 ok / self-test pass; 1 regression (with --fail-on-regression; self-test: a false regression); "
    "2 usage; 3 a release did not install or a run failed (the rest is saved); "
    "4 inconclusive: a NumPy control moved (with --fail-on-regression, and always for the self-test), "
    "or a bisect probe came out undecided or inconclusive; "
    "5 self-test: unfit (plants at twice the threshold missed, a broken plant passed, the p-values or intervals "
    "off, or the two case orders disagree; the reasons are printed and saved in self-test.json)."
)
RELEASE_HELP = "A RELEASE is a published version (0.32.4) or a local MLX wheel file (labelled <version>+<sha256[:12]>)."
# subcommand: (its positional arguments in the usage line, what it does); docs/releases.md, "Subcommands".
SUBCOMMANDS = {
    COMPARE: (
        "RELEASE RELEASE [RELEASE ...] [options] [--mode runs [-- PYTEST_ARGS]]",
        "Compare MLX releases on this machine: by default interleaved, paired rounds of the grid's cases in "
        "the measurement engine's worker processes (per release and session, a fresh worker per group of cases), "
        "pinned to the same CPUs, in several sessions of fresh processes; --mode runs: the whole grid under pytest once per release and pass. "
        "The same as python -m bench.versions RELEASE RELEASE ...",
    ),
    HISTORY: (
        "[FROM [TO] | RELEASE RELEASE RELEASE ...] [options]",
        "Every published release from FROM to TO (default: all that install here), or three or more RELEASEs, "
        "measured all interleaved on the history grid; where the speed changed (history.json, history.csv). "
        "The same as python -m bench.versions --history ...",
    ),
    BISECT: (
        "CASE OLD NEW [options]",
        "The first published release after OLD, up to NEW, where CASE regressed against OLD, by binary search with "
        "the paired comparison (bisect.json). The same as python -m bench.versions --bisect CASE OLD NEW",
    ),
    SELF_TEST: (
        "RELEASE [options]",
        "A/A test of the gate on this machine: RELEASE against itself, with slowdowns, broken kernels and leftover "
        "state planted in one side; whether the machine is fit to gate CI (self-test.json). "
        "The same as python -m bench.versions --self-test RELEASE",
    ),
}


def _options_parser() -> argparse.ArgumentParser:
    """The options every form of the command takes (a parent parser: no positional arguments, no --help)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument(
        "--mode",
        choices=("paired", "runs"),
        default="paired",
        help="compare: paired (default): interleaved rounds in worker processes; runs: the whole grid per release "
        "under pytest, --passes times",
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
        "--confirm-budget",
        type=float,
        metavar="SECONDS",
        help="paired, --history, --bisect: seconds for confirming what a run leaves open (undecided cases, candidate "
        "steps, undecided probes) with more sessions of just those releases and cases; 0 turns it off "
        "(default: a quarter of the run's measuring time)",
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
        choices=("grid", "reversed", "shuffle"),
        default="grid",
        help="paired: cases in grid order in every session (default), in reversed order, or shuffled anew per "
        "session (the workers follow the isolation policy either way: a fresh one per group of cases)",
    )
    parser.add_argument(
        "--checks",
        choices=("every-session", "first-session"),
        default="every-session",
        help="paired: where the barrier and correctness checks run after timing: in every worker of every session "
        "(default) or in the first session's only; their cost is in paired-measurements.json (check_s)",
    )
    parser.add_argument(
        "--check-every-session", action="store_true", help=argparse.SUPPRESS
    )  # the default since the checks run in every session; kept so older command lines still work
    parser.add_argument(
        "--sizes",
        help="size grid: quick (default), full, history (the default of --history: bench.cases.grid.HISTORY_CASES), "
        "or 5000x50,...",
    )
    parser.add_argument(
        "--passes",
        type=_positive_int,
        default=DEFAULT_PASSES,
        help=f"--mode runs: times the grid runs under each release, interleaved (default {DEFAULT_PASSES}); "
        "the paired mode takes --sessions instead",
    )
    parser.add_argument(
        "--order",
        choices=ORDERS,
        default="rotate",
        help="--mode runs: order of releases within a pass: rotate (default; shifts by one each pass), "
        "shuffle (seeded by --seed), fixed",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of every random order: paired, the order of the releases in each block of rounds and of "
        "--case-order shuffle; --mode runs, --order shuffle (default 0)",
    )
    parser.add_argument(
        "--threshold",
        type=parse_threshold,
        default=DEFAULT_THRESHOLD,
        help=THRESHOLD_HELP,
    )
    parser.add_argument(
        "--fail-on-regression",
        action="store_true",
        help="exit 1 when a case is broken or regressed (in a comparison whose status is ok), 4 when a comparison is inconclusive",
    )
    parser.add_argument("--results", type=Path, help="folder for saved runs (default results/versions/<timestamp>)")
    parser.add_argument("--out", type=Path, help="folder for the report (default <results>/report)")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        help=f"folder of the per-release environments (default ${CACHE_ENV_VAR}, else ~/.cache/mlx-sgd-bench/envs)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        help="--mode runs: seconds one pytest run may take before it is stopped (default none); paired: seconds "
        f"a worker may take to answer one request (default {DEFAULT_REQUEST_TIMEOUT_S:g})",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (the releases, the cache folder and, with --mode runs, the order of runs); "
        "install and run nothing. With --history and fewer than three RELEASEs it asks the package index "
        "which releases the range holds",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="paired: a progress line for every case; --mode runs: pytest's output as it runs (it is always logged)",
    )
    parser.add_argument("--list-envs", action="store_true", help="list the cached environments and exit")
    parser.add_argument(
        "--clear-envs",
        action="store_true",
        help="delete cached environments (only the RELEASEs named, if any) and exit",
    )
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The command line of python -m bench.versions without a subcommand: the modes as flags (aliases)."""
    parser = _OneLineParser(
        prog=PROG,
        usage="%(prog)s compare RELEASE RELEASE [RELEASE ...] [options]\n"
        "       %(prog)s compare RELEASE [RELEASE ...] --mode runs [options] [-- PYTEST_ARGS]\n"
        "       %(prog)s history [FROM [TO] | RELEASE RELEASE RELEASE ...] [options]\n"
        "       %(prog)s bisect CASE OLD NEW [options]\n"
        "       %(prog)s self-test RELEASE [options]\n"
        "       %(prog)s --list-envs | --clear-envs [RELEASE ...]\n"
        "       %(prog)s RELEASE ... | --history ... | --bisect CASE OLD NEW | --self-test RELEASE  (the same, as flags)",
        description="Compare MLX releases on this machine. The subcommand comes first and takes --help: compare "
        "(paired rounds in worker processes, or --mode runs), history (every release in a range), bisect (where a "
        "case regressed), self-test (is this machine fit to gate CI). The flags of older command lines are aliases "
        "with the same behaviour: RELEASE ... is compare, --history history, --bisect bisect, --self-test self-test.",
        epilog=f"{RELEASE_HELP} {EXIT_STATUSES} --mode runs: arguments after -- go to every pytest run.",
        parents=[_options_parser()],
    )
    parser.add_argument(
        "releases", nargs="*", metavar="RELEASE", help="MLX releases (0.29.4 0.31.1 0.32.4) or MLX .whl files"
    )
    parser.add_argument("--self-test", metavar="RELEASE", help="the self-test subcommand, as a flag")
    parser.add_argument("--history", action="store_true", help="the history subcommand, as a flag")
    parser.add_argument("--bisect", nargs=3, metavar=("CASE", "OLD", "NEW"), help="the bisect subcommand, as a flag")
    return parser


def build_subcommand_parser(name: str) -> argparse.ArgumentParser:
    """The command line of python -m bench.versions SUBCOMMAND: its positional arguments, then every option."""
    usage, description = SUBCOMMANDS[name]
    parser = _OneLineParser(
        prog=f"{PROG} {name}",
        usage=f"%(prog)s {usage}",
        description=description,
        epilog=f"{RELEASE_HELP} {EXIT_STATUSES}",
        parents=[_options_parser()],
    )
    # The flags of the other modes are left unset: each subcommand is the one mode it names.
    unset = {"releases": [], "history": False, "bisect": None, "self_test": None}
    if name == COMPARE:
        parser.add_argument("releases", nargs="*", metavar="RELEASE", help="MLX releases or MLX .whl files")
    elif name == HISTORY:
        parser.add_argument(
            "releases",
            nargs="*",
            metavar="RELEASE",
            help="FROM [TO], the ends of the range; or three or more releases, the list itself; none: every release",
        )
        unset["history"] = True
    elif name == BISECT:
        # Three positionals, not one of nargs=3: argparse cannot name a missing one of a tuple metavar.
        parser.add_argument(
            "case", metavar="CASE", help="a case id of the grid: linear-mlx-compiled-step-cpu-b32-n1000-d10"
        )
        parser.add_argument("old", metavar="OLD", help="the release the case was fine in")
        parser.add_argument("new", metavar="NEW", help="a later release the case regressed in")
    else:
        parser.add_argument("self_test", metavar="RELEASE", help="the release to test against itself")
    parser.set_defaults(**{key: value for key, value in unset.items() if key not in _positional_dests(parser)})
    return parser


def _positional_dests(parser: argparse.ArgumentParser) -> set[str]:
    return {action.dest for action in parser._actions if not action.option_strings}


def split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    """(our arguments, pytest's): everything after the first -- belongs to pytest."""
    if "--" in argv:
        index = argv.index("--")
        return argv[:index], argv[index + 1 :]
    return argv, []


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse and check the command line, a subcommand's or the flags'; pytest arguments end up in .pytest_args."""
    ours, theirs = split_argv(argv)
    subcommand = ours[0] if ours and ours[0] in SUBCOMMANDS else None
    if subcommand:
        parser, ours = build_subcommand_parser(subcommand), ours[1:]
    else:
        parser = build_parser()  # the modes as flags: the same namespace, checked the same way below
    args, unknown = parser.parse_known_args(ours)
    if unknown:
        parser.error(f"unrecognized arguments: {shlex.join(unknown)} (pytest's options go after --, e.g. -- -k linear)")
    if subcommand == BISECT:  # its CASE OLD NEW as --bisect gives them
        args.bisect = [args.case, args.old, args.new]
        del args.case, args.old, args.new
    misplaced = [name for name in args.releases if name in SUBCOMMANDS]
    if misplaced:
        parser.error(f"{misplaced[0]} is a subcommand: it comes first ({PROG} {misplaced[0]} ...)")
    args.pytest_args = theirs
    if args.pytest_args and args.mode != "runs":
        parser.error("arguments after -- go to pytest, which runs only with --mode runs (paired mode: --cases GLOB)")
    if not args.releases and not (args.list_envs or args.clear_envs or args.self_test or args.bisect or args.history):
        parser.error("name at least one MLX release, e.g. 0.29.4 0.31.1 0.32.4")
    # A release named twice is one release: count them after removing the repeats.
    if (
        args.mode == "paired"
        and not (args.list_envs or args.clear_envs or args.self_test or args.bisect or args.history)
        and len(dict.fromkeys(args.releases)) < 2
    ):
        parser.error("paired mode compares releases: name at least two different ones (or test one: self-test RELEASE)")
    if not 0 < args.alpha < 1:
        parser.error(f"--alpha must be between 0 and 1, not {args.alpha!r}")
    if not (math.isfinite(args.round_time) and args.round_time > 0):  # NaN compares false to everything
        parser.error(f"--round-time must be a positive number of seconds, not {args.round_time!r}")
    if args.confirm_budget is not None and not (math.isfinite(args.confirm_budget) and args.confirm_budget >= 0):
        parser.error(f"--confirm-budget must be 0 or a positive number of seconds, not {args.confirm_budget!r}")
    if args.timeout is not None and not (math.isfinite(args.timeout) and args.timeout > 0):
        parser.error(f"--timeout must be a positive number of seconds, not {args.timeout!r}")
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
        fail(str(error))
    if args.history and (args.mode != "paired" or args.self_test or args.bisect):
        parser.error("--history is a paired run of its own: not with --mode runs, --self-test or --bisect")
    # Validate the grid here, before minutes of installing: bench.cases.sizes is plain Python.
    from bench.cases.grid import HISTORY_GRID
    from bench.cases.sizes import SizeError, parse_sizes

    args.sizes = args.sizes or (HISTORY_GRID if args.history else "quick")
    if args.sizes.strip().lower() == HISTORY_GRID and args.mode == "runs":
        parser.error("--sizes history is a grid of the paired runner; --mode runs takes quick, full or sizes")
    try:
        if args.sizes.strip().lower() != HISTORY_GRID:
            parse_sizes(args.sizes)
    except SizeError as error:
        parser.error(str(error))
    if not (args.list_envs or args.clear_envs):
        check_cases(args)
    args.releases = list(dict.fromkeys(args.releases))  # a release named twice runs once per pass
    args.cache_dir = args.cache_dir or default_cache_dir()
    args.default_results = args.results is None
    args.default_out = args.out is None
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    args.results = (args.results or REPO_ROOT / "results" / "versions" / stamp).resolve()
    args.out = (args.out or args.results / "report").resolve()
    args.command = mode_of(args)
    return args


def check_cases(args: argparse.Namespace) -> None:
    """--cases and --bisect's CASE name cases of the grid, and --bisect's OLD comes before NEW; else fail()."""
    if not args.cases and not args.bisect:
        return
    from bench.cases.grid import grid_case_ids

    known = grid_case_ids(args.sizes, ("mlx", "numpy"))
    for pattern in args.cases or []:
        if not fnmatch.filter(known, pattern):
            fail(f"--cases {pattern!r} matches no case of the grid {args.sizes} (ids look like {min(known)})")
    if args.bisect:
        case_id, old, new = args.bisect
        if case_id not in known:
            fail(f"--bisect {case_id!r} is not a case of the grid {args.sizes} (ids look like {min(known)})")
        try:
            reversed_order = not Version(old) < Version(new)
        except InvalidVersion:
            return  # parse_args accepted it, so a wheel file: the bisection's own check speaks for it
        if reversed_order:
            fail(f"--bisect: OLD {old} must be an older release than NEW {new}")


def claim_results(settings: RunnerSettings) -> RunnerSettings:
    """Create the results folder; the default one is made new (…-2, -3 … when the second's name is taken).

    Two sessions started in the same second would otherwise share one folder
    and write over each other's files. Returns `settings` with the folder made
    (and the default report folder inside it).
    """
    if not settings.default_results:
        # A folder named with --results is used only when new or empty: an earlier session's verdicts,
        # measurements and runs are never replaced, nor pooled with this session's.
        earlier = _earlier_contents(settings.results)
        if earlier:
            fail(
                f"--results {settings.results} already holds {earlier}; nothing was changed: name a new or empty "
                "folder, or leave --results out for a new one under results/versions/"
            )
        settings.results.mkdir(parents=True, exist_ok=True)
        return settings
    base = settings.results
    base.parent.mkdir(parents=True, exist_ok=True)
    for number in range(1, 1000):
        candidate = base if number == 1 else base.with_name(f"{base.name}-{number}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return replace(settings, results=candidate, out=candidate / "report" if settings.default_out else settings.out)
    fail(f"no free results folder beside {base}; name one with --results")


def _earlier_contents(folder: Path) -> str | None:
    """What makes `folder` unusable as a new session's results folder (a few of its names), or None."""
    if not folder.exists() and not folder.is_symlink():
        return None
    if not folder.is_dir():
        return "something that is not a folder"
    try:
        names = sorted(p.name for p in folder.iterdir())
    except OSError as error:
        return f"a folder that cannot be listed ({error.strerror})"
    if not names:
        return None
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return f"an earlier session's files ({shown})"


def fail(message: str) -> None:
    """One line on stderr and the usage exit status: bad input is never a traceback."""
    print(f"{PROG}: error: {one_line(message)}", file=sys.stderr)
    raise SystemExit(EXIT_USAGE)
