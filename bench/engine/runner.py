"""Runs a Job in this process: build the case, time its rounds, check it (docs/measurement.md, "How a case is timed").

The worker server (bench.engine.worker) calls these for every timed pass;
the pytest process calls them only for untimed jobs (the CI correctness pass)
and with `--pass-process same`. Nothing here knows which process it is in.

A pass of a grid case: the machine's probe (outside the case's CPUs and
thread limits) -> enter the case's environment (its backend's context, its
CPUs) -> build the trainer (data conversion and first evaluation, untimed) ->
[first pass: time the first step alone, calibrate K, which is the warm-up;
a later pass: a quarter round's warm-up] -> R timed rounds of K steps, each
ending in its barrier -> the barrier check on the last round -> the
correctness check against the float64 reference [first pass: its steps under
the peak-memory probe]. Only the rounds are inside the timer.

The interleaved release runner drives the same steps one request at a time
(CaseRun: open, round, check), so its rounds are timed by the same code.
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import time

from bench.backends import get, make_trainer
from bench.cases.checks import check_barrier, check_correctness, check_settled, compare_with_reference
from bench.cases.datasets import make_problem
from bench.cases.models import BLOG_MODELS
from bench.cases.sizes import BLOG_SIZE
from bench.engine import defaults
from bench.engine.affinity import pinned
from bench.engine.jobs import Job, PassResult
from bench.engine.plants import break_trainer, factor_of, leave_behind, leftover_of
from bench.engine.steadiness import probe_seconds
from bench.engine.timing import calibrate_round, time_rounds, timed_run, warm_up
from reference import quality


@contextlib.contextmanager
def case_environment(case, cpus: tuple[int, ...] | None):
    """Everything a case runs in (calibration, every round, the checks): its backend's context and its CPUs."""
    with get(case.backend).case_context(case), pinned(cpus):
        yield


def wants_overhead_check(case, size, scenario: str) -> bool:
    """Whether a case gets the bare-loop comparison: the blog's models, full batch, at the blog's size."""
    return size == BLOG_SIZE and scenario == "grid" and case.model in BLOG_MODELS and not case.batch_size


class CaseRun:
    """One case's trainer in this process, from building it to its checks.

    open: probe, environment, trainer, [first step, K]; round(): one timed
    round; check(): barrier and correctness; close(): leave the environment.
    """

    def __init__(self, job: Job, calibration_warms_up: bool = False):
        self.job = job
        # Whether a calibrated case's calibration is its warm-up (the main job's pass 1, run_pass). A case
        # opened beside others (the release runner's sides, of which only the first calibrates) warms up
        # for a whole round after it, as the others do, so that every side of a pair warms up alike.
        self.calibration_warms_up = calibration_warms_up
        self.case = job.case
        self.backend = get(job.case.backend)
        self.probe_s = probe_seconds() if job.timed else None  # the machine's speed now, outside the case's limits
        self.problem = make_problem(job.case.model, job.size, job.case.batch_size, job.case.hidden)
        self.memory_baseline = self.backend.memory_baseline() if job.first_pass else 0
        self._environment = contextlib.ExitStack()
        self._environment.enter_context(case_environment(job.case, job.cpus))
        try:
            self.trainer = make_trainer(job.case, self.problem, job.lr)
            if job.plants is not None and job.plants.broken:
                break_trainer(self.trainer, job.plants.broken)
            self.info: dict = {"layout": self.trainer.layout}
            self.reset_each_round = job.scenario == "blog"  # the blog's rounds each train from w0
            self.stop_accuracy = defaults.BLOG_STOP_ACCURACY if self._blog_sync() else None
            self.rounds_per_pass = job.rounds
            self.round_s = 0.0  # how long a round of K steps lasts, from the calibration or the warm-up
            self.steps_per_round = self._plan_steps()
            self.last_work_s = self.round_s  # the plant's first round scales the warm-up round's work
            self.planted: list[float] = []
        except BaseException:
            self._environment.close()
            raise

    def _blog_sync(self) -> bool:
        return self.job.scenario == "blog" and self.case.barrier == "sync"

    def _plan_steps(self) -> int:
        """K, and the first pass's first-step time; the trainer is warmed up when this returns (but for the blog)."""
        job, trainer = self.job, self.trainer
        if job.first_pass:
            # First call: tracing, compilation, first-touch page faults (docs/measurement.md, "Measurement rules", rule 4).
            self.info["first_step_s"] = timed_run(trainer.run, 1)
        elif job.scenario == "blog" or not job.timed:
            trainer.run(1)  # first-call costs stay out of the pass
        if not job.timed:
            return defaults.UNTIMED_CHECK_STEPS
        if job.scenario == "blog":
            return defaults.BLOG_STEPS
        if job.steps_per_round:
            steps_per_round, round_s = job.steps_per_round, None
        else:
            steps_per_round, round_s = calibrate_round(trainer.run, job.round_time_s)
        if round_s is None or job.plants is not None or not self.calibration_warms_up:
            # A round before the timed ones: a later pass's case (its worker warm already: its own warm-up
            # ran the group's first case at length, bench.engine.runner.warm_up_process) a share of a round;
            # in pass 1 a case given its K, a planted one (its first planted round scales the warm-up round's
            # work) or one opened beside others a whole round. Otherwise a calibrated case's calibration was
            # its warm-up: its last runs were within an eighth of its round, twice (docs/measurement.md,
            # "How a case is timed", step 3).
            whole = job.first_pass or job.plants is not None
            steps_each = steps_per_round if whole else max(1, math.ceil(defaults.LATER_WARMUP_SHARE * steps_per_round))
            round_s = warm_up(trainer.run, steps_each, steps_each, 0.0) * steps_per_round / steps_each
        self.round_s = round_s
        # A round far longer than the round time (a single step of a large problem) is timed precisely
        # enough in fewer rounds.
        if job.first_pass and defaults.is_long_round(round_s, job.round_time_s):
            self.rounds_per_pass = min(self.rounds_per_pass, defaults.LONG_ROUND_ROUNDS)
        return steps_per_round

    def _work(self) -> None:
        """The plant's busy work if any, then K steps ending in the case's barrier: what the timer sees."""
        factor = factor_of(self.job.plants)
        if factor == 1.0:
            self._done.append(self.trainer.run(self.steps_per_round, self.stop_accuracy))
            return  # no plant: nothing but the steps inside the timer
        # A multiplicative plant, busy like real work: the round's work times the factor, the extra
        # measured in this thread's CPU time, so that whatever takes the CPU meanwhile (the other
        # release's worker finishing its round on the same CPU) lengthens it as it would lengthen real
        # work. A plant that spun after the steps to a wall-clock deadline absorbed that instead: plants
        # of +20% read +27.8% at the median, the planted side's steps up to 16% slower than the other's;
        # this one read +19.8% (docs/releases.md, "The self-test").
        extra_s = (factor - 1.0) * self.last_work_s
        spent = time.thread_time()
        while time.thread_time() - spent < extra_s:
            pass
        start = time.perf_counter()
        self._done.append(self.trainer.run(self.steps_per_round, self.stop_accuracy))
        work = time.perf_counter() - start
        if extra_s > 0:
            self.planted.append(1.0 + extra_s / work)  # the slowdown applied to this round's own work
        self.last_work_s = work

    def time_pass(self, rounds: int, before_round=None) -> tuple[list[float], int]:
        """`rounds` timed rounds (bench.engine.timing); each must do the same steps. (times, steps per round done)."""

        def prepare():  # outside the timer
            if before_round is not None:
                before_round()
            if self.reset_each_round:
                self.trainer.reset()

        self._done: list[int] = []
        times = time_rounds(self._work, rounds, prepare)
        if len(set(self._done)) != 1:
            raise AssertionError(
                f"{self.job.case_id}: rounds did different numbers of steps: {sorted(set(self._done))}"
            )
        return times, self._done[-1]

    def check(self, last_round_s: float | None, measure_memory: bool = False) -> dict:
        """The barrier of the rounds just timed, then correctness against the float64 reference (docs/measurement.md, "Measurement rules", rule 5).

        measure_memory: the peak memory too (info["peak_memory_bytes"]). Where every step ends in its
        own evaluation, a step's peak is the same from the first step on, so it is taken while the
        correctness check's own steps run; a round-barrier case (K lazy steps, one evaluation) peaks
        higher the more steps its graph holds, so it runs MEMORY_STEPS steps of its own, as do cases
        whose checks are off.
        """
        if last_round_s is None:
            pending = check_barrier(self.trainer, self.case, self.steps_per_round)
        else:
            pending = check_settled(self.trainer, self.case, self.steps_per_round, last_round_s)
        checks = {"barrier_pending_s": pending}

        def run_measured(steps: int) -> None:
            self.info["peak_memory_bytes"] = self.backend.peak_memory_bytes(self.trainer, steps, self.memory_baseline)

        with_the_check = measure_memory and self.job.check_correctness and self.case.barrier != "round"
        if self.job.check_correctness:
            run = run_measured if with_the_check else None
            checks.update(check_correctness(self.trainer, self.case, self.problem, self.job.lr, run=run))
        if measure_memory and not with_the_check:
            run_measured(defaults.MEMORY_STEPS)
        return checks

    def suspend(self) -> None:
        """Leave the case's environment (its thread limit, its CPUs) while another open case of this process runs.

        The environment is the process's own state: a case that kept it entered
        while another ran would impose its limits on that one (measured: NumPy's
        two-thread cases ran at one thread's speed, +50%, beside an open one-thread case).
        """
        self._environment.close()
        self._environment = contextlib.ExitStack()

    def resume(self) -> None:
        """Enter the case's environment again before its next round or its checks."""
        self._environment.enter_context(case_environment(self.job.case, self.job.cpus))

    def close(self) -> None:
        """Leave the case's environment and drop its trainer."""
        self._environment.close()
        self.trainer = None


def warm_up_process(job: Job) -> None:
    """A new worker's first act: build the job's case once, run it briefly, and drop it, untimed.

    The first trainer of a process runs slower than every later one for some
    cases, however long it warms up (measured: `logistic-mlx-autodiff-step-cpu-
    b256-n100000-d100`, 4.2-4.6 ms per 8 steps in a new worker's first trainer,
    2.2-2.4 ms in every later one; the same after any other case of the group).
    So the case that is timed is always a process's second trainer.
    """
    problem = make_problem(job.case.model, job.size, job.case.batch_size, job.case.hidden)
    with case_environment(job.case, job.cpus):
        trainer = make_trainer(job.case, problem, job.lr)
        warm_up(trainer.run, 1, defaults.FRESH_WARMUP_STEPS, defaults.FRESH_WARMUP_S)
        del trainer


def blog_quality(run: CaseRun, steps: int) -> None:
    """A blog case's model quality, from the weights its last round trained: before the checks, which start again from w0."""
    if run.job.scenario != "blog":
        return
    p = run.problem
    run.info.update(quality(run.job.case.model, p.X, p.y, p.X_test, p.y_test, run.trainer.weights()))
    if run.stop_accuracy is not None:
        run.info["early_stop_steps"] = steps


def run_pass(job: Job) -> PassResult:
    """One pass of a job in this process; raises AssertionError (or the case's own error) when a check fails."""
    if job.scenario == "cold":
        return run_cold_pass(job)
    phases, started = {}, time.perf_counter()
    run = CaseRun(job, calibration_warms_up=True)
    phases["setup"] = time.perf_counter() - started
    try:
        if not job.timed:
            run.trainer.run(run.steps_per_round)  # untimed: one round, then the checks
            times, steps = [], run.steps_per_round
            blog_quality(run, steps)
            checks = run.check(None, measure_memory=job.first_pass)
        else:
            bare_times: list[float] = []
            before_round = None
            if job.first_pass and job.overhead_check:
                # A bare round before each timed round of the first pass, outside the timer.
                bare = run.backend.bare_round_seconds
                before_round = lambda: bare_times.append(bare(run.trainer, run.steps_per_round))  # noqa: E731
            started = time.perf_counter()
            times, steps = run.time_pass(run.rounds_per_pass, before_round)
            phases["rounds"] = time.perf_counter() - started
            if not job.first_pass and job.steps_per_round and steps != job.steps_per_round:
                raise AssertionError(
                    f"{job.case_id}: a later pass did {steps} steps per round, pass 1 did {job.steps_per_round}"
                )
            run.steps_per_round = steps
            blog_quality(run, steps)
            started = time.perf_counter()
            checks = run.check(times[-1], measure_memory=job.first_pass)
            phases["checks"] = time.perf_counter() - started  # the first pass's peak memory with them
            if bare_times:
                run.info["bare_loop_steps_per_s"] = steps / statistics.median(bare_times)
                run.info["harness_overhead_ratio"] = statistics.median(times) / statistics.median(bare_times)
        if job.first_pass:
            run.info["blas_threads"] = run.backend.blas_threads(job.case)
        result = PassResult(
            case_id=job.case_id,
            steps_per_round=steps,
            rounds_per_pass=len(times) or run.rounds_per_pass,
            round_times_s=times,
            probe_s=run.probe_s,
            pid=os.getpid(),
            cpus=list(job.cpus) if job.cpus is not None else None,
            checks=checks,
            info=run.info,
            planted=statistics.median(run.planted) if run.planted else None,
            phases_s=phases,
        )
    finally:
        run.close()
    leave_behind(leftover_of(job.plants))
    return result


def run_cold_pass(job: Job) -> PassResult:
    """The first step of freshly built trainers, one per round (phase "cold"), apart from steady state.

    Each round builds a new trainer (data conversion and first evaluation stay
    outside the timer) and times its first step: graph tracing, mx.compile,
    first-touch page faults. The process's first round may also include work
    MLX then caches for the whole process (g++ kernels on Linux CPU, kept on
    disk under $TMPDIR/mlx too): it is saved as `first_round_s`.
    """
    started = time.perf_counter()
    problem = make_problem(job.case.model, job.size, job.case.batch_size, job.case.hidden)
    probe_s = probe_seconds() if job.timed else None
    trainers = []
    with case_environment(job.case, job.cpus):
        rounds = job.rounds if job.timed else 1
        times = time_rounds(
            lambda: trainers[-1].run(1), rounds, lambda: trainers.append(make_trainer(job.case, problem, job.lr))
        )
        trainer = trainers[-1]
        info = {"layout": trainer.layout}
        if job.timed:
            info["first_round_s"] = times[0]
            info["cold_step_s"] = statistics.median(times)
        checked = time.perf_counter()
        # The step checked is the one just timed: the last fresh trainer's first step, against the reference's.
        checks = compare_with_reference(trainer, job.case, problem, job.lr, steps=1)
    # The first steps are this case's timed rounds; building a trainer for each is its setup.
    phases = {"cold first steps": sum(times), "checks": time.perf_counter() - checked}
    phases["setup"] = checked - started - phases["cold first steps"]
    return PassResult(
        case_id=job.case_id,
        steps_per_round=1,
        rounds_per_pass=rounds,
        round_times_s=times if job.timed else [],
        probe_s=probe_s,
        pid=os.getpid(),
        cpus=list(job.cpus) if job.cpus is not None else None,
        checks=checks,
        info=info,
        phases_s=phases,
    )
