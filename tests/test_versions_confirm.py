"""Sequential confirmation (bench.versions.confirm): more sessions for what a run left open, within a budget.

On the fake workers of test_versions_paired, whose truth is known: a real
step left `undecided` by four noisy sessions is decided by the added ones, a
null case is never turned into a regression, the time budget holds under a
fake clock, and the gate, the history and bisect all use it.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from test_versions_history import SIX, STEP_CASE
from test_versions_history import run as run_history
from test_versions_paired import MACHINE, SIDES, World, fake_cases, fake_ensure, run_main

from bench import versions
from bench.versions import arguments, bisect, compare, confirm, history, paired, verdict_files, verdicts
from bench.versions.modes import mode_settings
from bench.versions.paired import PairedSettings, run_paired

THRESHOLD = 0.10
SEARCH_SD = 0.1  # process noise at which four sessions leave a bisection's probes undecided
STEPPED = [f"linear-mlx-v{i}-step-cpu-n1000-d10" for i in range(4)]  # +25% in 0.32.4


def noisy_world(seed=0, effect=0.2):
    return World(cases=fake_cases(16, 4), effects={"0.32.4": dict.fromkeys(STEPPED, effect)}, process_sd=0.1, seed=seed)


def first_run(world, sessions=4, seed=1):
    settings = PairedSettings(sessions=sessions, pairs=6, cpu_sets=[[]], seed=seed)
    data = run_paired(SIDES, world.cases, settings, world.start, progress=lambda line: None)
    _, rows = verdicts.compare_pair(data, "0.30.0", "0.32.4", THRESHOLD)
    return settings, data, {r["case_id"]: r for r in rows}


def confirm_open(world, settings, data, rows, budget=1e9, clock=None):
    open_ids = [cid for cid, r in rows.items() if not r["control"] and r["verdict"] == "undecided"]
    kwargs = {"clock": clock} if clock else {}
    outcome = confirm.confirm(
        data, {s.label: s for s in SIDES}, [confirm.Question("0.30.0", "0.32.4", open_ids)], world.cases, settings,
        world.start, THRESHOLD, 0.01, budget, progress=lambda line: None, **kwargs,
    )  # fmt: skip
    return open_ids, outcome


def test_an_undecided_real_step_is_decided_by_added_sessions_and_null_cases_stay_null():
    world = noisy_world()
    settings, data, rows = first_run(world)
    open_ids, outcome = confirm_open(world, settings, data, rows)
    stepped_open = [cid for cid in open_ids if cid in STEPPED]
    assert stepped_open, "the noisy first run should leave some real steps undecided"
    for cid in stepped_open:
        key = ("0.30.0", "0.32.4", cid)
        assert outcome.rows[key]["verdict"] == "regression", outcome.rows[key]["reason"]
        assert outcome.rows[key]["n_newer"] > rows[cid]["n_newer"] == 4
    null = [("0.30.0", "0.32.4", cid) for cid in open_ids if cid not in STEPPED]
    assert null and all(outcome.rows[key]["verdict"] in ("same", "undecided") for key in null)
    assert outcome.alpha_per_look == pytest.approx(0.01 / confirm.MAX_LOOKS)
    # The added sessions are targeted: only the two releases, only the open cases and their group's controls.
    added = data["sessions"][4:]
    assert added and all(set(s["workers"]) == {"0.30.0", "0.32.4"} for s in added)
    assert [s["session"] for s in data["sessions"]] == list(range(len(data["sessions"])))
    untouched = next(cid for cid, r in rows.items() if r["verdict"] != "undecided" and not r["control"])
    assert len(data["cases"][untouched]["sessions"]) == 4


@pytest.mark.parametrize("seed", range(6))
def test_null_histories_of_noisy_cases_never_confirm_a_regression(seed):
    world = noisy_world(seed=seed, effect=0.0)
    settings, data, rows = first_run(world, seed=seed)
    open_ids, outcome = confirm_open(world, settings, data, rows)
    assert open_ids
    assert not [key for key, row in outcome.rows.items() if row["verdict"] in ("regression", "faster")]


class Clock:
    """A fake clock that advances by `tick` seconds per timed round of any worker."""

    def __init__(self, tick):
        self.now, self.tick = 0.0, tick

    def __call__(self):
        return self.now

    def perf_counter(self):
        return self.now


def test_the_budget_is_respected(monkeypatch):
    clock = Clock(0.05)
    world = noisy_world()
    start = world.start

    def ticking(side, cpus, session):
        worker = start(side, cpus, session)
        request = worker.request

        def timed(message, timeout=None):
            if message["cmd"] == "round":
                clock.now += clock.tick
            return request(message, timeout)

        worker.request = timed
        return worker

    world.start = ticking
    monkeypatch.setattr(paired, "time", clock)  # the runner's own record of seconds runs on the same clock
    settings, data, rows = first_run(world)
    per_case_session = 6 * 2 * clock.tick  # 6 blocks x 2 releases
    open_ids = [cid for cid, r in rows.items() if not r["control"] and r["verdict"] == "undecided"]
    one_session = per_case_session * len(confirm.controls_of(open_ids, world.cases))
    budget = 2.5 * one_session  # a first look of 2 sessions fits, a second does not
    before = clock.now
    _, outcome = confirm_open(world, settings, data, rows, budget=budget, clock=clock)
    assert clock.now - before <= budget
    assert outcome.sessions_added[("0.30.0", "0.32.4")] == 2 and outcome.stopped in ("budget", "decided")
    # No budget, no confirmation: nothing added.
    _, outcome = confirm_open(world, settings, data, rows, budget=0.0, clock=clock)
    assert outcome.stopped == "budget" and not outcome.sessions_added


def test_the_gate_confirms_its_undecided_cases(tmp_path, monkeypatch):
    monkeypatch.setattr(compare, "machine_identity", lambda: dict(MACHINE))
    argv = ["0.30.0", "0.32.4", "--cpus", "none", "--confirm-budget", "1000"]
    run_main(tmp_path, argv, noisy_world())
    document = json.loads((tmp_path / "results" / verdict_files.VERDICTS_JSON).read_text())
    confirmed = [r for r in document["rows"] if r.get("confirmation")]
    assert confirmed and all(r["first_verdict"] == "undecided" for r in confirmed)
    assert {r["case_id"] for r in confirmed if r["verdict"] == "regression"} & set(STEPPED)
    assert all("confirmation: " in r["reason"] for r in confirmed)
    settings = document["settings"]["confirmation"]
    assert settings["budget_s"] == 1000 and settings["rule"] == confirm.RULE and settings["cases"] == len(confirmed)
    saved = json.loads((tmp_path / "results" / verdict_files.MEASUREMENTS_JSON).read_text())
    assert len(saved["sessions"]) > 4  # the added sessions are saved with the run's
    # --confirm-budget 0: the run's own verdicts, nothing added.
    run_main(tmp_path / "off", [*argv[:-1], "0"], noisy_world())
    document = json.loads((tmp_path / "off" / "results" / verdict_files.VERDICTS_JSON).read_text())
    assert not [r for r in document["rows"] if r.get("confirmation")]
    assert document["settings"]["confirmation"]["stopped"] == "off"


def test_bad_budgets_are_refused_in_one_line(tmp_path, capsys):
    for bad in ("-1", "nan", "inf"):
        with pytest.raises(SystemExit):
            versions.parse_args(["0.30.0", "0.32.4", "--confirm-budget", bad])
        assert "--confirm-budget must be 0 or a positive number" in capsys.readouterr().err


def test_candidate_steps_are_unsettled_or_marginal():
    class Detection:
        penalty = 20.0

    def step(low, high, t, control=False):
        return {"control": control, "backend": "mlx", "ci_low_pct": low, "ci_high_pct": high, "t": t}

    found = [step(5, 20, 8), step(12, 30, 8), step(11, 18, 5), step(-1, 30, 2, control=True), step(-25, -5, 9)]
    chosen = confirm.step_candidates(found, {"mlx": Detection()}, THRESHOLD)
    assert chosen == [found[0], found[2], found[4]]  # straddles 10%; t^2 = 25 < 40; straddles -10%


def test_a_history_confirms_its_candidate_steps(tmp_path, monkeypatch, capsys):
    # A +12% step at 3% noise: the detector finds it but estimates it within the 10% threshold (`small`); the
    # added sessions of its two releases make it a change point.
    monkeypatch.setattr(compare, "machine_identity", lambda: dict(MACHINE))
    world = World(cases=fake_cases(12, 4), effects={r: {STEP_CASE: 0.12} for r in SIX[3:]}, process_sd=0.03, seed=0)
    _, document = run_history(tmp_path, world, "--confirm-budget", "1000")
    step = next(s for s in document["steps"] if s["case_id"] == STEP_CASE)
    summary = step["confirmation"]
    assert step["detector_verdict"] == history.SMALL_STEP and step["verdict"] == summary["verdict"] == "regression"
    assert summary["sessions_added"] >= 2 and summary["rule"] == confirm.RULE
    assert summary["alpha_per_look"] == pytest.approx(0.01 / confirm.MAX_LOOKS)  # one pair confirmed
    points = document["change_points"]
    assert [(p["case_id"], p["older"], p["newer"]) for p in points] == [(STEP_CASE, "0.28.0", "0.29.0")]
    assert points[0]["confirmation"]["verdict"] == "regression" and points[0]["status"] == "ok"
    assert document["settings"]["confirmation"]["decided"] == 1
    assert "confirmation: regression" in capsys.readouterr().out
    # The history's figures stay those of its own sessions (every release in each).
    assert {r["sessions"] for r in document["rows"]} == {4}
    assert all("installer" in release for release in document["settings"]["releases"])
    # Without a budget the same history leaves it a small step.
    _, document = run_history(tmp_path / "off", World(cases=world.cases, effects=world.effects, process_sd=0.03),
                              "--confirm-budget", "0")  # fmt: skip
    assert document["change_points"] == [] and document["settings"]["confirmation"]["stopped"] == "off"


def bisect_with_budget(world, tmp_path, monkeypatch, case, old, new, available, budget="1000") -> int:
    """--bisect with a --confirm-budget (the fixed one makes the added sessions the same every run)."""
    monkeypatch.setattr(bisect, "machine_identity", lambda: dict(MACHINE))
    monkeypatch.setattr(arguments, "check_cases", lambda args: None)  # the fake world's ids are not the grid's
    argv = ["--bisect", case, old, new, "--results", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c")]
    args = mode_settings(versions.parse_args([*argv, "--cpus", "none", "--confirm-budget", budget]))
    settings = PairedSettings(sessions=4, cpu_sets=[[]])
    cache = versions.EnvCache(tmp_path / "c")
    return bisect.run_bisect(args, cache, versions.PinSet(()), world.start, settings, fake_ensure, available=available)


def test_a_bisect_probe_left_undecided_is_confirmed_and_the_search_goes_on(tmp_path, monkeypatch):
    case = "linear-mlx-v3-step-cpu-n1000-d10"
    world = World(effects={r: {case: 0.25} for r in ("0.31.0", "0.31.1", "0.32.4")}, process_sd=SEARCH_SD, seed=1)
    available = ["0.29.0", "0.30.0", "0.31.0", "0.31.1", "0.32.4"]
    status = bisect_with_budget(world, tmp_path, monkeypatch, case, "0.29.0", "0.32.4", available)
    saved = json.loads((tmp_path / "r" / bisect.BISECT_JSON).read_text())
    confirmed = [p for p in saved["probes"] if p.get("confirmation")]
    assert status == 0 and saved["first_regressed"] == "0.31.0", saved["probes"]
    assert confirmed and all(p["confirmation"]["sessions_added"] >= 2 for p in confirmed)
    # Without confirmation the same search stops at its first undecided probe (exit 4).
    status = bisect_with_budget(World(effects=world.effects, process_sd=SEARCH_SD, seed=1), tmp_path / "off",
                                monkeypatch, case, "0.29.0", "0.32.4", available, budget="0")  # fmt: skip
    assert status == bisect.EXIT_INCONCLUSIVE


def test_settings_are_replaced_not_changed():
    settings = PairedSettings(sessions=4)
    assert replace(settings, first_session=4).first_session == 4 and settings.first_session == 0
