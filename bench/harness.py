"""Runs one case under pytest-benchmark by the measurement rules in the README ("How a case is timed").

Backend-neutral: everything that depends on the library goes through the
case's Backend (bench.backends.base): its trainer, bare loop, memory probe,
thread limits and whether its threads are pinned.

Order of work for a case: build the trainer (data conversion, first eval) ->
time the first call on its own (cold start) -> calibrate K so one round lasts
long enough to time precisely -> time pass 1: R rounds of K steps, each ending
in its barrier -> check the barrier really held -> check correctness against
the float64 reference. Only the rounds are inside the timer. The case then
joins the session's schedule (bench.passes), which times it again in later
passes with the same K, each pass in a freshly built trainer.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from dataclasses import asdict, dataclass, field

from bench import models
from bench.affinity import pinned
from bench.backends import get, make_trainer
from bench.cases import Case
from bench.checks import check_barrier, check_correctness, check_settled
from bench.datasets import Problem, make_problem
from bench.models import BLOG_MODELS
from bench.passes import Measurement, Schedule, mark_used, time_rounds
from bench.schema import describe
from bench.sizes import BLOG_SIZE, Size
from bench.steadiness import probe_seconds
from reference import load_blog_figures, quality

# The blog's run: 10,000 steps, or until training accuracy passes 95% (logistic).
BLOG_STEPS = 10_000
BLOG_STOP_ACCURACY = 0.95
# A round lasting more than LONG_ROUND_FACTOR x --round-time gets LONG_ROUND_ROUNDS rounds per pass.
LONG_ROUND_FACTOR = 3
LONG_ROUND_ROUNDS = 3
# Steps used by the barrier check when timing is disabled (the CI correctness pass).
UNTIMED_CHECK_STEPS = 20
# Steps run under the backend's memory probe, after timing; peaks repeat from the first step on.
MEMORY_STEPS = 2


@dataclass(frozen=True)
class Settings:
    """How hard to measure; set from the command line in conftest.py."""

    rounds: int = 3  # timed rounds per pass (--rounds)
    passes: int = 1  # the session's schedule times each case this many times
    round_time_s: float = 0.02
    steps_per_round: int | None = None  # fixed K; None: calibrate to round_time_s
    lr: float = models.LEARNING_RATE
    overhead_check: bool = True  # bare-loop comparison at the blog's size
    blog_rounds: int = 3
    cold_rounds: int = 5
    serial_cpus: tuple[int, ...] | None = None  # where serial cases run (--cpu-affinity); None: anywhere
    # Where a case queues its later passes; None times every case in one pass (as a unit test does).
    schedule: Schedule | None = field(default=None, compare=False)


def case_cpus(case: Case, settings: Settings) -> tuple[int, ...] | None:
    """The CPUs the case's threads run on (None: every usable CPU), by README "Getting stable numbers"."""
    return settings.serial_cpus if get(case.backend).runs_serially(case) else None


@contextlib.contextmanager
def case_environment(case: Case, cpus: tuple[int, ...] | None):
    """Everything a case runs in (calibration, every pass, the checks): its backend's context and its CPUs."""
    with get(case.backend).case_context(case), pinned(cpus):
        yield


def calibrate(trainer, target_s: float, max_steps: int = 1_000_000) -> int:
    """Smallest K (steps per round) whose round takes about `target_s`; doubles as warm-up.

    A K whose run is far from the target is timed once (a hiccup there only
    slows the approach); a run that would end the search is timed again and
    the faster counts, so one hiccup of a busy machine cannot stop it at a K
    that is far too small.
    """
    steps = 1
    while True:
        elapsed = _timed_run(trainer, steps)
        if elapsed * 8 >= target_s:  # near or past the target: this run decides, so take the better of two
            elapsed = min(elapsed, _timed_run(trainer, steps))
        if elapsed >= target_s or steps >= max_steps:
            return steps
        if elapsed * 8 < target_s:
            steps = min(max_steps, steps * 4)  # far off: approach quickly
        else:
            return max(1, min(max_steps, round(steps * target_s / max(elapsed, 1e-9))))


def _timed_run(trainer, steps: int) -> float:
    start = time.perf_counter()
    trainer.run(steps)
    return time.perf_counter() - start


def blog_figure(case: Case) -> float | None:
    """The blog's published steps/s for this model and backend, if it reported one."""
    for figure in load_blog_figures()["figures"]:
        if (figure["model"], figure["backend"]) == (case.model, case.backend):
            return figure["steps_per_s"]
    return None


def run_case(benchmark, case: Case, problem: Problem, settings: Settings, scenario: str = "grid") -> None:
    """Measure pass 1 of one case, record its extra_info and queue its later passes; raise if a check fails.

    scenario "grid": K is calibrated and rounds continue from each other (steady
    state). Scenario "blog": each round is the blog's whole training run from w0
    (10,000 steps, or until the early-stopping check passes), as it timed it.
    """
    backend = get(case.backend)
    probe_s = probe_seconds() if benchmark.enabled else None  # the machine's speed now, outside the case's limits
    baseline = backend.memory_baseline()
    trainer = make_trainer(case, problem, settings.lr)
    cpus = case_cpus(case, settings)
    with case_environment(case, cpus):
        info, measurement = _measure(benchmark, trainer, case, problem, settings, scenario, probe_s)
        info["peak_memory_bytes"] = backend.peak_memory_bytes(trainer, MEMORY_STEPS, baseline)
        info["blas_threads"] = backend.blas_threads(case)
        info["cpu_affinity"] = cpus
    benchmark.extra_info.update(info)
    if measurement is not None:
        enqueue(measurement, settings)


def enqueue(measurement: Measurement, settings: Settings) -> None:
    """Hand a measured case to the session's schedule (later passes, then its figures); without one, finish it now."""
    if settings.schedule is not None:
        settings.schedule.add(measurement)
        return
    alone = Schedule(passes=1)
    alone.add(measurement)
    alone.finalize()


def _round_plan(trainer, case: Case, settings: Settings, scenario: str, timed: bool) -> dict:
    """Steps per round, rounds per pass, warm-up and what runs before each round, for a scenario."""
    if scenario == "blog":
        stop = BLOG_STOP_ACCURACY if case.barrier == "sync" else None
        return dict(steps=BLOG_STEPS, rounds=settings.blog_rounds, warmup=False, reset=True, stop_accuracy=stop)
    if not timed:
        return dict(steps=UNTIMED_CHECK_STEPS, rounds=settings.rounds, warmup=False, reset=False, stop_accuracy=None)
    steps = settings.steps_per_round or calibrate(trainer, settings.round_time_s)
    # The warm-up round also says how long a round lasts: one far longer than --round-time
    # (a single step of a large problem) is timed precisely enough in fewer rounds per pass.
    warmup_s = _timed_run(trainer, steps)
    rounds = settings.rounds
    if warmup_s > LONG_ROUND_FACTOR * settings.round_time_s:
        rounds = min(rounds, LONG_ROUND_ROUNDS)
    return dict(steps=steps, rounds=rounds, warmup=True, reset=False, stop_accuracy=None)


def _time_pass(trainer, case: Case, plan: dict, warmup: bool, before_round=None) -> tuple[list[float], int]:
    """One pass of timed rounds; returns the round times and the steps each round did."""
    done = []

    def prepare():
        if plan["reset"]:
            trainer.reset()  # the blog's rounds each train from w0
        if before_round is not None:
            before_round()

    if warmup:
        trainer.run(plan["steps"])
    times = time_rounds(lambda: done.append(trainer.run(plan["steps"], plan["stop_accuracy"])), plan["rounds"], prepare)
    if len(set(done)) != 1:
        raise AssertionError(f"{case.id}: rounds did different numbers of steps: {sorted(set(done))}")
    return times, done[-1]


def later_pass_job(case: Case, size: Size, settings: Settings, plan: dict, steps: int) -> dict:
    """What one more pass of the case needs, as JSON: a pass worker (bench.pass_worker) runs it in another process.

    It names the problem (model, size, batch, width), not its arrays: the data are
    rebuilt (bench.datasets' cache) when the pass comes, so a session does not
    hold every case's data until its end, and each pass draws them afresh.
    """
    cpus = case_cpus(case, settings)
    return {
        "case": asdict(case),
        "size": asdict(size),
        "lr": settings.lr,
        "cpus": list(cpus) if cpus is not None else None,
        "plan": dict(plan),
        "steps": steps,
    }


def time_later_pass(job: dict) -> list[float]:
    """Time one more pass of a case (a later_pass_job) in a freshly built trainer, with pass 1's K.

    Runs in this process or in a pass worker alike; raises AssertionError when
    a check fails.
    """
    case, size, plan, steps = Case(**job["case"]), Size(**job["size"]), job["plan"], job["steps"]
    cpus = tuple(job["cpus"]) if job["cpus"] is not None else None
    problem = make_problem(case.model, size, case.batch_size, case.hidden)
    with case_environment(case, cpus):
        trainer = make_trainer(case, problem, job["lr"])
        if not plan["warmup"]:
            trainer.run(1)  # first-call costs (tracing, compilation) stay out of the pass
        times, done = _time_pass(trainer, case, plan, warmup=plan["warmup"])  # the warm-up pays them otherwise
        if done != steps:
            raise AssertionError(f"{case.id}: a later pass did {done} steps per round, pass 1 did {steps}")
        check_settled(trainer, case, done, times[-1])
    return times


def _measure(benchmark, trainer, case: Case, problem: Problem, settings: Settings, scenario: str, probe_s=None):
    """Cold call, calibration, pass 1, then the checks; returns the extra_info fields and the measurement."""
    cold_start_s = _timed_run(trainer, 1)  # first call: tracing, compilation, first-touch page faults
    timed = benchmark.enabled
    plan = _round_plan(trainer, case, settings, scenario, timed)

    # The bare-loop comparison: the blog's models, full batch, at the blog's size.
    # A bare round runs before each timed round of pass 1, outside the timer.
    overhead = (
        timed
        and settings.overhead_check
        and problem.size == BLOG_SIZE
        and scenario == "grid"
        and case.model in BLOG_MODELS
        and not case.batch_size
    )
    bare_times = []
    bare_round_seconds = get(case.backend).bare_round_seconds
    before_round = (lambda: bare_times.append(bare_round_seconds(trainer, plan["steps"]))) if overhead else None
    benchmark.group = f"{case.model}-{problem.size.id}" + ("-blog" if scenario == "blog" else "")
    if timed:
        times, steps = _time_pass(trainer, case, plan, warmup=False, before_round=before_round)  # warmed up by the plan
        # The barrier of the rounds just timed, checked before anything else touches the trainer
        # (check_barrier's own run only where the last round left work pending).
        barrier_pending_s = check_settled(trainer, case, steps, times[-1])
    else:
        trainer.run(plan["steps"])  # untimed (the correctness pass): one round, then the checks
        mark_used(benchmark)
        times, steps = [], plan["steps"]
        barrier_pending_s = check_barrier(trainer, case, steps)

    info = describe(case, problem.size, steps, settings.lr, scenario=scenario)
    info.update(layout=trainer.layout, first_step_s=cold_start_s)
    if scenario == "blog":
        info.update(quality(case.model, problem.X, problem.y, problem.X_test, problem.y_test, trainer.weights()))
        info["blog_steps_per_s"] = blog_figure(case)
        if plan["stop_accuracy"] is not None:
            info["early_stop_steps"] = steps
    if overhead:
        # Pass 1's rounds against the bare rounds interleaved with them.
        info["bare_loop_steps_per_s"] = steps / statistics.median(bare_times)
        info["harness_overhead_ratio"] = statistics.median(times) / statistics.median(bare_times)
    measurement = None
    if timed:
        job = later_pass_job(case, problem.size, settings, plan, steps)
        measurement = Measurement(
            case_id=info["case_id"],
            benchmark=benchmark,
            steps_per_round=steps,
            rounds_per_pass=plan["rounds"],
            time_pass=lambda: time_later_pass(job),
            job=job,
        )
        measurement.start(times, probe_s)
    info["barrier_pending_s"] = barrier_pending_s
    info.update(check_correctness(trainer, case, problem, settings.lr))
    return info, measurement


def run_cold_case(benchmark, case: Case, problem: Problem, settings: Settings) -> None:
    """Time the first step of freshly built trainers (phase "cold"), apart from steady state.

    Each round builds a new trainer (data conversion and first eval stay outside
    the timer) and times its first step: graph tracing, mx.compile, first-touch
    page faults. The process's first round may also include work MLX then
    caches for the whole process (g++ kernels on Linux CPU, kept on disk under
    $TMPDIR/mlx too): it is saved as `first_round_s`.
    """
    trainers = []

    def fresh_trainer():
        trainers.append(make_trainer(case, problem, settings.lr))

    benchmark.group = f"{case.model}-{problem.size.id}-cold"
    with case_environment(case, case_cpus(case, settings)):
        rounds = settings.cold_rounds if benchmark.enabled else 1
        times = time_rounds(lambda: trainers[-1].run(1), rounds, fresh_trainer)
        trainer = trainers[-1]
        info = describe(case, problem.size, 1, settings.lr, scenario="cold", phase="cold")
        info.update(layout=trainer.layout)
        if benchmark.enabled:
            info["first_round_s"] = times[0]
            info["cold_step_s"] = statistics.median(times)
        info.update(check_correctness(trainer, case, problem, settings.lr))
    benchmark.extra_info.update(info)
    mark_used(benchmark)
    if benchmark.enabled:
        # One pass only: each round is already a fresh trainer's first step.
        measurement = Measurement(info["case_id"], benchmark, steps_per_round=1, rounds_per_pass=rounds, time_pass=None)
        measurement.start(times)
        enqueue(measurement, settings)
