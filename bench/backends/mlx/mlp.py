"""MLX MLP kernels, written the way MLX users write a training step.

An nn.Module of two nn.Linear layers with nn.relu between them, the loss from
nn.losses.cross_entropy, gradients from nn.value_and_grad and the update from
mlx.optimizers.SGD. Variants: `nn` (that step as is) and `compiled` (the same
step under mx.compile, with the model and optimizer state as its implicit
inputs and outputs, as MLX's compilation guide does for training graphs).

MLX is lazy: every run ends in mx.eval(model.parameters(), optimizer.state),
the barrier MLX's examples use; the `step` barrier does that after every step,
`round` once after K lazy steps (docs/measurement.md, "Measurement rules", rule 2). All work runs on the case's
device through mx.stream.
"""

from __future__ import annotations

import time

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np

from bench.backends.mlx import compat
from bench.cases.case import Case
from bench.cases.datasets import MLP_CLASSES, Problem, flatten_params


class Mlp(nn.Module):
    """A classifier with one hidden ReLU layer."""

    def __init__(self, n_features: int, hidden: int, classes: int):
        super().__init__()
        self.l1 = nn.Linear(n_features, hidden)
        self.l2 = nn.Linear(hidden, classes)

    def __call__(self, x):
        return self.l2(nn.relu(self.l1(x)))


def loss_fn(model, X, y):
    """Mean softmax cross-entropy of the model's logits against class labels."""
    return nn.losses.cross_entropy(model(X), y, reduction="mean")


def make_step(model: Mlp, optimizer: optim.Optimizer, variant: str, gather: bool = False):
    """Return step(X, y) -> loss, which updates model and optimizer; with gather, step(X, y, rows)."""
    if variant not in ("nn", "compiled"):
        raise ValueError(f"mlx mlp has no variant {variant!r}")
    loss_and_grad = nn.value_and_grad(model, loss_fn)

    def step(X, y):
        loss, grads = loss_and_grad(model, X, y)
        optimizer.update(model, grads)
        return loss

    if gather:  # a mini-batch step takes its rows from the full arrays, as a training loop does
        full_batch_step = step

        def step(X, y, rows):
            return full_batch_step(X[rows], y[rows])

    if variant == "compiled":
        # The step reads and replaces the model's parameters and the optimizer's
        # state: declaring them makes compile trace once and write them back.
        state = [model.state, optimizer.state]
        return mx.compile(step, inputs=state, outputs=state)
    return step


def _start_tree(params: dict) -> dict:
    """The shared start weights as the model's parameter tree (mx arrays)."""
    return {
        "l1": {"weight": mx.array(params["W1"]), "bias": mx.array(params["b1"])},
        "l2": {"weight": mx.array(params["W2"]), "bias": mx.array(params["b2"])},
    }


class MlxMlpTrainer:
    """SGD on the one-hidden-layer MLP with mlx.nn and mlx.optimizers for one case and problem.

    stop_accuracy is accepted for the Trainer API and ignored: the MLP has no
    early-stopping (sync) case, so run() always does every step it is asked for.
    """

    def __init__(self, case: Case, problem: Problem, lr: float):
        if case.barrier not in ("step", "round"):
            raise ValueError(f"mlx mlp has no barrier policy {case.barrier!r}")
        if case.device == "gpu" and not compat.gpu_available():
            raise RuntimeError("MLX has no GPU on this machine")
        if not case.hidden:
            raise ValueError("an mlp case needs its hidden width")
        self.device = compat.device(case.device)
        self.barrier = case.barrier
        self.layout = "nn.Linear (out, in)"
        with mx.stream(self.device):
            self.X = mx.array(problem.X)
            self.y = mx.array(problem.y)  # int32 class labels, as cross_entropy takes them
            self.model = Mlp(problem.n_features, case.hidden, MLP_CLASSES)
            self.params0 = _start_tree(problem.start)
            self.optimizer = optim.SGD(learning_rate=lr)
            # Initialise the optimizer's state now, so the first timed step is not special.
            self.optimizer.init(self.model.trainable_parameters())
            # Mini-batch: the shared schedule as one (n_batches, b) array, and one row
            # view per batch made before timing, so a step only gathers.
            self.batch_rows = None
            if problem.batches is not None:
                self.schedule = mx.array(problem.batches)
                self.batch_rows = [self.schedule[i] for i in range(self.schedule.shape[0])]
                mx.eval(self.batch_rows)
            mx.eval(self.X, self.y, self.params0)  # conversion stays outside the timer
        self.step = make_step(self.model, self.optimizer, case.variant, gather=case.batch_size is not None)
        self.reset()

    def reset(self) -> None:
        # In place: a compiled step holds these very model and optimizer state dicts.
        self.model.update(self.params0)
        self.optimizer.state["step"] = mx.array(0, mx.uint64)
        self.t = 0  # steps taken since reset: picks the next mini-batch
        mx.eval(self.model.parameters(), self.optimizer.state)

    def run(self, steps: int, stop_accuracy: float | None = None) -> int:
        X, y, model, optimizer, step = self.X, self.y, self.model, self.optimizer, self.step
        batch_rows, t, every_step = self.batch_rows, self.t, self.barrier == "step"
        with mx.stream(self.device):
            if batch_rows is None:
                for _ in range(steps):
                    step(X, y)
                    if every_step:
                        mx.eval(model.parameters(), optimizer.state)
            else:
                n_batches = len(batch_rows)
                for i in range(t, t + steps):
                    step(X, y, batch_rows[i % n_batches])
                    if every_step:
                        mx.eval(model.parameters(), optimizer.state)
            mx.eval(model.parameters(), optimizer.state)  # the round's barrier: all updated state is computed
        self.t = t + steps
        return steps

    def settle(self) -> float:
        start = time.perf_counter()
        mx.eval(self.model.parameters(), self.optimizer.state)
        return time.perf_counter() - start

    def weights(self) -> np.ndarray:
        l1, l2 = self.model.l1, self.model.l2
        return flatten_params({"W1": l1.weight, "b1": l1.bias, "W2": l2.weight, "b2": l2.bias})
