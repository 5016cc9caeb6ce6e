"""Command-line options, the size grid as parametrized cases, devices and machine_info.

Options (see `pytest --help`, section "mlx-sgd-bench"):
  --sizes quick|full|NxD,...   which problem sizes run
  --mlx-device cpu|gpu|all     where MLX cases run (default: the GPU if MLX has one)
  --hidden 64,256              the MLP's hidden widths
  --rounds, --round-time       how many timed rounds, and how long each should last
  --memory-budget-gb           sizes whose arrays would not fit are skipped, not killed
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest

from bench import affinity, compat, environment, machine_limits
from bench.blas import INSTALL_HINT, BlasError, select_mlx_blas

from bench.cases import CASES_BY_SCENARIO, HIDDEN_SIZES, QUICK_MLP_FULL_BATCH_WORK, Case, GridOptions
from bench.datasets import make_problem
from bench.harness import Settings
from bench.passes import Schedule
from bench.summary import format_summary
from bench.sizes import BLOG_SIZE, Size, SizeError, default_memory_budget, estimated_case_bytes, parse_sizes

# The data-parallel benchmark's options (--dist-ranks, --dist-hostfile, ...).
pytest_plugins = ("bench.distributed.options",)

DEVICE_CHOICES = ("cpu", "gpu", "all")
TESTS_DIR = Path(__file__).resolve().parent / "tests"
SUMMARY_LEGEND = (
    "K: steps per round; steps/s: K / median of the pass medians; roof: share of the roofline bound "
    "min(bandwidth x intensity, peak GFLOP/s) measured at session start; spread: (slowest - fastest pass) / median "
    "(! = unstable: no majority of passes within 5% of the median, or rounds too noisy); overhead: suite round time / bare loop; "
    "x NumPy: steps/s over NumPy's (float32 analytic, same barrier class), median of the per-pass ratios"
)


def pytest_addoption(parser):
    group = parser.getgroup("mlx-sgd-bench")
    group.addoption("--sizes", default="quick", help="size grid: quick (default), full, or a list like 5000x50,20000x200")
    group.addoption(
        "--mlx-device",
        default=None,
        help="MLX device: cpu, gpu or all (default: the GPU where MLX has one, else the CPU)",
    )
    group.addoption(
        "--passes",
        type=int,
        default=3,
        help="passes over the whole grid; each case is timed once per pass, minutes apart, and its figure is "
        "the median over its passes (default 3)",
    )
    group.addoption("--rounds", type=int, default=5, help="timed rounds per case in each pass (default 5)")
    group.addoption(
        "--round-time", type=float, default=0.02, help="target seconds per round; K steps are calibrated to it (default 0.02)"
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
        "--blog-rounds", type=int, default=1, help="timed runs of each blog configuration in each pass (default 1)"
    )
    group.addoption(
        "--mlx-blas",
        default="bundled",
        help="BLAS for MLX's CPU matmuls (Linux): bundled (the wheel's reference BLAS, default), "
        "openblas (a system OpenBLAS: " + INSTALL_HINT + ") or a path to a libblas",
    )
    group.addoption(
        "--cpu-affinity",
        default="auto",
        help="CPUs for cases that hand their work between threads one at a time (MLX on the CPU with its bundled "
        "BLAS): auto (one CPU, the last usable; default), none (wherever the scheduler puts them) "
        "or a CPU list like 1 or 0,1",
    )
    group.addoption(
        "--no-overhead-check",
        action="store_true",
        help="skip the bare-loop comparison run for the blog's size",
    )


def mlx_devices(option: str | None) -> tuple[str, ...]:
    """Devices the MLX cases run on for a --mlx-device value."""
    if option is None:
        return ("gpu",) if compat.gpu_available() else ("cpu",)
    return ("cpu", "gpu") if option == "all" else (option,)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    try:
        # First of all: the BLAS must be in place before anything imports MLX.
        config.bench_mlx_blas = select_mlx_blas(config.getoption("mlx_blas"))
        config.bench_sizes = parse_sizes(config.getoption("sizes"))
        config.bench_cpu_affinity = affinity.parse_cpus(config.getoption("cpu_affinity"))
    except (BlasError, SizeError, ValueError) as error:
        raise pytest.UsageError(str(error)) from None
    device = config.getoption("mlx_device")
    if device is not None and device not in DEVICE_CHOICES:
        raise pytest.UsageError(f"--mlx-device: {device!r} is not one of {', '.join(DEVICE_CHOICES)}")
    if config.getoption("rounds") < 1 or config.getoption("passes") < 1 or config.getoption("round_time") <= 0:
        raise pytest.UsageError("--rounds and --passes must be at least 1 and --round-time positive")
    if (config.getoption("steps_per_round") or 1) < 1:
        raise pytest.UsageError("--steps-per-round must be at least 1")
    config.bench_grid = grid_options(config.getoption("sizes"), config.getoption("hidden"))
    budget_gb = config.getoption("memory_budget_gb")
    config.bench_memory_budget = int(budget_gb * 2**30) if budget_gb is not None else default_memory_budget()
    config.bench_mlx_devices = mlx_devices(device)
    config.bench_schedule = Schedule(passes=config.getoption("passes"))
    # Measured at session start; pytest-benchmark asks for machine_info earlier with --benchmark-compare.
    config.bench_machine_limits = None


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
    return GridOptions(hidden=widths, mlp_full_batch_work=QUICK_MLP_FULL_BATCH_WORK if grid == "quick" else None)


def skip_reason(config, case, size) -> str | None:
    """Why a case cannot run here, or None."""
    if case.backend == "mlx" and not compat.mlx_installed():
        return "mlx is not installed"
    if case.backend == "mlx" and case.device == "gpu" and not compat.gpu_available():
        return "MLX has no GPU on this machine"
    need = estimated_case_bytes(size, case.hidden or 0)
    if need > config.bench_memory_budget:
        return f"{size.id} needs about {need / 2**30:.1f} GiB, over the memory budget of {config.bench_memory_budget / 2**30:.1f} GiB"
    return None


def pytest_generate_tests(metafunc):
    """Parametrize each benchmark's (case, size) over the grid: sizes outer, cases inner."""
    if not {"case", "size"} <= set(metafunc.fixturenames):
        return
    config = metafunc.config
    # A module says which cases it runs (SCENARIO) for which models (MODEL or MODELS);
    # the blog's configurations run at the blog's size only.
    scenario = getattr(metafunc.module, "SCENARIO", "grid")
    models = getattr(metafunc.module, "MODELS", None) or (metafunc.module.MODEL,)
    make_cases = CASES_BY_SCENARIO[scenario]
    params = []
    for size in (BLOG_SIZE,) if scenario == "blog" else config.bench_sizes:
        for case in (c for model in models for c in make_cases(model, config.bench_mlx_devices, size, config.bench_grid)):
            reason = skip_reason(config, case, size)
            marks = [pytest.mark.skip(reason=reason)] if reason else []
            # Plain dicts, so the saved JSON's `params` stay readable; fixtures rebuild the objects.
            params.append(pytest.param(asdict(case), asdict(size), id=case.case_id(size), marks=marks))
    metafunc.parametrize("case,size", params, indirect=True)


@pytest.fixture
def case(request):
    """The implementation under test (a bench.cases.Case)."""
    return Case(**request.param)


@pytest.fixture
def size(request):
    """The problem size (a bench.sizes.Size)."""
    return Size(**request.param)


@pytest.fixture
def problem(case, size):
    """The seeded problem of this case's model at this size (cached per process)."""
    return make_problem(case.model, size)


@pytest.fixture(scope="session")
def settings(pytestconfig):
    """Measurement settings from the command line."""
    return Settings(
        rounds=pytestconfig.getoption("rounds"),
        round_time_s=pytestconfig.getoption("round_time"),
        steps_per_round=pytestconfig.getoption("steps_per_round"),
        overhead_check=not pytestconfig.getoption("no_overhead_check"),
        blog_rounds=pytestconfig.getoption("blog_rounds"),
        passes=pytestconfig.getoption("passes"),
        mlx_blas=pytestconfig.getoption("mlx_blas"),
        serial_cpus=affinity.serial_cpus(pytestconfig.bench_cpu_affinity),
        schedule=pytestconfig.bench_schedule,
    )


def pytest_sessionstart(session):
    """Measure the machine's memory bandwidth and peak GFLOP/s before any benchmark runs."""
    config = session.config
    timing = not (config.getoption("benchmark_disable") or config.getoption("benchmark_skip"))
    if timing and not config.getoption("collectonly"):
        config.bench_machine_limits = machine_limits.measure(environment.usable_cpus(), config.bench_memory_budget)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtestloop(session):
    """Once every test has run (pass 1 of each case), time passes 2..P of the cases, in the same order."""
    outcome = yield
    schedule = session.config.bench_schedule
    if outcome.excinfo is not None or session.shouldstop or session.shouldfail or not schedule.measurements:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    progress = (lambda line: reporter.write_line(line)) if reporter is not None else (lambda line: None)
    if reporter is not None:
        reporter.ensure_newline()
    schedule.run_later_passes(progress, should_stop=lambda: bool(session.shouldstop))
    session.testsfailed += len(schedule.failures())  # a check failed in a later pass: the run fails


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_sessionfinish(session):
    """Each case's figures from all its passes, before pytest-benchmark saves and compares them."""
    session.config.bench_schedule.finalize()
    yield


def pytest_benchmark_update_machine_info(config, machine_info):
    """Add the environment of DESIGN rule 7 and this run's settings to every saved result."""
    machine_info.update(environment.collect())
    if config.bench_machine_limits:
        machine_info["machine_limits"] = config.bench_machine_limits
    machine_info["bench_settings"] = {
        "sizes": [s.id for s in config.bench_sizes],
        "mlx_devices": list(config.bench_mlx_devices),
        "rounds": config.getoption("rounds"),
        "passes": config.getoption("passes"),
        "round_time_s": config.getoption("round_time"),
        "mlx_blas_choice": config.getoption("mlx_blas"),
        "cpu_affinity": config.getoption("cpu_affinity"),
        "mlp_hidden": list(config.bench_grid.hidden),
    }


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A case that fails after timing (a correctness or barrier check) must not be saved as a result."""
    outcome = yield
    benchmark = getattr(item, "funcargs", {}).get("benchmark")
    if benchmark is not None and call.when == "call" and outcome.get_result().failed:
        benchmark.has_error = True


def pytest_terminal_summary(terminalreporter, config):
    """Throughput per case, ratios to NumPy pass by pass, and what the later passes found."""
    session = getattr(config, "_benchmarksession", None)
    schedule = config.bench_schedule
    failures = schedule.failures()
    if failures:
        terminalreporter.section("cases that failed a check in a later pass (not saved)")
        for line in failures:
            terminalreporter.write_line(line)
    text = format_summary(session.benchmarks, config.bench_machine_limits, schedule.notes) if session is not None else ""
    if text:
        terminalreporter.section("steps/s per case")
        terminalreporter.write_line(SUMMARY_LEGEND)
        terminalreporter.write_line(text)
