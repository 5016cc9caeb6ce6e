"""NumPy MLP kernel: forward and backward passes written by hand, computed eagerly.

One hidden layer (ReLU), softmax cross-entropy, plain SGD, in float32 and in
mlx.nn.Linear's (out, in) weight layout so every backend starts from the same
bytes (the problem's start weights). Variants `analytic` and
`analytic-1thread` (NumPy's BLAS held to one thread, as for the linear
models); barrier `eager`. A mini-batch step gathers its rows (X[rows],
y[rows]) inside the step, as a training loop does.
"""

from __future__ import annotations

import numpy as np

from bench.cases.alignment import aligned
from bench.cases.case import Case
from bench.cases.datasets import Problem, flatten_params
from reference.mlp import PARAM_ORDER

VARIANTS = ("analytic", "analytic-1thread")


def mlp_sgd_step(X, y, params: dict, lr, rows_index) -> None:
    """One SGD step on the batch (X, y), updating params in place.

    rows_index is np.arange(len(y)), made once outside the timed loop: it picks
    each row's true-class probability to subtract the one-hot target.
    """
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    # Forward: the ReLU output doubles as its own mask (h > 0 exactly where z > 0).
    h = X @ W1.T
    h += b1
    np.maximum(h, 0, out=h)
    logits = h @ W2.T
    logits += b2
    # Softmax, shifted by the row maximum so exp never overflows.
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits, out=logits)
    p /= p.sum(axis=1, keepdims=True)
    # d(mean cross-entropy)/d logits = (softmax - one_hot) / b
    p[rows_index, y] -= 1
    p *= np.float32(1 / len(y))
    # Backward, then update: dW2 and dh both need W2 before it changes.
    dh = p @ W2
    dh *= h > 0
    W2 -= lr * (p.T @ h)
    b2 -= lr * p.sum(axis=0)
    W1 -= lr * (dh.T @ X)
    b1 -= lr * dh.sum(axis=0)


class NumpyMlpTrainer:
    """SGD on the one-hidden-layer MLP in NumPy for one case and problem.

    stop_accuracy is accepted for the Trainer API and ignored: the MLP has no
    early-stopping (sync) case, so run() always does every step it is asked for.
    """

    def __init__(self, case: Case, problem: Problem, lr: float):
        if case.variant not in VARIANTS:
            raise ValueError(f"numpy mlp has no variant {case.variant!r}")
        if case.barrier != "eager":
            raise ValueError(f"numpy runs eagerly; barrier {case.barrier!r} does not apply")
        if not case.hidden:
            raise ValueError("an mlp case needs its hidden width")
        # float32 shares the problem's read-only bytes. Labels become intp once here:
        # NumPy would otherwise convert int32 index arrays on every step.
        self.X = aligned(problem.X, np.float32)
        self.y = aligned(problem.y, np.intp)
        self.params0 = problem.start
        self.lr = np.float32(lr)  # a float32 scalar keeps every update in float32
        # Mini-batch: the problem's shared seeded schedule; the gather happens inside each step.
        self.batches = problem.batches
        self.rows_index = np.arange(problem.batch_rows)
        self.step = mlp_sgd_step
        self.layout = "nn.Linear (out, in)"
        self.reset()

    def reset(self) -> None:
        # Copies: the shared start weights are read-only and the step updates in place.
        self.params = {name: self.params0[name].copy() for name in PARAM_ORDER}
        self.t = 0  # steps taken since reset: picks the next mini-batch

    def run(self, steps: int, stop_accuracy: float | None = None) -> int:
        X, y, params, lr, rows_index, step = self.X, self.y, self.params, self.lr, self.rows_index, self.step
        batches, t = self.batches, self.t
        if batches is None:
            for _ in range(steps):
                step(X, y, params, lr, rows_index)
        else:
            n_batches = len(batches)
            for i in range(t, t + steps):
                rows = batches[i % n_batches]
                step(X[rows], y[rows], params, lr, rows_index)
        self.t = t + steps
        return steps

    def settle(self) -> float:
        return 0.0  # eager: nothing is ever pending

    def weights(self) -> np.ndarray:
        return flatten_params(self.params)
