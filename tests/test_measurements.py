"""Memory peaks, machine limits, roofline and stability figures, and the terminal summary."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats

from bench.backends import get, make_trainer
from bench.cases.case import Case
from bench.cases.datasets import make_problem
from bench.cases.models import LEARNING_RATE
from bench.cases.sizes import Size
from bench.engine import machine_limits
from bench.engine.defaults import MEMORY_STEPS
from bench.session.summary import format_summary
from bench.stats import roofline
from bench.stats.intervals import log_intervals, median_variance_factor

SIZE = Size(20_000, 50)
X_BYTES = SIZE.n_examples * SIZE.n_features * 4


@pytest.mark.parametrize("backend,variant,barrier", [("numpy", "analytic", "eager"), ("mlx", "analytic", "step")])
def test_peak_memory_counts_the_data_and_the_temporaries(backend, variant, barrier):
    probe = get(backend)
    baseline = probe.memory_baseline()
    trainer = make_trainer(Case("linear", backend, variant, barrier), make_problem("linear", SIZE), LEARNING_RATE)
    peak = probe.peak_memory_bytes(trainer, MEMORY_STEPS, baseline)
    # at least the design matrix, and not wildly more than X plus a few n-vectors
    assert X_BYTES <= peak < 2 * X_BYTES


def test_float64_variant_holds_twice_the_bytes():
    problem, numpy = make_problem("linear", SIZE), get("numpy")
    f32 = numpy.peak_memory_bytes(
        make_trainer(Case("linear", "numpy", "analytic", "eager"), problem, LEARNING_RATE), 5, 0
    )
    f64 = numpy.peak_memory_bytes(make_trainer(Case("linear", "numpy", "seed", "eager"), problem, LEARNING_RATE), 5, 0)
    assert f64 == pytest.approx(2 * f32, rel=0.1)


@pytest.mark.parametrize("kernel", machine_limits.KERNELS)
def test_bandwidth_kernels_read_every_byte_of_their_buffer(kernel):
    # Each of `reps` batch items reads the whole buffer: its result depends on every element.
    x = np.arange(2 * machine_limits.GEMV_COLUMNS, dtype=np.float32) / 100
    out = machine_limits.repeated_reader(x, 3, kernel)()
    want = [np.dot(x, x)] if kernel == "dot" else x.reshape(-1, machine_limits.GEMV_COLUMNS).sum(axis=1)
    assert out.shape[0] == 3 and np.allclose(out.reshape(3, -1), np.tile(want, (3, 1)), rtol=1e-5)


def test_peak_gflops_is_measured_not_assumed():
    assert machine_limits.matmul_gflops(size=256, passes=2) > 0.1


def test_roofline_bound_is_the_lower_roof():
    assert roofline.roofline_gflops(0.25, bandwidth_gb_s=20, peak_gflops=100) == 5  # memory-bound
    assert roofline.roofline_gflops(50, bandwidth_gb_s=20, peak_gflops=100) == 100  # compute-bound
    limits = {"memory_bandwidth_gb_s": 20, "peak_gflops_f32": 100}
    share = roofline.roofline_fraction(4, flops_per_step=1, bytes_per_step=4, working_set_bytes=1e9, limits=limits)
    assert share == pytest.approx(0.8)


def fake_bench(backend, variant, steps_per_s, pass_factors=(1.0, 1.0, 1.0), barrier="eager"):
    """A finished case as the summary sees it: extra_info with raw round times in three passes of five rounds."""
    k = 10
    round_s = k / steps_per_s
    times = [round_s * factor * (1 + 0.001 * r) for factor in pass_factors for r in range(5)]
    info = {
        "model": "linear", "backend": backend, "variant": variant, "barrier": barrier, "device": "cpu",
        "dtype": "float32", "n_examples": 100, "n_features": 10, "steps_per_round": k, "steps_per_s": steps_per_s,
        "gflops_per_s": 1.0, "gb_per_s": 2.0, "flops_per_step": 4000, "bytes_per_step": 8000,
        "case_id": f"linear-{backend}-{variant}-{barrier}-cpu-n100-d10", "scenario": "grid",
        "round_times_s": times, "round_pass": [p + 1 for p in range(len(pass_factors)) for _ in range(5)],
        # No between-run term, so the intervals below follow from the passes alone.
        "interval_run_var_log": 0.0, "ratio_run_var_log": 0.0,
    }  # fmt: skip
    # The interval the session saves (bench.engine.passes), here from this case's passes alone.
    logs = np.log([k / (round_s * factor) for factor in pass_factors])
    (interval,) = log_intervals([logs], [math.log(steps_per_s)])
    info.update(
        steps_per_s_se_log=interval.se, steps_per_s_df=interval.df,
        steps_per_s_half_width_pct=interval.half_width_pct, unstable=interval.unstable,
    )  # fmt: skip
    return SimpleNamespace(extra_info=info)


def test_summary_shows_ratios_roofline_and_flags_unstable_rows():
    text = format_summary(
        [fake_bench("numpy", "analytic", 1000.0), fake_bench("mlx", "analytic", 250.0, pass_factors=(0.8, 1.0, 1.25))],
        {"memory_bandwidth_gb_s": 4.0, "peak_gflops_f32": 100.0},
    )
    assert "linear-n100-d10" in text
    assert "0.250" in text  # MLX at a quarter of NumPy's steps/s
    assert "50%" in text  # 1 GFLOP/s of a 2 GFLOP/s roof (4 GB/s x 0.5 flop/byte)
    assert "1 of 2 figures unstable" in text  # the MLX case's passes 0.8 / 1.0 / 1.25: its interval is wide
    # x NumPy's 95% interval beside it: the median of the per-pass log ratios, a t interval at 2 degrees of freedom
    # whose standard error is the median's of three passes (bench.stats.intervals.median_variance_factor).
    logs = np.log([0.25 / f for f in (0.8, 1.0, 1.25)])
    half = stats.t.ppf(0.975, 2) * math.sqrt(median_variance_factor(3) * np.var(logs, ddof=1) / 3)
    low, high = math.exp(np.median(logs) - half), math.exp(np.median(logs) + half)
    assert f"{low:.3g}-{high:.3g}" in text
    assert 1.3 < median_variance_factor(3) < 1.4  # 1.35: a median of three is noisier than their mean


def test_summary_compares_mini_batches_with_numpy_at_the_same_batch_size():
    full_numpy = fake_bench("numpy", "analytic", 1000.0)
    batch_numpy, batch_mlx = fake_bench("numpy", "analytic", 4000.0), fake_bench("mlx", "compiled", 2000.0)
    for bench in (batch_numpy, batch_mlx):
        bench.extra_info.update(batch_size=32, case_id=bench.extra_info["case_id"].replace("-n100", "-b32-n100"))
    text = format_summary([full_numpy, batch_numpy, batch_mlx])
    mlx_line = next(line for line in text.splitlines() if "mlx-compiled" in line)
    assert " 0.500 " in mlx_line  # 2,000 / 4,000, not 2,000 / 1,000


def test_summary_ratio_is_taken_within_each_pass():
    # NumPy's second pass hit a burst (40% slow); MLX's second pass too: within the pass they still compare alike.
    numpy = fake_bench("numpy", "analytic", 1000.0, pass_factors=(1.0, 1.4, 1.0))
    mlx = fake_bench("mlx", "analytic", 500.0, pass_factors=(1.0, 1.4, 1.0))
    text = format_summary([numpy, mlx])
    mlx_line = next(line for line in text.splitlines() if "mlx-analytic" in line)
    # Each case's own figure carries the burst in its interval (unstable); their ratio, taken pass by pass, does not.
    assert mlx_line.split()[-3:-1] == ["0.500", "0.5-0.5"]
    assert "2 of 2 figures unstable" in text


def test_summary_pairs_sync_cases_with_numpy_sync():
    eager, sync = fake_bench("numpy", "analytic", 1000.0), fake_bench("numpy", "analytic", 400.0, barrier="sync")
    mlx_sync = fake_bench("mlx", "autodiff", 200.0, barrier="sync")
    text = format_summary([eager, sync, mlx_sync])
    mlx_line = next(line for line in text.splitlines() if "mlx-autodiff" in line)
    assert " 0.500 " in mlx_line  # 200 / 400 (sync), not 200 / 1,000 (eager)
