"""pytest plugin: what the session does around the benchmarks, and what it says at the end.

Machine limits before the first benchmark; saved results never overwrite
another run's (bench.session.benchmark_adapter.exclusive_saves); passes 2..P once every test has run
(bench.engine.passes); every case's figures before pytest-benchmark saves them; the
environment in machine_info (docs/measurement.md, "Measurement rules", rule 7); a case that
fails a check after timing is not saved; a run stopped early (Ctrl-C, -x) is saved
marked interrupted (bench.results.run_state); the end-of-run table of steps/s and
ratios (bench.session.summary).
"""

from __future__ import annotations

import pytest

from bench.cases.reference_cache import session_cache
from bench.engine import isolation, machine_limits, run_environment
from bench.results.run_state import RUN_FIELD, run_mark
from bench.session.benchmark_adapter import exclusive_saves, session_benchmarks
from bench.session.config import session_config
from bench.session.summary import format_summary

SUMMARY_LEGEND = (
    "K: steps per round; steps/s: K / median of the pass medians; ±95%: how far its 95% interval reaches (from the "
    "passes, moderated by the session's other cases, widened by a between-run term that grows with the case's noise, "
    "its quantile the one that held 95% of reruns on held-out pairs: bench.stats.intervals); "
    "! = unstable: the interval reaches more than 10% either side; roof: share of the cache-aware roofline bound "
    "min(bandwidth x intensity, peak GFLOP/s), the bandwidth that of the level the case's data fits in (from: L1, L2, "
    "L3 or DRAM), all measured at session start; ^ = above the bound, the reason below the table; "
    "overhead: suite round time / bare loop; "
    "x NumPy: steps/s over NumPy's (float32 analytic, same barrier class), median of the per-pass ratios, "
    "with its 95% interval"
)


def pytest_sessionstart(session):
    """Measure the machine's bandwidth per cache level and memory, and its peak GFLOP/s, before any benchmark runs."""
    config = session.config
    exclusive_saves(config)  # two runs saving into one results folder at once: neither overwrites the other
    timing = not (config.getoption("benchmark_disable") or config.getoption("benchmark_skip"))
    if timing and not config.getoption("collectonly"):
        state = session_config(config)
        state.machine_limits = machine_limits.measure(run_environment.usable_cpus(), state.memory_budget_bytes)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtestloop(session):
    """Once every test has run (pass 1 of each case), time passes 2..P of the cases, in the same order.

    Every worker of the session shares one private reference cache (bench.cases.reference_cache).
    """
    with session_cache():
        outcome = yield
        schedule = session_config(session.config).schedule
        if outcome.excinfo is not None or session.shouldstop or session.shouldfail or not schedule.measurements:
            return
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        progress = (lambda line: reporter.write_line(line)) if reporter is not None else (lambda line: None)
        if reporter is not None:
            reporter.ensure_newline()
        schedule.run_later_passes(progress, should_stop=lambda: bool(session.shouldstop))
        session.testsfailed += len(schedule.failures())  # a check failed in a later pass: the run fails


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    """Each case's figures from all its passes, and whether the run is complete, before pytest-benchmark saves."""
    state = session_config(session.config)
    state.schedule.finalize()
    # A Ctrl-C or -x still saves what was timed: the mark keeps the report from taking it for a complete run.
    stopped = session.shouldstop or session.shouldfail
    state.run_mark = run_mark(
        exitstatus,
        stopped if isinstance(stopped, str) else ("stopped" if stopped else None),
        state.schedule.short_cases(),
        state.schedule.passes,
    )
    yield


def pytest_benchmark_update_machine_info(config, machine_info):
    """Add the environment of rule 7 and this run's settings to every saved result."""
    state = session_config(config)
    machine_info.update(run_environment.collect())
    machine_info["isolation"] = isolation.describe()
    if state.machine_limits:
        machine_info["machine_limits"] = state.machine_limits
    steadiness = state.schedule.steadiness()
    if steadiness is not None:
        machine_info["machine_steadiness"] = steadiness
    if state.schedule.variance_components:
        machine_info["variance_components"] = state.schedule.variance_components
    machine_info["run_terms"] = state.schedule.run_terms.to_json()
    if state.run_mark is not None:
        machine_info[RUN_FIELD] = state.run_mark
    machine_info["bench_settings"] = {
        "sizes": [s.id for s in state.sizes],
        "rounds": state.settings.rounds,
        "passes": state.settings.passes,
        "pass_order": "interleaved" if state.schedule.interleave else "burst",
        "round_time_s": state.settings.round_time_s,
        "cpu_affinity": config.getoption("cpu_affinity"),
        "mlp_hidden": list(state.grid.hidden),
        "backend_devices": backend_devices(),
        # Kept under their old names, which the report and older tools read.
        "mlx_devices": list(backend_devices().get("mlx", [])),
        "mlx_blas_choice": config.getoption("mlx_blas"),
    }


def backend_devices() -> dict[str, list[str]]:
    """Each installed backend's devices in this session."""
    from bench.backends import all_backends

    return {b.name: list(b.devices()) for b in all_backends() if b.missing() is None}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A case that fails after timing (a correctness or barrier check) must not be saved as a result."""
    outcome = yield
    benchmark = getattr(item, "funcargs", {}).get("benchmark")
    if benchmark is not None and call.when == "call" and outcome.get_result().failed:
        benchmark.has_error = True


def skip_lines(reports) -> list[str]:
    """One line per distinct reason a case was skipped (a missing library, device or memory), with its count."""
    counts: dict[str, int] = {}
    for report in reports:
        longrepr = getattr(report, "longrepr", None)
        reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
        reason = reason.removeprefix("Skipped: ")
        counts[reason] = counts.get(reason, 0) + 1
    return [f"{count:4d} cases: {reason}" for reason, count in sorted(counts.items(), key=lambda item: -item[1])]


def pytest_terminal_summary(terminalreporter, config):
    """Throughput per case, ratios to NumPy pass by pass, what the later passes found, and what did not run."""
    skipped = skip_lines(terminalreporter.stats.get("skipped", []))
    if skipped:
        terminalreporter.section("not run here")
        for line in skipped:
            terminalreporter.write_line(line)
    benchmarks = session_benchmarks(config)
    state = session_config(config)
    failures = state.schedule.failures()
    if failures:
        terminalreporter.section("cases that failed a check in a later pass (not saved)")
        for line in failures:
            terminalreporter.write_line(line)
    text = format_summary(benchmarks, state.machine_limits, state.schedule.notes) if benchmarks else ""
    if text:
        terminalreporter.section("steps/s per case")
        terminalreporter.write_line(SUMMARY_LEGEND)
        terminalreporter.write_line(text)
