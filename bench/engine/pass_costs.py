"""What one more pass of each case cost the session outside its rounds: Kalibera and Jones' cost of a pass.

Their rule for the rounds a pass (bench.stats.components) weighs the cost of a round against
the cost of a pass, and a pass of a case costs far more than the phases its worker reports:
the worker's start, the messages, the warm-up and the probe count too. So the cost is measured
from the session's side, around each unit of a later pass (bench.engine.passes: a case, or an
interleaved neighbourhood), as its wall time less the rounds and blog runs it timed. A worker
starts once for the cases of its group (bench.engine.isolation), so those cases share their
costs: each is given the mean over the cases of its worker in the pass. Saved with each case as
``pass_overhead_s`` (the median over its later passes).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import numpy as np


class PassCosts:
    """The cost of one more pass of each case of a pass, outside its rounds (the module's doc): units in, each
    case's share appended to its ``overhead_s`` at the end of the pass (settle). `schedule` is the session's
    bench.engine.passes.Schedule (only its ``phase_s``, the seconds spent so far by phase, is read), and
    `timed_phases` the phases its timer measured (bench.engine.passes.TIMED_PHASES)."""

    def __init__(self, schedule, timed_phases: tuple[str, ...], clock: Callable[[], float] = time.perf_counter):
        self.schedule, self.timed_phases, self.clock = schedule, timed_phases, clock
        self.by_worker: dict[object, list[tuple[object, float]]] = {}

    def _timed_s(self) -> float:
        return sum(self.schedule.phase_s.get(name, 0.0) for name in self.timed_phases)

    @contextlib.contextmanager
    def unit(self, unit: list):
        """Time one unit of the pass and share its cost among its cases."""
        start, timed_before = self.clock(), self._timed_s()
        try:
            yield
        finally:
            spent = self.clock() - start - (self._timed_s() - timed_before)
            for measurement in unit:
                key = measurement.job.group if measurement.job is not None else id(measurement)
                self.by_worker.setdefault(key, []).append((measurement, max(spent, 0.0) / len(unit)))

    def settle(self) -> None:
        """Give each case that was timed the mean cost of its worker's cases in this pass."""
        for members in self.by_worker.values():
            mean = float(np.mean([cost for _, cost in members]))
            for measurement, _ in members:
                if measurement.failure is None:
                    measurement.overhead_s.append(mean)
        self.by_worker.clear()
