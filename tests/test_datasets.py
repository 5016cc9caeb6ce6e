"""The seeded problems: reproducible, shared, read-only, append-only."""

import numpy as np
import pytest

from bench.cases.datasets import PROBLEMS, ProblemCache, make_problem, n_test_examples, seed_for
from bench.cases.sizes import Size


def fresh(model, size):
    PROBLEMS.clear()
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


def test_the_cache_keeps_one_model_and_size_at_a_time():
    cache = ProblemCache()
    full = cache.get("linear", Size(300, 7))
    batched = cache.get("linear", Size(300, 7), 32)
    assert batched.X is full.X  # one copy of the data for every case of a (model, size)
    assert batched.batches.shape == (300 // 32, 32) and full.batches is None
    assert cache.get("linear", Size(300, 7)) is full
    held = cache.nbytes
    assert full.X.nbytes <= held < 2 * full.X.nbytes
    other = cache.get("logistic", Size(300, 7))  # another (model, size): the first one's problems go
    assert cache.get("linear", Size(300, 7)) is not full
    assert other.X.shape == (300, 7)


def test_a_problem_carries_its_start_weights_and_schedule():
    mlp = make_problem("mlp", Size(300, 7), 32, 16)
    assert set(mlp.start) == {"W1", "b1", "W2", "b2"} and mlp.start["W1"].shape == (16, 7)
    assert mlp.batch_rows == 32 and mlp.batches.dtype == np.int32
    assert not any(a.flags.writeable for a in mlp.start.values())
    with pytest.raises(ValueError, match="hidden width"):
        make_problem("mlp", Size(300, 7))
    with pytest.raises(ValueError, match="no hidden layer"):
        make_problem("linear", Size(300, 7), hidden=16)


def test_the_reference_lives_as_long_as_its_problem():
    import gc
    import weakref

    from bench.cases.checks import expected_weights

    cache = ProblemCache()
    problem = cache.get("linear", Size(300, 7))
    expected_weights(problem, 0.01, 10)
    assert len(problem.memo) == 1
    alive = weakref.ref(problem)
    cache.clear()
    del problem
    gc.collect()
    assert alive() is None  # nothing else (no lru_cache) keeps a dropped problem alive
