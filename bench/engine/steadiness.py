"""How steady the machine itself was during a session: one fixed kernel, timed before every pass of every case.

A case's figures can only agree across runs as well as the machine's own
speed does. On a shared VM that speed moves by tens of percent for seconds to
minutes at a time (neighbours, the host's clock), and a case cannot tell that
from its own rounds. So before each pass of each case (in whichever process
takes the pass) the suite times a probe: the same small NumPy kernel, on the
same data, every time. Each case saves its passes' probe times
(``pass_probe_s``), and the session saves their summary in
``machine_info["machine_steadiness"]``: how far the machine's speed moved
while the session ran, a floor under how well any two of its figures can agree.
"""

from __future__ import annotations

import time
from functools import lru_cache

import numpy as np

PROBE_ROWS, PROBE_COLUMNS = 1_000, 100  # float32 data: 400 KB, cache-resident like most of the grid's small cases
PROBE_STEPS = 40  # least-squares gradient steps per probe: about 1-2 ms
PROBE_KERNEL = f"NumPy float32 least-squares gradient step, {PROBE_ROWS}x{PROBE_COLUMNS}, {PROBE_STEPS} steps"


def _probe_run(X: np.ndarray, y: np.ndarray) -> None:
    w = np.zeros(PROBE_COLUMNS, dtype=np.float32)
    for _ in range(PROBE_STEPS):
        w = w - 1e-4 * (X.T @ (X @ w - y))


@lru_cache(maxsize=1)
def _probe_data() -> tuple[np.ndarray, np.ndarray]:
    """The probe's data, built once per process, with the kernel run once on them (its first-call costs)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((PROBE_ROWS, PROBE_COLUMNS), dtype=np.float32)
    y = rng.standard_normal(PROBE_ROWS, dtype=np.float32)
    _probe_run(X, y)
    return X, y


def probe_seconds() -> float:
    """Seconds of one probe run (the first call also builds and warms up its data, untimed)."""
    X, y = _probe_data()
    start = time.perf_counter()
    _probe_run(X, y)
    return time.perf_counter() - start


def summary(probes_s: list[float]) -> dict | None:
    """The session's probe times summarised: median, 10th and 90th percentiles, and their spread."""
    if not probes_s:
        return None
    p10, median, p90 = np.percentile(probes_s, [10, 50, 90])
    return {
        "kernel": PROBE_KERNEL,
        "probes": len(probes_s),
        "median_s": float(median),
        "p10_s": float(p10),
        "p90_s": float(p90),
        "spread": float((p90 - p10) / median),  # (p90 - p10) / median of the probe's time
    }


def describe(steadiness: dict) -> str:
    """One line for the terminal."""
    return (
        f"machine steadiness: the probe ({steadiness['kernel']}) timed before each of {steadiness['probes']} passes "
        f"took {steadiness['median_s'] * 1e3:.2f} ms at the median, {steadiness['p10_s'] * 1e3:.2f}-"
        f"{steadiness['p90_s'] * 1e3:.2f} ms from the 10th to the 90th percentile: the machine's own speed moved by "
        f"{steadiness['spread']:.0%} over the session"
    )
