"""What each model costs per step: floating-point operations and bytes moved.

Counts are algorithmic (the same for every backend and variant), so GFLOP/s and
GB/s compare implementations of the same work. Bytes are the minimum traffic of
a step: the batch's rows of the design matrix read twice (forward, then the
weight gradient), the per-example vectors, the weights; a mini-batch step also
gathers its rows (read and write b x d). They set the memory-bound floor.
The working set (the distinct bytes a run of steps touches) says which cache
level that traffic comes from.
"""

from __future__ import annotations

import math

import numpy as np

LEARNING_RATE = 0.01  # the blog's
MODELS = ("linear", "logistic", "mlp")
BLOG_MODELS = ("linear", "logistic")  # the models the blog timed

# Element-wise work per example beyond the two mat-vecs: residual (1) for
# linear; sigmoid (~4: neg, exp, add, divide) plus residual for logistic.
_PER_EXAMPLE_FLOPS = {"linear": 1, "logistic": 5}


def flops_per_step(model: str, b: int, d: int, barrier: str, hidden: int = 0, classes: int = 10) -> int:
    """Floating-point operations of one step on a batch of b rows (and its sync read-back)."""
    if model == "mlp":
        h, c = hidden, classes
        params = h * d + h + c * h + c
        # forward 2bdh + 2bhc, backward 2bhc (dW2) + 2bhc (dh) + 2bdh (dW1),
        # bias/ReLU/mask 4bh, softmax cross-entropy and its gradient ~8bc, update 2P
        return 4 * b * d * h + 6 * b * h * c + 4 * b * h + 8 * b * c + 2 * params
    flops = 4 * b * d + _PER_EXAMPLE_FLOPS[model] * b + 3 * d  # Xw, X^T r, scale+update
    if barrier == "sync":
        flops += 2 * b * d + 2 * b  # X w again, compare/square and mean
    return flops


def bytes_per_step(
    model: str, b: int, d: int, itemsize: int, barrier: str, hidden: int = 0, classes: int = 10, gathered: bool = False
) -> int:
    """Bytes one step must move at least; `gathered` adds the mini-batch row gather."""
    gather = (2 * b * d + b) * itemsize if gathered else 0
    if model == "mlp":
        h, c = hidden, classes
        params = h * d + h + c * h + c
        # X batch twice, hidden activations ~4 passes, logits ~4 passes, weights read/grad/update 3x
        return (2 * b * d + 4 * b * h + 4 * b * c + 3 * params) * itemsize + gather
    moved = (2 * b * d + 3 * b + 4 * d) * itemsize
    if barrier == "sync":
        moved += (b * d + 2 * b) * itemsize
    return moved + gather


def working_set_bytes(
    model: str, n: int, b: int, d: int, itemsize: int, hidden: int = 0, classes: int = 10, gathered: bool = False
) -> int:
    """Distinct bytes a run of steps keeps touching: the whole data set and what each step reads and writes.

    This, not bytes_per_step, says which cache level a case's data lives in
    (the cache-aware roofline, bench.stats.roofline): a full-batch step reads
    all of X, y and w every time; a mini-batch step reads b rows, but step t
    takes batch t mod n/b, so over an epoch it too touches all of X and y, plus
    its row indices (int32) and the gathered batch.
    """
    gather = (b * d + b) * itemsize + 4 * n if gathered else 0
    if model == "mlp":
        h, c = hidden, classes
        params = h * d + h + c * h + c
        # X, int32 labels; weights and their gradients; hidden activations and logits with their gradients
        return n * d * itemsize + 4 * n + (2 * params + 2 * b * h + 2 * b * c) * itemsize + gather
    # X, y; w and its gradient; the per-example predictions and residuals
    return (n * d + n + 2 * d + 2 * b) * itemsize + gather


def working_set_of(fields) -> int:
    """working_set_bytes of a saved case (its extra_info fields, or a report row)."""
    n = int(fields["n_examples"])
    b = _count(fields.get("batch_size")) or n  # no batch size saved: full batch
    return working_set_bytes(
        str(fields["model"]),
        n,
        b,
        int(fields["n_features"]),
        np.dtype(str(fields["dtype"])).itemsize,  # by the name the case saved
        hidden=_count(fields.get("hidden")),
        gathered=b < n,
    )


def _count(value) -> int:
    """A saved count, 0 where it is missing (None or a table's NaN)."""
    return 0 if value is None or (isinstance(value, float) and math.isnan(value)) else int(value)
