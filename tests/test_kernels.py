"""Every kernel computes what the float64 reference computes, from the same start."""

import numpy as np
import pytest

from bench.backends import make_trainer
from bench.cases.case import Case
from bench.cases.checks import ERROR_BOUNDS, relative_error
from bench.cases.datasets import make_problem
from bench.cases.grid import cases_for, skip_reason
from bench.cases.models import LEARNING_RATE
from bench.cases.sizes import Size
from reference import reference_weights

SIZE = Size(400, 25)
STEPS = 30
# Every installed backend's linear-model cases (the peers' own tests cover them too).
ALL_CASES = sorted(
    {
        c
        for m in ("linear", "logistic")
        for scenario in ("grid", "blog")
        for c in cases_for(m, scenario, SIZE)
        if skip_reason(c) is None
    },
    key=lambda c: (c.model, c.id),
)


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: f"{c.model}-{c.id}")
def test_kernel_matches_reference(case):
    problem = make_problem(case.model, SIZE, case.batch_size)
    trainer = make_trainer(case, problem, LEARNING_RATE)
    assert trainer.run(STEPS) == STEPS
    expected = reference_weights(case.model, problem.X, problem.y, problem.w0, LEARNING_RATE, STEPS, problem.batches)
    assert relative_error(trainer.weights(), expected) <= ERROR_BOUNDS[case.dtype]
    # The weights really moved: a kernel that never updates would fail above too,
    # but say so plainly.
    assert relative_error(problem.w0.astype(np.float64), expected) > 0.1


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: f"{c.model}-{c.id}")
def test_reset_returns_to_the_shared_start(case):
    problem = make_problem(case.model, SIZE, case.batch_size)
    trainer = make_trainer(case, problem, LEARNING_RATE)
    trainer.run(3)
    trainer.reset()
    assert np.array_equal(trainer.weights(), problem.w0.astype(np.float64))


@pytest.mark.parametrize("backend,variant", [("numpy", "seed"), ("mlx", "blog")])
def test_early_stopping_stops_when_accuracy_passes(backend, variant):
    problem = make_problem("logistic", Size(1000, 100))
    trainer = make_trainer(Case("logistic", backend, variant, "sync"), problem, LEARNING_RATE)
    done = trainer.run(10_000, stop_accuracy=0.95)
    assert 0 < done < 10_000
    w = trainer.weights()
    assert np.mean((problem.X @ w > 0) == (problem.y > 0.5)) >= 0.95 - 1e-9


def test_seed_variant_is_float64_and_keeps_the_blog_layouts():
    linear = make_trainer(Case("linear", "numpy", "seed", "eager"), make_problem("linear", SIZE), LEARNING_RATE)
    logistic = make_trainer(Case("logistic", "numpy", "seed", "eager"), make_problem("logistic", SIZE), LEARNING_RATE)
    assert linear.X.dtype == np.float64 and linear.w.shape == (SIZE.n_features, 1)
    assert logistic.w.shape == (SIZE.n_features,)


def test_unknown_variant_and_barrier_are_refused():
    problem = make_problem("linear", SIZE)
    with pytest.raises(ValueError):
        make_trainer(Case("linear", "numpy", "compiled", "eager"), problem, LEARNING_RATE)
    with pytest.raises(ValueError):
        make_trainer(Case("linear", "mlx", "autodiff", "eager"), problem, LEARNING_RATE)
    with pytest.raises(ValueError):
        make_trainer(Case("linear", "cupy", "analytic", "eager"), problem, LEARNING_RATE)


@pytest.mark.parametrize("backend,variant,barrier", [("numpy", "analytic", "eager"), ("mlx", "compiled", "round")])
def test_mini_batches_follow_the_schedule_across_runs(backend, variant, barrier):
    case = Case("logistic", backend, variant, barrier, batch_size=32)
    problem = make_problem("logistic", SIZE, 32)
    split = make_trainer(case, problem, LEARNING_RATE)
    split.run(7)
    split.run(8)  # continues with batch 7, not batch 0
    whole = make_trainer(case, problem, LEARNING_RATE)
    whole.run(15)
    assert np.allclose(split.weights(), whole.weights(), rtol=0, atol=1e-7)
    # and a full-batch step is a different thing
    full = make_trainer(Case("logistic", backend, variant, barrier), make_problem("logistic", SIZE), LEARNING_RATE)
    full.run(15)
    assert relative_error(full.weights(), whole.weights()) > 1e-3


def test_a_problem_made_for_another_shape_is_refused():
    with pytest.raises(ValueError, match="make_problem"):
        make_trainer(
            Case("linear", "numpy", "analytic", "eager", batch_size=32), make_problem("linear", SIZE), LEARNING_RATE
        )
