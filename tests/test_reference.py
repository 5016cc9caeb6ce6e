"""The float64 reference and the blog's published figures."""

import numpy as np

from reference import BLOG_FIGURES_PATH, load_blog_figures, quality, reference_weights
from reference.solvers import sigmoid


def test_blog_figures_name_their_source_and_hold_the_published_numbers():
    figures = load_blog_figures()
    assert "blog" in figures["source"] and "M1" in figures["machine"]
    by_key = {(f["model"], f["backend"]): f for f in figures["figures"]}
    assert by_key[("linear", "mlx")]["steps_per_s"] == 10347.875
    assert by_key[("linear", "numpy")]["steps_per_s"] == 8320.396
    assert by_key[("logistic", "mlx")]["early_stop_iteration"] == 256
    assert by_key[("logistic", "numpy")]["early_stop_iteration"] == 297
    assert BLOG_FIGURES_PATH.exists()


def test_linear_reference_converges_to_least_squares():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 5))
    y = X @ np.arange(1.0, 6.0)
    w = reference_weights("linear", X, y, np.zeros(5), lr=0.1, steps=2000)
    assert np.allclose(w, np.arange(1.0, 6.0), atol=1e-8)
    assert quality("linear", X, y, X, y, w)["test_mse"] < 1e-12


def test_logistic_reference_gradient_step_by_hand():
    X = np.array([[1.0, 0.0], [0.0, 2.0]])
    y = np.array([1.0, 0.0])
    w = reference_weights("logistic", X, y, np.zeros(2), lr=1.0, steps=1)
    # gradient at 0: X^T (0.5 - y) / 2 = [-0.25, 0.5]
    assert np.allclose(w, [0.25, -0.5])


def test_sigmoid_is_stable_at_extremes():
    z = np.array([-1000.0, 0.0, 1000.0])
    assert np.allclose(sigmoid(z), [0.0, 0.5, 1.0])
