"""Each backend against NumPy: the pairing rule, the ratio, its interval and which side is faster."""

from pathlib import Path

import numpy as np
import pytest
import report_synth as synth

from bench.report.load import load_results
from bench.report.row_figures import add_figures
from bench.report.speedup import speedup_table

DATA = Path(__file__).parent / "data" / "report"


def speedups(*folders):
    """speedup.csv of the results in these folders."""
    return speedup_table(add_figures(load_results(folders)))


@pytest.fixture
def grid_run(tmp_path):
    """One synthetic grid run saved under tmp_path."""
    synth.write(tmp_path / "m", "0001_run", synth.run(synth.grid_benchmarks(seed=1)))
    return tmp_path


def test_pairing_rule(grid_run):
    table = speedups(grid_run)
    # Every MLX case of the synthetic grid: 2 models x 2 sizes x 4 MLX cases.
    assert len(table) == 16
    assert set(table["baseline_variant"]) == {"analytic"} and set(table["baseline_dtype"]) == {"float32"}
    sync = table["barrier"] == "sync"
    assert set(table.loc[sync, "baseline_barrier"]) == {"sync"}
    assert set(table.loc[~sync, "baseline_barrier"]) == {"eager"}


def in_five_passes(entries: list[dict]) -> list[dict]:
    """Each entry re-laid as a run of 5 passes, its first 5 round times the pass medians: a ratio has an interval."""
    return [synth.in_passes(entry, entry["stats"]["data"][:5]) for entry in entries]


def test_ratio_is_mlx_over_numpy_steps_per_s_of_the_same_run(tmp_path):
    synth.write(tmp_path / "m", "0001_run", synth.run(in_five_passes(synth.grid_benchmarks(seed=1))))
    frame = add_figures(load_results([tmp_path]))
    table = speedup_table(frame)
    row = table[(table["model"] == "linear") & (table["n_examples"] == 1_000) & (table["barrier"] == "round")].iloc[0]
    steps = frame.set_index("case_id")["steps_per_s"]
    assert row["steps_per_s"] == pytest.approx(steps["linear-mlx-autodiff-round-cpu-n1000-d10"])
    assert row["baseline_steps_per_s"] == pytest.approx(steps["linear-numpy-analytic-eager-cpu-n1000-d10"])
    # The median of the per-pass ratios: close to, not exactly, the ratio of the two steps/s.
    assert row["speedup"] == pytest.approx(row["steps_per_s"] / row["baseline_steps_per_s"], rel=0.02)
    # The synthetic MLX round case takes 0.6x NumPy's step time: 1/0.6 faster.
    assert row["speedup_ci_low"] < 1 / 0.6 < row["speedup_ci_high"] and row["faster"] == "mlx"
    slow = table[(table["barrier"] == "step")]
    assert set(slow["faster"]) == {"numpy"} and (slow["speedup_ci_high"] < 1).all()


def test_each_run_pairs_with_its_own_numpy(tmp_path):
    synth.write(tmp_path / "m", "0001", synth.run(synth.grid_benchmarks(seed=1), date="2026-01-01T00:00:00+00:00"))
    slower_numpy = synth.run(synth.grid_benchmarks(seed=2), date="2026-01-02T00:00:00+00:00")
    for bench in slower_numpy["benchmarks"]:
        if bench["extra_info"]["backend"] == "numpy":
            bench["stats"]["data"] = [t * 2 for t in bench["stats"]["data"]]
    synth.write(tmp_path / "m", "0002", slower_numpy)
    table = speedups(tmp_path)
    per_run = table.groupby("source_file")["speedup"].median()
    assert len(per_run) == 2 and per_run.max() / per_run.min() == pytest.approx(2, rel=0.1)


def test_equal_speed_is_neither_faster(tmp_path):
    times = list(np.random.default_rng(0).lognormal(np.log(0.01), 0.05, 15))
    numpy = synth.benchmark(backend="numpy", variant="analytic", barrier="eager", times=times)
    mlx = synth.benchmark(backend="mlx", variant="compiled", barrier="step", times=times[::-1])
    numpy, mlx = synth.in_passes(numpy, times[:5]), synth.in_passes(mlx, times[:5][::-1])
    synth.write(tmp_path, "run", synth.run([numpy, mlx]))
    row = speedups(tmp_path).iloc[0]
    assert row["speedup"] == pytest.approx(1.0)
    assert row["speedup_ci_low"] < 1 < row["speedup_ci_high"] and row["faster"] == "neither"


def test_blog_cases_pair_with_the_blogs_numpy_code():
    table = speedups(DATA / "results")
    blog = table[table["scenario"] == "blog"].iloc[0]
    assert (blog["variant"], blog["baseline_variant"], blog["baseline_dtype"], blog["baseline_barrier"]) == (
        "blog",
        "seed",
        "float64",
        "eager",
    )
    grid = table[table["scenario"] == "grid"]
    assert set(grid["baseline_variant"]) == {"analytic"}


def test_batch_size_and_hidden_width_are_part_of_the_pairing():
    table = speedups(DATA / "new_fields").set_index(["model", "batch_size"])
    # Mini-batch MLX against mini-batch NumPy, the MLP against the MLP of the same width.
    assert table.loc[("linear", 32), "baseline_steps_per_s"] == pytest.approx(1 / 5e-6, rel=0.05)
    assert table.loc[("linear", 1_000), "baseline_steps_per_s"] == pytest.approx(1 / 40e-6, rel=0.05)
    assert table.loc[("mlp", 1_000), "hidden"] == 64 and table.loc[
        ("mlp", 1_000), "baseline_steps_per_s"
    ] == pytest.approx(1 / 300e-6, rel=0.05)
    assert "distributed" not in set(table["scenario"])  # no NumPy baseline there: no row


def test_without_raw_times_there_is_no_interval(tmp_path):
    numpy = synth.benchmark(backend="numpy", variant="analytic", barrier="eager", times=[0.01] * 5, save_data=False)
    mlx = synth.benchmark(backend="mlx", variant="compiled", barrier="step", times=[0.005] * 5, save_data=False)
    synth.write(tmp_path, "run", synth.run([numpy, mlx]))
    row = speedups(tmp_path).iloc[0]
    assert row["speedup"] == pytest.approx(2.0)
    assert np.isnan(row["speedup_ci_low"]) and row["faster"] == "neither" and row["ci_method"].startswith("none")


def test_rounds_of_one_pass_give_no_interval(tmp_path):
    # Raw rounds saved, but all from one pass (a run saved before passes existed): they share one moment's luck and
    # are not samples (measurement rule 8), so no interval, however many rounds.
    numpy = synth.benchmark(backend="numpy", variant="analytic", barrier="eager", times=[0.01, 0.011, 0.0105] * 5)
    mlx = synth.benchmark(backend="mlx", variant="compiled", barrier="step", times=[0.005, 0.0052, 0.0051] * 5)
    synth.write(tmp_path, "run", synth.run([numpy, mlx]))
    row = speedups(tmp_path).iloc[0]
    assert row["speedup"] == pytest.approx(2.0, rel=0.05) and row["passes"] == 1
    assert np.isnan(row["speedup_ci_low"]) and np.isnan(row["speedup_ci_high"]) and row["faster"] == "neither"
    assert "rule 8" in row["ci_method"]


def test_cold_rows_are_not_compared():
    table = speedups(DATA / "new_fields")
    assert "cold" not in set(table["scenario"])
