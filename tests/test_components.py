"""Where the variance lies (bench.stats.components): the nested analysis, Kalibera and Jones' rule, the summary."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from bench.stats.components import describe, nested_components, optimal_rounds, summarise
from bench.stats.run_terms import RunTerms


def simulated_case(rng, passes: int, rounds: int, within_sd: float, between_sd: float) -> tuple[list, list]:
    """Log-normal round times: a pass effect shared by its rounds, a round effect each."""
    times, labels = [], []
    for p in range(1, passes + 1):
        offset = rng.normal(0, between_sd)
        for _ in range(rounds):
            times.append(0.02 * math.exp(offset + rng.normal(0, within_sd)))
            labels.append(p)
    return times, labels


def test_the_nested_analysis_recovers_known_components():
    rng = np.random.default_rng(7)
    found = [nested_components(*simulated_case(rng, 3, 3, 0.02, 0.05)) for _ in range(2_000)]
    within = np.mean([f[0] for f in found])
    between = np.mean([f[1] for f in found])
    assert found[0][2] == 3
    assert within == pytest.approx(0.02**2, rel=0.05)  # unbiased: a mean of sample variances
    # The method of moments floors at zero, so its mean sits a little above the truth: within 10%.
    assert between == pytest.approx(0.05**2, rel=0.10)


def test_one_pass_or_one_round_a_pass_cannot_be_split():
    assert nested_components([0.02, 0.021, 0.019], [1, 1, 1]) is None
    assert nested_components([0.02, 0.021, 0.019], [1, 2, 3]) is None


def test_kalibera_and_jones_rule():
    # r* = sqrt(pass cost / round cost * within / between)
    assert optimal_rounds(0.0001, 0.0004, 0.08, 0.02) == pytest.approx(math.sqrt(4 * 0.25))
    assert optimal_rounds(0.0009, 0.0001, 0.02, 0.02) == pytest.approx(3.0)
    assert math.isinf(optimal_rounds(0.0001, 0.0, 0.08, 0.02))  # passes that agree beyond their rounds
    assert optimal_rounds(0.0001, 0.0001, None, 0.02) is None


def test_the_summary_is_per_backend_and_size_class_and_saves_as_strict_json():
    rng = np.random.default_rng(3)
    infos = []
    for backend, between in (("mlx", 0.03), ("numpy", 0.0)):
        for _ in range(5):
            times, labels = simulated_case(rng, 3, 3, 0.01, between)
            infos.append(
                {"backend": backend, "n_examples": 1000, "n_features": 10, "round_times_s": times,
                 "round_pass": labels, "pass_overhead_s": 0.05, "median_round_s": 0.02}
            )  # fmt: skip
    # NumPy's passes here agree beyond their rounds in every case: the rule has no bound.
    for info in infos[5:]:
        info["round_times_s"] = [0.02 * (1 + 0.01 * (i % 3 - 1)) for i in range(9)]
    summary = summarise(infos, RunTerms({}, "none"))
    assert set(summary) == {"mlx/small", "numpy/small"}
    assert summary["mlx/small"]["cases"] == 5 and summary["mlx/small"]["rounds_per_pass"] == 3
    assert 1.0 < summary["mlx/small"]["between_pass_sd_pct"] < 6.0
    assert summary["numpy/small"]["rounds_unbounded"] and summary["numpy/small"]["optimal_rounds_per_pass"] is None
    json.dumps(summary, allow_nan=False)  # saved with the run: no Infinity in the file
    lines = describe(summary)
    assert "as many as the time allows" in lines[1] and "rounds a pass for the most precision per minute: " in lines[0]
