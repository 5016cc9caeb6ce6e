"""Rounds of several open cases taken in turns: the one loop that times cases held open in workers.

Two designs hold several cases open in workers at once and ask for their rounds in an
order that spreads each case over the same window: an interleaved pass of the main job
(bench.engine.interleave: a model and size's cases, in sweeps) and a paired session of the
release runner (bench.versions.paired: one case in every release's worker, in blocks of one
round each in a random order). Both drive the worker protocol alike (bench.engine.worker:
`open`, then `round`, then `check` or `close`); this module is that loop, written once. The
designs differ only in the order they ask for, when a case is checked (right after its own
last round, before its worker runs anything else; or once every round is done), and whether
one failure ends the rounds of all (a release comparison cannot use a case that one release
failed).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.engine.errors import WorkerError


@dataclass
class OpenCase:
    """A case open in a worker, and what its rounds and checks gave.

    case_id: the id the worker knows the case by where it holds several open (None: its only one).
    failed: the error of the request that failed and the step it failed in ("round" or "check").
    """

    worker: object
    timeout_s: float | None
    case_id: str | None = None
    times: list[float] = field(default_factory=list)
    planted: list[float] = field(default_factory=list)
    checked: dict | None = None  # the worker's answer to `check` (or `close`)
    check_s: float = 0.0  # seconds the check took, as the main process saw it
    failed: tuple[str, WorkerError] | None = None
    finished: bool = False

    def request(self, message: dict) -> dict:
        if self.case_id is not None:
            message = {**message, "case_id": self.case_id}
        return self.worker.request(message, self.timeout_s)


def take_turns(
    cases: dict[str, OpenCase],
    order: list[str],
    check: bool = True,
    check_right_after: bool = True,
    stop_on_failure: bool = False,
    on_finished: Callable[[str], None] = lambda key: None,
) -> int:
    """Ask for one round of each key of `order` in turn, then check (or, with check False, close) every case.

    check_right_after: a case is checked right after its own last round in `order` (work a
    round left pending must still be pending when the check looks); otherwise every case is
    checked once all rounds are done, in the order of `cases`. stop_on_failure: a failed
    round ends the rounds of every case (the others are still checked). A case whose request
    fails keeps its error in `failed` and takes no more turns. on_finished(key) is called
    once per case when it is checked or has failed. Returns how many rounds were asked for.
    """
    left = {key: order.count(key) for key in cases}
    asked = 0
    for key in order:
        case = cases[key]
        if case.finished:
            continue
        asked += 1
        try:
            answer = case.request({"cmd": "round"})
        except WorkerError as error:
            _fail(case, "round", error, key, on_finished)
            if stop_on_failure:
                break
            continue
        case.times.append(answer["seconds"])
        if answer.get("planted") is not None:
            case.planted.append(answer["planted"])
        left[key] -= 1
        if check_right_after and left[key] == 0:
            _finish(case, check, key, on_finished)
    for key, case in cases.items():
        if not case.finished:
            _finish(case, check, key, on_finished)
    return asked


def _finish(case: OpenCase, check: bool, key: str, on_finished: Callable[[str], None]) -> None:
    """The case's check after its last round (or its close, without checks)."""
    started = time.perf_counter()
    message = {"cmd": "check", "last_round_s": case.times[-1] if case.times else None} if check else {"cmd": "close"}
    try:
        case.checked = case.request(message)
    except WorkerError as error:
        case.failed = ("check", error)
    case.check_s = time.perf_counter() - started
    case.finished = True
    on_finished(key)


def _fail(case: OpenCase, step: str, error: WorkerError, key: str, on_finished: Callable[[str], None]) -> None:
    case.failed = (step, error)
    case.finished = True
    on_finished(key)
