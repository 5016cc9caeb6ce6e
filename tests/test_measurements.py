"""Memory peaks, machine limits, roofline and stability figures, and the terminal summary."""

from types import SimpleNamespace

import numpy as np
import pytest

from bench import machine_limits, roofline
from bench.backends import make_trainer
from bench.cases import Case
from bench.datasets import make_problem
from bench.memory import mlx_baseline_bytes, peak_memory_bytes
from bench.models import LEARNING_RATE
from bench.sizes import Size
from bench.summary import format_summary

SIZE = Size(20_000, 50)
X_BYTES = SIZE.n_examples * SIZE.n_features * 4


@pytest.mark.parametrize("backend,variant,barrier", [("numpy", "analytic", "eager"), ("mlx", "analytic", "step")])
def test_peak_memory_counts_the_data_and_the_temporaries(backend, variant, barrier):
    baseline = mlx_baseline_bytes()
    trainer = make_trainer(Case("linear", backend, variant, barrier), make_problem("linear", SIZE), LEARNING_RATE)
    peak = peak_memory_bytes(trainer, backend, baseline)
    # at least the design matrix, and not wildly more than X plus a few n-vectors
    assert X_BYTES <= peak < 2 * X_BYTES


def test_float64_variant_holds_twice_the_bytes():
    problem = make_problem("linear", SIZE)
    f32 = peak_memory_bytes(make_trainer(Case("linear", "numpy", "analytic", "eager"), problem, LEARNING_RATE), "numpy")
    f64 = peak_memory_bytes(make_trainer(Case("linear", "numpy", "seed", "eager"), problem, LEARNING_RATE), "numpy")
    assert f64 == pytest.approx(2 * f32, rel=0.1)


def test_machine_limits_are_measured_not_assumed():
    x = np.ones(8 << 20, dtype=np.float32)
    assert machine_limits.read_bandwidth_gb_s(x, threads=2, passes=2) > 0.1
    assert machine_limits.matmul_gflops(size=256, passes=2) > 0.1


def test_roofline_bound_is_the_lower_roof():
    assert roofline.roofline_gflops(0.25, bandwidth_gb_s=20, peak_gflops=100) == 5  # memory-bound
    assert roofline.roofline_gflops(50, bandwidth_gb_s=20, peak_gflops=100) == 100  # compute-bound
    limits = {"memory_bandwidth_gb_s": 20, "peak_gflops_f32": 100}
    assert roofline.roofline_fraction(4, flops_per_step=1, bytes_per_step=4, limits=limits) == pytest.approx(0.8)


@pytest.mark.parametrize(
    "iqr,median,rounds,unstable", [(0.5, 10, 15, False), (1.5, 10, 15, True), (0.1, 10, 3, True), (0, 0, 15, True)]
)
def test_stability_flag(iqr, median, rounds, unstable):
    assert roofline.is_unstable(iqr, median, rounds) is unstable


def fake_bench(backend, variant, steps_per_s, iqr=0.0001):
    info = {
        "model": "linear", "backend": backend, "variant": variant, "barrier": "eager", "device": "cpu",
        "n_examples": 100, "n_features": 10, "steps_per_round": 10, "steps_per_s": steps_per_s,
        "gflops_per_s": 1.0, "gb_per_s": 2.0, "flops_per_step": 4000, "bytes_per_step": 8000,
        "case_id": f"linear-{backend}-{variant}-eager-cpu-n100-d10", "scenario": "grid",
    }  # fmt: skip
    return SimpleNamespace(extra_info=info, stats=SimpleNamespace(iqr=iqr, median=10 / steps_per_s, rounds=15))


def test_summary_shows_ratios_roofline_and_flags_unstable_rows():
    text = format_summary(
        [fake_bench("numpy", "analytic", 1000.0), fake_bench("mlx", "analytic", 250.0, iqr=0.01)],
        {"memory_bandwidth_gb_s": 4.0, "peak_gflops_f32": 100.0},
    )
    assert "linear-n100-d10" in text
    assert "0.250" in text  # MLX at a quarter of NumPy's steps/s
    assert "50%" in text  # 1 GFLOP/s of a 2 GFLOP/s roof (4 GB/s x 0.5 flop/byte)
    assert "1 of 2 figures are unstable" in text


def test_summary_compares_mini_batches_with_numpy_at_the_same_batch_size():
    full_numpy = fake_bench("numpy", "analytic", 1000.0)
    batch_numpy, batch_mlx = fake_bench("numpy", "analytic", 4000.0), fake_bench("mlx", "compiled", 2000.0)
    for bench in (batch_numpy, batch_mlx):
        bench.extra_info.update(batch_size=32, case_id=bench.extra_info["case_id"].replace("-n100", "-b32-n100"))
    text = format_summary([full_numpy, batch_numpy, batch_mlx])
    mlx_line = next(line for line in text.splitlines() if "mlx-compiled" in line)
    assert mlx_line.rstrip().endswith("0.500")  # 2,000 / 4,000, not 2,000 / 1,000
