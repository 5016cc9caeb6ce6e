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
