"""The seeded problems: reproducible, shared, read-only, append-only."""

import numpy as np
import pytest

from bench.datasets import make_problem, n_test_examples, seed_for
from bench.sizes import Size


def fresh(model, size):
    make_problem.cache_clear()
    return make_problem(model, size)


@pytest.mark.parametrize("model", ["linear", "logistic"])
def test_same_bytes_every_time(model):
    a = fresh(model, Size(300, 7))
    b = fresh(model, Size(300, 7))
    for name in ("X", "y", "X_test", "y_test", "w_star", "w0"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def test_shapes_dtypes_and_read_only():
    p = make_problem("linear", Size(500, 20))
    assert p.X.shape == (500, 20) and p.y.shape == (500,) and p.w0.shape == (20,)
    assert p.X_test.shape == (n_test_examples(500), 20)
    for a in (p.X, p.y, p.X_test, p.y_test, p.w_star, p.w0):
        assert a.dtype == np.float32
        assert not a.flags.writeable


def test_linear_labels_follow_w_star_with_small_noise():
    p = make_problem("linear", Size(2000, 30))
    residual = p.y - p.X @ p.w_star
    assert 0.005 < residual.std() < 0.02


def test_logistic_labels_are_the_sign_of_the_noisy_score():
    p = make_problem("logistic", Size(2000, 30))
    assert set(np.unique(p.y)) == {0.0, 1.0}
    agree = np.mean((p.X @ p.w_star > 0) == (p.y > 0.5))
    assert agree > 0.99  # the noise flips only examples near the boundary


def test_sizes_and_models_do_not_share_data():
    a = make_problem("linear", Size(100, 10))
    b = make_problem("linear", Size(100, 11))
    c = make_problem("logistic", Size(100, 10))
    assert not np.array_equal(a.X[:, :10], b.X[:, :10])
    assert not np.array_equal(a.X, c.X)


def test_seed_depends_only_on_model_and_size():
    # Adding sizes to a grid must never change an existing problem's data.
    assert seed_for("linear", Size(1000, 100)).entropy == seed_for("linear", Size(1000, 100)).entropy
    assert seed_for("linear", Size(1000, 100)).spawn_key == ()


def test_unknown_model():
    with pytest.raises(ValueError, match="unknown model"):
        make_problem("svm", Size(10, 2))
