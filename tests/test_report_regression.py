"""MLX version comparisons: verdicts and regressions a CI job can trust, on results made for the purpose."""

import numpy as np
import pandas as pd
import pytest

import report_synth as synth
from bench.report.load import load_results
from bench.releases import version_key
from bench.report.regression import compare_versions, regressions

SLOW_CASE = "linear-mlx-compiled-step-cpu-n2000-d20"
MACHINE = "Darwin-CPython-3.12-64bit"


def save(folder, docs):
    """Save runs as one machine's results folder and load them."""
    for i, doc in enumerate(docs):
        synth.write(folder / MACHINE, f"{i:04d}_run", doc)
    return load_results([folder])


def versions_of(tmp_path, docs, **options):
    """versions.csv of these runs."""
    return compare_versions(save(tmp_path, docs), **options)


def test_same_results_twice_flag_nothing(tmp_path):
    first = synth.run(synth.grid_benchmarks(seed=1), mlx_version="0.30.0")
    table = versions_of(tmp_path, [first, synth.relabel(first, "0.31.0", "2026-02-01T00:00:00+00:00")])
    assert len(table) == 2 * 28  # 28 cases, each against the previous and the oldest (the same version here)
    assert set(table["verdict"]) == {"same"} and not table["regression"].any()
    assert (table["p_value"] == 1).all() and (table["pct_change_median_time"] == 0).all()


def test_two_runs_of_the_same_distribution_flag_nothing(tmp_path):
    docs = [
        synth.run(synth.grid_benchmarks(seed=seed), mlx_version=version, date=f"2026-0{i + 1}-01T00:00:00+00:00")
        for i, (seed, version) in enumerate([(11, "0.30.0"), (12, "0.31.0"), (13, "0.32.0")])
    ]
    table = versions_of(tmp_path, docs)
    assert not table["regression"].any()
    assert (table["verdict"] == "same").mean() > 0.9  # a few significant noise differences at most


def test_one_case_slowed_by_30_percent_is_that_one_regression(tmp_path):
    first = synth.run(synth.grid_benchmarks(seed=1), mlx_version="0.30.0")
    second = synth.relabel(synth.slowed(first, SLOW_CASE, 1.3), "0.31.0", "2026-02-01T00:00:00+00:00")
    table = versions_of(tmp_path, [first, second])
    found = regressions(table)
    assert set(found["case"]) == {SLOW_CASE.removeprefix("linear-")}
    assert set(found["model"]) == {"linear"} and set(found["against"]) == {"previous", "oldest"}
    row = found.iloc[0]
    assert row["pct_change_median_time"] == pytest.approx(30.0)
    assert row["verdict"] == "slower" and row["p_value_adjusted"] <= 0.05
    # Holm over 28 distinct comparisons ("previous" and "oldest" are one test here): smallest p x 28.
    assert row["p_value_adjusted"] == pytest.approx(28 * row["p_value"])
    assert (table.loc[~table["regression"], "verdict"] == "same").all()


def test_slowdown_among_noisy_independent_runs_is_found(tmp_path):
    first = synth.run(synth.grid_benchmarks(seed=21), mlx_version="0.30.0")
    second = synth.run(
        synth.grid_benchmarks(seed=22, slow=SLOW_CASE, slowdown=1.3),
        mlx_version="0.31.0",
        date="2026-02-01T00:00:00+00:00",
    )
    found = regressions(versions_of(tmp_path, [first, second]))
    assert (
        set(found["n_examples"]) == {2_000}
        and set(found["variant"]) == {"compiled"}
        and set(found["barrier"]) == {"step"}
    )
    assert set(found["model"]) == {"linear"}


def test_significant_but_small_slowdown_is_slower_not_a_regression(tmp_path):
    first = synth.run(synth.grid_benchmarks(seed=1, noise=0.002), mlx_version="0.30.0")
    second = synth.relabel(synth.slowed(first, SLOW_CASE, 1.05), "0.31.0", "2026-02-01T00:00:00+00:00")
    table = versions_of(tmp_path, [first, second])
    row = table[(table["model"] == "linear") & (table["variant"] == "compiled") & (table["n_examples"] == 2_000)].iloc[
        0
    ]
    assert row["verdict"] == "slower" and not row["regression"]
    assert regressions(versions_of(tmp_path / "strict", [first, second], threshold=0.04)).shape[0] == 2


def test_faster_is_never_a_regression(tmp_path):
    first = synth.run(synth.grid_benchmarks(seed=1), mlx_version="0.30.0")
    second = synth.relabel(synth.slowed(first, SLOW_CASE, 0.5), "0.31.0", "2026-02-01T00:00:00+00:00")
    table = versions_of(tmp_path, [first, second])
    assert set(table.loc[table["verdict"] != "same", "verdict"]) == {"faster"} and not table["regression"].any()


def test_too_few_rounds_are_undecided(tmp_path):
    first = synth.run(synth.grid_benchmarks(seed=1, rounds=3), mlx_version="0.30.0")
    second = synth.relabel(synth.slowed(first, SLOW_CASE, 1.5), "0.31.0", "2026-02-01T00:00:00+00:00")
    table = versions_of(tmp_path, [first, second])
    assert set(table["verdict"]) == {"undecided"} and not table["regression"].any()
    assert table["p_value"].isna().all() and table["reason"].str.contains("fewer than 5 raw times").all()


def test_no_raw_times_are_undecided(tmp_path):
    first = synth.run(synth.grid_benchmarks(seed=1, save_data=False), mlx_version="0.30.0")
    second = synth.relabel(first, "0.31.0", "2026-02-01T00:00:00+00:00")
    table = versions_of(tmp_path, [first, second])
    assert set(table["verdict"]) == {"undecided"} and set(table["reason"]) == {"no raw round times saved"}


def test_rounds_too_few_to_reach_significance_among_many_comparisons_are_undecided(tmp_path):
    # 5 rounds against 5: the smallest possible p is 2/252, above 0.05 / 28 comparisons.
    first = synth.run(synth.grid_benchmarks(seed=1, rounds=5), mlx_version="0.30.0")
    second = synth.relabel(first, "0.31.0", "2026-02-01T00:00:00+00:00")
    table = versions_of(tmp_path, [first, second])
    assert set(table["verdict"]) == {"undecided"} and table["reason"].str.contains("among 28 comparisons").all()
    # The same 5 rounds decide when only one case is compared.
    single = compare_versions(save(tmp_path / "single", [first, second]).query("case_id == @SLOW_CASE"))
    assert set(single["verdict"]) == {"same"}


def test_previous_and_oldest(tmp_path):
    docs = [
        synth.relabel(
            synth.run(synth.grid_benchmarks(seed=1, models=("linear",))), version, f"2026-0{i + 1}-01T00:00:00+00:00"
        )
        for i, version in enumerate(["0.10.0", "0.9.0", "0.11.1"])
    ]
    table = versions_of(tmp_path, docs)
    pairs = set(zip(table["baseline_version"], table["mlx_version"], table["against"]))
    # Release order, not text order: 0.9.0 < 0.10.0 < 0.11.1.
    assert pairs == {
        ("0.9.0", "0.10.0", "previous"),
        ("0.9.0", "0.10.0", "oldest"),
        ("0.10.0", "0.11.1", "previous"),
        ("0.9.0", "0.11.1", "oldest"),
    }
    assert table["p_value_adjusted"].max() <= 1 and table["p_value"].notna().sum() == 4 * 14


def test_per_step_times_are_compared_when_k_differs(tmp_path):
    first = synth.run(synth.grid_benchmarks(seed=1), mlx_version="0.30.0")
    second = synth.relabel(first, "0.31.0", "2026-02-01T00:00:00+00:00")
    for bench in second["benchmarks"]:  # twice the steps per round, twice the round time: same speed
        bench["extra_info"]["steps_per_round"] *= 2
        bench["stats"]["data"] = [2 * t for t in bench["stats"]["data"]]
    table = versions_of(tmp_path, [first, second])
    assert set(table["verdict"]) == {"same"} and np.allclose(table["pct_change_median_time"], 0)


def test_runs_of_one_version_are_pooled_and_machines_kept_apart(tmp_path):
    runs = [
        synth.run(synth.grid_benchmarks(seed=s, models=("linear",)), mlx_version=v)
        for s, v in [(1, "0.30.0"), (2, "0.30.0"), (3, "0.31.0")]
    ]
    other_machine = synth.run(
        synth.grid_benchmarks(seed=4, models=("linear",)), mlx_version="0.29.0", node="other-host"
    )
    table = versions_of(tmp_path, runs + [other_machine])
    assert (
        set(table["n_runs"]) == {1} and set(table["baseline_n_runs"]) == {2} and set(table["baseline_n_times"]) == {30}
    )
    assert set(table["machine"]) == {f"ci-mac/{MACHINE}"}  # 0.29.0 ran elsewhere: not a baseline


def test_benjamini_hochberg_option(tmp_path):
    first = synth.run(synth.grid_benchmarks(seed=1), mlx_version="0.30.0")
    second = synth.relabel(synth.slowed(first, SLOW_CASE, 1.3), "0.31.0", "2026-02-01T00:00:00+00:00")
    table = versions_of(tmp_path, [first, second], correction="bh")
    assert set(table["correction"]) == {"bh"} and len(regressions(table)) == 2


def test_cold_rows_are_not_versioned(tmp_path):
    cold = synth.benchmark(times=[0.05] * 5, steps_per_round=1, phase="cold", scenario="cold")
    docs = [synth.run([cold], mlx_version="0.30.0"), synth.run([cold], mlx_version="0.31.0")]
    assert versions_of(tmp_path, docs).empty


def test_empty_and_single_version_inputs_give_an_empty_table_with_columns(tmp_path):
    assert "verdict" in compare_versions(pd.DataFrame()).columns
    assert versions_of(tmp_path, [synth.run(synth.grid_benchmarks(seed=1))]).empty


def test_version_key_orders_releases():
    assert sorted(["0.10.0", "0.9.1", "0.26.5", "dev-build", "0.9.0"], key=version_key) == [
        "0.9.0",
        "0.9.1",
        "0.10.0",
        "0.26.5",
        "dev-build",
    ]


def test_disturbed_runs_are_drift_not_a_regression(tmp_path):
    # Three interleaved runs per version. Two runs of the newer version met a busy
    # machine (everything 60% slower); its third run is as fast as the older
    # version's (the same times). Pooled rounds call that significant and over the
    # threshold; the runs of the two versions overlap, so it is not a regression.
    docs, dates = [], iter(f"2026-01-{day:02d}T00:00:00+00:00" for day in range(1, 10))
    for run_index in range(3):
        base = synth.run(synth.grid_benchmarks(seed=100 + run_index), mlx_version="0.30.0", date=next(dates))
        new = synth.relabel(base, "0.31.0", next(dates))
        if run_index < 2:
            for case in [b["extra_info"]["case_id"] for b in new["benchmarks"]]:
                new = synth.slowed(new, case, 1.6)
        docs += [base, new]
    table = versions_of(tmp_path, docs)
    assert not table["regression"].any()
    drift = table[table["reason"].str.contains("drift", na=False)]
    assert len(drift) > 0 and set(drift["verdict"]) == {"slower"}


def test_a_slowdown_in_every_run_is_a_regression(tmp_path):
    docs, dates = [], iter(f"2026-01-{day:02d}T00:00:00+00:00" for day in range(1, 10))
    for run_index in range(3):
        for version, seed in (("0.30.0", 100), ("0.31.0", 200)):
            doc = synth.run(synth.grid_benchmarks(seed=seed + run_index), mlx_version=version, date=next(dates))
            docs.append(synth.slowed(doc, SLOW_CASE, 1.3) if version == "0.31.0" else doc)
    found = regressions(versions_of(tmp_path, docs))
    assert set(found["case"]) == {SLOW_CASE.removeprefix("linear-")}
