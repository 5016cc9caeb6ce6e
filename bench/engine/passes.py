"""Each case timed in several passes spread over the session (docs/measurement.md, "How a case is timed").

A busy neighbour can slow a whole case by 40% for a second while its rounds
agree with each other, so rounds taken in one burst are not independent
evidence. The session therefore times every case in passes, in pass-major
order: pass 1 runs when the case's own test runs (calibrating K, checking the
barrier and correctness, measuring memory); once every test has run, passes
2..P time each case again with the same K, in the same order, so minutes
separate a case's passes while the cases compared with each other (MLX and
NumPy at one size, N ranks and 1 rank) stay next to each other in every pass.

Every pass of a grid, blog or cold case, the first included, is a job
(bench.engine.jobs) that a worker process runs under the engine's isolation
policy (bench.engine.isolation): a fresh, backend-pure worker per group of
cases, checked for leftover state before every case. Only the data-parallel
cases, whose ranks are processes of their own, are timed from here.

A case whose passes disagree (bench.stats.stability) is timed once more at the end
of the session, with the cases it is compared with, while the time spent on that
stays within REMEASURE_SHARE of the session's timing so far. The rounds of every pass go to pytest-benchmark
as per-step times (its ``stats`` then describe one step: ``ops`` is steps/s),
and the raw round times with their pass labels go into ``extra_info``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from bench.engine.client import START_TIMEOUT_S, WorkerClient
from bench.engine.interleave import interleaved_pass, neighbourhoods, seeded
from bench.engine.isolation import WorkerPool
from bench.engine.jobs import Job, PassResult
from bench.engine.pass_costs import PassCosts
from bench.engine.progress import Progress
from bench.engine.runner import run_pass
from bench.engine.steadiness import describe as describe_steadiness
from bench.engine.steadiness import probe_seconds
from bench.engine.steadiness import summary as steadiness_summary
from bench.results.extra_info import SCHEMA_VERSION
from bench.session.benchmark_adapter import per_step_stats, restate_stats
from bench.stats.components import describe as describe_components
from bench.stats.components import summarise as variance_summary
from bench.stats.figures import steps_intervals, term_fields
from bench.stats.intervals import machine_spread
from bench.stats.pairing import pass_step_times, remeasure_groups
from bench.stats.run_terms import RunTerms
from bench.stats.stability import PASS_TOLERANCE, PassFigures, pass_figures

REMEASURE_SHARE = 0.05  # re-measuring disagreeing cases may add this share of the session's timing
TIMED_PHASES = ("rounds", "blog runs", "cold first steps")  # what the timer measured: the session's timed share
PROGRESS_EVERY_S = 20.0  # a progress line during a later pass at most this often
# How long a pass of one case may take before its worker counts as hung: generous against a
# busy machine, short against a deadlock. A first pass (calibration, the blog's 10,000-step
# runs, the checks) has no earlier figure to scale from.
FIRST_PASS_TIMEOUT_S = 900.0
PASS_TIMEOUT_FLOOR_S = 120.0
PASS_TIMEOUT_FACTOR = 20


@dataclass
class Measurement:
    """One case's timed rounds across the session, and how to time it again.

    ``job`` is the case's later-pass job (bench.engine.jobs.Job), run in a
    worker (or here, with ``--pass-process same``); ``time_pass`` instead times
    one more pass in this process (a data-parallel case, whose ranks stay up
    between passes); neither: the case is timed in one pass only (cold start).
    ``finish`` adds the case's own figures to extra_info once every pass is in;
    ``close`` releases what the case kept between passes.
    """

    case_id: str
    benchmark: object  # the pytest-benchmark fixture of the case's test
    steps_per_round: int
    rounds_per_pass: int
    job: Job | None = None
    time_pass: Callable[[], list[float]] | None = None
    finish: Callable[[Measurement, Schedule], dict] | None = None
    close: Callable[[], object] | None = None  # releases what time_pass keeps (a group of ranks)
    pass_pids: dict[int, int] = field(default_factory=dict)  # the process that took each pass
    pass_probe_s: dict[int, float] = field(default_factory=dict)  # the machine's probe before each pass
    round_times: list[float] = field(default_factory=list)
    round_pass: list[int] = field(default_factory=list)
    # Each later pass's cost outside its rounds, as the session paid it (PassCosts): Kalibera and Jones' rule needs it.
    overhead_s: list[float] = field(default_factory=list)
    failure: str | None = None
    remeasured: bool = False
    _stats: object = None

    @property
    def repeatable(self) -> bool:
        """Whether the case can be timed in later passes."""
        return self.job is not None or self.time_pass is not None

    def start(self, times: list[float], probe_s: float | None = None, pid: int | None = None) -> None:
        """Record pass 1 and give pytest-benchmark a per-step record of the case (one step = round / K)."""
        self._stats = per_step_stats(self.benchmark, self.steps_per_round)
        self.add_pass(1, times, pid or os.getpid(), probe_s)

    def add_pass(self, pass_id: int, times: list[float], pid: int, probe_s: float | None = None) -> None:
        """Append one pass's round times, taken in process `pid` right after a probe of `probe_s` seconds."""
        self.pass_pids[pass_id] = pid
        if probe_s is not None:
            self.pass_probe_s[pass_id] = probe_s
        for seconds in times:
            self.round_times.append(seconds)
            self.round_pass.append(pass_id)
            self._stats.update(seconds)  # pytest-benchmark divides by K: per-step times

    @property
    def figures(self) -> PassFigures:
        """The case's figures from every pass so far."""
        return pass_figures(self.round_times, self.round_pass)

    @property
    def pass_cost_s(self) -> float:
        """About how long one more pass takes: its rounds and a warm-up round."""
        return (self.rounds_per_pass + 1) * self.figures.median

    def pass_step_times(self) -> dict[int, float]:
        """Median per-step time of each pass, by pass."""
        return pass_step_times(self.round_times, self.round_pass, self.steps_per_round)


def pass_timeout_s(measurement: Measurement) -> float:
    """How long one request of a case's later pass may take before its worker counts as hung."""
    return PASS_TIMEOUT_FLOOR_S + PASS_TIMEOUT_FACTOR * measurement.pass_cost_s


@dataclass
class Schedule:
    """Every case measured in this session, in the order their tests ran, and the workers that time them.

    ``worker_options`` set: every pass of a job runs in a worker process under
    the isolation policy, each worker configured with these backend options
    (as the session parsed them); None: every job runs in this process.
    """

    passes: int = 3
    measurements: list[Measurement] = field(default_factory=list)
    timing_s: float = 0.0  # seconds of the session so far (from its start), when the later passes began or ended
    notes: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    worker_options: dict | None = None
    # Later passes of the grid's cases interleaved, one model and size at a time (bench.engine.interleave;
    # --pass-order interleaved), or each case's rounds in one burst (the default). Only with workers.
    interleave: bool = False
    pool: WorkerPool | None = field(default=None, repr=False)
    # Where the session's time went (seconds): worker starts, timed passes, re-measure (bench.session.lifecycle).
    time_spent: dict[str, float] = field(default_factory=dict)
    phase_s: dict[str, float] = field(default_factory=dict)  # inside the passes: setup, rounds, checks... (PassResult)
    # The between-run terms every interval of the session gets (bench.stats.run_terms; --run-terms).
    run_terms: RunTerms = field(default_factory=RunTerms)
    # Where the variance lay in this session, per backend and size class (bench.stats.components), once finalized.
    variance_components: dict = field(default_factory=dict)

    def add(self, measurement: Measurement) -> None:
        """Register a case whose pass 1 is done."""
        self.measurements.append(measurement)

    def by_id(self, case_id: str) -> Measurement | None:
        """The measurement of a case, if it ran in this session and did not fail."""
        for measurement in self.measurements:
            if measurement.case_id == case_id and measurement.failure is None:
                return measurement
        return None

    def run_job(self, job: Job, timeout_s: float = FIRST_PASS_TIMEOUT_S) -> PassResult:
        """One pass of a job: in its group's worker (the isolation policy), or here without worker options."""
        if self.worker_options is None:
            result = run_pass(job)
        else:
            result = self.worker_pool().run(job, timeout_s)
        phases = dict(result.phases_s or {})
        if job.scenario == "blog" and "rounds" in phases:
            phases["blog runs"] = phases.pop("rounds")  # the blog's 10,000-step runs, on their own
        self.add_phases(phases)
        return result

    def worker_pool(self) -> WorkerPool:
        """The session's workers (bench.engine.isolation), started on first use."""
        if self.pool is None:
            self.pool = WorkerPool(self._start_worker)
        return self.pool

    def add_phases(self, phases: dict[str, float]) -> None:
        """Add seconds spent in the named phases of the passes (setup, rounds, checks...) to the time breakdown."""
        for name, seconds in phases.items():
            self.phase_s[name] = self.phase_s.get(name, 0.0) + seconds

    def _start_worker(self, job: Job) -> WorkerClient:
        """A new worker for the job's group, configured with the session's options for the group's backend only."""
        start = time.perf_counter()
        worker = WorkerClient(label="pass worker")
        try:
            worker.request(
                {"cmd": "configure", "options": self.worker_options, "backends": [job.case.backend]}, START_TIMEOUT_S
            )
        except BaseException:
            worker.close()
            raise
        self.time_spent["worker starts"] = self.time_spent.get("worker starts", 0.0) + time.perf_counter() - start
        return worker

    def close_workers(self) -> None:
        """End the live worker: the next job starts a fresh one (every pass begins in new processes)."""
        if self.pool is not None:
            self.pool.close()

    def close_all(self) -> None:
        """Release what every case kept for its later passes, and the workers (safe to call more than once)."""
        self.close_workers()
        for measurement in self.measurements:
            if measurement.close is not None:
                close, measurement.close = measurement.close, None
                close()

    def _time_again(self, measurement: Measurement, pass_id: int) -> None:
        try:
            if measurement.job is not None:
                result = self.run_job(measurement.job, pass_timeout_s(measurement))
                measurement.add_pass(pass_id, result.round_times_s, result.pid, result.probe_s)
            else:
                probe_s = probe_seconds()
                times = measurement.time_pass()
                measurement.add_pass(pass_id, times, os.getpid(), probe_s)
                self.add_phases({"rounds": sum(times)})
        except Exception as error:  # noqa: BLE001 - any failure of a check drops the case, with its reason
            measurement.failure = f"pass {pass_id}: {error}"
            measurement.benchmark.has_error = True  # a case that fails a check is not saved

    def _one_pass(
        self,
        groups: list[list[Measurement]],
        pass_id: int,
        budget_s: float | None = None,
        progress: Callable[[str], None] | None = None,
    ):
        """Time each measurement of `groups` once more, in order, in new workers (or here).

        With a budget, a group whose passes would take the pass past it is
        skipped whole: a re-measured case with the cases compared with it, or none of them.
        Returns the measurements timed and the pids of the pass's workers.
        """
        self.close_workers()  # a pass starts in new processes
        before = self._started_workers()
        timed = []
        todo = [m for group in groups for m in group if m.failure is None]
        stage = Progress(len(todo), PROGRESS_EVERY_S)
        rng = seeded(pass_id)
        costs = PassCosts(self, TIMED_PHASES)

        def case_done(measurement: Measurement) -> None:
            timed.append(measurement)
            if stage.step() and progress is not None:
                progress(self._progress_line(pass_id, stage, budget_s is not None))

        try:
            for group in groups:
                group = [m for m in group if m.failure is None]
                cost = sum(m.pass_cost_s for m in group)
                if budget_s is not None and stage.spent_s + cost > budget_s:
                    stage.step(len(group))
                    continue
                for unit in self._units(group):
                    with costs.unit(unit):
                        if self._interleaves(unit[0]):  # a neighbourhood (bench.engine.interleave)
                            interleaved_pass(self, unit, pass_id, pass_timeout_s, rng, case_done)
                        else:
                            self._time_again(unit[0], pass_id)
                            case_done(unit[0])
        finally:
            self.close_workers()
            costs.settle()
        pids = self.pool.started[before:] if self.pool is not None else []
        return timed, pids

    def _interleaves(self, measurement: Measurement) -> bool:
        """Whether the measurement's later passes are interleaved with its neighbours' (a grid case, in workers)."""
        job = measurement.job
        return self.interleave and self.worker_options is not None and job is not None and job.scenario == "grid"

    def _units(self, group: list[Measurement]) -> list[list[Measurement]]:
        """The group as units of a pass: each neighbourhood of interleaved cases, every other case alone."""
        interleaved = [m for m in group if self._interleaves(m)]
        units = neighbourhoods(interleaved)
        first = {id(unit[0]): unit for unit in units}
        ordered = []
        for measurement in group:
            if id(measurement) in first:
                ordered.append(first[id(measurement)])
            elif not self._interleaves(measurement):
                ordered.append([measurement])
        return ordered

    def _progress_line(self, pass_id: int, stage: Progress, remeasure: bool) -> str:
        # The passes after this one take about as long as this one: say when the whole run ends (bench.engine.progress).
        left, in_all = stage.left(stages_after=0 if remeasure else self.passes - pass_id)
        label = "re-measure" if remeasure else f"pass {pass_id} of {self.passes}"
        return (
            f"{label}: {stage.done} of {stage.total} cases in {stage.spent_s:.0f} s, "
            f"about {left:.0f} s left in this {'re-measure' if remeasure else 'pass'}"
            + (f", {in_all:.0f} s in all before the re-measure" if in_all > left else "")
        )

    def run_later_passes(self, progress: Callable[[str], None] = lambda line: None, should_stop=lambda: False) -> None:
        """Passes 2..P over every case that can be timed again, in the order of pass 1."""
        self.close_workers()
        self.timing_s = time.perf_counter() - self.started
        self.time_spent["pass 1"] = self.timing_s
        again = [m for m in self.measurements if m.repeatable]
        for pass_id in range(2, self.passes + 1):
            if not again or should_stop():
                return
            start = time.perf_counter()
            _, pids = self._one_pass([again], pass_id, progress=progress)
            timed = sum(m.failure is None for m in again)
            self.time_spent[f"pass {pass_id}"] = time.perf_counter() - start
            where = f" in {len(pids)} worker processes" if pids else ""
            progress(f"pass {pass_id} of {self.passes}: {timed} cases in {time.perf_counter() - start:.0f} s{where}")
        self.timing_s = time.perf_counter() - self.started
        self._remeasure(progress)
        self.close_all()
        if self.pool is not None and self.pool.replaced:
            self.notes.append(
                f"{len(self.pool.replaced)} worker(s) replaced before a case for leftover state: "
                + "; ".join(self.pool.replaced[:3])
            )
            progress(self.notes[-1])
        steadiness = self.steadiness()
        if steadiness is not None:
            self.notes.append(describe_steadiness(steadiness))
            progress(self.notes[-1])
        self.notes.append(self.time_breakdown())

    def time_breakdown(self) -> str:
        """One line: where the session's timing went (each pass, worker starts within them, the re-measure)."""
        spent = dict(self.time_spent)
        starts = spent.pop("worker starts", 0.0)
        parts = [f"{name} {seconds:.0f} s" for name, seconds in spent.items()]
        line = f"time: {', '.join(parts)}; {starts:.0f} s of it starting {self._started_workers()} worker processes"
        if self.phase_s:
            # Inside the cases' passes, summed over every pass (the re-measure included); the rest is the
            # session's own work (collection, the machine's limits at its start, the messages to workers).
            names = {"setup": "setup (data, trainer, first step, K, warm-up)", "rounds": "timed rounds"}
            order = ("rounds", "blog runs", "cold first steps", "setup", "checks", "memory", "worker warm-up")
            order += ("leftover checks",)
            inside = [f"{names.get(k, k)} {self.phase_s[k]:.0f} s" for k in order if k in self.phase_s]
            total = sum(spent.values())
            rest = total - starts - sum(self.phase_s.values())
            timed = sum(self.phase_s.get(k, 0.0) for k in TIMED_PHASES)
            line += "; within the passes: " + ", ".join(inside) + f"; the rest {max(rest, 0.0):.0f} s"
            if total > 0:
                line += f"; timed (rounds, blog runs, cold first steps) {timed / total:.0%} of the session"
        return line

    def _started_workers(self) -> int:
        return len(self.pool.started) if self.pool is not None else 0

    def steadiness(self) -> dict | None:
        """The machine's probe over every pass of the session (bench.engine.steadiness), or None without probes."""
        return steadiness_summary([s for m in self.measurements for s in m.pass_probe_s.values()])

    def machine_spread(self) -> tuple[float, int]:
        """(standard deviation of the log probe times, how many probes) over every pass of the session so far."""
        return machine_spread([p for m in self.measurements for p in m.pass_probe_s.values()])

    def _remeasure(self, progress: Callable[[str], None]) -> None:
        """Time each case whose passes disagree once more, with the cases it is compared with, while the time allows.

        A ratio is taken pass by pass: a NumPy baseline re-measured alone would
        add a pass that none of its ratios can use. So the re-measure, like every
        pass, times compared cases next to each other (bench.stats.pairing.compared_with).
        """
        usable = [m for m in self.measurements if m.repeatable and m.failure is None]
        flagged = [i for i, m in enumerate(usable) if m.figures.disagree]
        if not flagged:
            return
        groups = [
            [usable[i] for i in group] for group in remeasure_groups([m.benchmark.extra_info for m in usable], flagged)
        ]
        todo = [m for group in groups for m in group]
        start = time.perf_counter()
        done, _ = self._one_pass(groups, self.passes + 1, budget_s=REMEASURE_SHARE * self.timing_s)
        self.time_spent["re-measure"] = time.perf_counter() - start
        for measurement in done:
            measurement.remeasured = measurement.failure is None
        partners = len(todo) - len(flagged)
        note = (
            f"{len(flagged)} case(s) whose passes disagreed (more than {PASS_TOLERANCE:.0%} apart) after {self.passes} "
            f"passes"
            + (f", {partners} case(s) compared with them" if partners else "")
            + f"; {len(done)} re-measured once at the end (one more pass in their figure and its interval)"
        )
        if len(done) < len(todo):
            note += f"; {len(todo) - len(done)} left as they were (re-measuring is held to {REMEASURE_SHARE:.0%} of the session)"
        self.notes.append(note)
        progress(note + f" ({time.perf_counter() - start:.0f} s)")

    def finalize(self) -> None:
        """Write each surviving case's figures from all its passes into its extra_info."""
        self.close_all()
        for measurement in self.measurements:
            if measurement.failure is not None or not measurement.round_times:
                continue
            figures = measurement.figures
            info = measurement.benchmark.extra_info
            steps_per_round = measurement.steps_per_round
            info.update(
                schema_version=SCHEMA_VERSION,
                steps_per_round=steps_per_round,
                round_times_s=list(measurement.round_times),
                round_pass=list(measurement.round_pass),
                passes=figures.passes,
                # What the session planned: a run stopped early (Ctrl-C, -x) saves cases with fewer passes.
                passes_planned=self.passes if measurement.repeatable else 1,
                pass_pids=[measurement.pass_pids.get(int(p)) for p in figures.pass_ids],
                pass_probe_s=[measurement.pass_probe_s.get(int(p)) for p in figures.pass_ids],
                rounds_per_pass=measurement.rounds_per_pass,
                pass_steps_per_s=[steps_per_round / m for m in figures.pass_medians],
                pass_spread=figures.pass_spread,
                remeasured=measurement.remeasured,
                unstable=figures.unstable,
                median_round_s=figures.median,
                # A later pass's cost outside its rounds (PassCosts): Kalibera and Jones' rule needs it.
                pass_overhead_s=float(np.median(measurement.overhead_s)) if measurement.overhead_s else None,
            )
            info.update(throughput(info, figures.median))
            # pytest-benchmark's stats over the pass medians, so its median is the suite's figure (1 / it = steps/s).
            restate_stats(measurement._stats, list(figures.pass_medians))
            info["stats_over"] = "pass medians"
            if measurement.finish is not None:
                info.update(measurement.finish(measurement, self))
        measured = [m for m in self.measurements if m.failure is None and m.round_times]
        self._add_intervals(measured)
        infos = [m.benchmark.extra_info for m in measured if m.benchmark.extra_info.get("phase", "warm") == "warm"]
        self.variance_components = variance_summary(infos, self.run_terms)
        if self.variance_components:
            self.notes.append(
                'where the variance lies (bench.stats.components; docs/measurement.md, "Where the variance lies"):\n'
                + "\n".join(describe_components(self.variance_components))
            )

    def _add_intervals(self, measurements: list[Measurement]) -> None:
        """Every figure's 95% interval and the unstable rule (bench.stats.figures), over all the session's cases at once."""
        if not measurements:
            return
        infos = [m.benchmark.extra_info for m in measurements]
        for info in infos:
            info.update(term_fields(info, self.run_terms))  # the record owns the terms its intervals were given
        machine_sd, machine_n = self.machine_spread()
        for info, interval in zip(infos, steps_intervals(infos)):
            low, high = interval.low_high
            info.update(
                steps_per_s_ci_low=low if math.isfinite(low) else None,
                steps_per_s_ci_high=high if math.isfinite(high) else None,
                steps_per_s_se_log=interval.se if math.isfinite(interval.se) else None,
                steps_per_s_se_within_log=interval.se_within if math.isfinite(interval.se_within) else None,
                steps_per_s_df=interval.df if math.isfinite(interval.se) else None,
                steps_per_s_half_width_pct=interval.half_width_pct if math.isfinite(interval.half) else None,
                interval_machine_sd_log=machine_sd,
                interval_machine_probes=machine_n,
                unstable=interval.unstable,
            )

    def short_cases(self) -> list[str]:
        """The saved cases (no failure) timed in fewer passes than the session planned."""
        return [
            m.case_id
            for m in self.measurements
            if m.failure is None and m.round_times and m.repeatable and m.figures.passes < self.passes
        ]

    def failures(self) -> list[str]:
        """One line per case that failed a check in a later pass."""
        return [f"{m.case_id}: {m.failure}" for m in self.measurements if m.failure is not None]


def throughput(info: dict, round_median_s: float) -> dict:
    """steps/s, samples/s, GFLOP/s and GB/s from a median round time."""
    steps_per_s = info["steps_per_round"] / round_median_s
    return {
        "steps_per_s": steps_per_s,
        "samples_per_s": steps_per_s * info["batch_size"],
        "gflops_per_s": steps_per_s * info["flops_per_step"] / 1e9,
        "gb_per_s": steps_per_s * info["bytes_per_step"] / 1e9,
    }
