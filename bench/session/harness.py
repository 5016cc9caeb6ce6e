"""A case's test: plan its first pass as a job, have the engine run it, record what came back.

The pytest process plans, collects, checks and records; it times nothing
itself. A case's first pass is a job (bench.engine.jobs.Job) run in a worker
process under the engine's isolation policy (bench.engine.isolation): the
worker builds the trainer, times the first step, calibrates K, times the
rounds, checks the barrier and correctness, and measures memory
(bench.engine.runner). The case then joins the session's schedule
(bench.engine.passes), which has it timed again in later passes with the same K.
Untimed (the CI correctness pass, `--benchmark-disable`), the job runs here:
the same code, one round and the checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.backends import get
from bench.cases import models
from bench.cases.case import Case
from bench.cases.sizes import Size
from bench.engine import defaults
from bench.engine.jobs import Job, PassResult
from bench.engine.passes import Measurement, Schedule
from bench.engine.runner import run_pass, wants_overhead_check
from bench.results.extra_info import describe
from bench.session.benchmark_adapter import mark_used
from reference import load_blog_figures


@dataclass(frozen=True)
class Settings:
    """How hard to measure; set from the command line by bench.session.options (defaults: bench.engine.defaults)."""

    rounds: int = defaults.ROUNDS_PER_PASS  # timed rounds per pass (--rounds)
    passes: int = 1  # the session's schedule times each case this many times (--passes sets it)
    round_time_s: float = defaults.ROUND_TIME_S
    steps_per_round: int | None = None  # fixed K; None: calibrate to round_time_s
    lr: float = models.LEARNING_RATE
    overhead_check: bool = True  # bare-loop comparison at the blog's size
    blog_rounds: int = defaults.BLOG_ROUNDS
    cold_rounds: int = defaults.COLD_ROUNDS
    serial_cpus: tuple[int, ...] | None = None  # where serial cases run (--cpu-affinity); None: anywhere
    # Where a case queues its later passes and which workers run its jobs; None times every
    # case in one pass, in this process (as a unit test does).
    schedule: Schedule | None = field(default=None, compare=False)


def case_cpus(case: Case, settings: Settings) -> tuple[int, ...] | None:
    """The CPUs the case's threads run on (None: every usable CPU), by docs/stable-numbers.md, "Getting stable numbers"."""
    return settings.serial_cpus if get(case.backend).runs_serially(case) else None


def first_pass_job(case: Case, size: Size, settings: Settings, scenario: str, timed: bool) -> Job:
    """The job of a case's first pass in this session's settings."""
    rounds = {"blog": settings.blog_rounds, "cold": settings.cold_rounds}.get(scenario, settings.rounds)
    return Job(
        case=case,
        size=size,
        lr=settings.lr,
        scenario=scenario,
        steps_per_round=settings.steps_per_round if scenario == "grid" else None,
        round_time_s=settings.round_time_s,
        rounds=rounds,
        cpus=case_cpus(case, settings),
        first_pass=True,
        timed=timed,
        overhead_check=timed and settings.overhead_check and wants_overhead_check(case, size, scenario),
    )


def blog_figure(case: Case) -> float | None:
    """The blog's published steps/s for this model and backend, if it reported one."""
    for figure in load_blog_figures()["figures"]:
        if (figure["model"], figure["backend"]) == (case.model, case.backend):
            return figure["steps_per_s"]
    return None


def execute(job: Job, settings: Settings) -> PassResult:
    """Run a job: timed, in the session's workers; untimed or without a schedule, here."""
    if job.timed and settings.schedule is not None:
        return settings.schedule.run_job(job)
    return run_pass(job)


def run_case(benchmark, case: Case, size: Size, settings: Settings, scenario: str = "grid") -> None:
    """Measure pass 1 of one case, record its extra_info and queue its later passes; raise if a check fails.

    scenario "grid": K is calibrated and rounds continue from each other (steady
    state). "blog": each round is the blog's whole training run from w0
    (10,000 steps, or until the early-stopping check passes), as it timed it.
    "cold": each round times the first step of a freshly built trainer.
    """
    timed = benchmark.enabled
    job = first_pass_job(case, size, settings, scenario, timed)
    benchmark.group = f"{case.model}-{size.id}" + (f"-{scenario}" if scenario != "grid" else "")
    result = execute(job, settings)
    phase = "cold" if scenario == "cold" else "warm"
    info = describe(case, size, result.steps_per_round, settings.lr, scenario=scenario, phase=phase)
    info.update(result.info)
    info.update(result.checks)
    info["cpu_affinity"] = list(job.cpus) if job.cpus is not None else None
    if scenario == "blog":
        info["blog_steps_per_s"] = blog_figure(case)
    benchmark.extra_info.update(info)
    if not timed:
        mark_used(benchmark)
        return
    # A cold case is one pass: each of its rounds is already a fresh trainer's first step.
    later = None if scenario == "cold" else job.later(result.steps_per_round, result.rounds_per_pass)
    measurement = Measurement(
        case_id=info["case_id"],
        benchmark=benchmark,
        steps_per_round=result.steps_per_round,
        rounds_per_pass=result.rounds_per_pass,
        job=later,
    )
    measurement.start(result.round_times_s, result.probe_s, result.pid)
    enqueue(measurement, settings)


def enqueue(measurement: Measurement, settings: Settings) -> None:
    """Hand a measured case to the session's schedule (later passes, then its figures); without one, finish it now."""
    if settings.schedule is not None:
        settings.schedule.add(measurement)
        return
    alone = Schedule(passes=1)
    alone.add(measurement)
    alone.finalize()
