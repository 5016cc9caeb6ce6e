"""The MLP kernels compute what the float64 reference computes, on the shared schedule."""

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest

from bench.backends import get, make_trainer
from bench.backends.mlx import mlp as mlx_mlp
from bench.cases.case import Case
from bench.cases.checks import ERROR_BOUNDS, check_barrier, relative_error
from bench.cases.datasets import make_problem, mlp_initial_params
from bench.cases.models import LEARNING_RATE
from bench.cases.sizes import Size
from reference.mlp import (
    flatten_params,
    mlp_gradients,
    mlp_loss,
    mlp_quality,
    mlp_reference_params,
    unflatten_params,
)

SIZE = Size(300, 20)
STEPS = 20
BATCH = 32
BOUND = ERROR_BOUNDS[np.dtype(np.float32)]
KERNELS = [("numpy", "analytic", "eager"), ("numpy", "analytic-1thread", "eager")] + [
    ("mlx", variant, barrier) for variant in ("nn", "compiled") for barrier in ("step", "round")
]


def mlp_case(backend, variant, barrier, hidden=16, batch_size=None):
    return Case("mlp", backend, variant, barrier, hidden=hidden, batch_size=batch_size)


def make(case, lr=LEARNING_RATE):
    return make_trainer(case, make_problem("mlp", SIZE, case.batch_size, case.hidden), lr)


def expected(hidden, batch_size, steps=STEPS):
    problem = make_problem("mlp", SIZE, batch_size, hidden)
    params = mlp_reference_params(problem.X, problem.y, problem.start, LEARNING_RATE, steps, problem.batches)
    return flatten_params(params)


def start(hidden):
    return flatten_params(mlp_initial_params(SIZE, hidden))


def kernel_id(kernel):
    return "-".join(kernel)


def test_reference_gradient_matches_finite_differences():
    problem = make_problem("mlp", Size(40, 5), hidden=4)
    params = {k: v.astype(np.float64) for k, v in problem.start.items()}
    grads = mlp_gradients(problem.X, problem.y, params)
    eps = 1e-6
    for name in params:
        numeric = np.zeros_like(params[name])
        for index in np.ndindex(params[name].shape):
            up = {k: v.copy() for k, v in params.items()}
            down = {k: v.copy() for k, v in params.items()}
            up[name][index] += eps
            down[name][index] -= eps
            numeric[index] = (mlp_loss(problem.X, problem.y, up) - mlp_loss(problem.X, problem.y, down)) / (2 * eps)
        assert np.allclose(grads[name], numeric, rtol=1e-5, atol=1e-8), name


def test_reference_quality_at_the_start_is_chance():
    problem = make_problem("mlp", SIZE, hidden=16)
    figures = mlp_quality(problem.X, problem.y, problem.start)
    # Small uniform start weights give nearly uniform softmax: loss near log(10).
    assert abs(figures["train_loss"] - np.log(10)) < 0.3
    assert 0.0 <= figures["train_accuracy"] <= 1.0


def test_unflatten_inverts_flatten():
    params = mlp_initial_params(SIZE, 16)
    back = unflatten_params(flatten_params(params), SIZE.n_features, 16)
    assert all(np.array_equal(back[name], params[name]) for name in params)
    with pytest.raises(ValueError):
        unflatten_params(flatten_params(params)[:-1], SIZE.n_features, 16)


@pytest.mark.parametrize("hidden", [16, 64])
@pytest.mark.parametrize("batch_size", [None, BATCH], ids=["full", f"b{BATCH}"])
@pytest.mark.parametrize("kernel", KERNELS, ids=kernel_id)
def test_kernel_matches_reference(kernel, batch_size, hidden):
    case = mlp_case(*kernel, hidden=hidden, batch_size=batch_size)
    trainer = make(case)
    with get(case.backend).case_context(case):
        assert trainer.run(STEPS) == STEPS
    want = expected(hidden, batch_size)
    assert relative_error(trainer.weights(), want) <= BOUND
    # The weights really moved, by far more than the bound: the comparison has teeth.
    assert relative_error(start(hidden), want) > 100 * BOUND


@pytest.mark.parametrize("kernel", KERNELS, ids=kernel_id)
def test_reset_returns_to_the_shared_start(kernel):
    case = mlp_case(*kernel, batch_size=BATCH)
    trainer = make(case)
    trainer.run(3)
    trainer.reset()
    assert np.array_equal(trainer.weights(), start(16))
    # reset also rewinds the schedule: the next run starts again at batch 0.
    trainer.run(7)
    fresh = make(case)
    fresh.run(7)
    assert np.array_equal(trainer.weights(), fresh.weights())


@pytest.mark.parametrize("kernel", KERNELS, ids=kernel_id)
def test_step_counter_continues_across_runs(kernel):
    trainer = make(mlp_case(*kernel, batch_size=BATCH))
    trainer.run(5)
    trainer.run(5)
    split = trainer.weights()
    trainer.reset()
    trainer.run(10)
    assert np.array_equal(split, trainer.weights())


@pytest.mark.parametrize("backend,variant,barrier", [KERNELS[0], KERNELS[2], KERNELS[4]])
def test_a_trainer_that_ignores_the_schedule_fails(backend, variant, barrier):
    want = expected(16, BATCH)
    # Full batch where the case asked for mini-batches.
    full = make(mlp_case(backend, variant, barrier))
    full.run(STEPS)
    assert relative_error(full.weights(), want) > BOUND
    # Mini-batches, but always the first one.
    stuck = make(mlp_case(backend, variant, barrier, batch_size=BATCH))
    if backend == "numpy":
        stuck.batches = stuck.batches[:1]
    else:
        stuck.batch_rows = stuck.batch_rows[:1]
    stuck.run(STEPS)
    assert relative_error(stuck.weights(), want) > BOUND


def numpy_step_without_relu_mask(X, y, params, lr, rows_index):
    """mlp_sgd_step with a classic bug: the gradient flows through inactive ReLUs."""
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    h = np.maximum(X @ W1.T + b1, 0)
    logits = h @ W2.T + b2
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[rows_index, y] -= 1
    p /= len(y)
    dh = p @ W2  # missing: dh *= h > 0
    W2 -= lr * (p.T @ h)
    b2 -= lr * p.sum(axis=0)
    W1 -= lr * (dh.T @ X)
    b1 -= lr * dh.sum(axis=0)


def mlx_loss_with_frozen_first_layer(model, X, y):
    """loss_fn with a classic bug: stop_gradient cuts the first layer out of training."""
    return nn.losses.cross_entropy(model.l2(mx.stop_gradient(nn.relu(model.l1(X)))), y, reduction="mean")


@pytest.mark.parametrize("batch_size", [None, BATCH], ids=["full", f"b{BATCH}"])
def test_a_wrong_gradient_fails(batch_size, monkeypatch):
    want = expected(16, batch_size)
    numpy_trainer = make(mlp_case("numpy", "analytic", "eager", batch_size=batch_size))
    numpy_trainer.step = numpy_step_without_relu_mask
    numpy_trainer.run(STEPS)
    assert relative_error(numpy_trainer.weights(), want) > BOUND
    monkeypatch.setattr(mlx_mlp, "loss_fn", mlx_loss_with_frozen_first_layer)
    for variant in ("nn", "compiled"):
        mlx_trainer = make(mlp_case("mlx", variant, "step", batch_size=batch_size))
        mlx_trainer.run(STEPS)
        assert relative_error(mlx_trainer.weights(), want) > BOUND


@pytest.mark.parametrize("kernel", KERNELS[2:], ids=kernel_id)
def test_mlx_runs_end_in_their_barrier(kernel):
    case = mlp_case(*kernel, batch_size=BATCH)
    assert check_barrier(make(case), case, STEPS) >= 0


def test_unknown_variant_barrier_and_missing_width_are_refused():
    with pytest.raises(ValueError):
        make(mlp_case("numpy", "nn", "eager"))
    with pytest.raises(ValueError):
        make(mlp_case("numpy", "analytic", "step"))
    with pytest.raises(ValueError):
        make(mlp_case("mlx", "analytic", "step"))
    with pytest.raises(ValueError):
        make(mlp_case("mlx", "nn", "sync"))
    with pytest.raises(ValueError):
        make(mlp_case("mlx", "nn", "step", hidden=None))
