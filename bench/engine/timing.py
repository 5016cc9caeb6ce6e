"""The one timing loop and the one calibration of K (docs/measurement.md, "How a case is timed", steps 3 and 4).

Only what runs inside `run_round` is timed; whatever must happen between
rounds (a bare-loop round, the blog's reset to the start weights) runs in
`before_round`, outside the timer. The main job, the release runner, the
pinning tool and the data-parallel runner all time rounds here.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def timed_run(run: Callable[[int], object], steps: int) -> float:
    """Seconds of one call run(steps)."""
    start = time.perf_counter()
    run(steps)
    return time.perf_counter() - start


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


def calibrate(run: Callable[[int], object], target_s: float, max_steps: int = 1_000_000) -> int:
    """Smallest K (steps per round) whose round run(K) takes about `target_s`; doubles as warm-up (calibrate_round)."""
    return calibrate_round(run, target_s, max_steps)[0]


def calibrate_round(run: Callable[[int], object], target_s: float, max_steps: int = 1_000_000) -> tuple[int, float]:
    """(K, seconds a round of K steps takes by the calibration's own runs); the runs double as warm-up.

    A K whose run is far from the target is timed once (a hiccup there only
    slows the approach); a run that would end the search is timed again and
    the faster counts, so one hiccup of a busy machine cannot stop it at a K
    that is far too small. So the search always ends with two runs within an
    eighth of the round it returns (or of K's own round).
    """
    steps_per_round = 1
    while True:
        elapsed = timed_run(run, steps_per_round)
        if elapsed * 8 >= target_s:  # near or past the target: this run decides, so take the better of two
            elapsed = min(elapsed, timed_run(run, steps_per_round))
        if elapsed >= target_s or steps_per_round >= max_steps:
            return steps_per_round, elapsed
        if elapsed * 8 < target_s:
            steps_per_round = min(max_steps, steps_per_round * 4)  # far off: approach quickly
        else:
            planned = max(1, min(max_steps, round(steps_per_round * target_s / max(elapsed, 1e-9))))
            return planned, elapsed * planned / steps_per_round


def warm_up(run: Callable[[int], object], steps_each: int, min_steps: int, max_s: float) -> float:
    """Run `steps_each` steps at a time until at least `min_steps` ran or `max_s` passed; at least once.

    Returns the seconds of the last run (a warm-up round also says how long a round lasts).
    """
    last_s = timed_run(run, steps_each)
    done, spent = steps_each, last_s
    while done < min_steps and spent < max_s:
        last_s = timed_run(run, steps_each)
        done, spent = done + steps_each, spent + last_s
    return last_s
