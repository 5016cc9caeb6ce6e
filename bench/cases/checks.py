"""Checks run after every timed kernel (docs/measurement.md, "Measurement rules", rule 5): right answer, real barrier.

A fast kernel that computes the wrong thing fails `check_correctness`; a
round whose barrier was skipped (an MLX round that timed graph building, a
JAX or CUDA round that returned before its device finished) fails
`check_barrier`.
"""

from __future__ import annotations

import time

import numpy as np

from bench.backends import get
from bench.cases.case import Case
from bench.cases.datasets import Problem, flatten_params
from bench.cases.reference_cache import cached
from reference import reference_weights

CHECK_STEPS = 10
# A full-batch case's steps all run the same kernel on the same data: its first step checks the gradient,
# the next two that the weights carry from step to step, and seven more repeat them at up to 0.9 s a case
# (an MLX step at 100,000 x 100 or 10,000 x 1,000), a quarter of the main job's checks. A mini-batch case
# keeps CHECK_STEPS, which take it across batches (and across its first epoch at 1,000 examples in 256s).
FULL_BATCH_CHECK_STEPS = 3
# Two figures are checked against the float64 reference after the check's steps.
# 1. The weights: relative L2 error. float32 kernels accumulate ~sqrt(n) * 6e-8
#    rounding per mat-vec (about 1e-6 at n = 1e5); 1e-4 leaves room for
#    reduction-order differences. float64 must agree almost to the last bit.
ERROR_BOUNDS = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10}
# 2. The update: ||w - w_ref|| / ||w_ref - w_start||. Where the weights move
#    little in 10 steps (an MLP's move ~0.5%), a gradient a few percent wrong
#    still passes check 1; relative to the move it cannot. Seen on this suite's
#    grid: at most 2e-5 for float32 (MLP weights' own rounding), 1e-14 for float64.
UPDATE_ERROR_BOUNDS = {np.dtype(np.float32): 1e-3, np.dtype(np.float64): 1e-9}
# GPUs may compute float32 matmuls in TF32 (MLX's CUDA backend by default, unless
# MLX_ENABLE_TF32=0; PyTorch when allow_tf32 is set; JAX's default precision):
# products keep 10 mantissa bits, so an MLP's update drifts by up to ~1.3% from
# float32's (seen on an H100). Those cases are checked, and labelled, as "tf32"
# (Backend.matmul_precision): the bounds still fail any wrong gradient, but not
# one a few percent off.
TF32_BOUNDS = (1e-3, 5e-2)  # (weights, update)

# A round is "unbarriered" when finishing its pending work takes more than this
# share of the round itself, and more than the absolute floor (an already
# evaluated array settles in microseconds).
BARRIER_PENDING_SHARE = 0.1
BARRIER_PENDING_FLOOR_S = 50e-6
BARRIER_TRIES = 3


class CorrectnessError(AssertionError):
    """The kernel's weights disagree with the float64 reference."""


class BarrierError(AssertionError):
    """The kernel returned before its work was done: its round time is not training time."""


def relative_error(w: np.ndarray, w_ref: np.ndarray) -> float:
    """||w - w_ref|| / ||w_ref||, NaN-propagating."""
    return float(np.linalg.norm(w - w_ref) / max(np.linalg.norm(w_ref), np.finfo(np.float64).tiny))


def expected_weights(problem: Problem, lr: float, steps: int) -> np.ndarray:
    """The float64 reference's weights (flattened) after `steps` steps of the problem's own schedule.

    Kept in the problem's memo, so it lives exactly as long as the problem does, and
    in the session's reference cache (bench.cases.reference_cache), so that the
    session's other workers read it instead of computing it again.
    """
    key = ("expected_weights", lr, steps)
    if key not in problem.memo:

        def compute() -> np.ndarray:
            if problem.model == "mlp":
                from reference.mlp import mlp_reference_params

                params = mlp_reference_params(problem.X, problem.y, problem.start, lr, steps, problem.batches)
                return flatten_params(params)
            return reference_weights(problem.model, problem.X, problem.y, problem.w0, lr, steps, problem.batches)

        name = (
            f"{problem.model}-n{problem.n_examples}-d{problem.n_features}-b{problem.batch_size}-h{problem.hidden}"
            f"-lr{lr!r}-s{steps}"
        )
        expected = cached(name, compute)
        if expected.shape != problem.start_vector().shape:  # a file that is not this problem's: never trusted
            expected = compute()
        problem.memo[key] = expected
    return problem.memo[key]


def matmul_precision(case: Case) -> str:
    """The precision the case's matmuls really run in: its dtype, or "tf32" (its backend says)."""
    return get(case.backend).matmul_precision(case)


def check_steps(case: Case) -> int:
    """How many steps a case's correctness check runs: FULL_BATCH_CHECK_STEPS for full batch, else CHECK_STEPS."""
    return FULL_BATCH_CHECK_STEPS if not case.batch_size else CHECK_STEPS


def check_correctness(trainer, case: Case, problem: Problem, lr: float, steps: int | None = None, run=None) -> dict:
    """Run `steps` steps (check_steps) from the shared start and compare with the float64 reference; raise if off.

    run: what runs the steps (run(steps)) in place of trainer.run, such as the backend's memory probe around it.
    """
    steps = check_steps(case) if steps is None else steps
    trainer.reset()
    (run or trainer.run)(steps)
    return compare_with_reference(trainer, case, problem, lr, steps)


def compare_with_reference(trainer, case: Case, problem: Problem, lr: float, steps: int) -> dict:
    """The trainer's weights, `steps` steps from the shared start, against the float64 reference's; raise if off."""
    weights = trainer.weights()
    expected = expected_weights(problem, lr, steps)
    error = relative_error(weights, expected)
    start = problem.start_vector()
    update_error = relative_error(weights - start, expected - start)
    precision = matmul_precision(case)
    if precision == "tf32":
        bound, update_bound = TF32_BOUNDS
    else:
        bound, update_bound = ERROR_BOUNDS[case.dtype], UPDATE_ERROR_BOUNDS[case.dtype]
    if not (error <= bound and update_error <= update_bound):  # also catches NaN
        raise CorrectnessError(
            f"{case.case_id(problem.size)}: after {steps} step{'s' if steps != 1 else ''} the weights differ from the float64 "
            f"reference by {error:.3g} (bound {bound:g}) and their update by {update_error:.3g} (bound {update_bound:g})"
        )
    return {
        "check_steps": steps,
        "matmul_precision": precision,
        "max_rel_error": error,
        "error_bound": bound,
        "update_rel_error": update_error,
        "update_error_bound": update_bound,
    }


def check_settled(trainer, case: Case, steps: int, last_round_s: float) -> float:
    """After a timed round: finishing what it left pending must take no time; if it did, check_barrier decides.

    Saves a round over check_barrier where the round just timed already shows
    its barrier held; returns the pending time seen (seconds).
    """
    pending = trainer.settle()
    if pending <= max(BARRIER_PENDING_SHARE * last_round_s, BARRIER_PENDING_FLOOR_S):
        return pending
    return check_barrier(trainer, case, steps)


def check_barrier(trainer, case: Case, steps: int) -> float:
    """Time a run, then time finishing what it left pending; raise if a barrier is missing.

    Returns the smallest pending time seen (seconds). A hiccup of the machine
    can inflate one measurement, so only a miss on every try fails.
    """
    pending_times = []
    for _ in range(BARRIER_TRIES):
        start = time.perf_counter()
        trainer.run(steps)
        ran = time.perf_counter() - start
        pending = trainer.settle()
        pending_times.append(pending)
        if pending <= max(BARRIER_PENDING_SHARE * ran, BARRIER_PENDING_FLOOR_S):
            return pending
    raise BarrierError(
        f"{case.id}: {steps} steps returned with work still pending "
        f"({min(pending_times) * 1e3:.3g} ms to finish after a {ran * 1e3:.3g} ms run); "
        "the round did not end in its evaluation barrier"
    )
