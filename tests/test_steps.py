"""The step detector of the release history (bench.stats.steps): simulated histories where the truth is known.

The figures docs/releases.md quotes come from the slow test here:
`python -m pytest -q tests/test_steps.py -m slow -s -p no:randomly` prints them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.stats import steps
from bench.stats.steps import CaseTable, detect_steps


def simulated_history(rng, cases=16, releases=22, sessions=4, noise=0.02, stepped=0, size=0.14, uneven=0.0):
    """Cases of log median round times: a random session effect (per history and per case), each case's own level,
    Gaussian noise (each case's scaled by exp(N(0, uneven))); the first `stepped` cases slower by `size` from a random
    release on. ({case: release index})."""
    history_sessions = rng.normal(0, 0.05, sessions)
    tables, truth = [], {}
    for case in range(cases):
        own_noise = noise * math.exp(rng.normal(0, uneven)) if uneven else noise
        logs = rng.normal(0, own_noise, (releases, sessions)) + history_sessions + rng.normal(0, 0.03, sessions)
        logs += rng.normal(-7, 1)
        if case < stepped:
            at = int(rng.integers(1, releases))
            logs[at:] += math.log1p(size)
            truth[f"case{case}"] = at
        tables.append(CaseTable(f"case{case}", tuple(f"0.{r}.0" for r in range(releases)), logs))
    return tables, truth


def score(histories: int, seed: int, **shape) -> dict:
    """Over simulated histories: the share with any false step, the power on the true steps, their intervals' coverage."""
    rng = np.random.default_rng(seed)
    with_false, named, true_steps, covered = 0, 0, 0, 0
    for _ in range(histories):
        tables, truth = simulated_history(rng, **shape)
        found = detect_steps(tables).steps
        with_false += any(s.case_id not in truth or s.newer != f"0.{truth[s.case_id]}.0" for s in found)
        for case_id, at in truth.items():
            true_steps += 1
            hits = [s for s in found if s.case_id == case_id and s.newer == f"0.{at}.0"]
            named += bool(hits)
            if hits:
                low, high = hits[0].ci_pct
                covered += low <= 100 * shape.get("size", 0.14) <= high
    return {
        "false_alarm_rate": with_false / histories,
        "power": named / true_steps if true_steps else math.nan,
        "coverage": covered / named if named else math.nan,
    }


def test_two_way_fit_cancels_session_effects_and_pools_the_table():
    rng = np.random.default_rng(0)
    pure = rng.normal(0, 0.02, (6, 4))
    shifted = pure + np.array([0.3, -0.2, 0.1, 0.5])  # a lucky or unlucky session moves every release alike
    for logs in (pure, shifted):
        means, variance, df = steps.two_way(logs)
        assert df == 15
    assert steps.two_way(pure)[1] == pytest.approx(steps.two_way(shifted)[1])
    assert np.ptp(steps.two_way(shifted)[0] - steps.two_way(pure)[0]) == pytest.approx(0, abs=1e-12)


def test_a_table_leaves_out_what_was_not_measured():
    sessions = [
        {"times": {"a": [1.0, 1.1], "b": [2.0], "c": [3.0]}, "errors": {}},
        {"times": {"a": [1.0], "b": [2.2], "c": [3.0]}, "errors": {}},
        {"times": {"a": [1.0], "b": [], "c": [3.1]}, "errors": {"b": "crashed"}},
        {"times": {"a": [1.0], "b": [2.1], "c": [3.3]}, "errors": {}},
    ]
    table = steps.case_table("x", sessions, ["a", "b", "c", "d"])
    assert table.releases == ("a", "b", "c") and table.logs.shape == (3, 3)  # d never measured, session 3 incomplete
    assert table.logs[0, 0] == pytest.approx(math.log(1.05))
    assert steps.case_table("x", sessions[:1], ["a", "b"]) is None  # one session: no noise to measure


def test_segmentation_finds_the_steps_and_their_sizes():
    rng = np.random.default_rng(1)
    logs = rng.normal(0, 0.02, (12, 4))
    logs[4:] += math.log1p(0.20)
    logs[9:] -= math.log1p(0.25)
    found = detect_steps([CaseTable("c", tuple(map(str, range(12))), logs)]).steps
    assert [(s.older, s.newer) for s in found] == [("3", "4"), ("8", "9")]
    assert found[0].ci_pct[0] < 20 < found[0].ci_pct[1] and found[0].segment_after == tuple(map(str, range(4, 9)))
    assert found[1].pct_change < -15


def test_the_penalty_is_the_null_quantile_and_grows_with_the_family():
    one = steps.calibrated_penalty(((6, 4),), 0.0)
    many = steps.calibrated_penalty(((6, 4),) * 16, 0.0)
    pooled = steps.calibrated_penalty(((6, 4),) * 16, math.inf)
    assert one < many and pooled < many  # more cases, more chances; pooled noise, lighter tails
    null = steps.simulate_null(((6, 4),) * 16, 0.0)
    assert np.mean(null > many) <= steps.CALIBRATION_LEVEL
    assert steps.prior_df_step(50.0) == 32.0 and steps.prior_df_step(math.inf) == math.inf


def test_a_step_of_13_percent_in_six_releases_at_3_percent_noise_is_named():
    # The shape of a short history: 6 releases, 4 sessions, 4 MLX cases of which 2 step by +13% from the 5th release.
    rng = np.random.default_rng(7)
    named = 0
    for _ in range(100):
        tables, _ = simulated_history(rng, cases=4, releases=6, noise=0.03, stepped=0)
        for table in tables[:2]:
            table.logs[4:] += math.log1p(0.13)
        found = {(s.case_id, s.older, s.newer) for s in detect_steps(tables).steps}
        named += ("case0", "0.3.0", "0.4.0") in found and ("case1", "0.3.0", "0.4.0") in found
    print(f"6 releases x 4 sessions, 3% noise, +13% step: both cases named in {named} of 100 histories")
    assert named >= 90


def test_simulated_power_and_false_alarms_at_the_history_grid_shape():
    # 16 cases x 22 releases x 4 sessions at 2% noise, a random session effect: a fast version of the slow test.
    null = score(200, seed=11)
    stepped = score(200, seed=12, stepped=8)
    print(f"null: {null}; +14% step in 8 of 16 cases: {stepped}")
    assert null["false_alarm_rate"] <= 0.015  # 3 of 200; the slow test holds the 1% bound over 1,000
    assert stepped["power"] >= 0.95 and stepped["coverage"] >= 0.9


@pytest.mark.slow
def test_simulated_power_and_false_alarms_over_a_thousand_histories():
    null = score(1_000, seed=21)
    stepped = score(1_000, seed=22, stepped=8)
    print(
        f"\n16 cases x 22 releases x 4 sessions, 2% noise, random session effects, 1,000 histories each:\n"
        f"  null histories with any step: {null['false_alarm_rate']:.1%}\n"
        f"  +14% step in 8 of 16 cases: power {stepped['power']:.3f}, 95% interval covers the step "
        f"{stepped['coverage']:.1%}, histories with a false step {stepped['false_alarm_rate']:.1%}"
    )
    assert null["false_alarm_rate"] <= 0.01
    assert stepped["power"] >= 0.95


@pytest.mark.slow
def test_false_alarms_stay_within_the_bound_when_the_cases_noise_differs():
    # Pooling over a backend's cases is only honest if a noisier case does not borrow quiet ones' noise:
    # the cases' noise spread by a factor of about 2 either way, and short histories (6 releases), where it matters most.
    for shape in ({"uneven": 0.7}, {"uneven": 0.7, "releases": 6}):
        null = score(1_000, seed=31, **shape)
        print(f"\nuneven noise {shape}: null histories with any step {null['false_alarm_rate']:.1%}")
        assert null["false_alarm_rate"] <= 0.01
