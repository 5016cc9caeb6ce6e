"""The loop that times open cases in turns (bench.engine.turns) and the one progress estimate (bench.engine.progress)."""

from __future__ import annotations

import pytest

from bench.engine.errors import WorkerError, WorkerTimeout
from bench.engine.progress import Progress, time_left
from bench.engine.turns import OpenCase, take_turns


class Worker:
    """Answers rounds with 1, 2, 3... seconds; fails the request numbered in `fail_at` (1-based) with `error`."""

    def __init__(self, log: list, name: str, fail_at: int | None = None, error: WorkerError | None = None):
        self.log, self.name, self.fail_at, self.error = log, name, fail_at, error
        self.requests = 0

    def request(self, message: dict, timeout=None) -> dict:
        self.requests += 1
        self.log.append((self.name, message["cmd"], message.get("case_id"), message.get("last_round_s")))
        if self.requests == self.fail_at:
            raise self.error or WorkerError("AssertionError: after 3 steps the weights differ")
        if message["cmd"] == "round":
            return {"seconds": float(self.requests), "planted": 1.2 if self.name == "b" else None}
        return {"checks": {"max_rel_error": 0.0}, "check_s": 0.01}


def opened(**workers) -> dict[str, OpenCase]:
    return {name: OpenCase(worker, 5.0) for name, worker in workers.items()}


def test_rounds_in_the_order_asked_and_each_case_checked_right_after_its_own_last_round():
    log: list = []
    shared = Worker(log, "w")
    cases = {"x": OpenCase(shared, 5.0, "x"), "y": OpenCase(shared, 5.0, "y")}
    finished = []
    asked = take_turns(cases, ["x", "y", "x", "y", "y"], on_finished=finished.append)
    assert asked == 5
    assert [(cmd, case_id) for _, cmd, case_id, _ in log] == [
        ("round", "x"), ("round", "y"), ("round", "x"), ("check", "x"), ("round", "y"), ("round", "y"), ("check", "y"),
    ]  # fmt: skip
    assert log[3][3] == 3.0  # the check names the case's last round
    assert cases["x"].times == [1.0, 3.0] and cases["y"].times == [2.0, 5.0, 6.0]
    assert finished == ["x", "y"] and all(
        c.checked == {"checks": {"max_rel_error": 0.0}, "check_s": 0.01} for c in cases.values()
    )


def test_checks_after_every_round_in_the_cases_order_and_plants_kept():
    log: list = []
    cases = opened(a=Worker(log, "a"), b=Worker(log, "b"))
    take_turns(cases, ["b", "a", "a", "b"], check_right_after=False)
    assert [(name, cmd) for name, cmd, _, _ in log] == [
        ("b", "round"), ("a", "round"), ("a", "round"), ("b", "round"), ("a", "check"), ("b", "check"),
    ]  # fmt: skip
    assert all(case_id is None for _, _, case_id, _ in log)  # one open case per worker: no id sent
    assert cases["b"].planted == [1.2, 1.2] and cases["a"].planted == []


def test_a_failed_round_ends_every_round_when_asked_and_the_others_are_still_checked():
    log: list = []
    cases = opened(a=Worker(log, "a", fail_at=2), b=Worker(log, "b"))
    asked = take_turns(cases, ["a", "b", "a", "b", "a", "b"], check_right_after=False, stop_on_failure=True)
    assert asked == 3
    assert cases["a"].failed[0] == "round" and cases["a"].times == [1.0] and cases["a"].checked is None
    assert cases["b"].failed is None and cases["b"].times == [1.0] and cases["b"].checked is not None
    assert log[-1] == ("b", "check", None, 1.0)


def test_a_failed_round_drops_that_case_only_otherwise():
    log: list = []
    cases = opened(a=Worker(log, "a", fail_at=1), b=Worker(log, "b"))
    finished = []
    assert take_turns(cases, ["a", "b", "a", "b"], on_finished=finished.append) == 3  # a's second turn is not asked
    assert cases["b"].times == [1.0, 2.0] and cases["b"].checked is not None
    assert finished == ["a", "b"]


def test_without_checks_cases_are_closed_and_a_failed_check_is_kept_with_its_step():
    log: list = []
    timeout = WorkerTimeout("timeout: check took over 5 s; worker stopped")
    cases = opened(a=Worker(log, "a"), b=Worker(log, "b", fail_at=2, error=timeout))
    take_turns(cases, ["a", "b"])
    assert cases["b"].failed == ("check", timeout) and cases["a"].failed is None
    log.clear()
    cases = opened(a=Worker(log, "a"))
    assert take_turns(cases, [], check=False) == 0
    assert log == [("a", "close", None, None)] and cases["a"].finished


def test_time_left_at_the_stage_pace_with_whole_stages_after():
    assert time_left(10, 40, 20.0) == (60.0, 60.0)
    assert time_left(10, 40, 20.0, stages_after=2) == (60.0, 60.0 + 2 * 80.0)
    assert time_left(0, 5, 0.0) == (0.0, 0.0)


@pytest.mark.parametrize("every_s, due", [(0.0, [True, True, False]), (3600.0, [False, False, False])])
def test_progress_lines_are_due_at_most_every_interval_and_never_after_the_last_unit(every_s, due):
    stage = Progress(3, every_s)
    assert [stage.step() for _ in range(3)] == due
    assert stage.done == 3
