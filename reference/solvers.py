"""Float64 NumPy gradient descent: the ground truth every timed kernel is checked against.

Same algorithm as the kernels (full-batch steps, same loss, same learning rate,
same start point), computed in float64 so its own rounding error is negligible
next to a float32 kernel's.
"""

from __future__ import annotations

import numpy as np


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function, written to avoid overflow for large |z|."""
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def gradient(model: str, X: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Full-batch gradient of the model's mean loss at w (float64)."""
    n = X.shape[0]
    if model == "linear":  # loss 1/(2n) ||Xw - y||^2
        return X.T @ (X @ w - y) / n
    if model == "logistic":  # mean binary cross-entropy of sigmoid(Xw)
        return X.T @ (sigmoid(X @ w) - y) / n
    raise ValueError(f"no reference gradient for model {model!r}")


def reference_weights(model: str, X, y, w0, lr: float, steps: int, batches=None) -> np.ndarray:
    """Weights after `steps` SGD steps from w0, in float64.

    batches: None for full-batch gradient descent, else the (n_batches, b) row
    schedule of bench.cases.datasets.batch_schedule; step t uses row t mod n_batches.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    w = np.asarray(w0, dtype=np.float64).reshape(-1).copy()
    for t in range(steps):
        if batches is None:
            w -= lr * gradient(model, X, y, w)
        else:
            rows = batches[t % len(batches)]
            w -= lr * gradient(model, X[rows], y[rows], w)
    return w


def quality(model: str, X, y, X_test, y_test, w) -> dict:
    """The blog's end-of-training figures for weights w, in float64.

    linear: test-set MSE; logistic: training loss (mean cross-entropy) and accuracy.
    """
    w = np.asarray(w, dtype=np.float64).reshape(-1)
    if model == "linear":
        X_test = np.asarray(X_test, dtype=np.float64)
        return {"test_mse": float(np.mean(np.square(np.asarray(y_test, np.float64) - X_test @ w)))}
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    z = X @ w
    loss = np.mean(np.logaddexp(0.0, z) - y * z)
    return {"train_loss": float(loss), "train_accuracy": float(np.mean((z > 0) == (y > 0.5)))}
