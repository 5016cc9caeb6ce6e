"""Later passes in worker processes: the protocol, its failures, and the schedule taking each pass in a new process."""

import os

import pytest

from bench import pass_worker
from bench.cases import Case
from bench.harness import Settings, later_pass_job, time_later_pass
from bench.pass_worker import PassWorker, WorkerError
from bench.passes import Measurement, Schedule
from bench.sizes import Size

SIZE = Size(200, 8)
CASE = Case("linear", "numpy", "analytic", "eager")
OPTIONS = {"mlx_blas": "bundled"}


def job(steps=4, rounds=3, case=CASE, expected_steps=None):
    plan = dict(steps=steps, rounds=rounds, warmup=True, reset=False, stop_accuracy=None)
    return later_pass_job(case, SIZE, Settings(), plan, expected_steps or steps)


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


def test_a_worker_times_a_pass_in_another_process_like_this_one():
    with PassWorker(OPTIONS) as worker:
        assert worker.pid != os.getpid()
        times, probe_s = worker.time(job(), expected_s=0.01)
    assert len(times) == 3 and all(t > 0 for t in times) and probe_s > 0
    assert len(time_later_pass(job())) == 3  # the same job, run here


def test_a_check_failing_in_the_worker_comes_back_as_one_line():
    with PassWorker(OPTIONS) as worker:
        with pytest.raises(WorkerError, match="a later pass did 4 steps per round, pass 1 did 9"):
            worker.time(job(expected_steps=9), expected_s=0.01)
        assert len(worker.time(job(), expected_s=0.01)[0]) == 3  # and it goes on serving


def test_a_bad_option_fails_the_worker_start_with_its_reason():
    with pytest.raises(WorkerError, match="--mlx-device"):
        PassWorker({**OPTIONS, "mlx_device": "tpu"})


def test_a_dead_worker_is_an_error_not_a_hang():
    worker = PassWorker(OPTIONS)
    worker.process.kill()
    worker.process.wait()
    with pytest.raises(WorkerError, match="pass worker"):
        worker.time(job(), expected_s=0.01)
    assert not worker.alive
    worker.close()


def test_a_hung_worker_is_killed_at_its_timeout(monkeypatch):
    monkeypatch.setattr(pass_worker, "PASS_TIMEOUT_FLOOR_S", 0.5)
    worker = PassWorker(OPTIONS)
    with pytest.raises(WorkerError, match="did not answer within"):
        worker.time(job(steps=10_000_000, rounds=1), expected_s=0.0)  # minutes of steps
    assert not worker.alive
    worker.close()


def measured(case_job, k=4):
    m = Measurement("linear-numpy", FakeBenchmark(), steps_per_round=k, rounds_per_pass=3, time_pass=None, job=case_job)
    m.time_pass = lambda: time_later_pass(case_job)
    m.start([1e-4] * 3)
    return m


def test_each_later_pass_runs_in_a_new_worker_process():
    schedule = Schedule(passes=3, worker_options=OPTIONS)
    portable, here = measured(job()), measured(job())
    here.job = None  # a case that must stay in this process (a data-parallel case's ranks)
    schedule.add(portable)
    schedule.add(here)
    schedule.run_later_passes()
    schedule.finalize()
    pids = portable.benchmark.extra_info["pass_pids"]
    assert pids[0] == os.getpid() and os.getpid() not in pids[1:3] and pids[1] != pids[2]
    assert here.benchmark.extra_info["pass_pids"][:3] == [os.getpid()] * 3
    assert schedule.failures() == []
    # the machine's probe was timed before each later pass, in whichever process took it
    for m in (portable, here):
        probes = m.benchmark.extra_info["pass_probe_s"]
        assert probes[0] is None and all(p > 0 for p in probes[1:3])
    steadiness = schedule.steadiness()
    assert steadiness["probes"] >= 4 and steadiness["p10_s"] <= steadiness["median_s"] <= steadiness["p90_s"]
    assert any(note.startswith("machine steadiness:") for note in schedule.notes)


def test_a_failure_in_a_worker_drops_that_case_only():
    schedule = Schedule(passes=2, worker_options=OPTIONS)
    bad, good = measured(job(expected_steps=9), k=9), measured(job())
    schedule.add(bad)
    schedule.add(good)
    schedule.run_later_passes()
    schedule.finalize()
    assert schedule.failures() == [
        "linear-numpy: pass 2: numpy-analytic-eager-cpu: a later pass did 4 steps per round, pass 1 did 9"
    ]
    assert bad.benchmark.has_error and "steps_per_s" in good.benchmark.extra_info
