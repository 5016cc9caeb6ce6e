"""Runs one case under pytest-benchmark by the measurement rules of DESIGN.md.

Order of work for a case: build the trainer (data conversion, first eval) ->
time the first call on its own (cold start) -> calibrate K so one round lasts
long enough to time precisely -> time R rounds of K steps, each ending in its
barrier -> check the barrier really held -> check correctness against the
float64 reference. Only the rounds are inside the timer.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from bench import models
from bench.backends import make_trainer, thread_limits
from bench.cases import Case
from bench.checks import check_barrier, check_correctness
from bench.datasets import Problem
from bench.environment import blas_threads
from bench.models import BLOG_MODELS
from bench.memory import mlx_baseline_bytes, peak_memory_bytes
from bench.overhead import bare_round_seconds
from bench.sizes import BLOG_SIZE
from reference import load_blog_figures, quality

# The blog's run: 10,000 steps, or until training accuracy passes 95% (logistic).
BLOG_STEPS = 10_000
BLOG_STOP_ACCURACY = 0.95
# Steps used by the barrier check when timing is disabled (the CI correctness pass).
UNTIMED_CHECK_STEPS = 20


@dataclass(frozen=True)
class Settings:
    """How hard to measure; set from the command line in conftest.py."""

    rounds: int = 15
    round_time_s: float = 0.02
    steps_per_round: int | None = None  # fixed K; None: calibrate to round_time_s
    lr: float = models.LEARNING_RATE
    overhead_check: bool = True  # bare-loop comparison at the blog's size
    blog_rounds: int = 3
    cold_rounds: int = 5


def calibrate(trainer, target_s: float, max_steps: int = 1_000_000) -> int:
    """Smallest K (steps per round) whose round takes about `target_s`; doubles as warm-up.

    Each K is timed twice and the faster run counts, so one hiccup of a busy
    machine cannot stop the search at a K that is far too small.
    """
    steps = 1
    while True:
        elapsed = min(_timed_run(trainer, steps) for _ in range(2))
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


def describe(case: Case, problem: Problem, steps_per_round: int, lr: float) -> dict:
    """The result-schema fields of DESIGN.md that do not depend on timing."""
    n, d = problem.n_examples, problem.n_features
    b, h, barrier = case.batch_rows(problem.size), case.hidden or 0, case.barrier
    return {
        "case_id": case.case_id(problem.size),
        "model": case.model,
        "backend": case.backend,
        "variant": case.variant,
        "device": case.device,
        "dtype": case.dtype.name,
        "barrier": case.barrier,
        "n_examples": n,
        "n_features": d,
        "batch_size": b,  # examples per step; n_examples for full-batch gradient descent
        "hidden": case.hidden,
        "learning_rate": lr,
        "steps_per_round": steps_per_round,
        "flops_per_step": models.flops_per_step(case.model, b, d, barrier, hidden=h),
        "bytes_per_step": models.bytes_per_step(
            case.model, b, d, case.dtype.itemsize, barrier, hidden=h, gathered=case.batch_size is not None
        ),
        "phase": "warm",
        "scenario": "grid",
    }


def throughput(info: dict, round_median_s: float) -> dict:
    """steps/s, samples/s, GFLOP/s and GB/s from a median round time."""
    steps_per_s = info["steps_per_round"] / round_median_s
    return {
        "steps_per_s": steps_per_s,
        "samples_per_s": steps_per_s * info["batch_size"],
        "gflops_per_s": steps_per_s * info["flops_per_step"] / 1e9,
        "gb_per_s": steps_per_s * info["bytes_per_step"] / 1e9,
    }


def blog_figure(case: Case) -> float | None:
    """The blog's published steps/s for this model and backend, if it reported one."""
    for figure in load_blog_figures()["figures"]:
        if (figure["model"], figure["backend"]) == (case.model, case.backend):
            return figure["steps_per_s"]
    return None


def run_case(benchmark, case: Case, problem: Problem, settings: Settings, scenario: str = "grid") -> None:
    """Measure one case and record its extra_info; raise if a check fails.

    scenario "grid": K is calibrated and rounds continue from each other (steady
    state). Scenario "blog": each round is the blog's whole training run from w0
    (10,000 steps, or until the early-stopping check passes), as it timed it.
    """
    baseline = mlx_baseline_bytes() if case.backend == "mlx" else 0
    trainer = make_trainer(case, problem, settings.lr)
    with thread_limits(case):
        info = _measure(benchmark, trainer, case, problem, settings, scenario)
        info["peak_memory_bytes"] = peak_memory_bytes(trainer, case.backend, baseline)
        info["blas_threads"] = blas_threads(case.backend)
    benchmark.extra_info.update(info)


def _measure(benchmark, trainer, case: Case, problem: Problem, settings: Settings, scenario: str) -> dict:
    """Cold call, calibration, timed rounds, then the checks; returns the extra_info fields."""
    cold_start_s = _timed_run(trainer, 1)  # first call: tracing, compilation, first-touch page faults
    timed = benchmark.enabled
    if scenario == "blog":
        steps, rounds, warmup, before_round = BLOG_STEPS, settings.blog_rounds, 0, trainer.reset
        stop_accuracy = BLOG_STOP_ACCURACY if case.barrier == "sync" else None
    else:
        if not timed:
            steps = UNTIMED_CHECK_STEPS
        elif settings.steps_per_round:
            steps = settings.steps_per_round
            trainer.run(steps)  # warm-up, as calibration would have been
        else:
            steps = calibrate(trainer, settings.round_time_s)
        rounds, warmup, before_round, stop_accuracy = settings.rounds, 1, None, None

    # The bare-loop comparison: the blog's models, full batch, at the blog's size.
    # A bare round runs before each timed round, in pytest-benchmark's untimed setup.
    overhead = (
        timed
        and settings.overhead_check
        and problem.size == BLOG_SIZE
        and scenario == "grid"
        and case.model in BLOG_MODELS
        and not case.batch_size
    )
    bare_times = []
    if overhead:

        def before_round():
            bare_times.append(bare_round_seconds(trainer, steps))

    done = []

    def one_round():
        done.append(trainer.run(steps, stop_accuracy))

    benchmark.group = f"{case.model}-{problem.size.id}" + ("-blog" if scenario == "blog" else "")
    benchmark.pedantic(one_round, setup=before_round, rounds=rounds, warmup_rounds=warmup, iterations=1)
    if len(set(done)) != 1:
        raise AssertionError(f"{case.id}: rounds did different numbers of steps: {sorted(set(done))}")

    info = describe(case, problem, done[-1], settings.lr)
    info.update(layout=trainer.layout, first_step_s=cold_start_s, scenario=scenario)
    if scenario == "blog":
        info.update(quality(case.model, problem.X, problem.y, problem.X_test, problem.y_test, trainer.weights()))
        info["blog_steps_per_s"] = blog_figure(case)
        if stop_accuracy is not None:
            info["early_stop_steps"] = done[-1]
    if timed:
        median = benchmark.stats.stats.median
        info.update(throughput(info, median))
    if overhead:
        bare = statistics.median(bare_times[-rounds:])  # the warm-up round's bare round is left out
        info["bare_loop_steps_per_s"] = steps / bare
        info["harness_overhead_ratio"] = median / bare
    info["barrier_pending_s"] = check_barrier(trainer, case, done[-1])
    info.update(check_correctness(trainer, case, problem, settings.lr))
    return info


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
        return (trainers[-1],), {}

    benchmark.group = f"{case.model}-{problem.size.id}-cold"
    with thread_limits(case):
        benchmark.pedantic(lambda trainer: trainer.run(1), setup=fresh_trainer, rounds=settings.cold_rounds)
        trainer = trainers[-1]
        info = describe(case, problem, 1, settings.lr)
        info.update(phase="cold", scenario="cold", layout=trainer.layout)
        if benchmark.enabled:
            info.update(throughput(info, benchmark.stats.stats.median))
            info["first_round_s"] = benchmark.stats.stats.data[0]
            info["cold_step_s"] = benchmark.stats.stats.median
        info.update(check_correctness(trainer, case, problem, settings.lr))
    benchmark.extra_info.update(info)
