"""Every use of pytest-benchmark's private API, in one place, for the versions it was checked against.

The suite times rounds itself (bench.engine) and hands pytest-benchmark the
per-step times to keep its standard JSON and its ``stats``; for that it needs
three things pytest-benchmark does not publish: a fixture's stats record
(``BenchmarkFixture._make_stats``), the marker that a fixture was used
(``_mode``), and the session that holds every benchmark
(``config._benchmarksession``). Nothing else in the suite touches them.
One thing is replaced: the file storage's ``save``, which picks the next
``NNNN_`` by listing the folder and then opens that name for writing, so two
runs saving into one results folder at once could truncate each other's file;
here a saved file is written in full under a hidden name, its ``NNNN_`` name
claimed exclusively (the next number is tried when it is taken), and the
complete file renamed onto it (bench.results.files.save_numbered: no hard
links, so it works on FAT/exFAT and network mounts).
tests/test_benchmark_adapter.py pins the versions below: a pytest-benchmark
outside them, or one that renamed any of the three, fails that test instead
of silently saving something else.
"""

from __future__ import annotations

from pathlib import Path

from packaging.version import Version

from bench.results.files import save_numbered

SUPPORTED_MIN = Version("4.0")  # requirements.txt: pytest-benchmark>=4.0
SUPPORTED_BELOW = Version("6")  # the next major version is unchecked
STATS_MODE = "mlx-sgd-bench"  # what _mode says of a fixture the suite timed itself


def supported(version: str) -> bool:
    """Whether this adapter was checked against pytest-benchmark `version`."""
    return SUPPORTED_MIN <= Version(version) < SUPPORTED_BELOW


def mark_used(benchmark) -> None:
    """Tell pytest-benchmark the case used its fixture (the suite times rounds itself, or, untimed, runs them once)."""
    benchmark._mode = STATS_MODE  # otherwise: a "fixture was not used" warning per case


def per_step_stats(benchmark, steps_per_round: int):
    """The fixture's stats record; each update(round seconds) counts as `steps_per_round` steps (ops = steps/s)."""
    mark_used(benchmark)
    return benchmark._make_stats(steps_per_round)


def session_benchmarks(config) -> list:
    """Every benchmark fixture of this pytest session (empty where pytest-benchmark is not active)."""
    session = getattr(config, "_benchmarksession", None)
    return list(session.benchmarks) if session is not None else []


def restate_stats(stats_record, round_seconds: list[float]) -> None:
    """Replace a stats record's samples by `round_seconds` (each one round of K steps; stored per step).

    The suite's figure is the median over passes of each pass's median round
    (the pass is the unit of evidence), so the saved `stats` are computed over
    the pass medians: `1 / stats.median` is the suite's steps/s and `ops` is in
    steps/s, and `pytest-benchmark compare` reads what the suite prints.
    """
    from pytest_benchmark.stats import Stats

    stats_record.stats = Stats()
    for seconds in round_seconds:
        stats_record.update(seconds)


def save_exclusively(storage, output_json: dict, save: str) -> Path:
    """Save as pytest-benchmark's FileStorage.save does, but never over another run's file (bench.results.files)."""
    from pytest_benchmark.utils import safe_dumps

    data = safe_dumps(output_json, ensure_ascii=True, indent=4).encode()
    folder = Path(storage.get(f"0000_{save}.json")).parent  # also creates the machine's folder
    target = save_numbered(folder, f"{save}.json", data)
    storage.logger.info(f"Saved benchmark data in: {target}")
    return target


def exclusive_saves(config) -> None:
    """Make this session's pytest-benchmark save its results with save_exclusively (file storage only)."""
    session = getattr(config, "_benchmarksession", None)
    storage = getattr(session, "storage", None)
    if storage is None or type(storage).__name__ != "FileStorage":
        return  # elasticsearch storage, or pytest-benchmark not active: nothing is numbered by listing a folder
    storage.save = lambda output_json, save: save_exclusively(storage, output_json, save)
