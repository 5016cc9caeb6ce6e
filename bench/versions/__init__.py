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


from bench.versions.cli import build_parser, main, parse_args, split_argv
from bench.releases import DEFAULT_THRESHOLD
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
from bench.versions.pins import PinSet, is_mlx_distribution, mlx_spec, pin_set, read_requirements
from bench.versions.plan import child_environment, pytest_command, run_order, save_name
from bench.versions.runs import RunRecord, run_once, snapshot_suite

__all__ = [name for name in dir() if not name.startswith("_")]
