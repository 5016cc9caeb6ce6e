"""The one verdict engine: its prior, its verdicts, its control rules and its one exit-code precedence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.stats import verdict_engine as engine


def frame_of(deltas, sd=0.01, n=4, control=None, groups=None) -> pd.DataFrame:
    deltas = np.log1p(np.asarray(deltas, dtype=float))
    control = np.zeros(len(deltas), bool) if control is None else np.asarray(control, bool)
    return pd.DataFrame(
        {
            "case_id": [f"c{i}" for i in range(len(deltas))],
            "group": groups or ["g"] * len(deltas),
            "control": control,
            "older": "a",
            "newer": "b",
            "delta": deltas,
            "se": sd / np.sqrt(n),
            "df": n - 1,
            "noise": sd**2,
            "n_older": n,
            "n_newer": n,
        }
    )


def test_verdicts_follow_the_documented_rules():
    judged = engine.decide(frame_of([0.25, -0.25, 0.0, 0.09, 0.10], sd=0.02), threshold=0.10, paired=True)
    assert list(judged["verdict"]) == ["regression", "faster", "same", "undecided", "undecided"]
    assert "not beyond" in judged["reason"][3]  # significant, but not beyond the threshold
    assert judged["pct_change"][4] == pytest.approx(10.0)  # exactly the threshold: never beyond it
    few = engine.decide(frame_of([0.5], n=2), threshold=0.10, paired=True)
    assert few["verdict"][0] == "undecided" and "fewer than 3 sessions" in few["reason"][0]


def test_power_is_80_percent_everywhere():
    judged = engine.decide(frame_of([0.0]), threshold=0.10, paired=True)
    import scipy.stats

    se = 0.01 / 2
    # A regression is significant *and* beyond the threshold: 80% of such changes clear the larger bar by z_0.8 se.
    bar = max(np.log1p(0.10), scipy.stats.t.ppf(1 - 0.01, 3) * se)
    assert judged["min_detectable_pct"][0] == pytest.approx(100 * np.expm1(bar + scipy.stats.t.ppf(0.8, 3) * se))
    assert (
        judged["min_detectable_pct"][0] > 10
    )  # never below the threshold: a change of exactly 10% is caught half the time


def test_no_prior_under_ten_cases_and_never_below_a_cases_own_variance():
    assert engine.fit_noise_prior([1e-4] * 9, [3] * 9) == (pytest.approx(np.nan, nan_ok=True), 0.0)
    s0, d0 = engine.fit_noise_prior(np.random.default_rng(0).gamma(2, 5e-5, 200), np.full(200, 3.0))
    assert d0 > 0 and s0 > 0
    shrunk, df = engine.shrink_variances(np.array([1e-6, 1e-2]), np.array([3.0, 3.0]), 1e-4, 10.0)
    assert shrunk[0] > 1e-6 and shrunk[1] == pytest.approx(1e-2) and list(df) == [13.0, 13.0]


def test_a_moved_control_voids_its_group_and_a_common_shift_the_comparison():
    frame = frame_of([0.0, 0.0, 0.3, 0.0], control=[False, False, True, True], groups=["g1", "g2", "g1", "g2"])
    judged = engine.decide(frame, threshold=0.10, paired=True)
    moved = engine.void_groups(judged, 0.10, 0.01)
    assert list(moved["case_id"]) == ["c2"]
    assert list(judged["verdict"][:2]) == ["inconclusive", "same"]
    assert engine.common_shift_status(8.0, 0.001, 5, 0.10)[0] == "inconclusive"
    assert engine.common_shift_status(3.0, 0.001, 5, 0.10)[0] == "ok"  # within half the threshold
    assert engine.common_shift_status(8.0, 0.2, 5, 0.10)[0] == "ok"  # not significant


@pytest.mark.parametrize(
    "rows, statuses, expected",
    [
        ([("same", False, "ok")], ["ok"], 0),
        ([("broken", False, "inconclusive")], ["inconclusive"], 1),  # broken fails the gate whatever else
        ([("regression", False, "ok")], ["ok"], 1),
        ([("regression", True, "ok")], ["ok"], 0),  # a control is never an MLX regression
        ([("regression", False, "inconclusive")], ["inconclusive"], 4),
        ([("inconclusive", False, "ok")], ["ok"], 4),  # a voided group: the gate cannot vouch for it
        ([("same", False, "ok")], ["inconclusive"], 4),
    ],
)
def test_one_exit_code_precedence(rows, statuses, expected):
    assert engine.exit_status(rows, statuses, fail_on_regression=True) == expected
    assert engine.exit_status(rows, statuses, fail_on_regression=False) == 0
