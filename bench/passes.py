"""Each case timed in several passes spread over the session (README, "How a case is timed").

A busy neighbour can slow a whole case by 40% for a second while its rounds
agree with each other, so rounds taken in one burst are not independent
evidence. The session therefore times every case in passes, in pass-major
order: pass 1 runs inside the case's own test (calibrating K, checking the
barrier and correctness, as ever); once every test has run, passes 2..P time
each case again with the same K, in the same order, so minutes separate a
case's passes while the cases compared with each other (MLX and NumPy at one
size, N ranks and 1 rank) stay next to each other in every pass. Each later
pass runs in a new worker process (bench.pass_worker), so a case's passes are
taken in different processes and a process's own luck is outvoted too; only
the data-parallel cases, whose ranks stay up between passes, keep theirs here.

A case whose passes disagree (bench.stability) is timed once more at the end
of the session, while the time spent on that stays within REMEASURE_SHARE of
the session's timing so far. The rounds of every pass go to pytest-benchmark
as per-step times (its ``stats`` then describe one step: ``ops`` is steps/s),
and the raw round times with their pass labels go into ``extra_info``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.pass_worker import PassWorker
from bench.schema import SCHEMA_VERSION
from bench.stability import PASS_TOLERANCE, PassFigures, pass_figures
from bench.steadiness import describe as describe_steadiness
from bench.steadiness import probe_seconds
from bench.steadiness import summary as steadiness_summary

REMEASURE_SHARE = 0.05  # re-measuring disagreeing cases may add this share of the session's timing
STATS_MODE = "bench.passes"  # marks the pytest-benchmark fixture as used


def mark_used(benchmark) -> None:
    """Tell pytest-benchmark the case used its fixture (it times rounds itself, or, untimed, runs them once)."""
    benchmark._mode = STATS_MODE  # otherwise: a "fixture was not used" warning per case


def time_rounds(
    run_round: Callable[[], object], rounds: int, before_round: Callable[[], object] | None = None
) -> list[float]:
    """Seconds of each of `rounds` calls of run_round; before_round runs untimed before each."""
    times = []
    for _ in range(rounds):
        if before_round is not None:
            before_round()
        start = time.perf_counter()
        run_round()
        times.append(time.perf_counter() - start)
    return times


@dataclass
class Measurement:
    """One case's timed rounds across the session, and how to time it again.

    ``time_pass`` builds what the case needs (untimed), warms it up, times one
    pass of ``rounds_per_pass`` rounds of K steps and checks the barrier; it
    raises AssertionError (or the case's own error) when a check fails.
    ``finish`` adds the case's own figures to extra_info once every pass is in;
    ``close`` releases what the case kept between passes.
    """

    case_id: str
    benchmark: object  # the pytest-benchmark fixture of the case's test
    steps_per_round: int
    rounds_per_pass: int
    time_pass: Callable[[], list[float]] | None  # None: the case is timed in one pass only
    finish: Callable[[Measurement, Schedule], dict] | None = None
    close: Callable[[], object] | None = None  # releases what time_pass keeps (a group of ranks)
    # The same pass as JSON (bench.harness.later_pass_job), for a pass worker in another process;
    # None: time_pass runs in this process (a data-parallel case, whose ranks stay up between passes).
    job: dict | None = None
    pass_pids: dict[int, int] = field(default_factory=dict)  # the process that took each pass
    pass_probe_s: dict[int, float] = field(
        default_factory=dict
    )  # the machine's probe before each pass (bench.steadiness)
    round_times: list[float] = field(default_factory=list)
    round_pass: list[int] = field(default_factory=list)
    failure: str | None = None
    remeasured: bool = False
    _stats: object = None

    def start(self, times: list[float], probe_s: float | None = None) -> None:
        """Record pass 1 and give pytest-benchmark a per-step record of the case (one step = round / K)."""
        self._stats = self.benchmark._make_stats(self.steps_per_round)
        mark_used(self.benchmark)
        self.add_pass(1, times, os.getpid(), probe_s)

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
        figures = self.figures
        return {int(p): m / self.steps_per_round for p, m in zip(figures.pass_ids, figures.pass_medians)}


class PassProcesses:
    """The worker process of the pass under way (bench.pass_worker): started for its first case, again if it dies.

    ``options`` are the backends' command-line options, as the session parsed
    them, so a worker configures every backend as the session did.
    """

    def __init__(self, options: dict):
        self.options = options
        self.current: PassWorker | None = None
        self.started: list[int] = []  # pids of the workers of this pass

    def worker(self) -> PassWorker:
        """The pass's live worker, started now if there is none."""
        if self.current is None or not self.current.alive:
            self.close()
            self.current = PassWorker(self.options)
            self.started.append(self.current.pid)
        return self.current

    def close(self) -> None:
        """End the pass's worker."""
        if self.current is not None:
            self.current.close()
            self.current = None


@dataclass
class Schedule:
    """Every case measured in this session, in the order their tests ran.

    ``worker_options`` set: each later pass runs in a new worker process
    (bench.pass_worker), given these backend options; None: every pass runs in
    this process.
    """

    passes: int = 3
    measurements: list[Measurement] = field(default_factory=list)
    timing_s: float = 0.0  # seconds of the session so far (from its start), when the later passes began or ended
    notes: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    worker_options: dict | None = None

    def add(self, measurement: Measurement) -> None:
        """Register a case whose pass 1 is done."""
        self.measurements.append(measurement)

    def by_id(self, case_id: str) -> Measurement | None:
        """The measurement of a case, if it ran in this session and did not fail."""
        for measurement in self.measurements:
            if measurement.case_id == case_id and measurement.failure is None:
                return measurement
        return None

    def close_all(self) -> None:
        """Release what every case kept for its later passes (safe to call more than once)."""
        for measurement in self.measurements:
            if measurement.close is not None:
                close, measurement.close = measurement.close, None
                close()

    def _time_again(self, measurement: Measurement, pass_id: int, processes: PassProcesses | None) -> None:
        try:
            if processes is not None and measurement.job is not None:
                worker = processes.worker()
                times, probe_s = worker.time(measurement.job, measurement.pass_cost_s)
                pid = worker.pid
            else:
                probe_s = probe_seconds()
                times, pid = measurement.time_pass(), os.getpid()
            measurement.add_pass(pass_id, times, pid, probe_s)
        except Exception as error:  # noqa: BLE001 - any failure of a check drops the case, with its reason
            measurement.failure = f"pass {pass_id}: {error}"
            measurement.benchmark.has_error = True  # a case that fails a check is not saved

    def _one_pass(self, measurements: list[Measurement], pass_id: int, budget_s: float | None = None):
        """Time each measurement once more, in order, in one new worker process (or here).

        With a budget, a case whose pass would take the pass past it is skipped.
        Returns the measurements timed and the pids of the pass's workers.
        """
        processes = PassProcesses(self.worker_options) if self.worker_options is not None else None
        start, timed = time.perf_counter(), []
        try:
            for measurement in measurements:
                if measurement.failure is not None:
                    continue
                if budget_s is not None and time.perf_counter() - start + measurement.pass_cost_s > budget_s:
                    continue
                self._time_again(measurement, pass_id, processes)
                timed.append(measurement)
        finally:
            if processes is not None:
                processes.close()
        return timed, (processes.started if processes is not None else [])

    def run_later_passes(self, progress: Callable[[str], None] = lambda line: None, should_stop=lambda: False) -> None:
        """Passes 2..P over every case that can be timed again, in the order of pass 1."""
        self.timing_s = time.perf_counter() - self.started
        again = [m for m in self.measurements if m.time_pass is not None]
        for pass_id in range(2, self.passes + 1):
            if not again or should_stop():
                return
            start = time.perf_counter()
            _, pids = self._one_pass(again, pass_id)
            timed = sum(m.failure is None for m in again)
            where = f" (worker pid {', '.join(map(str, pids))})" if pids else ""
            progress(f"pass {pass_id} of {self.passes}: {timed} cases in {time.perf_counter() - start:.0f} s{where}")
        self.timing_s = time.perf_counter() - self.started
        self._remeasure(progress)
        self.close_all()
        steadiness = self.steadiness()
        if steadiness is not None:
            self.notes.append(describe_steadiness(steadiness))
            progress(self.notes[-1])

    def steadiness(self) -> dict | None:
        """The machine's probe over every pass of the session (bench.steadiness), or None without probes."""
        return steadiness_summary([s for m in self.measurements for s in m.pass_probe_s.values()])

    def _remeasure(self, progress: Callable[[str], None]) -> None:
        """Time each case whose passes disagree once more, while the time allows."""
        flagged = [m for m in self.measurements if m.time_pass is not None and m.failure is None and m.figures.disagree]
        if not flagged:
            return
        start = time.perf_counter()
        done, _ = self._one_pass(flagged, self.passes + 1, budget_s=REMEASURE_SHARE * self.timing_s)
        for measurement in done:
            measurement.remeasured = measurement.failure is None
        settled = sum(1 for m in done if m.failure is None and not m.figures.unstable)
        note = (
            f"{len(flagged)} case(s) whose passes disagreed (more than {PASS_TOLERANCE:.0%} apart) after {self.passes} "
            f"passes; {len(done)} re-measured once at the end, {settled} of them now stable"
        )
        if len(done) < len(flagged):
            note += f"; {len(flagged) - len(done)} left as they were (re-measuring is held to {REMEASURE_SHARE:.0%} of the session)"
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
            k = measurement.steps_per_round
            info.update(
                schema_version=SCHEMA_VERSION,
                steps_per_round=k,
                round_times_s=list(measurement.round_times),
                round_pass=list(measurement.round_pass),
                passes=figures.passes,
                pass_pids=[measurement.pass_pids.get(int(p)) for p in figures.pass_ids],
                pass_probe_s=[measurement.pass_probe_s.get(int(p)) for p in figures.pass_ids],
                rounds_per_pass=measurement.rounds_per_pass,
                pass_steps_per_s=[k / m for m in figures.pass_medians],
                pass_spread=figures.pass_spread,
                remeasured=measurement.remeasured,
                unstable=figures.unstable,
            )
            info.update(throughput(info, figures.median))
            if measurement.finish is not None:
                info.update(measurement.finish(measurement, self))

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
