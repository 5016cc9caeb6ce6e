"""NumPy linear and logistic regression: hand-written gradients, computed eagerly.

Variants: `analytic` (float32, 1-D vectors), `analytic-1thread` (the same
inside a one-thread BLAS limit, see bench.backends.numpy) and `seed` (the
blog's code exactly: float64, and its layouts - column vectors for linear
regression, 1-D for logistic).
"""

from __future__ import annotations

import time

import numpy as np

from bench.cases.alignment import aligned
from bench.cases.case import Case
from bench.cases.datasets import Problem

# The blog's NumPy linear example used (d, 1) column vectors; its logistic one 1-D.
BLOG_COLUMN_LAYOUT = {"linear": True, "logistic": False}


def sigmoid(x):
    """The blog's sigmoid."""
    return 1 / (1 + np.exp(-x))


def linear_grad(X, y, w, inv_n):
    """Gradient of 1/(2n) ||Xw - y||^2, as the blog writes it."""
    return np.matmul(X.T, np.matmul(X, w) - y) * inv_n


def logistic_grad(X, y, w, inv_n):
    """Gradient of mean binary cross-entropy of sigmoid(Xw), as the blog writes it."""
    return np.matmul(X.T, sigmoid(np.matmul(X, w)) - y) * inv_n


def linear_sync_metric(X, y, y_bool, w):
    """The value a linear training loop reads back: its training loss."""
    return float(0.5 * np.mean(np.square(np.matmul(X, w) - y)))


def logistic_sync_metric(X, y, y_bool, w):
    """The blog's early-stopping check: training accuracy."""
    preds = np.matmul(X, w) > 0
    return float(np.mean(preds == y_bool))


VARIANTS = ("analytic", "analytic-1thread", "seed")
GRADIENTS = {"linear": linear_grad, "logistic": logistic_grad}
SYNC_METRICS = {"linear": linear_sync_metric, "logistic": logistic_sync_metric}


class NumpyTrainer:
    """Full-batch gradient descent in NumPy for one case and problem."""

    def __init__(self, case: Case, problem: Problem, lr: float):
        if case.variant not in VARIANTS:
            raise ValueError(f"numpy has no variant {case.variant!r}")
        if case.barrier not in ("eager", "sync"):
            raise ValueError(f"numpy runs eagerly; barrier {case.barrier!r} does not apply")
        if case.batch_size and case.barrier == "sync":
            raise ValueError("the sync check reads the whole training set; it runs full-batch only")
        dtype = case.dtype
        column = case.variant == "seed" and BLOG_COLUMN_LAYOUT[case.model]
        shape = (-1, 1) if column else (-1,)
        # float32 shares the problem's read-only bytes; float64 makes its own copy, on a cache line like the
        # problem's (bench.cases.alignment: where a copy lands otherwise moves this kernel by 20%).
        self.X = aligned(problem.X, dtype)
        self.y = aligned(problem.y, dtype).reshape(shape)
        self.y_bool = aligned(self.y > 0.5)
        self.w0 = aligned(problem.w0, dtype).reshape(shape)
        self.lr = lr
        # Mini-batch: the problem's shared seeded schedule; the gather happens inside each step.
        self.batches = problem.batches
        self.inv_n = 1 / problem.batch_rows
        self.grad = GRADIENTS[case.model]
        self.sync_metric = SYNC_METRICS[case.model] if case.barrier == "sync" else None
        self.layout = "column" if column else "vector"
        self.reset()

    def reset(self) -> None:
        self.w = self.w0.copy()
        self.t = 0  # steps taken since reset: picks the next mini-batch

    def run(self, steps: int, stop_accuracy: float | None = None) -> int:
        if self.batches is not None:
            return self._run_batches(steps)
        X, y, y_bool, w, lr, inv_n, grad = self.X, self.y, self.y_bool, self.w, self.lr, self.inv_n, self.grad
        metric = self.sync_metric
        done = steps
        # exp(-x) may overflow to inf for very negative logits; 1/(1+inf) is the right 0.
        with np.errstate(over="ignore"):
            for i in range(steps):
                w = w - lr * grad(X, y, w, inv_n)
                if metric is not None:
                    value = metric(X, y, y_bool, w)
                    if stop_accuracy is not None and value > stop_accuracy:
                        done = i + 1
                        break
        self.w = w
        self.t += done
        return done

    def _run_batches(self, steps: int) -> int:
        X, y, w, lr, inv_b, grad, batches = self.X, self.y, self.w, self.lr, self.inv_n, self.grad, self.batches
        n_batches, t = len(batches), self.t
        with np.errstate(over="ignore"):
            for i in range(t, t + steps):
                rows = batches[i % n_batches]
                w = w - lr * grad(X[rows], y[rows], w, inv_b)
        self.w, self.t = w, t + steps
        return steps

    def settle(self) -> float:
        return 0.0  # eager: nothing is ever pending

    def weights(self) -> np.ndarray:
        return np.asarray(self.w, dtype=np.float64).reshape(-1)


def bare_round_seconds(trainer: NumpyTrainer, steps: int) -> float:
    """One round of the trainer's full-batch kernel as a plain loop, timed with perf_counter (the overhead check)."""
    X, y, y_bool, w, lr, inv_n, grad = (
        trainer.X,
        trainer.y,
        trainer.y_bool,
        trainer.w,
        trainer.lr,
        trainer.inv_n,
        trainer.grad,
    )
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
