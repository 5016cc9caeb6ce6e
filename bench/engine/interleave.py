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
reason, as in any pass.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from bench.engine.errors import WorkerError

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
    opened: dict[str, dict] = {}  # by the id the worker knows the case by (its job's)
    for measurement in measurements:
        try:  # the case's later-pass job: its K and rounds, a fresh trainer warmed up by one round
            worker, answer = pool.open(measurement.job, timeout_of(measurement), keep_open=True)
        except Exception as error:  # noqa: BLE001 - a case that cannot open is dropped with its reason
            _fail(measurement, pass_id, error)
            on_case(measurement)
            continue
        schedule.add_phases(answer.get("phases_s") or {})
        opened[measurement.job.case_id] = {
            "measurement": measurement,
            "worker": worker,
            "answer": answer,
            "times": [],
            "overhead_s": sum((answer.get("phases_s") or {}).values()),
        }
    plan = sweep_order(
        [(case_id, entry["measurement"].job.case.backend, entry["measurement"].job.rounds)
         for case_id, entry in opened.items()],
        rng,
    )  # fmt: skip
    left = {case_id: plan.count(case_id) for case_id in opened}
    for case_id in plan:
        entry = opened[case_id]
        if entry.get("done"):
            continue  # failed earlier in this pass
        measurement, worker = entry["measurement"], entry["worker"]
        try:
            answer = worker.request({"cmd": "round", "case_id": case_id}, timeout_of(measurement))
            entry["times"].append(answer["seconds"])
            left[case_id] -= 1
            if left[case_id] == 0:  # its last round: the checks now, before any other round in its process
                checked = worker.request(
                    {"cmd": "check", "case_id": case_id, "last_round_s": entry["times"][-1]}, timeout_of(measurement)
                )
                schedule.add_phases({"checks": checked.get("check_s", 0.0)})
                entry["overhead_s"] += checked.get("check_s", 0.0)
                _finish(entry, pass_id)
                on_case(measurement)
        except WorkerError as error:
            entry["done"] = True
            _fail(measurement, pass_id, error)
            on_case(measurement)
    schedule.add_phases({"rounds": sum(sum(entry["times"]) for entry in opened.values())})


def _finish(entry: dict, pass_id: int) -> None:
    entry["done"] = True
    answer, measurement = entry["answer"], entry["measurement"]
    measurement.add_pass(pass_id, entry["times"], answer.get("pid"), answer.get("probe_s"))
    measurement.overhead_s.append(entry["overhead_s"])


def _fail(measurement, pass_id: int, error: BaseException) -> None:
    measurement.failure = f"pass {pass_id}: {error}"
    measurement.benchmark.has_error = True  # a case that fails a check is not saved


def seeded(pass_id: int) -> random.Random:
    """The random orders of one pass: the same for every run of the same grid."""
    return random.Random(SEED * 1_000 + pass_id)
