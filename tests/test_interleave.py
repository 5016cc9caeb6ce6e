"""Interleaved passes: the sweeps' order, a worker with several open cases, a schedule that interleaves."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from bench.cases.case import Case
from bench.cases.sizes import Size
from bench.engine.client import WorkerClient, WorkerError
from bench.engine.interleave import neighbourhoods, seeded, sweep_order
from bench.engine.jobs import Job
from bench.engine.passes import Measurement, Schedule
from tests.test_engine import OPTIONS, FakeBenchmark

SIZE = Size(200, 8)


def test_every_round_once_per_sweep_the_backends_taking_turns():
    cases = [("m1", "mlx", 3), ("m2", "mlx", 3), ("m3", "mlx", 2), ("n1", "numpy", 3), ("n2", "numpy", 3)]
    order = sweep_order(cases, random.Random(1))
    assert Counter(order) == {"m1": 3, "m2": 3, "m3": 2, "n1": 3, "n2": 3}
    sweeps = [order[0:5], order[5:10], order[10:14]]
    assert [set(s) for s in sweeps] == [{"m1", "m2", "m3", "n1", "n2"}] * 2 + [{"m1", "m2", "n1", "n2"}]
    backend = {c: b for c, b, _ in cases}
    # MLX leads the first and third sweeps, NumPy the second: each backend's rounds sit next to the other's.
    assert [backend[s[0]] for s in sweeps] == ["mlx", "numpy", "mlx"]
    assert [backend[c] for c in sweeps[1]] == ["numpy", "numpy", "mlx", "mlx", "mlx"]


def test_the_order_within_a_backend_is_random_and_seeded():
    cases = [(f"c{i}", "mlx", 20) for i in range(6)]
    first, again = sweep_order(cases, seeded(2)), sweep_order(cases, seeded(2))
    assert first == again  # a run can be repeated order for order
    sweeps = {tuple(first[i : i + 6]) for i in range(0, len(first), 6)}
    assert len(sweeps) > 10  # not one fixed order repeated
    assert sweep_order(cases, seeded(3)) != first


def test_neighbourhoods_are_one_scenario_model_and_size_in_first_case_order():
    def m(model, backend, n):
        case = Case(model, backend, "analytic", "eager" if backend == "numpy" else "step")
        return Measurement(f"{model}{backend}{n}", None, 4, 3, job=Job(case=case, size=Size(n, 8)))

    ms = [m("linear", "mlx", 100), m("linear", "numpy", 100), m("logistic", "mlx", 100), m("linear", "mlx", 200)]
    ms.append(m("linear", "numpy", 200))
    assert [[x.case_id for x in g] for g in neighbourhoods(ms)] == [
        ["linearmlx100", "linearnumpy100"],
        ["logisticmlx100"],
        ["linearmlx200", "linearnumpy200"],
    ]


def job_of(case: Case, **fields) -> Job:
    return Job(case=case, size=SIZE, steps_per_round=4, rounds=3, first_pass=False, **fields)


def test_a_worker_keeps_several_cases_open_and_times_whichever_is_named():
    eager = Case("linear", "numpy", "analytic", "eager")
    sync = Case("linear", "numpy", "analytic", "sync")
    worker = WorkerClient()
    try:
        worker.request({"cmd": "configure", "options": OPTIONS, "backends": ["numpy"]}, 60)
        first = worker.request({"cmd": "open", "job": job_of(eager).to_json(), "keep_open": True}, 60)
        assert first["steps_per_round"] == 4 and first["probe_s"] > 0
        assert "worker warm-up" in first["phases_s"]  # the process's first trainer is thrown away
        second = worker.request({"cmd": "open", "job": job_of(sync).to_json(), "keep_open": True}, 60)
        assert "worker warm-up" not in second["phases_s"]
        with pytest.raises(WorkerError, match="2 cases open"):
            worker.request({"cmd": "round"}, 60)
        with pytest.raises(WorkerError, match="open already"):
            worker.request({"cmd": "open", "job": job_of(eager).to_json(), "keep_open": True}, 60)
        for case in (sync, eager, sync):
            assert worker.request({"cmd": "round", "case_id": job_of(case).case_id}, 60)["seconds"] > 0
        checked = worker.request({"cmd": "check", "case_id": job_of(sync).case_id, "last_round_s": 1e-3}, 60)
        assert checked["check_s"] >= 0 and "barrier_pending_s" in checked["checks"]
        with pytest.raises(WorkerError, match="is not open"):
            worker.request({"cmd": "round", "case_id": job_of(sync).case_id}, 60)
        assert worker.request({"cmd": "round"}, 60)["seconds"] > 0  # one left open: it needs no name
        # Without keep_open an open closes what was open (the release runner's one case at a time).
        worker.request({"cmd": "open", "job": job_of(sync).to_json()}, 60)
        with pytest.raises(WorkerError, match="is not open"):
            worker.request({"cmd": "round", "case_id": job_of(eager).case_id}, 60)
    finally:
        worker.close()


def measured(schedule: Schedule, case: Case, **fields) -> Measurement:
    first = Job(case=case, size=SIZE, steps_per_round=4, rounds=3)
    result = schedule.run_job(first)
    later = first.later(result.steps_per_round, result.rounds_per_pass, **fields)
    m = Measurement(first.case_id, FakeBenchmark(), result.steps_per_round, result.rounds_per_pass, job=later)
    m.start(result.round_times_s, result.probe_s, result.pid)
    schedule.add(m)
    return m


def test_a_schedule_interleaves_a_neighbourhood_in_one_worker_per_pass_and_a_failure_drops_one_case():
    schedule = Schedule(passes=3, worker_options=OPTIONS, interleave=True)
    good = measured(schedule, Case("linear", "numpy", "analytic", "eager"))
    other = measured(schedule, Case("linear", "numpy", "analytic", "sync"))
    bad = measured(schedule, Case("linear", "numpy", "seed", "eager"))
    # A learning rate that overflows float64 within the check's 3 full-batch steps: the check fails.
    bad.job = Job(case=bad.job.case, size=SIZE, lr=1e200, steps_per_round=4, rounds=3, first_pass=False)
    bad.job = bad.job.later(4, 3, check_correctness=True)
    schedule.run_later_passes()
    schedule.finalize()
    assert len(schedule.failures()) == 1 and bad.case_id in schedule.failures()[0]
    for m in (good, other):
        info = m.benchmark.extra_info
        assert info["passes"] >= 3 and len(info["round_times_s"]) == 3 * info["passes"]  # (a re-measure adds one)
        assert len(m.overhead_s) == info["passes"] - 1  # each later pass's time outside its rounds
    later_pids = [(good.pass_pids[p], other.pass_pids[p]) for p in (2, 3)]
    assert all(a == b for a, b in later_pids)  # both cases of the neighbourhood in one worker per pass...
    assert later_pids[0][0] != later_pids[1][0]  # ...and each pass in a new one
    assert schedule.phase_s["rounds"] > 0 and schedule.phase_s["checks"] >= 0


def test_burst_order_times_each_case_by_itself():
    schedule = Schedule(passes=2, worker_options=OPTIONS)  # the default
    a = measured(schedule, Case("linear", "numpy", "analytic", "eager"))
    b = measured(schedule, Case("linear", "numpy", "analytic", "sync"))
    schedule.run_later_passes()
    schedule.finalize()
    assert schedule.failures() == [] and a.pass_pids[2] == b.pass_pids[2]  # one worker per group, as ever
    assert a.benchmark.extra_info["passes"] >= 2 and b.benchmark.extra_info["passes"] >= 2  # (a re-measure adds one)


def test_each_open_case_runs_in_its_own_environment_only():
    """A one-thread case open beside a two-thread one must not impose its BLAS limit on it (nor keep it after)."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from bench.engine.worker import Worker

    def blas_threads() -> int:
        return max(p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas")

    before = blas_threads()
    if before < 2:
        pytest.skip("one BLAS thread here: nothing to tell apart")
    one = Case("linear", "numpy", "analytic-1thread", "eager")
    many = Case("linear", "numpy", "analytic", "eager")
    worker = Worker()
    try:
        worker.open({"job": job_of(one).to_json(), "keep_open": True})
        assert blas_threads() == 1  # the case just opened is the one entered
        worker.open({"job": job_of(many).to_json(), "keep_open": True})
        assert blas_threads() == before  # built and warmed up outside the open one-thread case's limit
        seen = {}
        for case in (many, one, many):
            worker.round({"case_id": job_of(case).case_id})
            seen.setdefault(case.variant, []).append(blas_threads())
        assert seen == {"analytic": [before, before], "analytic-1thread": [1]}
        worker.check({"case_id": job_of(one).case_id, "last_round_s": 1e-3})  # checked inside its own limit...
        assert blas_threads() == before  # ...which ends with it
        worker.round({"case_id": job_of(many).case_id})
        assert blas_threads() == before
    finally:
        worker._close_all()
    assert blas_threads() == before
