"""Per-row figures: median and IQR of round times, throughput, roofline and the stability flag."""

import numpy as np
import pytest
import report_synth as synth

from bench.report.load import load_results
from bench.report.row_figures import add_figures


def figures_of(tmp_path, benchmarks, **machine):
    """Save one run of `benchmarks`, load it and add the figures."""
    synth.write(tmp_path, "run", synth.run(benchmarks, **machine))
    return add_figures(load_results([tmp_path]))


def test_figures_from_raw_round_times(tmp_path):
    # Rounds of K = 10 steps; round times 10..50 ms, so the median step takes 3 ms.
    bench = synth.benchmark(n=1_000, d=10, steps_per_round=10, times=[0.05, 0.01, 0.03, 0.02, 0.04])
    row = figures_of(tmp_path, [bench]).iloc[0]
    assert row["has_raw_times"] and row["n_rounds"] == 5
    assert row["median_round_s"] == pytest.approx(0.03)
    assert (row["q1_round_s"], row["q3_round_s"], row["iqr_round_s"]) == pytest.approx((0.02, 0.04, 0.02))
    assert row["median_step_s"] == pytest.approx(0.003)
    assert row["steps_per_s"] == pytest.approx(10 / 0.03)
    assert row["samples_per_s"] == pytest.approx(1_000 * 10 / 0.03)
    info = bench["extra_info"]
    assert row["gflops_per_s"] == pytest.approx(10 / 0.03 * info["flops_per_step"] / 1e9)
    assert row["gb_per_s"] == pytest.approx(10 / 0.03 * info["bytes_per_step"] / 1e9)
    assert row["iqr_pct_of_median"] == pytest.approx(100 * 0.02 / 0.03)


def test_saved_figures_without_raw_times_come_from_the_stats(tmp_path):
    row = figures_of(
        tmp_path, [synth.benchmark(steps_per_round=4, times=[0.01, 0.02, 0.03, 0.04, 0.05], save_data=False)]
    ).iloc[0]
    assert not row["has_raw_times"] and row["n_rounds"] == 5
    assert row["median_round_s"] == pytest.approx(0.03) and row["steps_per_s"] == pytest.approx(4 / 0.03)


@pytest.mark.parametrize(
    "times, unstable",
    [
        ([1.00, 1.01, 1.02, 1.01, 1.00], False),  # tight, 5 rounds
        ([1.00, 1.01, 1.02, 1.01], True),  # tight but only 4 rounds
        ([1.0, 1.3, 1.0, 1.3, 1.1], True),  # IQR 30% of the median
    ],
)
def test_unstable_flag(tmp_path, times, unstable):
    assert figures_of(tmp_path, [synth.benchmark(times=times)]).iloc[0]["unstable"] == unstable


def test_roofline_when_the_machine_states_its_limits(tmp_path):
    bench = synth.benchmark(steps_per_round=100, times=[0.01] * 5, flops_per_step=1_000_000, bytes_per_step=4_000_000)
    limits = {"memory_bandwidth_gb_s": 100.0, "peak_gflops_f32": 1_000.0}
    row = figures_of(tmp_path, [bench], machine_limits=limits).iloc[0]
    # 10,000 steps/s: 10 GFLOP/s, 40 GB/s; intensity 0.25 flop/byte -> bound min(100 * 0.25, 1000) = 25 GFLOP/s.
    assert row["arithmetic_intensity"] == pytest.approx(0.25)
    assert row["roofline_gflops_per_s"] == pytest.approx(25.0)
    assert row["roofline_fraction"] == pytest.approx(10 / 25)
    assert row["bandwidth_fraction"] == pytest.approx(40 / 100)


def test_compute_bound_roofline_is_the_peak(tmp_path):
    bench = synth.benchmark(steps_per_round=100, times=[0.01] * 5, flops_per_step=10**9, bytes_per_step=1_000)
    row = figures_of(
        tmp_path, [bench], machine_limits={"memory_bandwidth_gb_s": 100.0, "peak_gflops_f32": 1_000.0}
    ).iloc[0]
    assert row["roofline_gflops_per_s"] == pytest.approx(1_000.0)


def test_no_limits_no_roofline(tmp_path):
    row = figures_of(tmp_path, [synth.benchmark(times=[0.01] * 5)]).iloc[0]
    assert (
        np.isnan(row["roofline_gflops_per_s"])
        and np.isnan(row["roofline_fraction"])
        and np.isnan(row["bandwidth_fraction"])
    )
    assert row["arithmetic_intensity"] > 0  # from the kernel's own counts, machine or not
