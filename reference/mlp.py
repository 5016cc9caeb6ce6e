"""Float64 NumPy reference of the one-hidden-layer MLP classifier trained by SGD.

Same model and algorithm as the timed MLP kernels, in mlx.nn.Linear's layout
(weights are (out, in)):

    h      = relu(X W1^T + b1)
    logits = h W2^T + b2
    loss   = mean over the batch of softmax cross-entropy (stable log-softmax)
    p     -= lr * dloss/dp            plain SGD, every parameter

computed in float64 so its own rounding is negligible next to a float32
kernel's. Parameters travel as dicts {"W1", "b1", "W2", "b2"}; `flatten_params`
turns one into the single vector the correctness checks compare.
"""

from __future__ import annotations

import numpy as np

# The fixed order of the flattened parameter vector: every backend's weights()
# and the reference must agree on it.
PARAM_ORDER = ("W1", "b1", "W2", "b2")


def flatten_params(params: dict) -> np.ndarray:
    """The parameters as one float64 vector, in the order W1, b1, W2, b2."""
    return np.concatenate([np.asarray(params[name], dtype=np.float64).reshape(-1) for name in PARAM_ORDER])


def unflatten_params(w, n_features: int, hidden: int) -> dict:
    """Inverse of flatten_params: the float64 parameter dict of a flattened vector."""
    w = np.asarray(w, dtype=np.float64).reshape(-1)
    # len(w) = hidden * (n_features + 1) + classes * (hidden + 1): solve for classes.
    classes, rest = divmod(w.size - hidden * (n_features + 1), hidden + 1)
    if rest or classes < 1:
        raise ValueError(f"{w.size} values are no MLP with {n_features} features and {hidden} hidden units")
    shapes = {"W1": (hidden, n_features), "b1": (hidden,), "W2": (classes, hidden), "b2": (classes,)}
    params, start = {}, 0
    for name in PARAM_ORDER:
        size = int(np.prod(shapes[name]))
        params[name] = w[start : start + size].reshape(shapes[name])
        start += size
    return params


def _as_float64(params: dict) -> dict:
    # Copies: the shared start weights are read-only, and SGD updates in place.
    return {name: np.array(params[name], dtype=np.float64) for name in PARAM_ORDER}


def _forward(X: np.ndarray, params: dict):
    """Pre-activation, hidden activation and logits of a batch."""
    z = X @ params["W1"].T + params["b1"]
    h = np.maximum(z, 0.0)
    logits = h @ params["W2"].T + params["b2"]
    return z, h, logits


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    # Shift by the row maximum so exp never overflows.
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def mlp_loss(X, y, params: dict) -> float:
    """Mean softmax cross-entropy of the MLP on (X, y), in float64."""
    X = np.asarray(X, dtype=np.float64)
    labels = np.asarray(y).astype(np.intp)
    _, _, logits = _forward(X, _as_float64(params))
    return float(-np.mean(_log_softmax(logits)[np.arange(len(labels)), labels]))


def mlp_gradients(X, y, params: dict) -> dict:
    """Gradient of mlp_loss with respect to every parameter, in float64."""
    X = np.asarray(X, dtype=np.float64)
    labels = np.asarray(y).astype(np.intp)
    params = _as_float64(params)
    z, h, logits = _forward(X, params)
    # d(mean cross-entropy)/d logits = (softmax - one_hot) / b
    g = np.exp(_log_softmax(logits))
    g[np.arange(len(labels)), labels] -= 1.0
    g /= len(labels)
    dz = (g @ params["W2"]) * (z > 0)  # ReLU passes the gradient only where it was active
    return {"W1": dz.T @ X, "b1": dz.sum(axis=0), "W2": g.T @ h, "b2": g.sum(axis=0)}


def mlp_reference_params(X, y, params0: dict, lr: float, steps: int, batches=None) -> dict:
    """Parameters after `steps` SGD steps from params0, in float64.

    batches: None for full-batch gradient descent, else the (n_batches, b) row
    schedule of bench.cases.datasets.batch_schedule; step t uses row t mod n_batches.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    params = _as_float64(params0)
    for t in range(steps):
        if batches is None:
            grads = mlp_gradients(X, y, params)
        else:
            rows = batches[t % len(batches)]
            grads = mlp_gradients(X[rows], y[rows], params)
        for name in PARAM_ORDER:
            params[name] -= lr * grads[name]
    return params


def mlp_quality(X, y, params: dict) -> dict:
    """End-of-training figures of the MLP on (X, y): mean cross-entropy and accuracy."""
    X = np.asarray(X, dtype=np.float64)
    labels = np.asarray(y).astype(np.intp)
    _, _, logits = _forward(X, _as_float64(params))
    accuracy = np.mean(np.argmax(logits, axis=1) == labels)
    return {"train_loss": mlp_loss(X, labels, params), "train_accuracy": float(accuracy)}
