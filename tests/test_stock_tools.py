"""Stock tools read this suite's results right: pytest-benchmark compare and --benchmark-compare-fail, per step.

A plugin loaded into the benchmark runs (tests/data/slowdown_plugin.py) makes
chosen NumPy cases sleep a fixed time per step, so their per-step time is known
whatever K the run calibrates and however busy the machine is.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_DIR = ROOT / "tests" / "data"
STEADY = "linear-numpy-analytic-eager-cpu-n600-d8"
SLOWED = "linear-numpy-analytic-sync-cpu-n600-d8"
SELECT = f"{STEADY} or {SLOWED}"

pytestmark = pytest.mark.slow


def bench_run(storage: Path, plant: str, steps_per_round: int, *extra: str) -> subprocess.CompletedProcess:
    """One short benchmark run of the two cases, with `plant` ("barrier=seconds per step,...") slowing them."""
    path = os.pathsep.join([str(PLUGIN_DIR), str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path, "PLANTED": plant}
    # Run beside the storage: pytest-benchmark names a compared file relative to the working directory.
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "slowdown_plugin",
            str(ROOT / "benchmarks" / "test_linear.py"),
            "--benchmark-only",
        ]
        + ["--sizes", "600x8", "--passes", "2", "--rounds", "3", "--steps-per-round", str(steps_per_round)]
        # The planted sleep patches this pytest process only, so its later passes stay in it too.
        + ["--pass-process", "same"]
        + ["--memory-budget-gb", "0.5", "-k", SELECT, f"--benchmark-storage=file://{storage}", *extra],
        cwd=storage.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Run 1: both cases 4 ms per step, K = 2. Run 2: K = 4, the sync case 8 ms per step."""
    storage = tmp_path_factory.mktemp("storage")
    first = bench_run(storage, "eager=0.004,sync=0.004", 2)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    second = bench_run(storage, "eager=0.004,sync=0.008", 4)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-2000:]
    return storage


def medians_ms(table: str, name: str) -> list[float]:
    """The median column of every row of pytest-benchmark's table that names `name`, in milliseconds."""
    return [
        float(m.group(1).replace(",", "")) for m in re.finditer(rf"{re.escape(name)}\]\s+\(\S+\)\s+([\d,.]+)", table)
    ]


def test_saved_stats_are_per_step_whatever_k(two_runs):
    files = sorted(two_runs.rglob("*.json"))
    assert len(files) == 2
    for path in files:
        for bench in json.loads(path.read_text())["benchmarks"]:
            per_step = bench["stats"]["median"]
            assert bench["stats"]["ops"] == pytest.approx(1 / bench["stats"]["mean"])
            assert per_step >= 0.004  # never a round of K steps
            # The stats are over the pass medians: their median is the suite's figure, ops is in steps/s.
            # Two passes, and a third where they disagreed and the re-measure took the case again.
            planned = 2 + bool(bench["extra_info"].get("remeasured"))
            assert bench["stats"]["rounds"] == bench["extra_info"]["passes"] == planned
            assert 1 / per_step == pytest.approx(bench["extra_info"]["steps_per_s"], rel=1e-9)
            assert bench["extra_info"]["stats_over"] == "pass medians"


def test_stock_compare_shows_the_real_per_step_change(two_runs):
    result = subprocess.run(
        [sys.executable, "-c", "from pytest_benchmark.cli import main; main()", "--storage", f"file://{two_runs}"]
        + ["compare", "--columns=median", "--sort=name", "--time-unit=ms"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    steady, slowed = medians_ms(result.stdout, STEADY), medians_ms(result.stdout, SLOWED)
    assert len(steady) == 2 and len(slowed) == 2, result.stdout
    # K doubled between the runs: as round times the steady case would look twice as slow.
    assert steady[1] == pytest.approx(steady[0], rel=0.25)
    assert slowed[1] == pytest.approx(2 * slowed[0], rel=0.25)


def test_compare_fail_catches_the_slowed_case_only(two_runs):
    first = sorted(two_runs.rglob("*.json"))[0].name[:4]
    slower = bench_run(
        two_runs,
        "eager=0.004,sync=0.008",
        4,
        f"--benchmark-compare={first}",
        "--benchmark-compare-fail=median:25%",
        "--benchmark-autosave",
        "--benchmark-save=ignored",
    )
    assert slower.returncode != 0
    assert SLOWED in slower.stdout + slower.stderr and "Performance has regressed" in slower.stdout + slower.stderr
    regressed = [
        line
        for line in (slower.stdout + slower.stderr).splitlines()
        if "median" in line and "regress" not in line.lower()
    ]
    assert not any(STEADY in line for line in regressed), regressed
    unchanged = bench_run(
        two_runs, "eager=0.004,sync=0.004", 3, f"--benchmark-compare={first}", "--benchmark-compare-fail=median:25%"
    )
    assert unchanged.returncode == 0, unchanged.stdout[-3000:] + unchanged.stderr[-2000:]
