"""PyTorch MLP kernels, written the way PyTorch users write a training step.

An nn.Module of two nn.Linear layers with F.relu between them, the mean
softmax cross-entropy of F.cross_entropy and plain SGD at the case's learning
rate, from the problem's start weights (nn.Linear's own (out, in) layout).
Variants:
  nn        optimizer.zero_grad(), loss.backward(), optimizer.step() of a
            torch.optim.SGD: the loop of PyTorch's tutorials
  compiled  torch.compile(fullgraph=True) of one whole step: forward, loss,
            torch.autograd.grad of the parameters and SGD's update through
            torch.optim.sgd.sgd, the function SGD.step itself calls, with that
            optimizer's hyperparameters (its multi-tensor form: see make_step). SGD.step cannot join a full graph:
            Optimizer wraps every step() in deliberate graph breaks
            (torch/optim/optimizer.py, _use_grad; pytorch issue 104053), and
            loss.backward() breaks the graph too. Compiled as it is, the nn step
            becomes several graphs with eager code between them, and the
            optimizer's graph is guarded on the optimizer object, so the fresh
            trainer of every later pass compiles it again.
Barriers as for the linear models (bench.backends.torch.linear). A mini-batch
step gathers its rows (X[rows], y[rows]) inside the step, as a training loop does.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.sgd import sgd as sgd_update

from bench.backends.torch.linear import (
    CompiledStance,
    batch_row_tensors,
    compiled,
    settle_seconds,
    synchronizer,
    to_tensor,
    torch_device,
)
from bench.cases.case import Case
from bench.cases.datasets import MLP_CLASSES, Problem, flatten_params

VARIANTS = ("nn", "compiled")


class Mlp(nn.Module):
    """A classifier with one hidden ReLU layer."""

    def __init__(self, n_features: int, hidden: int, classes: int, device: torch.device):
        super().__init__()
        self.l1 = nn.Linear(n_features, hidden, device=device)
        self.l2 = nn.Linear(hidden, classes, device=device)

    def forward(self, x):
        return self.l2(F.relu(self.l1(x)))


def make_step(model: Mlp, optimizer: torch.optim.SGD, variant: str, gather: bool = False):
    """Return step(X, y) -> loss, which updates the model's parameters; with gather, step(X, y, rows)."""
    if variant not in VARIANTS:
        raise ValueError(f"torch mlp has no variant {variant!r}")
    if variant == "nn":

        def step(X, y):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(X), y)
            loss.backward()
            optimizer.step()
            return loss

    else:
        params = list(model.parameters())
        no_momentum = [None] * len(params)
        group = optimizer.param_groups[0]
        # The optimizer's own settings, read once: constants of the compiled graph. foreach=True
        # (SGD's multi-tensor path, its default on CUDA): the single-tensor loop SGD.step takes
        # on the CPU, param.add_(grad, alpha=-lr), is miscompiled in torch 2.13 when the grad is
        # a matmul of the same graph: inductor's post-grad pattern add(mm(a, b), inp) -> addmm
        # (torch/_inductor/fx_passes/post_grad.py, `addmm`) drops `alpha`, and each weight
        # matrix then moves by +grad instead of -lr * grad (the correctness check fails it).
        settings = {k: group[k] for k in ("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize")}
        settings["foreach"] = True

        def step(X, y):
            loss = F.cross_entropy(model(X), y)
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                sgd_update(params, list(grads), no_momentum, **settings)
            return loss.detach()

    if gather:  # a mini-batch step takes its rows from the full arrays, as a training loop does
        full_batch_step = step

        def step(X, y, rows):
            return full_batch_step(X[rows], y[rows])

    # One compiled step per trainer, all of one code: dynamo's cache holds one graph per
    # shape for that code, so a fresh trainer of a shape already compiled finds it.
    return compiled(step) if variant == "compiled" else step


class TorchMlpTrainer:
    """SGD on the one-hidden-layer MLP with torch.nn and torch.optim for one case and problem.

    stop_accuracy is accepted for the Trainer API and ignored: the MLP has no
    early-stopping (sync) case, so run() always does every step it is asked for.
    """

    def __init__(self, case: Case, problem: Problem, lr: float):
        if not case.hidden:
            raise ValueError("an mlp case needs its hidden width")
        self.device = torch_device(case)
        self.X = to_tensor(problem.X, self.device)
        # Class labels as int64, the index type cross_entropy takes, converted once here.
        self.y = to_tensor(problem.y, self.device, torch.int64)
        self.params0 = {name: to_tensor(a, self.device).clone() for name, a in problem.start.items()}
        self.model = Mlp(problem.n_features, case.hidden, MLP_CLASSES, self.device)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=lr)
        self.batch_rows = batch_row_tensors(problem, self.device)
        self.step = make_step(self.model, self.optimizer, case.variant, gather=self.batch_rows is not None)
        self.sync = synchronizer(self.device)
        self.every_step = case.barrier == "step"
        self.stance = CompiledStance() if case.variant == "compiled" else contextlib.nullcontext
        self.layout = "nn.Linear (out, in)"
        self.reset()
        if self.sync is not None:
            self.sync()  # the copies to the device stay outside the timer

    def reset(self) -> None:
        # In place: the optimizer and a compiled step hold these very parameters.
        l1, l2 = self.model.l1, self.model.l2
        with torch.no_grad():
            for param, name in ((l1.weight, "W1"), (l1.bias, "b1"), (l2.weight, "W2"), (l2.bias, "b2")):
                param.copy_(self.params0[name])
                param.grad = None
        self.t = 0  # steps taken since reset: picks the next mini-batch

    def run(self, steps: int, stop_accuracy: float | None = None) -> int:
        X, y, step, sync, every_step = self.X, self.y, self.step, self.sync, self.every_step
        batch_rows, t = self.batch_rows, self.t
        with self.stance():
            if batch_rows is not None:
                n_batches = len(batch_rows)
                for i in range(t, t + steps):
                    step(X, y, batch_rows[i % n_batches])
                    if every_step:
                        sync()
            elif every_step:
                for _ in range(steps):
                    step(X, y)
                    sync()
            else:
                for _ in range(steps):
                    step(X, y)
            if sync is not None:
                sync()  # the round's barrier: every queued step is done
        self.t = t + steps
        return steps

    def settle(self) -> float:
        return settle_seconds(self.sync)

    def weights(self) -> np.ndarray:
        l1, l2 = self.model.l1, self.model.l2
        tensors = {"W1": l1.weight, "b1": l1.bias, "W2": l2.weight, "b2": l2.bias}
        return flatten_params({name: t.detach().cpu().numpy() for name, t in tensors.items()})
