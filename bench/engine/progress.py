"""How far a long run has come and how long it has left: the one estimate every scheduler prints.

A run is stages of equal work (the main job's passes over its cases, the release runner's
sessions over its cases): the time left is the stage's pace so far times what is left of
it, plus as many whole stages as follow. Lines come at most every `every_s` seconds, so a
fast run stays quiet and a slow one says it is alive.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


def time_left(done: int, total: int, spent_s: float, stages_after: int = 0) -> tuple[float, float]:
    """(seconds left in this stage, seconds left in it and in `stages_after` more like it), at this stage's pace."""
    per_unit = spent_s / max(done, 1)
    left = per_unit * (total - done)
    return left, left + per_unit * total * max(stages_after, 0)


@dataclass
class Progress:
    """A stage's progress: units done of `total`, a line due at most every `every_s` seconds."""

    total: int
    every_s: float
    started: float = field(default_factory=time.perf_counter)
    done: int = 0
    _last: float = field(init=False)

    def __post_init__(self) -> None:
        self._last = self.started

    def step(self, units: int = 1) -> bool:
        """Count units done; True when a line is due (not after the last unit: the stage's own line follows)."""
        self.done += units
        now = time.perf_counter()
        if now - self._last >= self.every_s and self.done < self.total:
            self._last = now
            return True
        return False

    @property
    def spent_s(self) -> float:
        """Seconds since the stage began."""
        return time.perf_counter() - self.started

    def left(self, stages_after: int = 0) -> tuple[float, float]:
        """time_left of this stage so far."""
        return time_left(self.done, self.total, self.spent_s, stages_after)
