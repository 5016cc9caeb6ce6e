"""What each model costs per step: floating-point operations and bytes moved.

Counts are algorithmic (the same for every backend and variant), so GFLOP/s and
GB/s compare implementations of the same work. Bytes are the minimum traffic of
a full-batch step: the design matrix read twice (X w, then X^T r) plus the
vectors; they set the memory-bound floor of the step.
"""

from __future__ import annotations

LEARNING_RATE = 0.01  # the blog's
MODELS = ("linear", "logistic")
BLOG_MODELS = ("linear", "logistic")  # the models the blog timed

# Element-wise work per example beyond the two mat-vecs: residual (1) for
# linear; sigmoid (~4: neg, exp, add, divide) plus residual for logistic.
_PER_EXAMPLE_FLOPS = {"linear": 1, "logistic": 5}


def flops_per_step(model: str, n: int, d: int, barrier: str) -> int:
    """Floating-point operations of one step (and its sync read-back, if any)."""
    flops = 4 * n * d + _PER_EXAMPLE_FLOPS[model] * n + 3 * d  # Xw, X^T r, scale+update
    if barrier == "sync":
        flops += 2 * n * d + 2 * n  # X w again, compare/square and mean
    return flops


def bytes_per_step(model: str, n: int, d: int, itemsize: int, barrier: str) -> int:
    """Bytes one step must move at least: X twice, y and the residual, the weights."""
    moved = (2 * n * d + 3 * n + 4 * d) * itemsize
    if barrier == "sync":
        moved += (n * d + 2 * n) * itemsize
    return moved
