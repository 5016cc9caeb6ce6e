"""An interleaved pass: the rounds of one model and size's cases, taken in random order over their window.

Timed in one burst, a case's rounds of a pass share one moment of the machine:
a neighbour that slows one case by 40% for a second lands on all of its rounds
or none, and the rounds agree with each other while the pass is off. In an
interleaved pass (docs/measurement.md, "How a case is timed") every case of a
neighbourhood (one scenario, model and size: the cases compared with each other,
MLX's variants and NumPy's beside them) is opened in its backend's worker
first, each warmed up as in any pass; then the rounds go in sweeps, one round of
every case per sweep, the backends' workers taking turns sweep by sweep and each
worker's cases in a new random order every sweep. So a case's rounds are spread
over the whole window instead of one burst, and an MLX case and its NumPy
baseline are timed in the same window, close in time, in every pass.

It is an option (`--pass-order interleaved`); the default stays each case's
rounds in one burst, because on the 2-core AMD EPYC VM where it was measured it moved variance into
the rounds without making the figures more precise or more reproducible
(docs/measurement.md, "How a case is timed", step 8).

A case is checked (barrier, then correctness where asked) right after its own
last round, before any other round runs in its process: work a round left
pending must still be pending when the check looks. Workers stay backend-pure
and each case keeps its own trainer; a case that fails is dropped with its
reason, as in any pass. The loop that asks for the rounds and the checks is
bench.engine.turns, the one the release runner's paired sessions use.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from bench.engine.turns import OpenCase, take_turns

SEED = 20261207  # the sweeps' random orders are seeded, so a run can be repeated order for order


def sweep_order(cases: list[tuple[str, str, int]], rng: random.Random) -> list[str]:
    """The order of every round of a neighbourhood: case ids, each as often as its rounds.

    cases: (case id, backend, rounds) in the order of pass 1. Sweep s holds one round of
    every case with more than s rounds; its backends take turns (the first backend leads in
    even sweeps, the next in odd ones), each backend's cases shuffled anew.
    """
    backends = list(dict.fromkeys(backend for _, backend, _ in cases))
    order: list[str] = []
    for sweep in range(max((rounds for _, _, rounds in cases), default=0)):
        shift = sweep % len(backends)
        for backend in backends[shift:] + backends[:shift]:
            mine = [case_id for case_id, b, rounds in cases if b == backend and rounds > sweep]
            rng.shuffle(mine)
            order += mine
    return order


def neighbourhoods(measurements: list) -> list[list]:
    """The measurements grouped by their job's scenario, model and size, in the order of their first case."""
    groups: dict[tuple, list] = {}
    for measurement in measurements:
        _, _, model, size = measurement.job.group
        groups.setdefault((measurement.job.scenario, model, size), []).append(measurement)
    return list(groups.values())


def interleaved_pass(
    schedule,
    measurements: list,
    pass_id: int,
    timeout_of: Callable[[object], float],
    rng: random.Random,
    on_case: Callable[[object], None] = lambda measurement: None,
) -> None:
    """Time one more pass of every measurement (each with a job) of one neighbourhood, interleaved.

    schedule: the session's bench.engine.passes.Schedule (its worker pool and time accounts);
    timeout_of(measurement): the deadline of one request for that case; on_case: called
    once per measurement when its pass is done (or failed).
    """
    pool = schedule.worker_pool()
    opened: dict[str, OpenCase] = {}  # by the id the worker knows the case by (its job's)
    of: dict[str, tuple] = {}  # the same ids: (measurement, the worker's answer to open)
    for measurement in measurements:
        try:  # the case's later-pass job: its K and rounds, a fresh trainer warmed up by one round
            worker, answer = pool.open(measurement.job, timeout_of(measurement), keep_open=True)
        except Exception as error:  # noqa: BLE001 - a case that cannot open is dropped with its reason
            _fail(measurement, pass_id, error)
            on_case(measurement)
            continue
        case_id = measurement.job.case_id
        schedule.add_phases(answer.get("phases_s") or {})
        opened[case_id] = OpenCase(worker, timeout_of(measurement), case_id)
        of[case_id] = (measurement, answer)
    plan = sweep_order(
        [(case_id, of[case_id][0].job.case.backend, of[case_id][0].job.rounds) for case_id in opened], rng
    )

    def finished(case_id: str) -> None:
        measurement, answer = of[case_id]
        case = opened[case_id]
        if case.failed is not None:
            _fail(measurement, pass_id, case.failed[1])
        else:
            check_s = (case.checked or {}).get("check_s", 0.0)
            schedule.add_phases({"checks": check_s})
            measurement.add_pass(pass_id, case.times, answer.get("pid"), answer.get("probe_s"))
        on_case(measurement)

    # Each case is checked right after its own last round, before any other round runs in its process.
    take_turns(opened, plan, check=True, check_right_after=True, on_finished=finished)
    schedule.add_phases({"rounds": sum(sum(case.times) for case in opened.values())})


def _fail(measurement, pass_id: int, error: BaseException) -> None:
    measurement.failure = f"pass {pass_id}: {error}"
    measurement.benchmark.has_error = True  # a case that fails a check is not saved


def seeded(pass_id: int) -> random.Random:
    """The random orders of one pass: the same for every run of the same grid."""
    return random.Random(SEED * 1_000 + pass_id)
