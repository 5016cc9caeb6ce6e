"""Backends: one module per library, each building a Trainer with the same API.

A Trainer owns its copy of one problem and its weights:
  reset()            back to the shared start point w0 (outside any timer)
  run(steps, stop_accuracy=None) -> int
                     `steps` SGD steps ending in the case's barrier; with
                     stop_accuracy, stop early once the sync check passes it
                     (the blog's early stopping); returns the steps done
  settle() -> float  seconds to finish any work the last run left pending
                     (0 for an eager backend); see bench.harness.check_barrier
  weights()          the current weights as a float64 NumPy vector
"""

from __future__ import annotations

import contextlib
from typing import Protocol

import numpy as np
from threadpoolctl import threadpool_limits

from bench.cases import Case
from bench.datasets import Problem


class Trainer(Protocol):
    def reset(self) -> None: ...
    def run(self, steps: int, stop_accuracy: float | None = None) -> int: ...
    def settle(self) -> float: ...
    def weights(self) -> np.ndarray: ...


def thread_limits(case: Case):
    """Context a whole case runs in: NumPy's BLAS held to one thread for `analytic-1thread`.

    It depends on the case alone, so the harness enters it once around everything
    the case runs (calibration, rounds, checks), whichever trainers it builds.
    """
    if case.backend == "numpy" and case.variant == "analytic-1thread":
        return threadpool_limits(limits=1, user_api="blas")
    return contextlib.nullcontext()


def runs_serially(case: Case, mlx_blas: str = "bundled") -> bool:
    """Whether the case hands its work between threads one at a time, so one CPU serves it best (bench.affinity).

    MLX's CPU backend runs its kernels one at a time on its stream thread,
    handed over from the Python thread, and its bundled BLAS is single-threaded
    (another BLAS, --mlx-blas, may not be). NumPy computes on the calling
    thread: pinning it saves no hand-off (and in one trial on this VM, pinned
    to one given CPU it ran slower than where the scheduler put it), so it is
    left free.
    """
    return case.backend == "mlx" and case.device == "cpu" and mlx_blas == "bundled"


def make_trainer(case: Case, problem: Problem, lr: float) -> Trainer:
    """Build the trainer for a case; data conversion happens here, before any timer."""
    if case.model == "mlp":
        if case.backend == "numpy":
            from bench.backends.numpy_mlp import NumpyMlpTrainer

            return NumpyMlpTrainer(case, problem, lr)
        if case.backend == "mlx":
            from bench.backends.mlx_mlp import MlxMlpTrainer

            return MlxMlpTrainer(case, problem, lr)
        raise ValueError(f"unknown backend {case.backend!r}")
    if case.backend == "numpy":
        from bench.backends.numpy_backend import NumpyTrainer

        return NumpyTrainer(case, problem, lr)
    if case.backend == "mlx":
        from bench.backends.mlx_backend import MlxTrainer

        return MlxTrainer(case, problem, lr)
    raise ValueError(f"unknown backend {case.backend!r}")
