"""Compare MLX releases on this machine: `python -m bench.versions SUBCOMMAND`.

    python -m bench.versions compare 0.30.0 0.32.4 [--sizes quick] [--sessions 4] [--pairs 6] [--cases GLOB]
    python -m bench.versions history [FROM [TO] | RELEASE RELEASE RELEASE ...]
    python -m bench.versions self-test 0.32.4
    python -m bench.versions bisect CASE OLD NEW
    python -m bench.versions compare 0.29.4 0.32.4 --mode runs [--passes 3] [-- PYTEST_ARGS]

The flags of older command lines (`0.30.0 0.32.4`, `--history`, `--self-test`,
`--bisect`) are aliases of the subcommands; each mode runs from one frozen
settings object built from the command line (bench.versions.modes).

Each release (a published version, or a local MLX wheel labelled by version and
hash) gets its own virtual environment, built once in a cache folder and
reused: MLX plus every other package the suite needs, pinned to the versions
installed in the interpreter running this command, so MLX is the only thing
that differs between environments (bench.versions.pins, .environments). Every
release name is validated before it touches the disk (bench.versions.targets).

The default, paired mode times the grid's cases with the measurement engine
(bench.engine): its workers, run in each release's environment from a
snapshot of the suite, pinned to the same CPUs and started under its isolation
policy; rounds of one case alternate between the releases, and several
sessions of fresh processes make the process the unit of the verdict
(bench.versions.paired, .verdicts, .compare). Results go to
`results/versions/<timestamp>/release-verdicts.json` and `.csv`.
`self-test` compares a release with itself, with slowdowns planted in one
side (bench.versions.selftest); `bisect` finds the first release where a
case regressed (bench.versions.bisect); `history` measures every release in a
range and finds where the speed changed (bench.versions.history).

`--mode runs` runs the whole grid once per release and pass under pytest,
interleaved, then `python -m bench.report` over the saved runs
(bench.versions.plan, .runs, .run_reports).

Exit status: 0 done (self-test: pass); 1 a regression (with
--fail-on-regression; self-test: a false regression); 2 bad command line; 3 a
release could not be installed or a run failed (what did run is saved);
4 inconclusive, a NumPy control moved (with --fail-on-regression; always for
the self-test); 5 self-test: the planted 30% slowdown was missed.
"""

from __future__ import annotations

from bench.results.releases import DEFAULT_THRESHOLD
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
from bench.versions.dispatch import build_parser, main, parse_args, split_argv
from bench.versions.environments import EnvCache, default_cache_dir, ensure_env, env_python, wanted_marker
from bench.versions.pins import PinSet, is_mlx_distribution, mlx_spec, pin_set, read_requirements
from bench.versions.plan import child_environment, pytest_command, run_order, save_name
from bench.versions.runs import RunRecord, run_once, snapshot_suite

__all__ = [name for name in dir() if not name.startswith("_")]
