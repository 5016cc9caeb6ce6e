"""The cache-aware roofline: cache sizes read from the OS, bandwidth per level, the level a case's data fits in, the
bound, its share and the reason a share exceeds 100%; runs saved before cache levels were measured still load."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import report_synth as synth

from bench.cases import models
from bench.engine import cache_sizes, machine_limits
from bench.engine.cache_sizes import CacheLevel
from bench.report.load import load_results
from bench.report.row_figures import add_figures
from bench.session.summary import format_summary, summary_frame
from bench.stats import roofline

KIB, MIB = 1 << 10, 1 << 20

# A saved machine_limits as bench.engine.machine_limits.measure writes it (figures made up).
SAVED = {
    "memory_bandwidth_gb_s": 20.0,
    "peak_gflops_f32": 1_000.0,
    "cache_levels": [
        {"level": "L1", "size_bytes": 48 * KIB, "capacity_bytes": 96 * KIB, "bandwidth_gb_s": 200.0},
        {"level": "L2", "size_bytes": 1 * MIB, "capacity_bytes": 2 * MIB, "bandwidth_gb_s": 100.0},
        {"level": "L3", "size_bytes": 32 * MIB, "capacity_bytes": 32 * MIB, "bandwidth_gb_s": 60.0},
    ],
}
LIMITS = roofline.flat_limits(SAVED)
OLD = {"memory_bandwidth_gb_s": 20.0, "peak_gflops_f32": 1_000.0}  # saved before cache levels were measured


# --- cache sizes from the OS ---


def test_sysfs_sizes_and_cpu_lists_are_parsed():
    assert cache_sizes.parse_size("48K") == 48 * KIB and cache_sizes.parse_size("32768K\n") == 32 * MIB
    assert cache_sizes.parse_size("2M") == 2 * MIB and cache_sizes.parse_size("?") is None
    assert cache_sizes.count_cpus("0") == 1 and cache_sizes.count_cpus("0-3,8-11\n") == 8


def test_sysfs_levels_keep_data_and_unified_caches(tmp_path):
    for index, (level, kind, size, shared) in enumerate(
        [
            (1, "Data", "48K", "0"),
            (1, "Instruction", "32K", "0"),
            (2, "Unified", "1024K", "0"),
            (3, "Unified", "32768K", "0-7"),
        ]
    ):
        folder = tmp_path / f"index{index}"
        folder.mkdir()
        for name, text in (("level", level), ("type", kind), ("size", size), ("shared_cpu_list", shared)):
            (folder / name).write_text(f"{text}\n")
    assert cache_sizes.sysfs_levels(tmp_path) == [
        CacheLevel("L1", 48 * KIB, 1),
        CacheLevel("L2", 1 * MIB, 1),
        CacheLevel("L3", 32 * MIB, 8),
    ]
    assert cache_sizes.sysfs_levels(tmp_path / "absent") == []


def test_private_caches_add_up_over_the_usable_cpus_and_a_shared_one_does_not():
    assert CacheLevel("L2", 1 * MIB, 1).capacity_bytes(4) == 4 * MIB
    assert CacheLevel("L3", 32 * MIB, 8).capacity_bytes(4) == 32 * MIB  # one instance, shared
    assert CacheLevel("L3", 32 * MIB, 8).capacity_bytes(16) == 64 * MIB  # two sockets' worth


# --- bandwidth per level, measured (plumbing only: a fake clock, so no figure depends on the machine) ---


class TickClock:
    """A clock that advances each time it is read, by `tick` seconds times `speedup` to the number of reads so far:
    with speedup 1 every pass takes one tick; below 1 each pass is faster than the one before."""

    def __init__(self, tick: float = 1e-3, speedup: float = 1.0):
        self.now, self.tick, self.speedup, self.last = 0.0, tick, speedup, 0.0

    def __call__(self) -> float:
        self.last = self.tick
        self.now += self.tick
        self.tick *= self.speedup
        return self.now


def test_each_level_gets_a_working_set_between_the_level_below_and_its_own_size(monkeypatch):
    monkeypatch.setattr(machine_limits, "PASS_BYTES", 1 * MIB)  # keep the real (untimed) reads small
    monkeypatch.setattr(machine_limits, "MEMORY_MIN_BYTES", 8 * MIB)
    levels = [CacheLevel("L1", 8 * KIB, 1), CacheLevel("L2", 64 * KIB, 1), CacheLevel("L3", 1 * MIB, 2)]
    cache, memory = machine_limits.bandwidths(levels, cpus=2, memory_budget=1 << 30, passes=2, clock=TickClock())
    assert [c["level"] for c in cache] == ["L1", "L2", "L3"]
    assert [c["working_set_bytes"] for c in cache] == [4 * KIB, 36 * KIB, 544 * KIB]  # halfway to the next size
    assert [c["capacity_bytes"] for c in cache] == [16 * KIB, 128 * KIB, 1 * MIB]
    # Every pass takes one tick (1 ms), so each figure is the bytes one pass reads: its working set read as many
    # times as fit in PASS_BYTES (L1: 256 x 4 KiB; L2: 28 x 36 KiB; L3: once), memory's once.
    per_pass = [256 * 4 * KIB, 28 * 36 * KIB, 544 * KIB]
    assert [c["bandwidth_gb_s"] for c in cache] == pytest.approx([b / 1e-3 / 1e9 for b in per_pass])
    assert memory["working_set_bytes"] == 8 * MIB  # four times the largest cache, at least MEMORY_MIN_BYTES
    assert memory["bandwidth_gb_s"] == pytest.approx(8 * MIB / 1e-3 / 1e9)


def test_a_level_keeps_its_fastest_thread_count_and_kernel():
    arena = np.ones(64 * KIB // 4, dtype=np.float32)
    clock = TickClock(speedup=0.5)  # each pass twice as fast as the last: the last one measured wins
    # Two threads, each reading 8 KiB of its own, four times per pass: 64 KiB a pass.
    figures = machine_limits.level_bandwidth(arena, 16 * KIB, {1: 16 * KIB, 2: 8 * KIB}, lambda _: 4, 3, clock)
    assert (figures["threads"], figures["kernel"]) == (2, machine_limits.KERNELS[-1])
    assert figures["bandwidth_gb_s"] == pytest.approx(64 * KIB / clock.last / 1e9)
    assert figures["working_set_bytes"] == 16 * KIB


def test_memory_working_set_stays_within_the_budget():
    levels = [CacheLevel("L3", 512 * MIB, 64)]
    assert machine_limits.memory_working_set(levels, 64, memory_budget=1 << 40) == machine_limits.BANDWIDTH_ARRAY_BYTES
    assert machine_limits.memory_working_set(levels, 64, memory_budget=512 * MIB) == 128 * MIB  # a quarter of it
    assert machine_limits.memory_working_set([], 2, memory_budget=1 << 40) == machine_limits.MEMORY_MIN_BYTES


def test_the_measurement_is_saved_with_its_levels(monkeypatch):
    monkeypatch.setattr(machine_limits, "cache_levels", lambda: ([CacheLevel("L1", 8 * KIB, 1)], "sysfs"))
    monkeypatch.setattr(machine_limits, "bandwidths", lambda *a: ([{"level": "L1", "bandwidth_gb_s": 9.0}], {
        "working_set_bytes": 64 * MIB, "bandwidth_gb_s": 3.0, "threads": 2, "kernel": "dot"}))  # fmt: skip
    monkeypatch.setattr(machine_limits, "matmul_gflops", lambda: 50.0)
    saved = machine_limits.measure(cpus=2, memory_budget=1 << 30)
    assert saved["memory_bandwidth_gb_s"] == 3.0 and saved["memory_bandwidth_threads"] == 2
    assert saved["cache_levels"] == [{"level": "L1", "bandwidth_gb_s": 9.0}] and saved["cache_sizes_source"] == "sysfs"
    assert roofline.flat_limits(saved)["l1_bandwidth_gb_s"] == 9.0


# --- the working set and the level it fits in ---


def test_working_set_is_the_data_and_what_a_step_touches():
    # linear, full batch, float32: X (n d), y (n), w and its gradient (2d), predictions and residuals (2n)
    assert models.working_set_bytes("linear", 1_000, 1_000, 100, 4) == (100_000 + 1_000 + 200 + 2_000) * 4
    # a mini-batch still cycles through all of X; it adds its gathered rows and the int32 row indices
    full = models.working_set_bytes("linear", 10_000, 32, 100, 4)
    assert models.working_set_bytes("linear", 10_000, 32, 100, 4, gathered=True) == full + (32 * 100 + 32) * 4 + 40_000
    row = {"model": "linear", "n_examples": 1_000, "n_features": 100, "dtype": "float64", "hidden": math.nan}
    assert models.working_set_of(row) == 2 * models.working_set_bytes("linear", 1_000, 1_000, 100, 4)


@pytest.mark.parametrize(
    "working_set, level",
    [
        (10 * KIB, "L1"),
        (96 * KIB, "L1"),  # exactly the capacity still fits
        (96 * KIB + 1, "L2"),
        (1_500 * KIB, "L2"),  # more than one core's L2, within two cores' together
        (20 * MIB, "L3"),
        (33 * MIB, "DRAM"),
        (math.nan, "L1"),  # unknown: the fastest level, the only choice that is still a bound
    ],
)
def test_the_level_is_the_smallest_whose_capacity_holds_the_working_set(working_set, level):
    assert roofline.cache_level(working_set, LIMITS) == level


def test_a_run_without_cache_levels_reads_from_memory_only():
    flat = roofline.flat_limits(OLD)
    assert roofline.cache_level(10 * KIB, flat) == "DRAM"
    bound = roofline.roofline_bound(1, 4, 10 * KIB, flat)
    assert bound.dram_only and bound.label == "DRAM only" and bound.bandwidth_gb_s == 20.0


def test_a_level_is_never_bounded_below_a_slower_level():
    flat = roofline.flat_limits({**SAVED, "cache_levels": [dict(SAVED["cache_levels"][0], bandwidth_gb_s=10.0)]})
    assert roofline.level_bandwidth("L1", flat) == 20.0  # the L1 measurement ran below memory's: memory's counts
    assert roofline.level_bandwidth("L2", LIMITS) == 100.0 and roofline.level_bandwidth("DRAM", LIMITS) == 20.0


# --- the bound and its share ---


def test_bound_is_the_lower_of_the_level_roof_and_the_peak():
    # 1 MiB working set: L2 (100 GB/s). Intensity 0.25 flop/byte: min(100 x 0.25, 1000) = 25 GFLOP/s.
    bound = roofline.roofline_bound(1e6, 4e6, 1 * MIB, LIMITS)
    assert (bound.level, bound.bandwidth_gb_s, bound.gflops_per_s) == ("L2", 100.0, pytest.approx(25.0))
    assert roofline.roofline_bound(1e9, 1e3, 1 * MIB, LIMITS).gflops_per_s == 1_000.0  # compute-bound: the peak
    # the share is steps/s over the bound's steps/s: 10 GFLOP/s of 25
    assert roofline.roofline_fraction(10.0, 1e6, 4e6, 1 * MIB, LIMITS) == pytest.approx(0.4)
    assert math.isnan(roofline.roofline_fraction(10.0, 1e6, 4e6, 1 * MIB, {}))  # no limits, no bound


def test_a_share_above_the_bound_says_why():
    bound = roofline.roofline_bound(1e6, 4e6, 1 * MIB, LIMITS)
    assert roofline.above_bound_note(0.99, bound, 24.0, 99.0) == ""
    assert roofline.above_bound_note(1.1, bound, 27.5, 110.0).startswith(
        "above bound: 110 GB/s, more than the 100 GB/s"
    )
    compute = roofline.roofline_bound(1e9, 1e3, 1 * MIB, LIMITS)
    assert "peak" in roofline.above_bound_note(1.2, compute, 1_200.0, 1.2)
    old = roofline.roofline_bound(1e6, 4e6, 1 * MIB, roofline.flat_limits(OLD))
    assert "memory's bandwidth only" in roofline.above_bound_note(1.75, old, 35.0, 140.0)


# --- the terminal's table ---


def summary_case(steps_per_s: float, device: str = "cpu") -> SimpleNamespace:
    """NumPy's linear 1,000 x 100 full-batch case as the session saves it: its data (about 400 KB) fits in L2."""
    n, d, k = 1_000, 100, 10
    flops, nbytes = models.flops_per_step("linear", n, d, "eager"), models.bytes_per_step("linear", n, d, 4, "eager")
    info = {
        "model": "linear", "backend": "numpy", "variant": "analytic", "barrier": "eager", "device": device,
        "dtype": "float32", "n_examples": n, "n_features": d, "batch_size": n, "hidden": 0, "steps_per_round": k,
        "steps_per_s": steps_per_s, "gflops_per_s": steps_per_s * flops / 1e9, "gb_per_s": steps_per_s * nbytes / 1e9,
        "flops_per_step": flops, "bytes_per_step": nbytes, "scenario": "grid",
        "case_id": f"linear-numpy-analytic-eager-{device}-n1000-d100",
        "round_times_s": [k / steps_per_s] * 15, "round_pass": [1] * 5 + [2] * 5 + [3] * 5,
    }  # fmt: skip
    return SimpleNamespace(extra_info=info)


def test_summary_bounds_a_case_by_the_level_its_data_fits_in():
    # 40,000 steps/s x 813 KB = 32.5 GB/s: above memory's 20 GB/s, a third of L2's 100 GB/s.
    frame = summary_frame([summary_case(40_000.0)], SAVED)
    assert frame["from"].iloc[0] == "L2"
    assert frame["roof"].iloc[0] == pytest.approx(40_000 * summary_case(1).extra_info["bytes_per_step"] / 100e9)
    assert "^" not in format_summary([summary_case(40_000.0)], SAVED)


def test_summary_marks_a_share_above_the_bound_and_gives_the_reason():
    old = format_summary([summary_case(40_000.0)], OLD)  # the same case against a memory-only bound: 163%
    assert "163%^" in old and "DRAM only" in old
    assert "^ linear-n1000-d100 numpy-analytic-eager-cpu: above bound: this run measured memory's" in old
    # GPU cases are not bounded by the CPU's limits
    assert math.isnan(summary_frame([summary_case(40_000.0, device="gpu")], SAVED)["roof"].iloc[0])


# --- the report ---


def report_row(tmp_path, machine_limits, device="cpu"):
    """One saved run of NumPy's linear 1,000 x 100 at 40,000 steps/s, loaded with its figures."""
    bench = synth.benchmark(backend="numpy", variant="analytic", barrier="eager", n=1_000, d=100, device=device,
                            steps_per_round=10, times=[10 / 40_000] * 5)  # fmt: skip
    synth.write(tmp_path, "run", synth.run([bench], machine_limits=machine_limits))
    return add_figures(load_results([tmp_path])).iloc[0]


def test_report_rows_carry_the_level_bound_and_share(tmp_path):
    row = report_row(tmp_path, SAVED)
    assert row["l2_bandwidth_gb_s"] == 100.0 and row["l2_capacity_bytes"] == 2 * MIB
    assert row["working_set_bytes"] == models.working_set_bytes("linear", 1_000, 1_000, 100, 4)
    assert (row["roofline_level"], row["roofline_bandwidth_gb_s"]) == ("L2", 100.0)
    assert row["roofline_fraction"] == pytest.approx(row["gb_per_s"] / 100.0) and row["roofline_fraction"] < 1
    assert row["bandwidth_fraction"] == pytest.approx(row["gb_per_s"] / 100.0) and row["roofline_note"] == ""


def test_report_reads_an_old_run_with_memory_bandwidth_only(tmp_path):
    row = report_row(tmp_path, OLD)
    assert np.isnan(row["l1_bandwidth_gb_s"]) and row["roofline_level"] == "DRAM only"
    assert row["roofline_fraction"] == pytest.approx(row["gb_per_s"] / 20.0) and row["roofline_fraction"] > 1
    assert row["roofline_note"].startswith("above bound: this run measured memory's bandwidth only")


def test_report_bounds_no_gpu_row_by_the_cpu_limits(tmp_path):
    row = report_row(tmp_path, SAVED, device="gpu")
    assert np.isnan(row["roofline_fraction"]) and row["roofline_level"] == "" and row["working_set_bytes"] > 0
