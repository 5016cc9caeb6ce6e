"""The release runner's modes and the typed settings each one takes, built once from the command line.

``python -m bench.versions compare|history|bisect|self-test`` (docs/releases.md,
"Subcommands"). The command line is parsed and checked in one place
(bench.versions.arguments); ``mode_settings`` then turns the parsed arguments
into one frozen settings object of the mode's own type, and every function of
that mode reads its settings from there: a mode sees the options it has, by
name and type, and nothing it could change under another's feet. The one
field filled in later is the results folder, claimed when a run starts
(bench.versions.arguments.claim_results gives a copy with the folder it made).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from bench.versions.paired import PairedSettings
from bench.versions.targets import Target

COMPARE, HISTORY, BISECT, SELF_TEST = "compare", "history", "bisect", "self-test"
ENVIRONMENTS = "environments"  # --list-envs / --clear-envs: the cache, not a mode that measures
MODES = (COMPARE, HISTORY, BISECT, SELF_TEST)


@dataclass(frozen=True)
class RunnerSettings:
    """What every mode reads: the grid and its cases, the verdict's rules, where results go, how hard to measure."""

    sizes: str
    cases: tuple[str, ...]  # --cases globs; empty: every case of the grid
    threshold: float
    alpha: float
    fail_on_regression: bool
    mlx_extra: str | None
    mlx_device: str | None
    results: Path
    out: Path
    default_results: bool  # --results left out: a new folder under results/versions/ is claimed at the start
    default_out: bool
    cache_dir: Path
    verbose: bool
    dry_run: bool
    targets: tuple[Target, ...]  # every release named, parsed (compare's sides; bisect's OLD and NEW)
    paired: PairedSettings  # the paired runner's sessions, blocks, CPU sets and order
    confirm_budget: float | None  # seconds of sequential confirmation (None: the mode's default; 0: none)


@dataclass(frozen=True)
class CompareSettings(RunnerSettings):
    """``compare RELEASE RELEASE ...``: paired (the default) or whole-grid pytest runs (--mode runs)."""

    releases: tuple[str, ...]
    mode: str  # "paired" or "runs"
    passes: int  # --mode runs: times the grid runs under each release
    order: str  # --mode runs: the order of releases within a pass
    seed: int
    timeout: float | None  # --mode runs: seconds one pytest run may take (None: no limit)
    pytest_args: tuple[str, ...]  # --mode runs: what follows --


@dataclass(frozen=True)
class HistorySettings(RunnerSettings):
    """``history [FROM [TO] | RELEASE RELEASE RELEASE ...]``: every release in a range, all interleaved."""

    releases: tuple[str, ...]


@dataclass(frozen=True)
class BisectSettings(RunnerSettings):
    """``bisect CASE OLD NEW``: the first published release after OLD, up to NEW, where CASE regressed."""

    case_id: str
    old: str
    new: str


@dataclass(frozen=True)
class SelfTestSettings(RunnerSettings):
    """``self-test RELEASE``: the release against itself, with slowdowns planted in one side."""

    release: str


def mode_of(args: argparse.Namespace) -> str:
    """The mode a parsed command line asks for, whether named as a subcommand or by its flag."""
    if args.list_envs or args.clear_envs:
        return ENVIRONMENTS
    if args.bisect:
        return BISECT
    if args.self_test:
        return SELF_TEST
    if args.history:
        return HISTORY
    return COMPARE


def paired_settings(args: argparse.Namespace) -> PairedSettings:
    """The paired runner's settings from the command line."""
    return PairedSettings(
        sessions=args.sessions,
        pairs=args.pairs,
        round_time_s=args.round_time,
        cpu_sets=args.cpu_sets,
        timeout_s=args.timeout or PairedSettings.timeout_s,
        seed=args.seed,
        check_every_session=args.checks == "every-session" or args.check_every_session,
        shuffle_cases=args.case_order == "shuffle",
        reverse_cases=args.case_order == "reversed",
    )


def mode_settings(args: argparse.Namespace) -> RunnerSettings:
    """The settings of the mode `args` asks for, from arguments parse_args has checked (not for --list/--clear-envs)."""
    common = {
        "sizes": args.sizes,
        "cases": tuple(args.cases or ()),
        "threshold": args.threshold,
        "alpha": args.alpha,
        "fail_on_regression": args.fail_on_regression,
        "mlx_extra": args.mlx_extra,
        "mlx_device": args.mlx_device,
        "results": args.results,
        "out": args.out,
        "default_results": args.default_results,
        "default_out": args.default_out,
        "cache_dir": Path(args.cache_dir),
        "verbose": args.verbose,
        "dry_run": args.dry_run,
        "targets": tuple(args.targets),
        "paired": paired_settings(args),
        "confirm_budget": getattr(args, "confirm_budget", None),
    }
    mode = mode_of(args)
    if mode == BISECT:
        case_id, old, new = args.bisect
        return BisectSettings(**common, case_id=case_id, old=old, new=new)
    if mode == SELF_TEST:
        return SelfTestSettings(**common, release=args.self_test)
    if mode == HISTORY:
        return HistorySettings(**common, releases=tuple(args.releases))
    if mode == COMPARE:
        return CompareSettings(
            **common,
            releases=tuple(args.releases),
            mode=args.mode,
            passes=args.passes,
            order=args.order,
            seed=args.seed,
            timeout=args.timeout,
            pytest_args=tuple(args.pytest_args),
        )
    raise ValueError(f"{mode} takes no run settings")
