"""pytest plugin: the suite's command-line options (section "mlx-sgd-bench" of `pytest --help`).

  --sizes quick|full|NxD,...   which problem sizes run
  --passes, --rounds           passes over the grid, timed rounds per case in each pass
  --pass-process new|same      every pass in worker processes (default) or in this one (debugging)
  --pass-order burst|interleaved  a later pass takes each case's rounds in one burst (default) or
                               the rounds of one model and size's cases in random order
  --round-time                 how long a round should last (K steps are calibrated to it)
  --hidden 64,256              the MLP's hidden widths
  --memory-budget-gb           sizes whose arrays would not fit are skipped, not killed
  --cpu-affinity               where serial cases run (docs/stable-numbers.md, "Getting stable numbers")
and each backend's own (Backend.add_options), e.g. --mlx-device, --mlx-blas,
--torch-device, --jax-device. A bad value is a one-line usage error (exit 4).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.backends import BackendOptionError, all_backends
from bench.cases.case import HIDDEN_SIZES, QUICK_MLP_FULL_BATCH_WORK, GridOptions
from bench.cases.sizes import SizeError, default_memory_budget, parse_sizes
from bench.engine import affinity, defaults
from bench.engine.passes import Schedule
from bench.engine.run_environment import cpu_model
from bench.session.config import SESSION_CONFIG, SessionConfig
from bench.session.harness import Settings
from bench.stats.run_terms import load_terms

TESTS_DIR = Path(__file__).resolve().parents[2] / "tests"
PASS_PROCESS_CHOICES = ("new", "same")
PASS_ORDER_CHOICES = ("burst", "interleaved")


def pytest_addoption(parser):
    group = parser.getgroup("mlx-sgd-bench")
    group.addoption(
        "--sizes", default="quick", help="size grid: quick (default), full, or a list like 5000x50,20000x200"
    )
    group.addoption(
        "--passes",
        type=int,
        default=defaults.PASSES,
        help="passes over the whole grid; each case is timed once per pass, minutes apart, and its figure is "
        f"the median over its passes (default {defaults.PASSES})",
    )
    group.addoption(
        "--pass-process",
        choices=PASS_PROCESS_CHOICES,
        default="new",
        help="where passes run: new (every pass in worker processes under the isolation policy, a fresh "
        "backend-pure worker per group of cases; default) or same (in this pytest process, no isolation: "
        "for debugging)",
    )
    group.addoption(
        "--pass-order",
        choices=PASS_ORDER_CHOICES,
        default="burst",
        help="how a later pass orders its rounds: burst (each case's rounds one after another; default) or "
        "interleaved (the cases of one model and size opened together and their rounds taken in sweeps, in a "
        'random order each, the backends taking turns); docs/measurement.md, "How a case is timed"',
    )
    group.addoption(
        "--rounds",
        type=int,
        default=defaults.ROUNDS_PER_PASS,
        help=f"timed rounds per case in each pass (default {defaults.ROUNDS_PER_PASS}: rounds of one pass share its moment's luck, "
        "so the session's time goes to passes rather than to rounds)",
    )
    group.addoption(
        "--round-time",
        type=float,
        default=defaults.ROUND_TIME_S,
        help=f"target seconds per round; K steps are calibrated to it (default {defaults.ROUND_TIME_S})",
    )
    group.addoption(
        "--hidden",
        default=None,
        help="MLP hidden widths, e.g. 64,256 (default: 64,256; with --sizes full: 64,256,1024)",
    )
    group.addoption(
        "--steps-per-round",
        type=int,
        default=None,
        help="fix K for every grid case instead of calibrating it (e.g. to compare runs step for step)",
    )
    group.addoption(
        "--memory-budget-gb",
        type=float,
        default=None,
        help="skip sizes whose arrays would need more than this (default: half the available memory)",
    )
    group.addoption(
        "--blog-rounds",
        type=int,
        default=defaults.BLOG_ROUNDS,
        help=f"timed runs of each blog configuration in each pass (default {defaults.BLOG_ROUNDS})",
    )
    group.addoption(
        "--cpu-affinity",
        default="auto",
        help="CPUs for cases that hand their work between threads one at a time (MLX on the CPU with its bundled "
        "BLAS): auto (one CPU, the last usable; default), none (wherever the scheduler puts them) "
        "or a CPU list like 1 or 0,1",
    )
    group.addoption(
        "--run-terms",
        default=None,
        metavar="FILE",
        help="between-run terms of the intervals, as python -m bench.report.calibration estimate writes them from "
        "pairs of your own runs (default: the suite's estimate for this machine's CPU model, bench/stats/run_terms*.json; "
        "docs/stable-numbers.md)",
    )
    group.addoption(
        "--no-overhead-check",
        action="store_true",
        help="skip the bare-loop comparison run for the blog's size",
    )
    for backend in all_backends():
        backend.add_options(group)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """Parse every option once into the session's SessionConfig; a bad value is a one-line usage error."""
    try:
        # First of all: backends may have to act before their library is imported (MLX's BLAS).
        for backend in all_backends():
            backend.configure(config.getoption)
        sizes = parse_sizes(config.getoption("sizes"))
        cpus = affinity.parse_cpus(config.getoption("cpu_affinity"))
        run_terms = load_terms(config.getoption("run_terms"), cpu_model())
    except (BackendOptionError, SizeError, ValueError) as error:
        raise pytest.UsageError(str(error)) from None
    if config.getoption("rounds") < 1 or config.getoption("passes") < 1 or config.getoption("round_time") <= 0:
        raise pytest.UsageError("--rounds and --passes must be at least 1 and --round-time positive")
    if (config.getoption("steps_per_round") or 1) < 1:
        raise pytest.UsageError("--steps-per-round must be at least 1")
    budget_gb = config.getoption("memory_budget_gb")
    schedule = Schedule(
        passes=config.getoption("passes"),
        run_terms=run_terms,
        worker_options=backend_options(config) if config.getoption("pass_process") == "new" else None,
        interleave=config.getoption("pass_order") == "interleaved",
    )
    settings = Settings(
        rounds=config.getoption("rounds"),
        round_time_s=config.getoption("round_time"),
        steps_per_round=config.getoption("steps_per_round"),
        overhead_check=not config.getoption("no_overhead_check"),
        blog_rounds=config.getoption("blog_rounds"),
        passes=config.getoption("passes"),
        serial_cpus=affinity.serial_cpus(cpus),
        schedule=schedule,
    )
    config.stash[SESSION_CONFIG] = SessionConfig(
        sizes=sizes,
        grid=grid_options(config.getoption("sizes"), config.getoption("hidden")),
        memory_budget_bytes=int(budget_gb * 2**30) if budget_gb is not None else default_memory_budget(),
        settings=settings,
        schedule=schedule,
        sizes_option=config.getoption("sizes"),
    )


def backend_options(config) -> dict:
    """Every backend's own options as parsed (named <backend>_...), for a pass worker to configure itself by."""
    prefixes = tuple(f"{backend.name}_" for backend in all_backends())
    return {name: value for name, value in vars(config.option).items() if name.startswith(prefixes)}


def pytest_ignore_collect(collection_path, config):
    """The main job (--benchmark-only) collects the benchmarks only, not the harness's unit tests."""
    if config.getoption("benchmark_only") and TESTS_DIR in (collection_path, *collection_path.parents):
        return True
    return None


def grid_options(sizes: str, hidden: str | None) -> GridOptions:
    """MLP widths and the quick grid's full-batch MLP limit, from --sizes and --hidden."""
    grid = sizes.strip().lower()
    if hidden is None:
        widths = HIDDEN_SIZES["full" if grid == "full" else "quick"]
    else:
        try:
            widths = tuple(dict.fromkeys(int(w.replace("_", "")) for w in hidden.split(",")))
        except ValueError:
            raise pytest.UsageError(f"--hidden: cannot read {hidden!r}; expected widths like 64,256") from None
        if not widths or min(widths) < 1:
            raise pytest.UsageError(f"--hidden: {hidden!r}: widths must be positive")
    # Only the default quick grid limits full-batch MLP work; other grids run what they name.
    quick = grid == "quick"
    return GridOptions(hidden=widths, mlp_full_batch_work=QUICK_MLP_FULL_BATCH_WORK if quick else None, quick=quick)
