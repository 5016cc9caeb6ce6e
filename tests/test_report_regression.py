"""MLX version comparisons: run-level verdicts a CI job can trust, on data made for the purpose.

Two kinds of test. Statistical properties, on many synthetic comparisons at
once (report_synth.run_level: a common factor per run, a per-case effect per
run, round noise, bursts): false regressions, power, the NumPy controls. Then
the table the report writes, from saved files.
"""

import numpy as np
import pandas as pd
import pytest
import report_synth as synth

from bench.report.load import load_results
from bench.report.regression import (
    COLUMNS,
    VERDICT_COLUMNS,
    compare_versions,
    comparisons,
    inconclusive,
    judge,
    regressions,
)
from bench.results.releases import version_key

SLOW_CASE = "linear-mlx-compiled-step-cpu-n2000-d20"
MACHINE = "Darwin-CPython-3.12-64bit"
MAC = f"ci-mac/{MACHINE} (Apple M1, 8 CPUs, 16 GiB)"
COMPARISONS = 200  # synthetic comparisons per property
PLANTED = 250  # an MLX case (cases from synth's `controls` on are MLX)


def judged(**options):
    """(tests, comparison) of each of COMPARISONS synthetic comparisons of 300 cases, 3 runs a side."""
    log_times, run_versions, control = synth.run_level(comparisons=COMPARISONS, **options)
    return [judge(log_times[i], run_versions, control) for i in range(COMPARISONS)]


def any_regression(tests):
    return bool(((tests["verdict"] == "regression") & ~tests["control"]).any())


def is_inconclusive(comparison):
    return bool((comparison["status"] == "inconclusive").any())


# --------------------------------------------------------------------------- statistical properties


def test_aa_comparisons_almost_never_have_a_false_regression():
    results = judged(seed=1)
    assert np.mean([any_regression(t) for t, _ in results]) <= 0.02
    # ...and they are mostly called the same, not left undecided.
    assert np.mean([(t["verdict"] == "same").mean() for t, _ in results]) > 0.95
    assert np.mean([is_inconclusive(c) for _, c in results]) <= 0.02


def test_aa_with_random_bursts_and_a_noisy_machine_has_no_more_false_regressions():
    # Bursts ten times as often, and runs as a whole 3x as spread as by default.
    results = judged(seed=2, burst_rate=0.02, run_factor=0.06)
    assert np.mean([any_regression(t) for t, _ in results]) <= 0.02


def test_planted_30_percent_is_found_and_nothing_else():
    results = judged(seed=3, slowdowns={PLANTED: 1.3})
    found = [t.loc[t["case_index"] == PLANTED, "verdict"].iloc[0] == "regression" for t, _ in results]
    assert np.mean(found) >= 0.95
    others = [any_regression(t[t["case_index"] != PLANTED]) for t, _ in results]
    assert np.mean(others) <= 0.02
    planted = pd.concat([t[t["case_index"] == PLANTED] for t, _ in results])
    assert planted["pct_change"].median() == pytest.approx(30, abs=1)
    # The 95% interval covers the truth about 95% of the time.
    assert 0.9 <= np.mean((planted["ci_low_pct"] < 30) & (30 < planted["ci_high_pct"])) <= 0.99


def test_a_slowdown_common_to_a_whole_run_is_no_regression():
    # One run of the newer release 30% slower in every case: the controls take it out.
    results = judged(seed=4, run_slowdowns={4: 1.3})
    assert not any(any_regression(t) for t, _ in results)
    assert np.mean([(t["verdict"] == "same").mean() for t, _ in results]) > 0.95


def test_one_burst_run_is_no_regression():
    # An MLX case 40% slow for one whole run of the newer release, in every comparison.
    results = judged(seed=5, bursts=[(PLANTED, 5)], burst_rate=0)
    assert not any(any_regression(t) for t, _ in results)
    verdicts = pd.Series([t.loc[t["case_index"] == PLANTED, "verdict"].iloc[0] for t, _ in results])
    assert set(verdicts) <= {"undecided", "same"}


def test_controls_moved_by_10_percent_are_inconclusive():
    results = judged(seed=6, control_slowdown=1.1)
    assert np.mean([is_inconclusive(c) for _, c in results]) >= 0.9
    reason = next(c["reason"].iloc[0] for _, c in results if is_inconclusive(c))
    assert "NumPy controls moved +" in reason


def test_one_control_moved_alone_voids_the_verdicts_of_its_group():
    # A NumPy case 30% slower in every newer run: its group's MLX verdicts (here every synthetic case
    # shares one group) become inconclusive; the comparison itself stays ok and says why.
    results = judged(seed=7, slowdowns={10: 1.3})
    voided = [
        (t[~t["control"].astype(bool)]["verdict"] == "inconclusive").all() and not is_inconclusive(c)
        for t, c in results
    ]
    assert np.mean(voided) >= 0.95
    assert "control(s) moved against the others" in results[0][1]["reason"].iloc[0]


def test_undecided_rows_say_what_would_decide_them():
    # A 10% change on a noisy case: neither clearly beyond the 10% threshold nor within it.
    log_times, run_versions, control = synth.run_level(seed=8, case_noise=0.05, slowdowns={PLANTED: 1.1})
    tests, _ = judge(log_times[0], run_versions, control)
    row = tests[tests["case_index"] == PLANTED].iloc[0]
    assert row["verdict"] == "undecided" and row["passes_needed"] > 3 and row["min_detectable_pct"] > 10
    assert f"about {row['passes_needed']} runs per release" in row["reason"]
    # With that many runs the same change is decided.
    log_times, run_versions, control = synth.run_level(
        seed=9, case_noise=0.05, runs=int(row["passes_needed"]), slowdowns={PLANTED: 1.25}
    )
    tests, _ = judge(log_times[0], run_versions, control)
    assert tests.loc[tests["case_index"] == PLANTED, "verdict"].iloc[0] == "regression"


def test_fewer_than_three_runs_a_side_is_never_a_regression():
    log_times, run_versions, control = synth.run_level(seed=10, runs=2, case_noise=0.002, slowdowns={PLANTED: 2.0})
    tests, _ = judge(log_times[0], run_versions, control)
    row = tests[tests["case_index"] == PLANTED].iloc[0]
    assert row["p_value_adjusted"] < 1e-6 and row["verdict"] == "undecided"
    assert "fewer than 3 runs on a side" in row["reason"]
    assert "regression" not in set(tests["verdict"])


def test_holm_family_is_the_mlx_cases():
    log_times, run_versions, control = synth.run_level(seed=11)
    tests, _ = judge(log_times[0], run_versions, control)
    mlx = tests[~tests["control"]]
    smallest = mlx.loc[mlx["p_value"].idxmin()]
    assert smallest["p_value_adjusted"] == pytest.approx(min(1, len(mlx) * smallest["p_value"]))


# --------------------------------------------------------------------------- the table, from saved files


def save(folder, docs):
    """Save runs as one machine's results folder and load them."""
    for i, doc in enumerate(docs):
        synth.write(folder / MACHINE, f"{i:04d}_run", doc)
    return load_results([folder])


def versions_of(tmp_path, docs, **options):
    """versions.csv of these runs."""
    return compare_versions(save(tmp_path, docs), **options)


def interleaved(runs=3, versions=("0.30.0", "0.31.0"), slowdowns=None, **grid):
    """`runs` passes of every version, each run with its own noise; slowdowns: {version: (case, factor)}."""
    docs = []
    for i in range(runs):
        for j, version in enumerate(versions):
            slow, factor = (slowdowns or {}).get(version, (None, 1.0))
            benchmarks = synth.grid_benchmarks(seed=100 * j + i, slow=slow, slowdown=factor, **grid)
            docs.append(synth.run(benchmarks, mlx_version=version, date=f"2026-01-{1 + i:02d}T{j:02d}:00:00+00:00"))
    return docs


def test_verdict_rows_have_the_shared_format(tmp_path):
    table = versions_of(tmp_path, interleaved(slowdowns={"0.31.0": (SLOW_CASE, 1.3)}))
    assert list(table.columns) == COLUMNS and COLUMNS[: len(VERDICT_COLUMNS)] == VERDICT_COLUMNS
    assert len(table) == 28 and set(table["method"]) == {"run-level"} and set(table["machine"]) == {MAC}
    assert set(table["control"]) == {True, False} and (table["control"] == (table["backend"] == "numpy")).all()
    assert set(zip(table["older"], table["newer"], table["n_older"], table["n_newer"])) == {("0.30.0", "0.31.0", 3, 3)}
    assert set(table["verdict"]) <= {"regression", "faster", "same", "undecided"}
    found = regressions(table)
    assert list(found["case_id"]) == [SLOW_CASE]
    row = found.iloc[0]
    assert 25 < row["pct_change"] < 35 and row["ci_low_pct"] < row["pct_change"] < row["ci_high_pct"]
    assert row["p_value_adjusted"] <= 0.01 and row["reason"] == ""
    assert (table.loc[table["case_id"] != SLOW_CASE, "verdict"] == "same").all()
    assert list(comparisons(table)["status"]) == ["ok"] and inconclusive(table).empty


def test_significant_but_small_slowdown_is_not_a_regression(tmp_path):
    docs = interleaved(slowdowns={"0.31.0": (SLOW_CASE, 1.05)}, noise=0.002)
    table = versions_of(tmp_path, docs)
    row = table[table["case_id"] == SLOW_CASE].iloc[0]
    assert row["p_value_adjusted"] <= 0.01 and row["verdict"] == "same"  # 5%, well within 10%
    assert list(regressions(versions_of(tmp_path / "strict", docs, threshold=0.03))["case_id"]) == [SLOW_CASE]


def test_faster_is_never_a_regression(tmp_path):
    table = versions_of(tmp_path, interleaved(slowdowns={"0.31.0": (SLOW_CASE, 0.5)}))
    assert set(table.loc[table["verdict"] != "same", "verdict"]) == {"faster"} and regressions(table).empty
    assert table.loc[table["verdict"] == "faster", "pct_change"].iloc[0] == pytest.approx(-50, abs=3)


def test_one_run_per_release_is_undecided(tmp_path):
    first = synth.run(synth.grid_benchmarks(seed=1), mlx_version="0.30.0")
    second = synth.relabel(synth.slowed(first, SLOW_CASE, 1.5), "0.31.0", "2026-02-01T00:00:00+00:00")
    table = versions_of(tmp_path, [first, second])
    assert set(table["verdict"]) == {"undecided"} and regressions(table).empty
    assert table["p_value"].isna().all() and set(table["reason"]) == {
        "one run per release: no run-to-run noise to test against"
    }


def test_runs_without_raw_times_still_compare(tmp_path):
    # Results saved without stats.data: pytest-benchmark's own median is the run's figure.
    table = versions_of(tmp_path, interleaved(slowdowns={"0.31.0": (SLOW_CASE, 1.3)}, save_data=False))
    assert list(regressions(table)["case_id"]) == [SLOW_CASE]


def test_previous_and_oldest_in_release_order(tmp_path):
    table = versions_of(tmp_path, interleaved(versions=("0.10.0", "0.9.0", "0.11.1"), models=("linear",)))
    pairs = set(zip(table["older"], table["newer"], table["against"]))
    # Release order, not text order: 0.9.0 < 0.10.0 < 0.11.1; each pair tested once.
    assert pairs == {("0.9.0", "0.10.0", "previous"), ("0.10.0", "0.11.1", "previous"), ("0.9.0", "0.11.1", "oldest")}
    assert len(table) == 3 * 14 and table["p_value"].notna().all()
    assert list(table["newer"]) == sorted(table["newer"], key=version_key)


def test_per_step_times_are_compared_when_k_differs(tmp_path):
    docs = interleaved()
    for doc in docs[1::2]:  # twice the steps per round, twice the round time: same speed
        for bench in doc["benchmarks"]:
            bench["extra_info"]["steps_per_round"] *= 2
            bench["stats"]["data"] = [2 * t for t in bench["stats"]["data"]]
    table = versions_of(tmp_path, docs)
    assert set(table["verdict"]) == {"same"} and table["pct_change"].abs().max() < 3


def test_runs_slower_as_a_whole_cancel_out(tmp_path):
    docs = interleaved(slowdowns={"0.31.0": (SLOW_CASE, 1.3)})
    for doc in docs[1::2][:2]:  # two of the newer release's runs met a busy machine: every case 60% slower
        for bench in doc["benchmarks"]:
            bench["stats"]["data"] = [1.6 * t for t in bench["stats"]["data"]]
            bench["stats"]["median"] *= 1.6
    table = versions_of(tmp_path, docs)
    assert list(regressions(table)["case_id"]) == [SLOW_CASE]
    assert (table.loc[table["case_id"] != SLOW_CASE, "verdict"] == "same").all()
    assert list(comparisons(table)["status"]) == ["ok"]  # one release's runs were not all slower


def test_controls_moved_make_the_comparison_inconclusive(tmp_path):
    docs = interleaved()
    for doc in docs[1::2]:  # NumPy 15% slower under the newer release only: not the same NumPy
        for bench in doc["benchmarks"]:
            if bench["extra_info"]["backend"] == "numpy":
                bench["stats"]["data"] = [1.15 * t for t in bench["stats"]["data"]]
    table = versions_of(tmp_path, docs)
    moved = inconclusive(table)
    assert len(moved) == 1 and "NumPy controls moved +15" in moved["reason"].iloc[0]
    assert set(table["comparison_status"]) == {"inconclusive"} and regressions(table).empty


def test_without_numpy_controls_runs_are_not_normalised(tmp_path):
    docs = interleaved(slowdowns={"0.31.0": (SLOW_CASE, 1.3)})
    for doc in docs:
        doc["benchmarks"] = [b for b in doc["benchmarks"] if b["extra_info"]["backend"] != "numpy"]
    table = versions_of(tmp_path, docs)
    assert list(regressions(table)["case_id"]) == [SLOW_CASE] and not table["control"].any()
    assert "not normalised" in comparisons(table)["reason"].iloc[0]


def test_machines_are_kept_apart(tmp_path):
    docs = interleaved(models=("linear",))
    other = [synth.run(synth.grid_benchmarks(seed=4, models=("linear",)), mlx_version="0.29.0", node="other-host")]
    table = versions_of(tmp_path, docs + other)
    assert set(table["machine"]) == {MAC}  # 0.29.0 ran elsewhere: not a baseline


def test_benjamini_hochberg_option(tmp_path):
    table = versions_of(tmp_path, interleaved(slowdowns={"0.31.0": (SLOW_CASE, 1.3)}), correction="bh")
    assert set(table["correction"]) == {"bh"} and list(regressions(table)["case_id"]) == [SLOW_CASE]


def test_cold_rows_are_not_versioned(tmp_path):
    cold = synth.benchmark(times=[0.05] * 5, steps_per_round=1, phase="cold", scenario="cold")
    docs = [synth.run([cold], mlx_version="0.30.0"), synth.run([cold], mlx_version="0.31.0")]
    assert versions_of(tmp_path, docs).empty


def test_empty_and_single_version_inputs_give_an_empty_table_with_columns(tmp_path):
    assert list(compare_versions(pd.DataFrame()).columns) == COLUMNS
    assert versions_of(tmp_path, [synth.run(synth.grid_benchmarks(seed=1))]).empty
    assert regressions(compare_versions(pd.DataFrame())).empty and comparisons(compare_versions(pd.DataFrame())).empty


def test_a_table_read_back_from_csv_gives_the_same_regressions(tmp_path):
    table = versions_of(tmp_path, interleaved(slowdowns={"0.31.0": (SLOW_CASE, 1.3)}))
    table.to_csv(tmp_path / "versions.csv", index=False)
    again = pd.read_csv(tmp_path / "versions.csv", keep_default_na=False)
    assert list(regressions(again)["case_id"]) == [SLOW_CASE]


def test_version_key_orders_releases():
    assert sorted(["0.10.0", "0.9.1", "0.26.5", "dev-build", "0.9.0"], key=version_key) == [
        "0.9.0",
        "0.9.1",
        "0.10.0",
        "0.26.5",
        "dev-build",
    ]
