"""The probe as a covariate (bench.stats.probe_covariate): a planted dependence is found, and adjusting for it
removes a planted change of the machine between runs, held out pair by pair."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import report_synth as synth

from bench.report import calibration
from bench.stats.probe_covariate import describe, held_out_adjustment, probed_cases, within_run_slopes

SLOPE = -0.5  # log steps/s per log probe time, planted


def run_records(rng, machine: float, cases: int = 40, passes: int = 3, as_text: bool = False) -> list[dict]:
    """One run of `cases` NumPy cases: each pass's probe and speed move together by SLOPE, plus noise of their own.

    machine: the log probe time of the whole run (a slower machine: larger), shifting every pass of it.
    """
    records = []
    for i in range(cases):
        probes = np.exp(math.log(4e-4) + machine + rng.normal(0, 0.1, passes))
        logs = math.log(1e4) + i * 0.01 + SLOPE * (np.log(probes) - math.log(4e-4)) + rng.normal(0, 0.01, passes)
        k = 100
        round_times = list(k / np.exp(logs))
        probe_list = [float(p) for p in probes]
        records.append({
            "case_id": f"linear-numpy-analytic-eager-cpu-n1000-d{10 + i}", "backend": "numpy", "scenario": "grid",
            "phase": "warm", "n_examples": 1000, "n_features": 10 + i, "steps_per_round": k,
            "round_times_s": round_times, "round_pass": list(range(1, passes + 1)),
            "pass_probe_s": json.dumps(probe_list) if as_text else probe_list,
            "steps_per_s": float(np.exp(np.median(logs))),
        })  # fmt: skip
    return records


def test_a_planted_slope_is_found_and_explains_the_pass_to_pass_variance():
    rng = np.random.default_rng(0)
    runs = [probed_cases(run_records(rng, 0.0, as_text=text)) for text in (False, True)]
    assert all(len(run) == 40 for run in runs)  # the probes read whether saved as a list or as its JSON text
    (cell, (slope, share)), = within_run_slopes(runs).items()  # fmt: skip
    assert cell == ("numpy", "small")
    assert slope == pytest.approx(SLOPE, abs=0.05) and share > 0.9


def test_adjusting_by_the_probe_removes_a_change_of_the_machine_between_runs_held_out_pair_by_pair():
    rng = np.random.default_rng(1)
    # Three pairs; in the last the machine is 20% slower in its second run: every figure moved by it.
    pairs = [
        (probed_cases(run_records(rng, 0.0)), probed_cases(run_records(rng, shift)))
        for shift in (0.0, 0.0, math.log(1.2))
    ]
    by_cell, by_pair = held_out_adjustment(pairs)
    raw, adjusted = by_pair[2].means()
    assert raw > (0.5 * math.log(1.2)) ** 2 * 0.8  # the machine moved the figures: d about -9%
    assert adjusted < raw / 10  # the probe's slope, learnt from the other two pairs, takes it out
    assert by_cell[("numpy", "small")].figures == 120
    lines = describe([run for pair in pairs for run in pair], pairs)
    assert any("numpy/small: slope -0.5" in line for line in lines) and "lower after adjustment in" in lines[-1]


def saved_run(rng, machine: float) -> dict:
    """One saved run (the report's file format) of 20 NumPy cases whose passes move with their probe."""
    benchmarks = []
    for i in range(20):
        probes = np.exp(math.log(4e-4) + machine + rng.normal(0, 0.1, 3))
        medians = 1e-2 * (1 + 0.01 * i) * np.exp(-SLOPE * (np.log(probes) - math.log(4e-4)) + rng.normal(0, 0.01, 3))
        entry = synth.benchmark(backend="numpy", variant="analytic", barrier="eager", n=1000, d=10 + i,
                                times=list(medians))  # fmt: skip
        entry = synth.in_passes(entry, list(medians))
        entry["extra_info"].update(steps_per_s=100 / float(np.median(medians)), pass_probe_s=[float(p) for p in probes])
        benchmarks.append(entry)
    return synth.run(benchmarks)


def test_the_command_prints_both_measurements_and_refuses_runs_without_probes(tmp_path, capsys):
    rng = np.random.default_rng(2)
    paths = []
    for i, shift in enumerate((0.0, 0.0, 0.0, math.log(1.2))):
        path = tmp_path / f"run{i}" / f"000{i + 1}_run.json"
        path.parent.mkdir()
        path.write_text(json.dumps(saved_run(rng, shift)))
        paths.append(str(path))
    assert calibration.main(["probe", *paths]) == 0
    out = capsys.readouterr().out
    assert "numpy/small: slope -0.5" in out and "between runs, each pair left out in turn" in out
    assert "lower after adjustment in 1 of 2" in out or "lower after adjustment in 2 of 2" in out
    unprobed = tmp_path / "unprobed" / "0001_run.json"
    unprobed.parent.mkdir()
    document = saved_run(rng, 0.0)
    for entry in document["benchmarks"]:
        del entry["extra_info"]["pass_probe_s"]
    unprobed.write_text(json.dumps(document))
    assert calibration.main(["probe", str(unprobed), str(unprobed)]) == 2
    assert "no grid case with probed passes" in capsys.readouterr().err
