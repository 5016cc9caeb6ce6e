"""pytest-benchmark's private API, used in one adapter, on the versions it was checked against."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest_benchmark
from pytest_benchmark.fixture import BenchmarkFixture

from bench.session import benchmark_adapter

BENCH = Path(__file__).resolve().parents[1] / "bench"
PRIVATE_NAMES = ("_make_stats", "_mode", "_benchmarksession")


def test_the_installed_pytest_benchmark_is_a_supported_version():
    assert benchmark_adapter.supported(pytest_benchmark.__version__), (
        f"pytest-benchmark {pytest_benchmark.__version__} is outside the versions bench/session/benchmark_adapter.py "
        "was checked against: check its three private names, then widen SUPPORTED_*"
    )
    assert benchmark_adapter.supported("4.0.0") and benchmark_adapter.supported("5.3.1")
    assert not benchmark_adapter.supported("3.4.1") and not benchmark_adapter.supported("6.0.0")


def test_the_private_names_the_adapter_uses_still_exist():
    assert callable(BenchmarkFixture._make_stats)
    source = Path(pytest_benchmark.__file__).with_name("fixture.py").read_text()
    assert "self._mode" in source
    plugin = Path(pytest_benchmark.__file__).with_name("plugin.py").read_text()
    assert "_benchmarksession" in plugin


def test_no_other_module_touches_pytest_benchmarks_private_names():
    offenders = []
    for path in BENCH.rglob("*.py"):
        if path.name == "benchmark_adapter.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            name = (
                node.attr if isinstance(node, ast.Attribute) else node.value if isinstance(node, ast.Constant) else None
            )
            if name in PRIVATE_NAMES:
                offenders.append(f"{path.relative_to(BENCH.parent)}:{node.lineno}: {name}")
    assert offenders == []


def test_two_runs_saving_into_one_folder_at_once_keep_both_files(tmp_path):
    import json
    import threading
    from types import SimpleNamespace

    from pytest_benchmark.storage.file import FileStorage

    class Log:
        def info(self, text):
            pass

    runs = 8
    storages = [
        FileStorage(tmp_path / "results", Log(), default_machine_id="Linux-CPython-3.11-64bit") for _ in range(runs)
    ]
    for storage in storages:  # each pytest session has its own storage; all of them list the same folder
        benchmark_adapter.exclusive_saves(SimpleNamespace(_benchmarksession=SimpleNamespace(storage=storage)))
    start = threading.Barrier(runs)

    def run(number):
        start.wait()  # same commit, same second: every run picks its number from the same listing
        storages[number].save({"run": number, "padding": "x" * 200_000}, "7b7a985_20261127_151607")

    threads = [threading.Thread(target=run, args=(n,)) for n in range(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    folder = tmp_path / "results" / "Linux-CPython-3.11-64bit"
    saved = sorted(p.name for p in folder.iterdir())
    assert saved == [f"{n:04d}_7b7a985_20261127_151607.json" for n in range(1, runs + 1)]  # no hidden leftovers
    assert sorted(json.loads((folder / name).read_text())["run"] for name in saved) == list(range(runs))


def test_the_session_saves_through_the_exclusive_save(tmp_path):
    from types import SimpleNamespace

    from pytest_benchmark.storage.file import FileStorage

    storage = FileStorage(tmp_path, SimpleNamespace(info=lambda text: None), default_machine_id="m")
    (tmp_path / "m" / "0001_other.json").parent.mkdir(parents=True)
    (tmp_path / "m" / "0001_other.json").write_text("another run's file")
    benchmark_adapter.exclusive_saves(SimpleNamespace(_benchmarksession=SimpleNamespace(storage=storage)))
    storage.save({"run": 2}, "other")
    assert (tmp_path / "m" / "0001_other.json").read_text() == "another run's file"
    assert '"run": 2' in (tmp_path / "m" / "0002_other.json").read_text()


def test_this_pytest_session_saves_through_the_exclusive_save(pytestconfig):
    storage = pytestconfig._benchmarksession.storage  # set up by bench/session/lifecycle.py at session start
    assert "save" in vars(storage) and vars(storage)["save"].__name__ == "<lambda>"
