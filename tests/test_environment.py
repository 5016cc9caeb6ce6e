"""The environment record: versions, BLAS actually loaded, threads, and MLX compatibility."""

import json
import sys

import pytest

from bench.backends.mlx import compat
from bench.engine import run_environment


def test_collect_is_json_and_has_rule_7_fields():
    info = run_environment.collect()
    json.dumps(info)
    for key in ("cpu_model", "usable_cpus", "numpy_version", "numpy_blas", "mlx_version", "mlx_blas", "env"):
        assert key in info, key
    assert info["mlx_version"] == compat.mlx_version()


def test_machine_size_is_recorded():
    info = run_environment.collect()
    assert info["cpu_count"] >= info["usable_cpus"] >= 1
    assert info["memory_total_bytes"] is None or info["memory_total_bytes"] > 2**28
    if sys.platform.startswith("linux"):
        with open("/proc/meminfo") as f:
            total_kib = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
        assert abs(info["memory_total_bytes"] - total_kib * 1024) < 0.05 * total_kib * 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_blas_libraries_are_read_from_the_process():
    info = run_environment.collect()
    assert info["loaded_blas_libraries"], "no BLAS library found mapped into the process"
    assert info["numpy_blas"] and info["numpy_blas"][0]["num_threads"] >= 1
    assert info["mlx_blas"]["library"] in info["loaded_blas_libraries"] or info["mlx_blas"]["source"].startswith(
        "global"
    )


def test_compat_answers_without_raising():
    assert isinstance(compat.gpu_available(), bool)
    assert compat.gpu_backend() in (None, "metal", "cuda")
    assert isinstance(compat.device_info("cpu"), dict)
    compat.reset_peak_memory()
    peak = compat.peak_memory_bytes()
    assert peak is None or peak >= 0
