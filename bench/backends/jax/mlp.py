"""JAX MLP kernel, written the way a JAX user writes a training step without flax or optax.

A plain pytree of parameters {"W1", "b1", "W2", "b2"} in mlx.nn.Linear's
(out, in) layout (the problem's start weights, the same bytes as every
backend), a ReLU hidden layer, mean softmax cross-entropy from
jax.nn.log_softmax, gradients from jax.grad and the update
jax.tree.map(lambda p, g: p - lr * g, params, grads). Variants `jit` (barrier
`step`) and `fori` (barrier `round`) and the mini-batch gather inside the
jitted step are the linear models' (bench.backends.jax.linear); so is the
trainer, which this module only tells what the model is.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from bench.backends.jax.linear import JaxTrainer
from bench.cases.case import Case
from bench.cases.datasets import Problem
from reference.mlp import PARAM_ORDER


def mlp_loss(params: dict, X, y):
    """Mean softmax cross-entropy of the MLP's logits against int32 class labels."""
    h = jax.nn.relu(X @ params["W1"].T + params["b1"])
    logits = h @ params["W2"].T + params["b2"]
    log_p = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(log_p, y[:, None], axis=1))


class JaxMlpTrainer(JaxTrainer):
    """SGD on the one-hidden-layer MLP in JAX for one case and problem.

    stop_accuracy is accepted for the Trainer API and ignored: the MLP has no
    early-stopping (sync) case, so run() always does every step it is asked for.
    """

    layout = "pytree, nn.Linear (out, in)"
    # All four parameters come out of one computation; waiting for the tree is what a user writes.
    block = staticmethod(jax.block_until_ready)

    def __init__(self, case: Case, problem: Problem, lr: float):
        if not case.hidden:
            raise ValueError("an mlp case needs its hidden width")
        super().__init__(case, problem, lr)

    def loss(self, model: str):
        return mlp_loss

    def start_params(self, problem: Problem) -> dict:
        return {name: problem.start[name] for name in PARAM_ORDER}

    def named_params(self) -> dict:
        return self.params
