"""What the release runner's self-test and the isolation proof plant in a job, on purpose; never a production job.

A job (bench.engine.jobs.Job) carries them in one record of its own, ``plants``,
which is None in every job of the main job and of a release comparison, so the
production job record knows nothing of them:

- factor: every timed round is slowed to this many times its own work (busy CPU
  time before the steps, bench.engine.runner.CaseRun._work): a planted regression;
- leave_behind ("spin", "memory"): state left in the worker after the pass, which
  the leftover check must catch (bench.engine.isolation);
- broken ("weights", "barrier"): a case broken so that its checks must fail, and a
  gate must call it `broken`. "weights": the trainer reports weights 1% off what it
  computed, as a kernel with a wrong gradient would; the correctness check after
  timing must fail. "barrier": the round returns before its work is done, as an MLX
  round that forgot its mx.eval (MLX's linear models at full batch, whose lazy step
  this replaces); the barrier check after timing must fail.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass

import numpy as np

KINDS = ("weights", "barrier")
LEFT_BEHIND = ("spin", "memory")
LEFTOVER_MEMORY_BYTES = 1_536 * 2**20  # "memory": this much held and touched after the pass
# State that leave_behind puts into this process and that nothing ever releases (the isolation proof).
_LEFT_BEHIND: list = []


@dataclass(frozen=True)
class Plants:
    """The plants of one job (see the module's doc); a job without any has None, not an empty record."""

    factor: float = 1.0
    leave_behind: str | None = None
    broken: str | None = None

    def __post_init__(self):
        if self.leave_behind not in (None, *LEFT_BEHIND):
            raise ValueError(f"unknown leftover plant {self.leave_behind!r}; known: {', '.join(LEFT_BEHIND)}")
        if self.broken not in (None, *KINDS):
            raise ValueError(f"unknown broken plant {self.broken!r}; known: {', '.join(KINDS)}")

    @classmethod
    def of(cls, factor: float = 1.0, leave_behind: str | None = None, broken: str | None = None) -> Plants | None:
        """The record for these plants, or None where there is none (a production job)."""
        if factor == 1.0 and leave_behind is None and broken is None:
            return None
        return cls(factor, leave_behind, broken)

    def to_json(self) -> dict:
        """The record as JSON-ready data."""
        return asdict(self)


def break_trainer(trainer, kind: str) -> None:
    """Break `trainer` in place in the way `kind` names."""
    if kind == "weights":
        right = trainer.weights
        trainer.weights = lambda: right() * 1.01
    elif kind == "barrier":
        if not all(hasattr(trainer, name) for name in ("step", "X", "y", "w")) or getattr(trainer, "batch_rows", None):
            raise ValueError("the barrier plant needs an MLX linear trainer at full batch")

        def run_without_barrier(steps: int, stop_accuracy: float | None = None) -> int:
            w = trainer.w
            for _ in range(steps):
                w = trainer.step(w, trainer.X, trainer.y)  # lazy: a graph, never evaluated here
            trainer.w = w
            return steps

        trainer.run = run_without_barrier
    else:
        raise ValueError(f"unknown broken plant {kind!r}; known: {', '.join(KINDS)}")


def factor_of(plants: Plants | None) -> float:
    """The slowdown a job's rounds are planted with (1.0: none)."""
    return 1.0 if plants is None else plants.factor


def leftover_of(plants: Plants | None) -> str | None:
    """The state a job's plants leave in its process after it (the isolation proof), if any."""
    return None if plants is None else plants.leave_behind


def leave_behind(what: str | None) -> None:
    """Leave state in this process that nothing releases: a spinning thread or held memory (the isolation proof)."""
    if what is None:
        return
    if what == "spin":

        def spin():
            while True:  # busy, holding the interpreter's lock between switches, as a runaway thread would
                pass

        threading.Thread(target=spin, name="left-behind-spin", daemon=True).start()
    elif what == "memory":
        held = np.ones(LEFTOVER_MEMORY_BYTES // 8)  # ones, not zeros: every page is touched
        _LEFT_BEHIND.append(held)
    else:
        raise ValueError(f"leave_behind: unknown state {what!r} (spin or memory)")
