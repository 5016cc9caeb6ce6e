"""The paired release runner: workers, interleaving, verdicts, self-test, bisect, release names, wheels.

Fake workers and environments throughout (no network, no installs); one test
drives the real worker in-process on a tiny NumPy case, and one starts a real
process to check that a worker missing its deadline is stopped.
"""

from __future__ import annotations

import io
import json
import math
import random
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from bench import versions
from bench.engine.affinity import cpu_sets
from bench.engine.client import WorkerClient, WorkerError, WorkerTimeout
from bench.engine.worker import serve
from bench.report.records import record_kind
from bench.versions import arguments, bisect, compare, env_ownership, selftest, verdict_files, verdicts
from bench.versions.modes import mode_settings
from bench.versions.paired import PairedSettings, Side, pairs_for, run_paired
from bench.versions.targets import ReleaseError, mlx_requirement, parse_target, twin

MACHINE = {
    "host": "vm",
    "cpu_model": "Xeon",
    "cpu_count": 2,
    "memory_bytes": 2**34,
    "system": "Linux-x86_64",
    "python": "CPython 3.11.7",
}


def fake_cases(n_mlx: int = 20, n_numpy: int = 4) -> list[dict]:
    """Case entries like a worker's 'cases' answer."""
    cases = []
    for i in range(n_numpy):
        cases.append(
            {
                "case_id": f"linear-numpy-v{i}-eager-cpu-n1000-d10",
                "size": {"n_examples": 1000, "n_features": 10},
                "case": {"model": "linear", "backend": "numpy", "variant": f"v{i}", "barrier": "eager"},
            }
        )
    for i in range(n_mlx):
        cases.append(
            {
                "case_id": f"linear-mlx-v{i}-step-cpu-n1000-d10",
                "size": {"n_examples": 1000, "n_features": 10},
                "case": {"model": "linear", "backend": "mlx", "variant": f"v{i}", "barrier": "step"},
            }
        )
    return cases


class FakeWorker:
    """Answers like bench.engine.worker with synthetic times: base x release effect x process offset x round noise."""

    def __init__(self, side, cpus, session, world):
        self.side, self.cpus, self.session, self.world = side, cpus, session, world
        self.rng = random.Random(f"{side.label}|{session}|{world.seed}|{len(world.started)}")  # the same every run
        self.offsets = {}
        self.case_id = None
        self.pid = 1000 + len(world.started)
        self.alive = True
        world.started.append((side.label, tuple(cpus), session))

    def request(self, message, timeout=None):
        cmd = message["cmd"]
        job = message.get("job") or {}
        self.world.log.append((self.side.label, self.session, cmd, job.get("steps_per_round")))
        if cmd == "hello":
            return {
                "ok": True,
                "pid": self.pid,
                "mlx": self.world.mlx.get(self.side.label, self.side.version),
                "affinity": self.cpus,
                "machine": self.world.machine,
                "threads": {},
            }
        if cmd == "cases":
            return {"ok": True, "cases": self.world.cases, "skipped": []}
        if cmd == "open":
            self.case_id = next(
                c["case_id"]
                for c in self.world.cases
                if all(job["case"].get(k) == v for k, v in c["case"].items()) and job["size"] == c["size"]
            )
            if self.case_id in self.world.fail_setup.get(self.side.label, ()):
                raise WorkerError("ValueError: this release cannot build the case")
            plants = job.get("plants") or {}
            self.slow = plants.get("factor", 1.0) - 1.0
            self.broken = plants.get("broken") if self.world.honour_broken else None
            self.offsets.setdefault(self.case_id, math.exp(self.rng.gauss(0, self.world.process_sd)))
            return {
                "ok": True,
                "steps_per_round": job["steps_per_round"] or 100,
                "round_s": 0.02,
                "first_step_s": 0.001,
            }
        if cmd == "round":
            if (self.side.label, self.session, self.case_id) in self.world.hang:
                raise WorkerTimeout("timeout: round took over 600 s; worker stopped")
            effect = self.world.effects.get(self.side.label, {}).get(self.case_id, 0.0)
            seconds = (
                0.02
                * (1 + effect)
                * (1 + self.slow)
                * self.offsets[self.case_id]
                * math.exp(self.rng.gauss(0, self.world.round_sd))
            )
            return {"ok": True, "seconds": seconds, "planted": (1 + self.slow) if self.slow else None}
        if cmd == "check":
            if self.broken == "barrier":
                raise WorkerError(
                    "linear-mlx: 200 steps returned with work still pending; the round did not end in its evaluation barrier"
                )
            if self.case_id in self.world.fail_check.get(self.side.label, ()) or self.broken == "weights":
                raise WorkerError("linear: after 10 steps the weights differ from the float64 reference by 0.5")
            return {"ok": True, "checks": {"max_rel_error": 1e-7, "barrier_pending_s": 0.0}}
        if cmd == "close":
            return {"ok": True}
        raise AssertionError(cmd)

    def close(self):
        self.alive = False
        self.world.closed += 1


class World:
    """The fake machine: its cases, the true effect of each release, the noise."""

    def __init__(self, cases=None, effects=None, process_sd=0.01, round_sd=0.01, seed=0):
        self.cases = cases or fake_cases()
        self.effects = effects or {}
        self.process_sd, self.round_sd, self.seed = process_sd, round_sd, seed
        self.machine = dict(MACHINE)
        self.mlx, self.fail_setup, self.fail_check, self.hang = {}, {}, {}, set()
        self.honour_broken = True
        self.started, self.log, self.closed = [], [], 0

    def start(self, side, cpus, session):
        return FakeWorker(side, cpus, session, self)


SIDES = [Side("0.30.0", Path("/env/a/bin/python"), "0.30.0"), Side("0.32.4", Path("/env/b/bin/python"), "0.32.4")]


def measure(world, sessions=4, pairs=6, sides=SIDES, seed=1):
    settings = PairedSettings(sessions=sessions, pairs=pairs, cpu_sets=[[0], [1]], seed=seed)
    return run_paired(sides, world.cases, settings, world.start, progress=lambda line: None)


# --------------------------------------------------------------------------- paired runner


def test_k_is_calibrated_once_then_fixed_for_every_release_and_session():
    world = World()
    measure(world, sessions=3)
    setups = [(label, session, steps) for label, session, cmd, steps in world.log if cmd == "open"]
    first_case = [s for s in setups][: len(SIDES)]
    assert first_case[0] == ("0.30.0", 0, None)  # the first release's worker calibrates
    assert all(steps == 100 for _, _, steps in setups[1:] if steps is not None)
    assert sum(steps is None for _, _, steps in setups) == len(world.cases)  # once per case, never again


def test_rounds_alternate_in_random_order_and_sessions_are_fresh_pinned_processes():
    world = World()
    data = measure(world, sessions=4)
    record = data["cases"][world.cases[5]["case_id"]]["sessions"][0]
    assert all(sorted(order) == ["0.30.0", "0.32.4"] for order in record["orders"])
    all_orders = [tuple(o) for c in data["cases"].values() for s in c["sessions"] for o in s["orders"]]
    assert {("0.30.0", "0.32.4"), ("0.32.4", "0.30.0")} <= set(all_orders)
    # The isolation policy: per release and session, a fresh worker per backend-pure group (the fake grid
    # has two: NumPy's and MLX's cases at one size), all on the session's CPU set, sets taken in turn.
    assert sorted(world.started) == sorted(
        (label, (cpu,), s) for s, cpu in enumerate([0, 1, 0, 1]) for label in ("0.30.0", "0.32.4") for _ in range(2)
    )
    assert [s["cpus"] for s in data["sessions"]] == [[0], [1], [0], [1]]
    assert world.closed == 16
    groups = [w["group"] for w in data["sessions"][0]["workers"]["0.30.0"]]
    assert [g[1] for g in groups] == ["numpy", "mlx"]  # NumPy's controls never share MLX's process


def test_case_order_is_the_grid_reversed_or_shuffled_per_session():
    world = World()
    ids = [c["case_id"] for c in world.cases]
    data = run_paired(
        SIDES, world.cases, PairedSettings(sessions=3, cpu_sets=[[]]), world.start, progress=lambda line: None
    )
    assert [s["case_order"] for s in data["sessions"]] == [ids] * 3
    settings = PairedSettings(sessions=3, cpu_sets=[[]], shuffle_cases=True)
    orders = [
        s["case_order"]
        for s in run_paired(SIDES, world.cases, settings, World().start, progress=lambda line: None)["sessions"]
    ]
    assert all(sorted(o) == sorted(ids) for o in orders) and len({tuple(o) for o in orders}) == 3
    assert versions.parse_args(["0.30.0", "0.32.4", "--case-order", "shuffle"]).case_order == "shuffle"
    settings = PairedSettings(sessions=2, cpu_sets=[[]], reverse_cases=True)
    data = run_paired(SIDES, world.cases, settings, World().start, progress=lambda line: None)
    assert [s["case_order"] for s in data["sessions"]] == [ids[::-1]] * 2


def test_checks_run_after_timing_in_every_session_unless_told_otherwise():
    world = World()
    data = measure(world, sessions=2)
    commands = [(session, cmd) for label, session, cmd, _ in world.log if label == "0.32.4"]
    for session in (0, 1):
        seen = [cmd for s, cmd in commands if s == session and cmd in ("round", "check")]
        assert seen[-1] == "check" and seen.count("check") == len(world.cases)
    assert all("check_s" in s and s["checked"] for c in data["cases"].values() for s in c["sessions"])
    world = World()
    settings = PairedSettings(sessions=2, cpu_sets=[[]], check_every_session=False)
    run_paired(SIDES, world.cases, settings, world.start, progress=lambda line: None)
    later = [cmd for label, session, cmd, _ in world.log if session == 1]
    assert "check" not in later and later.count("close") == 2 * len(world.cases)
    assert versions.parse_args(["0.30.0", "0.32.4", "--checks", "first-session"]).checks == "first-session"


def test_a_case_one_release_cannot_build_is_reported_not_fatal():
    world = World()
    bad = world.cases[6]["case_id"]
    world.fail_setup = {"0.30.0": {bad}}
    data = measure(world, sessions=2)
    assert all("cannot build" in s["errors"]["0.30.0"] for s in data["cases"][bad]["sessions"])
    _, rows = verdicts.compare_pair(data, "0.30.0", "0.32.4", 0.1)
    row = next(r for r in rows if r["case_id"] == bad)
    assert row["verdict"] == "undecided" and "cannot build" in row["reason"]


def test_a_case_the_newer_release_breaks_is_broken_first_and_fails_the_gate(tmp_path, capsys, monkeypatch):
    world = World()
    crashed, wrong, hung = (world.cases[i]["case_id"] for i in (6, 8, 10))
    world.fail_setup = {"0.32.4": {crashed}}
    world.fail_check = {"0.32.4": {wrong}}
    world.hang = {("0.32.4", 2, hung)}  # one session of four
    data = measure(world, sessions=4)
    _, rows = verdicts.compare_pair(data, "0.30.0", "0.32.4", 0.1)
    by_id = {r["case_id"]: r for r in rows}
    assert by_id[crashed]["verdict"] == "broken" and "cannot build" in by_id[crashed]["reason"]
    assert by_id[wrong]["verdict"] == "broken" and "float64 reference" in by_id[wrong]["reason"]
    assert by_id[hung]["verdict"] == "broken" and "timeout" in by_id[hung]["reason"]
    assert sum(r["verdict"] == "broken" for r in rows) == 3
    table = verdict_files.verdict_table(
        [{"older": "0.30.0", "newer": "0.32.4", "status": "ok", "reason": ""}], rows, 0.1
    )
    assert "3 broken" in table[1] and table[3].split()[0] in (crashed, wrong, hung)  # broken rows come first
    # The same verdicts fail the gate in a normal comparison: --fail-on-regression exits 1.
    monkeypatch.setattr(compare, "machine_identity", lambda: dict(MACHINE))
    world = World()
    world.fail_check = {"0.32.4": {wrong}}
    assert run_main(tmp_path, ["0.30.0", "0.32.4", "--fail-on-regression", "--cpus", "none"], world) == 1
    assert "broken" in capsys.readouterr().out


def test_workers_of_another_machine_than_the_runner_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(compare, "machine_identity", lambda: dict(MACHINE, cpu_model="AMD EPYC"))
    assert run_main(tmp_path, ["0.30.0", "0.32.4", "--cpus", "none"], World()) == versions.EXIT_INCOMPLETE


def test_a_worker_that_times_out_is_replaced_and_the_case_reported():
    world = World()
    stuck = world.cases[5]["case_id"]  # an MLX case with more of its group after it
    world.hang = {("0.32.4", 0, stuck)}
    lines = []
    data = run_paired(
        SIDES, world.cases, PairedSettings(sessions=2, cpu_sets=[[0]]), world.start, progress=lines.append
    )
    assert data["cases"][stuck]["sessions"][0]["errors"]["0.32.4"].startswith("timeout")
    assert len(world.started) == 2 * 2 * 2 + 1  # one fresh worker replaced the stuck one
    after = world.cases[6]["case_id"]
    assert (
        not data["cases"][after]["sessions"][0]["errors"]
        and len(data["cases"][after]["sessions"][0]["times"]["0.32.4"]) == 6
    )
    assert any("timeout" in line and stuck in line for line in lines)


def test_a_worker_of_another_release_or_machine_is_refused():
    world = World()
    world.mlx = {"0.30.0": "0.32.4"}
    with pytest.raises(WorkerError, match="runs mlx 0.32.4, not 0.30.0"):
        measure(world, sessions=1)
    assert not compare.same_machine(MACHINE, dict(MACHINE, cpu_model="AMD EPYC"))
    assert not compare.same_machine(MACHINE, dict(MACHINE, cpu_count=4))
    assert not compare.same_machine(MACHINE, dict(MACHINE, memory_bytes=2**35))
    assert compare.same_machine(MACHINE, dict(MACHINE))


def test_long_rounds_get_fewer_pairs_but_never_fewer_than_three():
    settings = PairedSettings(pairs=6, round_time_s=0.02)
    assert pairs_for(0.02, settings) == 6
    assert pairs_for(0.06, settings) == 6  # within the one long-round rule (bench.engine.defaults): 3 x round time
    assert pairs_for(0.08, settings) == 4
    assert pairs_for(5.0, settings) == 3


def test_cpu_sets():
    assert cpu_sets("auto", [0, 1]) == [[0], [1]]
    assert cpu_sets("0,1", [0, 1]) == [[0, 1]]
    assert cpu_sets("0;1", [0, 1]) == [[0], [1]]
    assert cpu_sets("none", [0, 1]) == [[]]
    with pytest.raises(ValueError, match="not usable"):
        cpu_sets("5", [0, 1])


# --------------------------------------------------------------------------- verdicts


def test_holm_is_the_verdict_engines():
    from bench.stats import verdict_engine

    assert verdict_engine.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_a_a_comparison_has_no_regression_and_a_planted_slowdown_is_found():
    world = World(cases=fake_cases(40, 4), effects={"0.32.4": {"linear-mlx-v3-step-cpu-n1000-d10": 0.30}})
    data = measure(world)
    comparison, rows = verdicts.compare_pair(data, "0.30.0", "0.32.4", 0.10)
    assert comparison["status"] == "ok"
    flagged = [r["case_id"] for r in rows if r["verdict"] == "regression"]
    assert flagged == ["linear-mlx-v3-step-cpu-n1000-d10"]
    planted = next(r for r in rows if r["case_id"] == flagged[0])
    assert 25 < planted["pct_change"] < 35 and planted["ci_low_pct"] < planted["pct_change"] < planted["ci_high_pct"]
    assert planted["method"] == "paired" and planted["n_older"] == planted["n_newer"] == 4
    assert sum(r["verdict"] == "same" for r in rows) >= 35  # 1% noise, 4 sessions: +-10% is easily excluded
    assert set(verdict_files.ROW_FIELDS) <= set(rows[0])


def test_process_offsets_are_not_taken_for_changes():
    """A large lasting offset per process (the round noise small) must not look like a regression."""
    world = World(cases=fake_cases(40, 4), process_sd=0.06, round_sd=0.005, seed=3)
    _, rows = verdicts.compare_pair(measure(world, sessions=4), "0.30.0", "0.32.4", 0.10)
    assert not [r for r in rows if r["verdict"] == "regression"]


def two_groups() -> list[dict]:
    """fake_cases at 1,000 x 10 and the same cases at 2,000 x 10: two groups, each with its controls."""
    other = [
        {
            "case_id": c["case_id"].replace("n1000", "n2000"),
            "size": {"n_examples": 2000, "n_features": 10},
            "case": c["case"],
        }
        for c in fake_cases(8, 2)
    ]
    return fake_cases(8, 2) + other


def test_a_moved_control_voids_its_own_group_only():
    cases = two_groups()
    moved = "linear-numpy-v0-eager-cpu-n1000-d10"
    world = World(cases=cases, effects={"0.32.4": {moved: 0.10}})
    comparison, rows = verdicts.compare_pair(measure(world), "0.30.0", "0.32.4", 0.10)
    assert comparison["status"] == "ok" and moved in comparison["reason"]
    mlx = [r for r in rows if not r["control"]]
    assert {r["verdict"] for r in mlx if "n1000" in r["case_id"]} == {"inconclusive"}
    assert "inconclusive" not in {r["verdict"] for r in mlx if "n2000" in r["case_id"]}
    assert all("NumPy control of its model and size moved" in r["reason"] for r in mlx if "n1000" in r["case_id"])
    assert all(r["control"] == (r["backend"] == "numpy") for r in rows)


def test_controls_moving_together_make_the_comparison_inconclusive():
    cases = two_groups()
    controls = [c["case_id"] for c in cases if c["case"]["backend"] == "numpy"]
    world = World(cases=cases, effects={"0.32.4": dict.fromkeys(controls, 0.12)})
    comparison, _ = verdicts.compare_pair(measure(world), "0.30.0", "0.32.4", 0.10)
    assert comparison["status"] == "inconclusive" and "moved together" in comparison["reason"]


def test_faster_same_and_undecided():
    world = World(
        effects={"0.32.4": {"linear-mlx-v1-step-cpu-n1000-d10": -0.3, "linear-mlx-v2-step-cpu-n1000-d10": 0.10}}
    )
    world.cases[7]  # an untouched case stays 'same'
    _, rows = verdicts.compare_pair(measure(world), "0.30.0", "0.32.4", 0.10)
    by_id = {r["case_id"]: r for r in rows}
    assert by_id["linear-mlx-v1-step-cpu-n1000-d10"]["verdict"] == "faster"
    faster = by_id["linear-mlx-v1-step-cpu-n1000-d10"]
    assert faster["p_faster_adjusted"] < 0.01 < faster["p_slower"]
    assert faster["p_value"] == faster["p_faster"]  # p_value: the test in the direction of the change
    assert by_id["linear-mlx-v5-step-cpu-n1000-d10"]["verdict"] == "same"
    edge = by_id["linear-mlx-v2-step-cpu-n1000-d10"]  # exactly at the threshold: never 'same'
    assert edge["verdict"] in ("regression", "undecided") and edge["reason"] or edge["verdict"] == "regression"


@pytest.mark.parametrize("sessions", [1, 2])
def test_fewer_than_three_sessions_are_never_a_regression(sessions):
    world = World(effects={"0.32.4": {"linear-mlx-v3-step-cpu-n1000-d10": 0.5}})
    _, rows = verdicts.compare_pair(measure(world, sessions=sessions), "0.30.0", "0.32.4", 0.10)
    assert {r["verdict"] for r in rows} == {"undecided"}
    assert all("session" in r["reason"] for r in rows)


# --------------------------------------------------------------------------- self-test


def mixed_cases(n_mlx: int = 120, n_numpy: int = 8) -> list[dict]:
    """fake_cases with every third MLX case a full-batch round (where the barrier plant goes)."""
    cases = fake_cases(n_mlx, n_numpy)
    for i, case in enumerate(c for c in cases if c["case"]["backend"] == "mlx"):
        if i % 3 == 0:
            case["case"] = dict(case["case"], barrier="round")
            case["case_id"] = case["case_id"].replace("-step-", "-round-")
    return cases


def self_test(effects=None, process_sd=0.01, honour_broken=True, seed=0, applied_scale=1.0):
    """A whole self-test on the fake machine, chosen and judged as run_self_test does."""
    world = World(cases=mixed_cases(), effects=effects or {}, process_sd=process_sd, seed=seed)
    world.honour_broken = honour_broken
    cases = world.cases
    broken = selftest.choose_broken(cases)
    leftovers = selftest.choose_leftovers(cases, set(broken))
    followers = selftest.after_leftovers(cases, leftovers)
    plants = selftest.choose_plants(cases, 0.10, set(broken) | set(leftovers) | set(followers.values()))
    twin = Side("0.30.0-b", Path("/env/b/bin/python"), "0.30.0", slowdown=plants, leave_behind=leftovers, broken=broken)
    settings = PairedSettings(sessions=4, pairs=6, cpu_sets=[[0], [1]], seed=1, alternate_order=True)
    data = run_paired([SIDES[0], twin], cases, settings, world.start, progress=lambda line: None)
    comparison, rows = verdicts.compare_pair(data, "0.30.0", "0.30.0-b", 0.10)
    aa = [r["case_id"] for r in rows if not r["control"] and r["case_id"] not in plants and r["case_id"] not in broken]
    order = selftest.order_agreement(data, "0.30.0", "0.30.0-b", aa)
    applied = {c: pct * applied_scale for c, pct in selftest.applied_slowdowns(data, "0.30.0-b", plants).items()}
    return selftest.summarize(comparison, rows, plants, 0.10, leftovers, followers, broken, applied, order)


def test_self_test_passes_with_its_plants_caught_and_its_a_a_calibrated():
    result = self_test()
    assert result["status"] == "pass", result["summary"]
    assert result["false_regressions"] == 0 and result["fit_to_gate"]
    twice = next(p for p in result["detection_curve"] if p["multiple"] == 2.0)
    assert twice["plants"] == 20 and twice["caught"] >= 19
    assert twice["applied_pct_median"] == pytest.approx(20.0)  # scored against what the worker applied
    assert [p["multiple"] for p in result["detection_curve"]] == [0.5, 0.75, 1.0, 1.5, 2.0]
    assert {b["plant"]: b["verdict"] for b in result["broken_plants"]} == {"barrier": "broken", "weights": "broken"}
    assert result["isolation"] and {c["verdict"] for c in result["isolation"]} == {"same"}
    assert result["calibration"]["uniform"] and result["calibration"]["coverage_95"] >= 0.9
    assert result["order"]["agree"] and result["order"]["cases"] == result["cases"]
    assert result["plant_sizes"]["covered"] and result["plant_sizes"]["plants"] == len(result["planted"])
    assert selftest.STATUS_EXIT["pass"] == 0


def test_plants_measured_beyond_the_slowdown_applied_make_the_self_test_unfit():
    # The worker applied half what the gate measured: the gate would overstate every real change.
    result = self_test(applied_scale=0.5)
    assert result["status"] == "unfit" and not result["fit_to_gate"]
    assert any("applied slowdown lies within" in reason for reason in result["unfit_reasons"])
    assert result["plant_sizes"]["within"] < 0.9 * result["plant_sizes"]["plants"]


def test_a_false_alarm_fails_the_self_test():
    result = self_test(effects={"0.30.0-b": {"linear-mlx-v7-step-cpu-n1000-d10": 0.4}})
    assert result["status"] == "regression" and result["false_regression_cases"] == ["linear-mlx-v7-step-cpu-n1000-d10"]


def test_controls_moving_together_make_the_self_test_inconclusive():
    controls = {f"linear-numpy-v{i}-eager-cpu-n1000-d10": 0.2 for i in range(8)}
    assert self_test(effects={"0.30.0-b": controls})["status"] == "inconclusive"


def test_a_machine_too_noisy_for_the_threshold_is_unfit():
    result = self_test(process_sd=0.15)
    assert result["status"] in ("unfit", "regression") and not result["fit_to_gate"]
    if result["status"] == "unfit":
        assert any("plants at +20%" in reason for reason in result["unfit_reasons"])


def test_a_broken_plant_that_passes_makes_the_self_test_unfit():
    result = self_test(honour_broken=False)
    assert result["status"] == "unfit"
    assert any("broken plant" in reason for reason in result["unfit_reasons"])
    assert len(set(selftest.STATUS_EXIT.values())) == 4


def test_plants_are_spread_over_the_grid_and_leave_most_cases_a_a():
    cases = mixed_cases()
    plants = selftest.choose_plants(cases, 0.10, avoid=set())
    assert len(plants) == sum(selftest.PLANT_MULTIPLES.values())
    assert sorted(set(round(v, 3) for v in plants.values())) == [0.05, 0.075, 0.1, 0.15, 0.2]
    small = selftest.choose_plants(fake_cases(12, 2), 0.10, avoid=set())
    assert len(small) == 4 and 0.2 in small.values()  # a small grid: a third of its MLX cases, 2x among them


# --------------------------------------------------------------------------- the real worker, in-process


def test_real_worker_times_a_suite_case_and_plants_a_slowdown():
    job = {
        "case": {"model": "linear", "backend": "numpy", "variant": "analytic", "barrier": "eager"},
        "size": {"n_examples": 1000, "n_features": 10},
        "steps_per_round": 5,
        "round_time_s": 0.001,
        "plants": {"factor": 1.5},
    }
    requests = [
        {"cmd": "hello"},
        {"cmd": "cases", "sizes": "1000x10", "models": ["linear"]},
        {"cmd": "open", "job": job},
        {"cmd": "round"},
        {"cmd": "check"},
        {"cmd": "round"},  # after the check the case is gone: an error answer, not a crash
        {"cmd": "nonsense"},
    ]
    stdin, stdout = io.StringIO("".join(json.dumps(r) + "\n" for r in requests)), io.StringIO()
    serve(stdin, stdout)
    hello, cases, opened, round_, check, late, nonsense = (json.loads(line) for line in stdout.getvalue().splitlines())
    assert hello["ok"] and set(hello["machine"]) >= {"cpu_model", "cpu_count", "memory_bytes", "host"}
    assert "linear-numpy-analytic-eager-cpu-n1000-d10" in [c["case_id"] for c in cases["cases"]]
    assert opened["steps_per_round"] == 5 and opened["first_step_s"] > 0
    # The plant is multiplicative: half the previous round's work, spent before this round's steps; what it
    # applied is reported against this round's own work (a ratio of two timings: only its sign is certain).
    assert round_["planted"] > 1.0
    assert check["ok"] and check["checks"]["max_rel_error"] < 1e-3
    assert not late["ok"] and "before open" in late["error"]
    assert not nonsense["ok"] and "unknown request" in nonsense["error"]


def test_a_worker_past_its_deadline_is_stopped_and_reported_as_a_timeout(tmp_path):
    cmd = [sys.executable, "-c", "import time; time.sleep(60)"]
    worker = WorkerClient("0.30.0", cmd, tmp_path, {}, None, tmp_path / "w.log")
    with pytest.raises(WorkerTimeout, match="timeout"):
        worker.request({"cmd": "hello"}, timeout=0.5)
    assert not worker.alive


# --------------------------------------------------------------------------- release names and wheels


@pytest.mark.parametrize("name", ["0.30.0/../..", "..", "../0.30.0", "0.30.0/x", "latest", "", "-rf"])
def test_bad_release_names_are_refused(name):
    with pytest.raises(ReleaseError):
        parse_target(name)


def test_clear_envs_with_a_path_deletes_nothing_outside_the_cache(tmp_path, monkeypatch, capsys):
    outer = tmp_path / "outer"
    (outer / "cache" / "mlx-0.30.0").mkdir(parents=True)
    (outer / "sibling").mkdir()
    (outer / "sibling" / "precious.txt").write_text("keep")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        versions.main(["--clear-envs", "0.30.0/../..", "--cache-dir", "outer/cache"])
    assert stop.value.code == versions.EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not an MLX release number" in err
    assert (outer / "sibling" / "precious.txt").read_text() == "keep" and (outer / "cache" / "mlx-0.30.0").is_dir()


def test_clear_envs_takes_derived_environment_names(tmp_path, capsys):
    for name in ("mlx-0.32.4-b", "mlx-0.32.4"):  # environments under way: the suite's owner file, pyvenv.cfg
        (tmp_path / name).mkdir()
        (tmp_path / name / env_ownership.OWNER_NAME).write_text(json.dumps({"suite": env_ownership.SUITE_IDENTITY}))
        (tmp_path / name / "pyvenv.cfg").write_text("home = /usr/bin\n")
    assert versions.main(["--clear-envs", "0.32.4-b", "--cache-dir", str(tmp_path)]) == versions.EXIT_OK
    assert not (tmp_path / "mlx-0.32.4-b").exists() and (tmp_path / "mlx-0.32.4").is_dir()
    for bad in ("0.32.4-b/..", "../0.32.4", ".", "x/../../y"):
        with pytest.raises(SystemExit):
            versions.main(["--clear-envs", bad, "--cache-dir", str(tmp_path)])
    assert (tmp_path / "mlx-0.32.4").is_dir()


def test_cache_paths_never_leave_the_cache(tmp_path):
    cache = versions.EnvCache(tmp_path / "cache")
    assert cache.path("0.30.0") == tmp_path / "cache" / "mlx-0.30.0"
    for key in ("../x", "a/b", ".hidden", "0.30.0/../.."):
        with pytest.raises(ReleaseError):
            cache.path(key)


def test_a_local_wheel_is_labelled_by_version_and_hash(tmp_path):
    wheel = tmp_path / "mlx-0.33.0.dev0-cp311-cp311-linux_x86_64.whl"
    wheel.write_bytes(b"not really a wheel")
    target = parse_target(str(wheel))
    assert target.version == "0.33.0.dev0" and target.label.startswith("0.33.0.dev0+") and len(target.sha256) == 64
    assert target.label.endswith(target.sha256[:12]) and target.spec == f"mlx @ {wheel.resolve().as_uri()}"
    assert parse_target(str(wheel), "cuda12").spec.startswith("mlx[cuda12] @ file://")
    other = tmp_path / "numpy-2.0.0-cp311-cp311-linux_x86_64.whl"
    other.write_bytes(b"x")
    with pytest.raises(ReleaseError, match="not of MLX"):
        parse_target(str(other))
    with pytest.raises(ReleaseError, match="no such wheel"):
        parse_target(str(tmp_path / "mlx-1.0.0-py3-none-any.whl"))


def test_mlx_extras():
    assert mlx_requirement("0.30.0", None, "linux") == "mlx[cpu]==0.30.0"
    assert mlx_requirement("0.30.0", None, "darwin") == "mlx==0.30.0"
    assert mlx_requirement("0.30.0", "cuda13", "linux") == "mlx[cuda13]==0.30.0"
    assert parse_target("0.30.0", "cuda12").key == "0.30.0-cuda12"
    assert twin(parse_target("0.32.4"), "b").key == "0.32.4-b" and twin(parse_target("0.32.4"), "b").version == "0.32.4"


# --------------------------------------------------------------------------- command line, end to end with fakes


def fake_ensure(key, cache, pins, spec=None, version=None):
    if version == "0.99.0":
        raise versions.InstallError("pip install failed: no matching distribution")
    return Path(f"/envs/mlx-{key}/bin/python"), "ready"


def run_main(tmp_path, argv, world):
    args = versions.parse_args([*argv, "--results", str(tmp_path / "results"), "--cache-dir", str(tmp_path / "cache")])
    from bench.versions import dispatch

    return dispatch.paired_main(
        mode_settings(args),
        versions.EnvCache(tmp_path / "cache"),
        versions.PinSet(()),
        start_worker=world.start,
        ensure=fake_ensure,
    )


def test_paired_comparison_writes_verdicts_and_exits_by_them(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(compare, "machine_identity", lambda: dict(MACHINE))
    world = World(effects={"0.32.4": {"linear-mlx-v3-step-cpu-n1000-d10": 0.3}})
    status = run_main(tmp_path, ["0.30.0", "0.32.4", "--fail-on-regression", "--cpus", "none"], world)
    assert status == versions.EXIT_REGRESSION
    document = json.loads((tmp_path / "results" / verdict_files.VERDICTS_JSON).read_text())
    assert document["kind"] == "mlx-sgd-bench-release-verdicts" and document["schema_version"] == 1
    assert record_kind(document) == (document["kind"], None)  # the report reads what the runner writes
    assert document["comparisons"] == [{"older": "0.30.0", "newer": "0.32.4", "status": "ok", "reason": ""}]
    assert document["machine"]["cpu_model"] and document["settings"]["sessions"] == 4
    assert (tmp_path / "results" / verdict_files.VERDICTS_CSV).read_text().startswith("machine,case_id,")
    assert (tmp_path / "results" / "suite" / "bench" / "engine" / "worker.py").exists()
    out = capsys.readouterr().out
    assert "1 regression" in out and "linear-mlx-v3-step-cpu-n1000-d10" in out


def test_self_test_end_to_end_writes_self_test_json(tmp_path, monkeypatch):
    world = World(cases=mixed_cases(60, 4))
    monkeypatch.setattr(compare, "machine_identity", lambda: dict(MACHINE))
    world.machine = dict(MACHINE)
    args = versions.parse_args(
        [
            "--self-test",
            "0.32.4",
            "--results",
            str(tmp_path / "r"),
            "--cache-dir",
            str(tmp_path / "c"),
            "--cpus",
            "none",
        ]
    )
    from bench.versions import dispatch

    status = dispatch.paired_main(
        mode_settings(args),
        versions.EnvCache(tmp_path / "c"),
        versions.PinSet(()),
        start_worker=world.start,
        ensure=fake_ensure,
    )
    document = json.loads((tmp_path / "r" / verdict_files.SELF_TEST_JSON).read_text())
    assert document["kind"] == "mlx-sgd-bench-self-test" and document["release"] == "0.32.4"
    assert record_kind(document) == (document["kind"], None)  # the report reads what the runner writes
    assert document["status"] in selftest.STATUS_EXIT and status == selftest.STATUS_EXIT[document["status"]]
    assert len(document["planted"]) == 18 and document["settings"]["broken"]  # a third of the 56 MLX cases left
    assert document["status"] == "pass", document["summary"]
    assert {
        "false_regressions",
        "calibration",
        "detection_curve",
        "broken_plants",
        "isolation",
        "order",
        "cases",
        "noise_pct_median",
        "min_detectable_pct_median",
        "fit_to_gate",
        "summary",
    } <= set(document)


def bisect_in(world, tmp_path, monkeypatch, case, old, new, available) -> int:
    """Run --bisect of `case` between `old` and `new` against the fake world; its exit status."""
    monkeypatch.setattr(bisect, "machine_identity", lambda: dict(MACHINE))
    monkeypatch.setattr(arguments, "check_cases", lambda args: None)  # the fake world's ids are not the grid's
    argv = ["--bisect", case, old, new, "--results", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c")]
    return bisect.run_bisect(
        mode_settings(versions.parse_args([*argv, "--cpus", "none"])),
        versions.EnvCache(tmp_path / "c"),
        versions.PinSet(()),
        world.start,
        PairedSettings(sessions=4, cpu_sets=[[]]),
        fake_ensure,
        available=available,
    )


def test_bisect_finds_the_first_regressed_release(tmp_path, monkeypatch):
    case = "linear-mlx-v3-step-cpu-n1000-d10"
    slow_from = ["0.31.0", "0.31.1", "0.32.0", "0.32.4"]
    world = World(effects={r: {case: 0.4} for r in slow_from})
    available = ["0.28.0", "0.29.0", "0.29.1", "0.30.0", "0.31.0rc1", "0.31.0", "0.31.1", "0.32.0", "0.32.4", "0.33.0"]
    status = bisect_in(world, tmp_path, monkeypatch, case, "0.29.0", "0.32.4", available)
    assert status == versions.EXIT_OK
    saved = json.loads((tmp_path / "r" / bisect.BISECT_JSON).read_text())
    assert saved["first_regressed"] == "0.31.0" and saved["candidates"][0] == "0.29.1"
    assert len(saved["probes"]) <= 4  # binary search, not every release


def test_bisect_that_cannot_tell_says_why_in_the_verdicts_words(tmp_path, monkeypatch, capsys):
    case, control = "linear-mlx-v3-step-cpu-n1000-d10", "linear-numpy-v0-eager-cpu-n1000-d10"
    # 0.32.4 regressed; in 0.32.0 the NumPy control of the case's group moved, though its code is the same.
    world = World(effects={"0.32.4": {case: 0.4}, "0.32.0": {control: 0.4}})
    status = bisect_in(world, tmp_path, monkeypatch, case, "0.31.0", "0.32.4", ["0.31.0", "0.32.0", "0.32.1", "0.32.4"])
    assert status == bisect.EXIT_INCONCLUSIVE == 4  # the documented exit: measured, cannot tell
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith(f"bisect: cannot tell whether {case} regressed against 0.31.0 in 0.32.0: ")
    assert f"the NumPy control of its model and size moved ({control}" in last and "both sides" not in last


def test_releases_between():
    assert bisect.releases_between(["0.30.0", "0.31.0rc1", "0.31.0", "0.32.4", "garbage"], "0.30.0", "0.32.4") == [
        "0.31.0",
        "0.32.4",
    ]


def test_paired_mode_refuses_pytest_arguments_and_a_single_release(tmp_path):
    with pytest.raises(SystemExit):
        versions.parse_args(["0.30.0", "0.32.4", "--", "-k", "linear"])
    with pytest.raises(SystemExit):
        versions.parse_args(["0.30.0"])


def test_leftover_plants_sit_before_another_case_of_their_group_and_their_successors_are_judged():
    cases = fake_cases(6, 2)
    plants = {cases[2]["case_id"]: 0.3}
    leftovers = selftest.choose_leftovers(cases, set(plants))
    # one group only in the fake grid: one leftover (the other kind needs a second group), never on a plant
    assert list(leftovers.values()) == ["spin"] and cases[2]["case_id"] not in leftovers
    followers = selftest.after_leftovers(cases, leftovers)
    ((left_by, next_case),) = followers.items()
    ids = [c["case_id"] for c in cases]
    assert ids.index(next_case) == ids.index(left_by) + 1
    world = World(cases=cases)
    sides = [SIDES[0], Side("0.30.0-b", Path("/env/b/bin/python"), "0.30.0", slowdown=plants, leave_behind=leftovers)]
    comparison, rows = verdicts.compare_pair(measure(world, sides=sides), "0.30.0", "0.30.0-b", 0.10)
    result = selftest.summarize(comparison, rows, plants, 0.10, leftovers, followers)
    assert [c["next_case"] for c in result["isolation"]] == [next_case]
    assert result["isolation"][0]["verdict"] in ("same", "undecided")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["0.30.0", "0.30.0", "--dry-run"], "at least two different"),
        (["0.30.0", "0.32.4", "--round-time", "nan"], "--round-time must be a positive"),
        (["0.30.0", "0.32.4", "--round-time", "0"], "--round-time must be a positive"),
        (["0.30.0", "0.32.4", "--timeout", "-1"], "--timeout must be a positive"),
        (["0.30.0", "0.32.4", "--cpus", "a;b"], "--cpus 'a;b': 'a' is not a CPU number"),
        (["0.30.0", "0.32.4", "--cases", "zzz-*"], "--cases 'zzz-*' matches no case of the grid quick"),
        (["0.30.0", "0.32.4", "--sizes", "1000x10", "--cases", "*-n5000-*"], "matches no case of the grid 1000x10"),
        (["--bisect", "linear-mlx-nosuch", "0.30.0", "0.32.4"], "--bisect 'linear-mlx-nosuch' is not a case"),
        (["--bisect", "linear-mlx-compiled-step-cpu-b32-n1000-d10", "0.32.4", "0.30.0"], "OLD 0.32.4 must be an older"),
        (["--bisect", "linear-mlx-compiled-step-cpu-b32-n1000-d10", "0.30.0", "0.30.0"], "OLD 0.30.0 must be an older"),
        (["0.30.0", "0.32.4", "--bogus"], "unrecognized arguments: --bogus"),
        (["0.30.0", "0.32.4", "--sessions", "x"], "--sessions: invalid _positive_int value"),
        (["0.30.0", "--cases", "linear-*", "a\x1eb\nc"], "unrecognized arguments: 'a\\x1eb\\nc'"),  # test_properties
    ],
)
def test_bad_runner_arguments_are_one_line_naming_the_option(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        versions.parse_args(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_cases_and_bisect_on_any_device_pass_the_early_check():
    # A GPU case is checked against the grid's ids on every device: this machine's lack of one is the worker's to say.
    args = versions.parse_args(["0.30.0", "0.32.4", "--cases", "linear-mlx-*-gpu-*", "--cases", "mlp-*"])
    assert args.cases == ["linear-mlx-*-gpu-*", "mlp-*"]
    assert versions.parse_args(["--bisect", "logistic-mlx-compiled-step-gpu-b32-n1000-d10", "0.30.0", "0.32.4"]).bisect


def test_the_default_results_folder_is_new_for_each_session(tmp_path, monkeypatch):
    monkeypatch.setattr(arguments, "REPO_ROOT", tmp_path)
    first, second = (mode_settings(versions.parse_args(["0.30.0", "0.32.4"])) for _ in range(2))
    second = replace(second, results=first.results, out=first.results / "report")  # the same second
    assert not first.results.exists()  # parsing alone creates nothing
    (first.results.parent).mkdir(parents=True)
    first, second = (arguments.claim_results(args) for args in (first, second))
    claimed = [first.results, second.results]
    assert claimed[0] != claimed[1] and all(path.is_dir() for path in claimed)
    assert claimed[1].name == claimed[0].name + "-2" and second.out == claimed[1] / "report"
    named = mode_settings(versions.parse_args(["0.30.0", "0.32.4", "--results", str(claimed[0])]))
    assert arguments.claim_results(named).results == claimed[0]  # a folder the user names is theirs to reuse


def test_no_case_is_timed_beside_a_live_worker_of_another_backend_of_its_release():
    # The grid's NumPy controls and MLX cases of one size share a group neighbourhood; the engine's pool keeps
    # both workers alive, so without the paired runner's rule a control would run beside an idle MLX process.
    later = [dict(c, case_id=c["case_id"].replace("-v", "-w"), case=dict(c["case"], variant="w" + c["case"]["variant"]))
             for c in fake_cases(0, 2)]  # fmt: skip
    world = World(cases=fake_cases(4, 4) + later)  # controls, MLX cases, then controls again
    workers = []
    start = world.start

    def watched(side, cpus, session):
        worker = start(side, cpus, session)
        workers.append(worker)
        request = worker.request

        def checked(message, timeout=None):
            if message["cmd"] == "round":
                backend = "numpy" if "-numpy-" in worker.case_id else "mlx"
                others = [w for w in workers if w.alive and w.side.label == side.label and w is not worker
                          and w.case_id and ("-numpy-" in w.case_id) != (backend == "numpy")]  # fmt: skip
                assert not others, f"{worker.case_id} timed beside a live {others[0].case_id} worker"
            return request(message, timeout)

        worker.request = checked
        return worker

    world.start = watched
    data = run_paired(SIDES, world.cases, PairedSettings(sessions=2, cpu_sets=[[]]), world.start, lambda line: None)
    assert all(not s["errors"] for c in data["cases"].values() for s in c["sessions"])
    ended = sum(s.get("ended_other_backend", 0) for c in data["cases"].values() for s in c["sessions"])
    assert ended == 2 * 2 * 2  # per session and release: the NumPy worker before the MLX cases, the MLX one after
