"""pytest plugin: the distributed benchmark's options and its end-of-run table.

Registered from conftest.py with `pytest_plugins = ("bench.distributed.pytest_plugin",)`.
Options (section "mlx-sgd-bench" of `pytest --help`):
  --dist-ranks 1,2          rank counts to run (N = 1 is the scaling baseline)
  --dist-backend ring|mpi   MLX's distributed backend (ring over TCP by default)
  --dist-hostfile PATH      a user's hostfile (mlx.launch format) to run ranks on several hosts
  --dist-timeout SECONDS    the longest a rank may take to start or to answer one command

Without this plugin the distributed benchmark still runs, with the defaults.
Nothing here imports MLX (see bench.backends.mlx.blas).
"""

from __future__ import annotations

import pytest

from bench.distributed.hostfile import HostfileError, read_hostfile
from bench.distributed.measure import DistSettings
from bench.session.config import SESSION_CONFIG, session_config

BACKENDS = ("ring", "mpi")


def pytest_addoption(parser):
    """The --dist-* options, in the suite's own section of `pytest --help`."""
    group = parser.getgroup("mlx-sgd-bench")
    group.addoption("--dist-ranks", default="1,2", help="data-parallel rank counts, e.g. 1,2,4 (default 1,2)")
    group.addoption("--dist-backend", default="ring", help="mx.distributed backend: ring (default) or mpi")
    group.addoption(
        "--dist-hostfile",
        default=None,
        help='run ranks on several hosts through mlx.launch: a JSON list like [{"ssh": "host1", "ips": ["10.0.0.1"]}, ...], '
        "rank r on host r (default: all ranks on 127.0.0.1)",
    )
    group.addoption(
        "--dist-timeout",
        type=float,
        default=60.0,
        help="seconds a rank may take to start or to answer one command before the case fails (default 60)",
    )


def parse_ranks(value: str) -> tuple[int, ...]:
    """'1,2,4' -> (1, 2, 4), sorted and without repeats; ValueError with one line otherwise."""
    try:
        ranks = sorted({int(part.replace("_", "")) for part in value.split(",") if part.strip()})
    except ValueError:
        ranks = []
    if not ranks or ranks[0] < 1:
        raise ValueError(
            f"--dist-ranks: expected a comma-separated list of positive rank counts like 1,2, got {value!r}"
        )
    return tuple(ranks)


def settings_from_options(
    ranks: str, backend: str, hostfile: str | None, timeout: float, mlx_blas: str = "bundled"
) -> DistSettings:
    """DistSettings from the option values; ValueError (HostfileError) with one line if one is wrong."""
    if backend not in BACKENDS:
        raise ValueError(f"--dist-backend: {backend!r} is not one of {', '.join(BACKENDS)}")
    if not timeout > 0:
        raise ValueError(f"--dist-timeout: must be positive, got {timeout:g}")
    hosts = None
    if hostfile:
        try:
            hosts = read_hostfile(hostfile, require_ips=backend == "ring")
        except HostfileError as error:
            raise HostfileError(f"--dist-hostfile {error}") from None
    return DistSettings(parse_ranks(ranks), backend, hosts, timeout, mlx_blas)


def pytest_configure(config):
    """Read and check the --dist-* options once; a bad one is a one-line usage error."""
    try:
        session_config(config).distributed = settings_from_options(
            config.getoption("dist_ranks"),
            config.getoption("dist_backend"),
            config.getoption("dist_hostfile"),
            config.getoption("dist_timeout"),
            _option(config, "mlx_blas", "bundled"),
        )
    except ValueError as error:
        raise pytest.UsageError(str(error)) from None


def _option(config, name: str, default):
    """An option of another plugin or conftest, or its default where it is not defined."""
    try:
        return config.getoption(name)
    except ValueError:
        return default


def dist_settings(config) -> DistSettings:
    """This run's distributed settings (the defaults where the plugin is not registered)."""
    found = config.stash.get(SESSION_CONFIG, None)
    return (found.distributed if found else None) or DistSettings(mlx_blas=_option(config, "mlx_blas", "bundled"))


def pytest_terminal_summary(terminalreporter, config):
    """steps/s per rank count, speedup, scaling efficiency and the all_sum's share of a step."""
    from bench.distributed.scaling import format_table, scaling_frame
    from bench.session.benchmark_adapter import session_benchmarks

    frame = scaling_frame([b.extra_info for b in session_benchmarks(config) if not b.has_error])
    if not frame.empty:
        terminalreporter.section(
            "data-parallel SGD (efficiency: speedup / N against N = 1; comm: all_sum share of a step)"
        )
        terminalreporter.write_line(format_table(frame))
