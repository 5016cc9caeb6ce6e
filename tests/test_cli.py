"""The pytest front door: usage errors are one line, impossible cases skip with a reason."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.backends.mlx import compat
from bench.engine import defaults
from bench.engine.cache_sizes import cache_levels
from bench.results.extra_info import SCHEMA_VERSION
from bench.stats.stability import pass_figures

ROOT = Path(__file__).resolve().parents[1]


def pytest_run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize(
    "args,message",
    [
        (["--sizes", "10x"], "ERROR: --sizes: cannot read '10x'"),
        (["--sizes", "1000x100,abc"], "ERROR: --sizes: cannot read 'abc'"),
        (["--mlx-device", "tpu"], "ERROR: --mlx-device: 'tpu' is not one of cpu, gpu, all"),
        (["--rounds", "0"], "ERROR: --rounds and --passes must be at least 1"),
        (["--passes", "0"], "ERROR: --rounds and --passes must be at least 1"),
        (["--cpu-affinity", "fast"], "ERROR: --cpu-affinity: 'fast' is not auto, none or a CPU list"),
    ],
)
def test_bad_options_are_usage_errors(args, message):
    result = pytest_run(*args, "--collect-only", "-q")
    assert result.returncode == 4
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_explicit_sizes_make_readable_case_ids():
    result = pytest_run("--sizes", "500x5,700x7", "--collect-only", "-q", "benchmarks/test_linear.py")
    assert result.returncode == 0, result.stderr
    assert "test_linear[linear-mlx-compiled-step-cpu-n500-d5]" in result.stdout or not compat.mlx_installed()
    assert "test_linear[linear-numpy-analytic-eager-cpu-n700-d7]" in result.stdout


def test_sizes_over_the_memory_budget_skip_with_a_reason():
    result = pytest_run(
        "--sizes",
        "500x5",
        "--memory-budget-gb",
        "0.001",
        "--benchmark-disable",
        "-rs",
        "-q",
        "benchmarks/test_linear.py",
    )
    assert result.returncode == 0, result.stdout[-2000:]
    assert "needs about" in result.stdout and "over the memory budget" in result.stdout
    assert " passed" not in result.stdout


@pytest.mark.skipif(compat.gpu_available(), reason="this machine has an MLX GPU")
def test_missing_gpu_skips_with_a_reason():
    result = pytest_run(
        "--sizes", "500x5", "--mlx-device", "gpu", "--benchmark-disable", "-rs", "-q", "benchmarks/test_linear.py"
    )
    assert result.returncode == 0, result.stdout[-2000:]
    assert "MLX has no GPU on this machine" in result.stdout
    # NumPy cases still run
    assert " passed" in result.stdout


def test_benchmark_run_saves_the_schema(tmp_path):
    result = pytest_run(
        "--benchmark-only",
        "--sizes",
        "600x8",
        "--rounds",
        "3",
        "--round-time",
        "0.002",
        "-k",
        "linear-numpy-analytic-eager-cpu-n600 or linear-mlx-compiled-round-cpu-n600",
        f"--benchmark-storage=file://{tmp_path}",
        "benchmarks/test_linear.py",
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "steps/s per case" in result.stdout
    import json

    (saved,) = list(tmp_path.rglob("*.json"))
    data = json.loads(saved.read_text())
    limits = data["machine_info"]["machine_limits"]
    assert limits["memory_bandwidth_gb_s"] > 0
    # every cache level the OS reports, measured and saved with its size (none where the OS says nothing)
    assert [level["level"] for level in limits["cache_levels"]] == [level.name for level in cache_levels()[0]]
    assert all(level["bandwidth_gb_s"] > 0 and level["capacity_bytes"] > 0 for level in limits["cache_levels"])
    assert data["machine_info"]["mlx_blas"]["library"]
    required = {
        "model", "backend", "variant", "device", "dtype", "barrier", "n_examples", "n_features", "batch_size",
        "steps_per_round", "flops_per_step", "bytes_per_step", "steps_per_s", "max_rel_error", "error_bound",
        "peak_memory_bytes", "blas_threads",
    }  # fmt: skip
    for bench in data["benchmarks"]:
        assert required <= set(bench["extra_info"]), required - set(bench["extra_info"])
        info = bench["extra_info"]
        # raw round times kept, pass by pass (the default passes of the default rounds, and maybe one more pass at the end)
        timed = defaults.PASSES * defaults.ROUNDS_PER_PASS
        assert len(info["round_times_s"]) == len(info["round_pass"]) in (timed, timed + defaults.ROUNDS_PER_PASS)
        assert info["schema_version"] == SCHEMA_VERSION
        # pytest-benchmark's own stats describe one step, over the pass medians: stock tools read the suite's steps/s
        figure = pass_figures(info["round_times_s"], info["round_pass"])
        steps = np.asarray(figure.pass_medians) / info["steps_per_round"]
        assert bench["stats"]["rounds"] == len(steps) == info["passes"]
        assert bench["stats"]["median"] == pytest.approx(np.median(steps))
        assert bench["stats"]["ops"] == pytest.approx(1 / np.mean(steps))
        # the case's figure: K over the median of its pass medians, and 1 / stats.median says the same
        assert info["steps_per_s"] == pytest.approx(info["steps_per_round"] / figure.median)
        assert 1 / bench["stats"]["median"] == pytest.approx(info["steps_per_s"])
        assert info["steps_per_s_ci_low"] <= info["steps_per_s"] <= info["steps_per_s_ci_high"]
    # pytest-benchmark's own tools still read the file
    compare = subprocess.run(
        [sys.executable, "-c", "from pytest_benchmark.cli import main; main()", "--storage", f"file://{tmp_path}"]
        + ["compare", str(saved)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert compare.returncode == 0, compare.stderr
    assert "linear-numpy-analytic-eager-cpu-n600-d8" in compare.stdout


def test_main_job_collects_the_benchmarks_only():
    result = pytest_run("--benchmark-only", "--collect-only", "-q", "--sizes", "600x8")
    assert result.returncode == 0, result.stdout[-2000:]
    collected = [line for line in result.stdout.splitlines() if "::" in line]
    assert collected and all(line.startswith("benchmarks/") for line in collected)
    # ...and the test command still runs the harness's unit tests
    tests = pytest_run("--benchmark-disable", "--collect-only", "-q", "tests/test_sizes.py")
    assert "tests/test_sizes.py::" in tests.stdout
