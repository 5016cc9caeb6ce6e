"""MLX linear and logistic regression: autodiff (mx.grad), hand-written gradient, mx.compile, and the blog's code.

MLX is lazy: a step only builds a graph, so every run ends in mx.eval of the
weights, and the `step` and `sync` barriers force evaluation every step
(docs/measurement.md, "Measurement rules", rule 2). All work runs on the case's device
through mx.stream.
"""

from __future__ import annotations

import time

import mlx.core as mx
import numpy as np

from bench.backends.mlx import compat
from bench.cases.case import Case
from bench.cases.datasets import Problem


def linear_loss(w, X, y):
    """1/(2n) ||Xw - y||^2, the blog's MSE loss."""
    return 0.5 * mx.mean(mx.square(X @ w - y))


def logistic_loss(w, X, y):
    """Mean binary cross-entropy of sigmoid(Xw), in the overflow-free form.

    softplus(z) - y z equals -y log s(z) - (1-y) log(1 - s(z)) but stays finite
    (and its gradient stays s(z) - y) when |z| grows during long runs.
    """
    z = X @ w
    return mx.mean(mx.logaddexp(mx.zeros_like(z), z) - y * z)


def blog_logistic_loss(w, X, y):
    """The blog's logistic loss, verbatim (fine for its short early-stopped run)."""
    logits = X @ w
    y_hat = mx.sigmoid(logits)
    return mx.mean(-y * mx.log(y_hat) - (1 - y) * mx.log(1 - y_hat))


def linear_grad(w, X, y, inv_n):
    """Hand-written gradient: X^T (Xw - y) / n."""
    return X.T @ (X @ w - y) * inv_n


def logistic_grad(w, X, y, inv_n):
    """Hand-written gradient: X^T (sigmoid(Xw) - y) / n."""
    return X.T @ (mx.sigmoid(X @ w) - y) * inv_n


def linear_sync_metric(w, X, y, y_bool):
    """What a linear training loop reads back each step: its training loss."""
    return 0.5 * mx.mean(mx.square(X @ w - y))


def logistic_sync_metric(w, X, y, y_bool):
    """The blog's early-stopping check: training accuracy."""
    return mx.mean((X @ w > 0) == y_bool)


LOSSES = {"linear": linear_loss, "logistic": logistic_loss}
BLOG_LOSSES = {"linear": linear_loss, "logistic": blog_logistic_loss}
GRADIENTS = {"linear": linear_grad, "logistic": logistic_grad}
SYNC_METRICS = {"linear": linear_sync_metric, "logistic": logistic_sync_metric}
# The blog's MLX linear example used 1-D vectors; its logistic one (d, 1) columns.
BLOG_COLUMN_LAYOUT = {"linear": False, "logistic": True}


def make_step(model: str, variant: str, lr: float, inv_n: float, gather: bool = False):
    """Return step(w, X, y) -> new w for a variant; with gather, step(w, X, y, rows)."""
    if variant not in ("autodiff", "analytic", "compiled", "blog"):
        raise ValueError(f"mlx has no variant {variant!r}")
    if variant == "analytic":
        grad = GRADIENTS[model]

        def step(w, X, y):
            return w - lr * grad(w, X, y, inv_n)

    else:
        loss = BLOG_LOSSES[model] if variant == "blog" else LOSSES[model]
        grad_fn = mx.grad(loss)  # gradient with respect to the first argument, w

        def step(w, X, y):
            return w - lr * grad_fn(w, X, y)

    if gather:  # a mini-batch step takes its rows from the full arrays, as a training loop does
        full_batch_step = step

        def step(w, X, y, rows):
            return full_batch_step(w, X[rows], y[rows])

    return mx.compile(step) if variant == "compiled" else step


class MlxTrainer:
    """Full-batch gradient descent in MLX for one case and problem."""

    def __init__(self, case: Case, problem: Problem, lr: float):
        if case.barrier not in ("step", "round", "sync"):
            raise ValueError(f"mlx has no barrier policy {case.barrier!r}")
        if case.device == "gpu" and not compat.gpu_available():
            raise RuntimeError("MLX has no GPU on this machine")
        if case.batch_size and case.barrier == "sync":
            raise ValueError("the sync check reads the whole training set; it runs full-batch only")
        self.device = compat.device(case.device)
        self.barrier = case.barrier
        column = case.variant == "blog" and BLOG_COLUMN_LAYOUT[case.model]
        shape = (-1, 1) if column else (-1,)
        self.layout = "column" if column else "vector"
        with mx.stream(self.device):
            self.X = mx.array(problem.X)
            self.y = mx.array(problem.y).reshape(shape)
            self.y_bool = self.y > 0.5
            self.w0 = mx.array(problem.w0).reshape(shape)
            mx.eval(self.X, self.y, self.y_bool, self.w0)  # conversion stays outside the timer
            # Mini-batch: one index array per batch of the shared schedule, made before timing.
            self.batch_rows = None
            if problem.batches is not None:
                self.batch_rows = [mx.array(rows) for rows in problem.batches]
                mx.eval(self.batch_rows)
        inv_n = 1 / problem.batch_rows
        self.step = make_step(case.model, case.variant, lr, inv_n, gather=case.batch_size is not None)
        self.sync_metric = SYNC_METRICS[case.model]
        self.reset()

    def reset(self) -> None:
        self.w = self.w0
        self.t = 0  # steps taken since reset: picks the next mini-batch
        mx.eval(self.w)

    def run(self, steps: int, stop_accuracy: float | None = None) -> int:
        if self.batch_rows is not None:
            return self._run_batches(steps)
        X, y, y_bool, w, step = self.X, self.y, self.y_bool, self.w, self.step
        done = steps
        with mx.stream(self.device):
            if self.barrier == "round":
                for _ in range(steps):
                    w = step(w, X, y)
            elif self.barrier == "step":
                for _ in range(steps):
                    w = step(w, X, y)
                    mx.eval(w)
            else:  # sync: read a value back to the host every step
                metric = self.sync_metric
                for i in range(steps):
                    w = step(w, X, y)
                    value = metric(w, X, y, y_bool).item()
                    if stop_accuracy is not None and value > stop_accuracy:
                        done = i + 1
                        break
            mx.eval(w)  # the round's barrier: all updated state is computed
        self.w = w
        self.t += done
        return done

    def _run_batches(self, steps: int) -> int:
        X, y, w, step, batch_rows = self.X, self.y, self.w, self.step, self.batch_rows
        n_batches, t, every_step = len(batch_rows), self.t, self.barrier == "step"
        with mx.stream(self.device):
            for i in range(t, t + steps):
                w = step(w, X, y, batch_rows[i % n_batches])
                if every_step:
                    mx.eval(w)
            mx.eval(w)
        self.w, self.t = w, t + steps
        return steps

    def settle(self) -> float:
        start = time.perf_counter()
        mx.eval(self.w)
        return time.perf_counter() - start

    def weights(self) -> np.ndarray:
        return np.array(self.w, dtype=np.float64).reshape(-1)


def bare_round_seconds(trainer: MlxTrainer, steps: int) -> float:
    """One round of the trainer's full-batch kernel as a plain loop, timed with perf_counter (the overhead check)."""
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
