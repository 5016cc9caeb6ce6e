"""The measurement engine: jobs, the worker and its client, the isolation policy, a whole schedule in workers."""

from __future__ import annotations

import os
import threading
import time

import pytest

from bench.cases.case import Case
from bench.cases.checks import expected_weights
from bench.cases.datasets import make_problem
from bench.cases.sizes import Size
from bench.engine import isolation, runner
from bench.engine.client import WorkerClient, WorkerError, WorkerTimeout
from bench.engine.defaults import MEMORY_STEPS
from bench.engine.isolation import WorkerPool, leftover_reason, process_state
from bench.engine.jobs import Job, PassResult
from bench.engine.passes import Measurement, Schedule
from bench.engine.plants import Plants
from bench.engine.runner import run_pass
from bench.engine.timing import calibrate_round
from reference import quality

SIZE = Size(200, 8)
CASE = Case("linear", "numpy", "analytic", "eager")
OPTIONS = {"mlx_blas": "bundled"}


def job(steps_per_round=4, rounds=3, case=CASE, size=SIZE, **fields) -> Job:
    return Job(case=case, size=size, steps_per_round=steps_per_round, rounds=rounds, **fields)


def started_worker() -> WorkerClient:
    worker = WorkerClient()
    worker.request({"cmd": "configure", "options": OPTIONS, "backends": ["numpy"]}, 60)
    return worker


class FakeStats:
    def __init__(self, iterations):
        self.iterations = iterations

    def update(self, duration):
        pass


class FakeBenchmark:
    def __init__(self):
        self.extra_info = {"batch_size": 200, "flops_per_step": 100, "bytes_per_step": 40}
        self.has_error, self._mode = False, None

    def _make_stats(self, iterations):
        return FakeStats(iterations)


# --------------------------------------------------------------------------- records


def test_a_job_and_its_result_travel_as_json_unchanged():
    original = job(cpus=(0,), scenario="blog", plants=Plants(1.2, "spin"))
    assert Job.from_json(original.to_json()) == original
    assert original.group == ("blog", "numpy", "linear", SIZE.id)
    later = job(steps_per_round=None).later(17, 2)
    assert (later.steps_per_round, later.rounds, later.first_pass) == (17, 2, False)
    result = PassResult("x", 4, 3, [0.1, 0.2, 0.3], checks={"max_rel_error": 1e-7})
    assert PassResult.from_json(result.to_json()) == result
    with pytest.raises(ValueError, match="unknown scenario"):
        job(scenario="warm")


def test_a_production_job_carries_no_plants_and_a_planted_one_says_which():
    production = job()
    assert "plants" not in production.to_json() and Job.from_json(production.to_json()).plants is None
    assert Plants.of() is None and Plants.of(1.0, None, None) is None  # no plants: no record
    planted = job(plants=Plants.of(1.2, None, "weights"))
    assert planted.to_json()["plants"] == {"factor": 1.2, "leave_behind": None, "broken": "weights"}
    assert planted.later(4, 3).plants == planted.plants  # a later pass keeps its plants
    with pytest.raises(ValueError, match="unknown broken plant"):
        Plants(broken="gradient")
    with pytest.raises(ValueError, match="unknown leftover plant"):
        Plants(leave_behind="files")


def test_a_first_pass_here_calibrates_checks_and_measures():
    result = run_pass(job(steps_per_round=None, round_time_s=0.002))
    assert result.steps_per_round >= 1 and len(result.round_times_s) == 3
    assert result.info["first_step_s"] > 0 and "peak_memory_bytes" in result.info
    assert result.checks["max_rel_error"] < 1e-4 and result.checks["barrier_pending_s"] >= 0
    assert result.pid == os.getpid() and result.probe_s > 0


def test_a_plant_adds_busy_cpu_time_before_the_steps_and_records_what_it_applied(monkeypatch):
    # The plant's extra is this thread's CPU time, spent before the steps (bench.engine.runner.CaseRun._work):
    # (factor - 1) x the previous round's work. Checked on the thread-time clock, not on how long anything took.
    spun = []
    real_thread_time = runner.time.thread_time
    monkeypatch.setattr(runner.time, "thread_time", lambda: spun.append(1) or real_thread_time())
    result = run_pass(job(steps_per_round=None, round_time_s=0.002, plants=Plants(1.5)))
    assert spun  # the busy loop ran on the thread's CPU clock
    assert result.planted is not None and result.planted > 1.0
    assert result.checks["max_rel_error"] < 1e-4  # the plant does no step of its own: the weights are untouched
    unplanted = run_pass(job(steps_per_round=None, round_time_s=0.002))
    assert unplanted.planted is None


@pytest.mark.parametrize(
    "first_pass, steps_per_round, plants, warm_up_runs",
    [
        (True, None, None, []),  # pass 1, K calibrated: the calibration's own runs were the warm-up
        (True, 40, None, [40]),  # pass 1 at a given K: one round of K
        (
            False,
            40,
            None,
            [10],
        ),  # a later pass (a worker's first case too: the worker warmed up itself): a quarter round
        (False, 40, Plants(1.2), [40]),  # planted: its first planted round scales a whole warm-up round
    ],
)
def test_the_warm_up_before_the_timed_rounds(monkeypatch, first_pass, steps_per_round, plants, warm_up_runs):
    runs = []
    real_warm_up = runner.warm_up

    def recording_warm_up(run, steps_each, min_steps, max_s):
        runs.append(steps_each)
        return real_warm_up(run, steps_each, min_steps, max_s)

    monkeypatch.setattr(runner, "warm_up", recording_warm_up)
    result = run_pass(job(steps_per_round=steps_per_round, first_pass=first_pass, plants=plants, round_time_s=0.002))
    assert runs == warm_up_runs and len(result.round_times_s) == 3
    assert result.steps_per_round == (steps_per_round or result.steps_per_round) > 0


def test_a_case_opened_beside_others_warms_up_for_a_whole_round_after_its_calibration(monkeypatch):
    # The release runner's first side calibrates K, the others are given it: each warms up for a round alike.
    runs = []
    monkeypatch.setattr(runner, "warm_up", lambda run, steps_each, min_steps, max_s: runs.append(steps_each) or 0.001)
    opened = runner.CaseRun(job(steps_per_round=None, first_pass=True, round_time_s=0.002))
    opened.close()
    assert runs == [opened.steps_per_round]


def test_the_calibration_says_how_long_its_round_lasts():
    # A step of 1 ms (a sleep): K for a 10 ms round is about 10, and a round of K about 10 ms, by the calibration's runs.
    steps, round_s = calibrate_round(lambda k: time.sleep(0.001 * k), 0.01)
    assert 5 <= steps <= 12 and 0.005 <= round_s <= 0.02
    slow_steps, slow_round_s = calibrate_round(lambda k: time.sleep(0.03 * k), 0.01)  # one step past the round time
    assert slow_steps == 1 and slow_round_s >= 0.03


@pytest.mark.parametrize("barrier, probed_steps", [("eager", None), ("round", MEMORY_STEPS)])
def test_the_first_pass_takes_peak_memory_over_the_check_s_own_steps_but_for_a_round_barrier(
    monkeypatch, barrier, probed_steps
):
    # Each step evaluated: its peak repeats from the first step on, so the check's steps are probed. A
    # round barrier's one lazy graph peaks higher the more steps it holds: MEMORY_STEPS of its own, as before.
    probed = []
    case = Case("linear", "mlx", "analytic", barrier) if barrier == "round" else CASE
    backend = runner.get(case.backend)
    real_probe = type(backend).peak_memory_bytes

    def recording_probe(self, trainer, steps, baseline):
        probed.append(steps)
        return real_probe(self, trainer, steps, baseline)

    monkeypatch.setattr(type(backend), "peak_memory_bytes", recording_probe)
    first = run_pass(job(case=case, first_pass=True))
    assert probed == [probed_steps or first.checks["check_steps"]] and first.info["peak_memory_bytes"] > 0
    later = run_pass(job(case=case, first_pass=False, steps_per_round=first.steps_per_round))
    assert len(probed) == 1 and "peak_memory_bytes" not in later.info  # pass 1 only


def test_a_blog_case_s_quality_is_that_of_its_timed_run_not_of_the_check_s_steps():
    # The checks start again from w0 and run 3 steps: quality taken after them read 58% accuracy for a run
    # that stopped at 95%. It is taken from the weights the last timed round trained.
    blog = job(case=Case("logistic", "numpy", "seed", "sync"), scenario="blog", rounds=1, steps_per_round=None)
    result = run_pass(blog)
    assert result.checks["check_steps"] == 3
    assert result.info["train_accuracy"] >= 0.95 and result.info["early_stop_steps"] == result.steps_per_round > 3


def test_an_untimed_blog_case_s_quality_is_that_of_its_untimed_round_not_of_the_check_s_steps():
    # The other way in (the CI correctness pass): quality from the weights its steps trained, the first step
    # (timed alone in a first pass) and the untimed round of 20 after it, as the float64 reference has them
    # after 21 steps, not after the check's 3 from w0.
    blog = job(case=Case("linear", "numpy", "seed", "eager"), scenario="blog", timed=False)
    result = run_pass(blog)
    problem = make_problem("linear", SIZE)
    after = {
        steps: quality(
            "linear", problem.X, problem.y, problem.X_test, problem.y_test, expected_weights(problem, blog.lr, steps)
        )["test_mse"]
        for steps in (3, 21)
    }
    assert blog.first_pass and result.steps_per_round == 20 and result.checks["check_steps"] == 3
    assert result.info["test_mse"] == pytest.approx(after[21], rel=1e-4)
    assert after[3] != pytest.approx(after[21], rel=1e-2)  # the two differ: the test can tell them apart


def test_an_untimed_job_runs_one_round_and_the_checks():
    result = run_pass(job(timed=False))
    assert result.round_times_s == [] and result.probe_s is None and result.checks["max_rel_error"] < 1e-4


# --------------------------------------------------------------------------- worker and client


def test_a_worker_runs_a_pass_in_another_process_like_this_one():
    with started_worker() as worker:
        assert worker.pid != os.getpid()
        answer = worker.request({"cmd": "pass", "job": job().to_json()}, 60)
    result = PassResult.from_json(answer["result"])
    assert result.pid == worker.pid and len(result.round_times_s) == 3 and result.probe_s > 0
    assert result.worker["served"] == 1 and result.checks["max_rel_error"] < 1e-4


def test_a_check_failing_in_the_worker_comes_back_as_one_line_and_the_worker_goes_on():
    with started_worker() as worker:
        with pytest.raises(WorkerError, match="differ from the float64 reference"):
            worker.request({"cmd": "pass", "job": job(lr=1e30).to_json()}, 60)  # weights blow up: NaN
        assert worker.request({"cmd": "pass", "job": job().to_json()}, 60)["result"]["round_times_s"]


def test_a_bad_option_fails_the_worker_start_with_its_reason():
    with WorkerClient() as worker, pytest.raises(WorkerError, match="--mlx-device"):
        worker.request({"cmd": "configure", "options": {**OPTIONS, "mlx_device": "tpu"}}, 60)


def test_a_dead_worker_is_an_error_not_a_hang():
    worker = started_worker()
    worker.proc.kill()
    worker.proc.wait()
    with pytest.raises(WorkerError, match="worker"):
        worker.request({"cmd": "pass", "job": job().to_json()}, 60)
    assert not worker.alive
    worker.close()


def test_a_hung_worker_is_killed_at_its_timeout():
    worker = started_worker()
    with pytest.raises(WorkerTimeout, match="timeout"):
        worker.request({"cmd": "pass", "job": job(steps_per_round=10_000_000, rounds=1).to_json()}, 0.5)
    assert not worker.alive
    worker.close()


# --------------------------------------------------------------------------- the isolation policy


def test_leftover_rules():
    quiet = {"new_threads": 0, "new_thread_cpu_share": 0.0, "rss_bytes": 100 * 2**20, "threads": 3}
    assert leftover_reason(quiet, quiet) is None
    assert "busy" in leftover_reason(dict(quiet, new_threads=1, new_thread_cpu_share=0.9), quiet)
    assert leftover_reason(dict(quiet, new_threads=1, new_thread_cpu_share=0.0), quiet) is None  # a sleeping thread
    assert "memory grew" in leftover_reason(dict(quiet, rss_bytes=2 * 2**30), quiet)
    assert leftover_reason(dict(quiet, rss_bytes=150 * 2**20), quiet) is None  # a case's own caches
    state = process_state()  # no baseline: every thread counts as the baseline, nothing is waited for
    assert state["new_threads"] == 0 and state["threads"] >= 1
    stop = threading.Event()
    spinner = threading.Thread(target=lambda: [None for _ in iter(stop.is_set, True)], daemon=True)
    baseline = set(isolation.thread_cpu_ticks())
    spinner.start()
    try:
        busy = process_state(baseline)
    finally:
        stop.set()
        spinner.join()
    assert busy["new_threads"] == 1 and busy["new_thread_cpu_share"] > isolation.IDLE_CPU_SHARE


class CountingStarts:
    def __init__(self):
        self.groups = []

    def __call__(self, job):
        self.groups.append(job.group)
        worker = WorkerClient()
        worker.request({"cmd": "configure", "options": OPTIONS, "backends": [job.case.backend]}, 60)
        return worker


def test_one_fresh_worker_per_group_and_leftover_state_replaces_it():
    starts = CountingStarts()
    pool = WorkerPool(starts)
    try:
        first = pool.run(job(), 60)
        again = pool.run(job(case=Case("linear", "numpy", "seed", "eager")), 60)
        assert first.pid == again.pid  # one group: NumPy's linear cases at one size
        other = pool.run(job(size=Size(300, 8)), 60)
        assert other.pid != first.pid and len(starts.groups) == 2  # a new group, a new process
        # A case that leaves a spinning thread behind: the next case of its group gets a fresh worker.
        pool.run(job(plants=Plants(leave_behind="spin")), 60)
        after = pool.run(job(), 60)
        assert "kept" in after.worker["replaced"] and after.pid != other.pid
        pool.run(job(plants=Plants(leave_behind="memory")), 60)
        after = pool.run(job(), 60)
        assert "memory grew" in after.worker["replaced"]
        assert len(pool.replaced) == 2
    finally:
        pool.close()


def test_a_numpy_worker_never_imports_mlx():
    pytest.importorskip("mlx.core")
    pool = WorkerPool(CountingStarts())
    try:
        numpy_result = pool.run(job(), 60)
        mlx_result = pool.run(job(case=Case("linear", "mlx", "autodiff", "step")), 60)
    finally:
        pool.close()
    assert "mlx" not in numpy_result.worker["modules"] and "mlx" in mlx_result.worker["modules"]


# --------------------------------------------------------------------------- a schedule in workers


def measured(schedule: Schedule, case_job: Job) -> Measurement:
    result = schedule.run_job(case_job)
    m = Measurement(
        "linear-numpy", FakeBenchmark(), result.steps_per_round, result.rounds_per_pass, job=case_job.later(4, 3)
    )
    m.start(result.round_times_s, result.probe_s, result.pid)
    schedule.add(m)
    return m


def test_every_pass_runs_in_a_worker_and_each_pass_in_new_processes():
    schedule = Schedule(passes=3, worker_options=OPTIONS)
    portable = measured(schedule, job())
    here = Measurement("dist", FakeBenchmark(), 4, 3, time_pass=lambda: [1e-4] * 3)
    here.start([1e-4] * 3)
    schedule.add(here)
    schedule.run_later_passes()
    schedule.finalize()
    pids = portable.benchmark.extra_info["pass_pids"]
    assert os.getpid() not in pids and len(set(pids)) == len(pids) >= 3  # pass 1 too, each pass its own worker
    assert set(here.benchmark.extra_info["pass_pids"]) == {os.getpid()}  # a data-parallel case stays here
    assert schedule.failures() == []
    probes = portable.benchmark.extra_info["pass_probe_s"]
    assert all(p > 0 for p in probes)
    low, high = (
        portable.benchmark.extra_info["steps_per_s_ci_low"],
        portable.benchmark.extra_info["steps_per_s_ci_high"],
    )
    assert low <= high
    assert any(note.startswith("machine steadiness:") for note in schedule.notes)
    assert schedule.time_spent["worker starts"] > 0 and "pass 2" in schedule.time_spent


def test_a_failure_in_a_worker_drops_that_case_only():
    schedule = Schedule(passes=2, worker_options=OPTIONS)  # burst order; interleaved: tests/test_interleave.py
    bad, good = measured(schedule, job()), measured(schedule, job())
    bad.job = job(lr=1e30).later(4, 3, check_correctness=True)
    schedule.run_later_passes()
    schedule.finalize()
    assert len(schedule.failures()) == 1 and "pass 2" in schedule.failures()[0]
    assert bad.benchmark.has_error and "steps_per_s" in good.benchmark.extra_info


@pytest.mark.parametrize("kind", ["weights", "barrier"])
def test_a_broken_plant_fails_its_check(kind):
    pytest.importorskip("mlx.core")
    case = Case("linear", "mlx", "analytic", "round")
    with pytest.raises(AssertionError, match="float64 reference" if kind == "weights" else "evaluation barrier"):
        run_pass(job(case=case, steps_per_round=200, plants=Plants(broken=kind)))
    run_pass(job(case=case, steps_per_round=200))  # unbroken, the same case passes


def test_the_time_breakdown_accounts_for_the_whole_session_and_says_the_timed_share():
    schedule = Schedule(passes=3)
    schedule.time_spent = {"pass 1": 100.0, "worker starts": 10.0, "pass 2": 50.0, "pass 3": 50.0}
    schedule.phase_s = {"rounds": 60.0, "blog runs": 20.0, "setup": 40.0, "checks": 20.0, "worker warm-up": 15.0}
    schedule.phase_s["leftover checks"] = 5.0
    schedule.phase_s["cold first steps"] = 2.0
    line = schedule.time_breakdown()
    assert "pass 1 100 s, pass 2 50 s, pass 3 50 s" in line and "10 s of it starting" in line
    assert "worker warm-up 15 s, leftover checks 5 s" in line
    assert "the rest 28 s" in line  # 200 s in all - 10 s of worker starts - 162 s inside the passes
    assert line.endswith("timed (rounds, blog runs, cold first steps) 41% of the session")
