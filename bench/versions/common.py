"""Names every part of the release runner shares: folders, file names, exit statuses, errors."""

from __future__ import annotations

from pathlib import Path

from bench.console.exit_codes import INCOMPLETE, INCONCLUSIVE, INTERRUPTED, OK, REGRESSION, UNFIT, USAGE

REPO_ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = REPO_ROOT / "requirements.txt"
CACHE_ENV_VAR = "MLX_SGD_BENCH_CACHE"
MARKER_NAME = "mlx-sgd-bench-env.json"  # written last: its presence means "fully built"
MANIFEST_NAME = "versions-run.json"
RUNS_DIR = "runs"  # pytest-benchmark storage inside the results folder: all the report reads
SUITE_DIR = "suite"  # the copy of the suite every run executes
ORDERS = ("rotate", "shuffle", "fixed")
DEFAULT_PASSES = 3

# The one table of every command (bench.console.exit_codes).
EXIT_OK, EXIT_REGRESSION, EXIT_USAGE, EXIT_INCOMPLETE = OK, REGRESSION, USAGE, INCOMPLETE
EXIT_INCONCLUSIVE, EXIT_UNFIT, EXIT_INTERRUPTED = INCONCLUSIVE, UNFIT, INTERRUPTED


class InstallError(Exception):
    """A release whose environment could not be built; the message is one line."""
