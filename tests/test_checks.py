"""The after-timing checks fail a wrong kernel and a skipped barrier."""

import mlx.core as mx
import numpy as np
import pytest

from bench.backends import make_trainer
from bench.backends.mlx.linear import MlxTrainer
from bench.backends.numpy import linear as numpy_linear
from bench.cases.case import Case
from bench.cases.checks import BarrierError, CorrectnessError, check_barrier, check_correctness
from bench.cases.datasets import make_problem
from bench.cases.models import LEARNING_RATE
from bench.cases.sizes import Size

SIZE = Size(2000, 200)


def test_correct_kernel_passes_and_reports_its_error():
    case = Case("linear", "numpy", "analytic", "eager")
    problem = make_problem("linear", SIZE)
    result = check_correctness(make_trainer(case, problem, LEARNING_RATE), case, problem, LEARNING_RATE)
    assert 0 <= result["max_rel_error"] <= result["error_bound"]


@pytest.mark.parametrize(
    "wrong_grad",
    [
        lambda X, y, w, inv_n: 2 * numpy_linear.linear_grad(X, y, w, inv_n),  # a factor off
        lambda X, y, w, inv_n: np.matmul(X.T, np.matmul(X, w) - y),  # forgot 1/n
        lambda X, y, w, inv_n: 0 * w,  # never moves
        lambda X, y, w, inv_n: w * np.nan,  # blows up
    ],
    ids=["doubled", "unscaled", "frozen", "nan"],
)
def test_wrong_numpy_gradient_fails(wrong_grad):
    case = Case("linear", "numpy", "analytic", "eager")
    problem = make_problem("linear", SIZE)
    trainer = make_trainer(case, problem, LEARNING_RATE)
    trainer.grad = wrong_grad
    with pytest.raises(CorrectnessError, match="float64 reference"):
        check_correctness(trainer, case, problem, LEARNING_RATE)


def test_wrong_mlx_gradient_fails():
    case = Case("logistic", "mlx", "analytic", "step")
    problem = make_problem("logistic", SIZE)
    trainer = make_trainer(case, problem, LEARNING_RATE)
    # The classic slip: the linear gradient on a logistic model.
    trainer.step = lambda w, X, y: w - LEARNING_RATE * (X.T @ (X @ w - y)) / SIZE.n_examples
    with pytest.raises(CorrectnessError):
        check_correctness(trainer, case, problem, LEARNING_RATE)


class NoBarrierTrainer(MlxTrainer):
    """An MLX round that forgot its mx.eval: it would time graph building only."""

    def run(self, steps, stop_accuracy=None):
        w = self.w
        for _ in range(steps):
            w = self.step(w, self.X, self.y)
        self.w = w
        return steps


@pytest.mark.parametrize("steps", [20, 200])
def test_mlx_round_without_barrier_is_caught(steps):
    case = Case("linear", "mlx", "analytic", "round")
    problem = make_problem("linear", SIZE)
    trainer = NoBarrierTrainer(case, problem, LEARNING_RATE)
    with pytest.raises(BarrierError, match="did not end in its evaluation barrier"):
        check_barrier(trainer, case, steps)
    # Its weights are still right once evaluated: only the barrier check can catch it.
    check_correctness(trainer, case, problem, LEARNING_RATE)


@pytest.mark.parametrize("barrier", ["step", "round", "sync"])
def test_mlx_rounds_with_barrier_pass(barrier):
    case = Case("linear", "mlx", "autodiff", barrier)
    problem = make_problem("linear", SIZE)
    trainer = make_trainer(case, problem, LEARNING_RATE)
    trainer.run(5)
    pending = check_barrier(trainer, case, 20)
    assert pending < 1e-3
    assert isinstance(trainer.w, mx.array)


def test_an_mlp_update_one_percent_off_is_caught():
    # The MLP's weights move ~0.5% in the check's 10 steps: a 1% error of the step
    # hides under the weights' 1e-4 bound; against the update itself it cannot.
    case = Case("mlp", "numpy", "analytic", "eager", batch_size=256, hidden=64)
    problem = make_problem("mlp", SIZE, 256, 64)
    trainer = make_trainer(case, problem, LEARNING_RATE)
    trainer.lr = LEARNING_RATE * 1.01
    with pytest.raises(CorrectnessError, match="their update by") as info:
        check_correctness(trainer, case, problem, LEARNING_RATE)
    error, update_error = (float(part.split(" ")[0]) for part in str(info.value).split(" by ")[1:])
    assert error <= 1e-4 < 1e-3 < update_error


def test_tf32_cases_are_labelled_and_get_their_own_bound(monkeypatch):
    from bench.backends.mlx import compat
    from bench.cases import checks

    case = Case("mlp", "mlx", "nn", "step", device="gpu", batch_size=256, hidden=64)
    monkeypatch.setattr(compat, "gpu_backend", lambda: "cuda")
    monkeypatch.delenv("MLX_ENABLE_TF32", raising=False)
    assert checks.matmul_precision(case) == "tf32"
    monkeypatch.setenv("MLX_ENABLE_TF32", "0")
    assert checks.matmul_precision(case) == "float32"
    assert checks.matmul_precision(Case("mlp", "mlx", "nn", "step", device="cpu", hidden=64)) == "float32"
    monkeypatch.setattr(compat, "gpu_backend", lambda: "metal")
    monkeypatch.delenv("MLX_ENABLE_TF32")
    assert checks.matmul_precision(case) == "float32"


def test_a_full_batch_check_runs_three_steps_and_a_mini_batch_one_ten():
    # A full-batch case's steps repeat one kernel on the same data; a mini-batch case's cross batches.
    for batch_size, steps in ((None, 3), (256, 10)):
        case = Case("linear", "numpy", "analytic", "eager", batch_size=batch_size)
        problem = make_problem("linear", SIZE, batch_size)
        result = check_correctness(make_trainer(case, problem, LEARNING_RATE), case, problem, LEARNING_RATE)
        assert result["check_steps"] == steps


def test_a_cold_pass_checks_the_first_step_it_timed(monkeypatch):
    from bench.engine.jobs import Job
    from bench.engine.runner import run_cold_pass

    case = Case("linear", "numpy", "analytic", "eager")
    result = run_cold_pass(Job(case=case, size=SIZE, scenario="cold", rounds=2))
    assert result.checks["check_steps"] == 1 and len(result.round_times_s) == 2
    # A trainer whose first step is wrong fails the cold pass's check, with no step of its own run after it.
    doubled = numpy_linear.linear_grad
    monkeypatch.setitem(numpy_linear.GRADIENTS, "linear", lambda X, y, w, inv_n: 2 * doubled(X, y, w, inv_n))
    with pytest.raises(CorrectnessError, match="after 1 step the weights"):
        run_cold_pass(Job(case=case, size=SIZE, scenario="cold", rounds=2))
