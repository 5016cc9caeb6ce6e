"""A bare time.perf_counter loop over a trainer's own kernel, to price the harness.

The suite times `trainer.run(K)` through pytest-benchmark; this module times the
same step function written out as the plain loop a user would write, in the
same process. The harness runs one bare round before each timed round (in
pytest-benchmark's untimed setup), so drift of the machine during the case
hits both alike. Their ratio (`harness_overhead_ratio`, median suite round time
over median bare round time) shows what the harness itself costs.
"""

from __future__ import annotations

import time

import numpy as np


def _numpy_round(trainer, steps: int) -> float:
    X, y, y_bool, w, lr, inv_n, grad = trainer.X, trainer.y, trainer.y_bool, trainer.w, trainer.lr, trainer.inv_n, trainer.grad
    metric = trainer.sync_metric
    with np.errstate(over="ignore"):
        start = time.perf_counter()
        if metric is None:
            for _ in range(steps):
                w = w - lr * grad(X, y, w, inv_n)
        else:
            for _ in range(steps):
                w = w - lr * grad(X, y, w, inv_n)
                metric(X, y, y_bool, w)
        elapsed = time.perf_counter() - start
    trainer.w = w
    return elapsed


def _mlx_round(trainer, steps: int) -> float:
    import mlx.core as mx

    X, y, y_bool, w, step = trainer.X, trainer.y, trainer.y_bool, trainer.w, trainer.step
    with mx.stream(trainer.device):
        start = time.perf_counter()
        if trainer.barrier == "step":
            for _ in range(steps):
                w = step(w, X, y)
                mx.eval(w)
        elif trainer.barrier == "round":
            for _ in range(steps):
                w = step(w, X, y)
            mx.eval(w)
        else:
            for _ in range(steps):
                w = step(w, X, y)
                trainer.sync_metric(w, X, y, y_bool).item()
            mx.eval(w)
        elapsed = time.perf_counter() - start
    trainer.w = w
    return elapsed


def bare_round_seconds(trainer, steps: int) -> float:
    """Seconds of one bare loop of `steps` steps of the trainer's kernel."""
    one_round = _mlx_round if hasattr(trainer, "step") else _numpy_round
    return one_round(trainer, steps)
