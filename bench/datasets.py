"""Seeded synthetic problems as float32 NumPy arrays, made once and cached.

Every backend trains on exactly these bytes (DESIGN rule 6). Each problem's
seed is derived from (model, n_examples, n_features), so adding a size or a
model never changes another problem's data.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from bench.sizes import Size

BASE_SEED = 20_240_101
# Append-only: a model's number is part of its data's seed.
MODEL_SEED_IDS = {"linear": 1, "logistic": 2, "mlp": 3}
# Streams drawn from a problem's seed besides its data (append-only as well).
BATCH_ORDER_STREAM = 101
MLP_INIT_STREAM = 102
MLP_CLASSES = 10
LABEL_NOISE = 1e-2  # the blog's eps scale
INIT_SCALE = 1e-2  # the blog's w0 scale


@dataclass(frozen=True, eq=False)
class Problem:
    """A training problem: data, test split, true weights and a start point."""

    model: str
    size: Size
    X: np.ndarray  # (n, d) float32
    y: np.ndarray  # (n,) float32; 0/1 labels for logistic; int32 class labels for mlp
    X_test: np.ndarray
    y_test: np.ndarray
    w_star: np.ndarray  # (d,) the weights that made the labels; (d, classes) for mlp
    w0: np.ndarray  # (d,) the start point every backend uses; mlp: see mlp_initial_params

    @property
    def n_examples(self) -> int:
        return self.size.n_examples

    @property
    def n_features(self) -> int:
        return self.size.n_features

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.X, self.y, self.X_test, self.y_test, self.w_star, self.w0))


def n_test_examples(n_examples: int) -> int:
    """Held-out rows: the blog's 100, growing to 10% of large problems (capped)."""
    return max(100, min(n_examples // 10, 10_000))


def seed_for(model: str, size: Size, *stream: int) -> np.random.SeedSequence:
    """The seed of one problem (or of a named stream of it), stable across releases of this suite."""
    return np.random.SeedSequence([BASE_SEED, MODEL_SEED_IDS[model], size.n_examples, size.n_features, *stream])


@functools.lru_cache(maxsize=8)
def make_problem(model: str, size: Size) -> Problem:
    """Build (once per process) the seeded problem for a model at a size."""
    if model not in MODEL_SEED_IDS:
        raise ValueError(f"unknown model {model!r}; known: {sorted(MODEL_SEED_IDS)}")
    rng = np.random.default_rng(seed_for(model, size))
    n, d = size.n_examples, size.n_features
    n_test = n_test_examples(n)
    f32 = np.float32
    w_star = rng.standard_normal(d, dtype=f32)
    X = rng.standard_normal((n, d), dtype=f32)
    X_test = rng.standard_normal((n_test, d), dtype=f32)
    noise = LABEL_NOISE * rng.standard_normal(n, dtype=f32)
    w0 = INIT_SCALE * rng.standard_normal(d, dtype=f32)
    if model == "mlp":
        return _classification_problem(rng, size, X, X_test)
    if model == "linear":
        y = X @ w_star + noise
        y_test = X_test @ w_star
    else:  # logistic: labels from sign(X w* + noise), as the blog
        y = ((X @ w_star + noise) > 0).astype(f32)
        y_test = ((X_test @ w_star) > 0).astype(f32)
    arrays = (X, y.astype(f32), X_test, y_test.astype(f32), w_star, w0.astype(f32))
    for a in arrays:
        a.setflags(write=False)  # shared by every case: nobody may change them
    return Problem(model, size, *arrays)


def _classification_problem(rng, size: Size, X, X_test) -> Problem:
    """MLP data: labels are the argmax of a random linear teacher's noisy scores."""
    teacher = rng.standard_normal((size.n_features, MLP_CLASSES), dtype=np.float32)
    noise = rng.standard_normal((size.n_examples, MLP_CLASSES), dtype=np.float32)
    y = np.argmax(X @ teacher + 0.1 * noise, axis=1).astype(np.int32)
    y_test = np.argmax(X_test @ teacher, axis=1).astype(np.int32)
    arrays = (X, y, X_test, y_test, teacher, np.zeros(0, np.float32))
    for a in arrays:
        a.setflags(write=False)
    return Problem("mlp", size, *arrays)


@functools.lru_cache(maxsize=16)
def mlp_initial_params(size: Size, hidden: int) -> dict[str, np.ndarray]:
    """Seeded start weights of the one-hidden-layer MLP, in mlx.nn.Linear's layout.

    W1 (hidden, d), b1 (hidden,), W2 (classes, hidden), b2 (classes,), drawn
    uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) as nn.Linear initialises itself.
    """
    rng = np.random.default_rng(seed_for("mlp", size, MLP_INIT_STREAM, hidden))
    d = size.n_features

    def uniform(shape, fan_in):
        bound = 1 / np.sqrt(fan_in)
        return rng.uniform(-bound, bound, size=shape).astype(np.float32)

    params = {
        "W1": uniform((hidden, d), d),
        "b1": uniform((hidden,), d),
        "W2": uniform((MLP_CLASSES, hidden), hidden),
        "b2": uniform((MLP_CLASSES,), hidden),
    }
    for a in params.values():
        a.setflags(write=False)
    return params


@functools.lru_cache(maxsize=32)
def batch_schedule(model: str, size: Size, batch_size: int) -> np.ndarray:
    """Row indices of every mini-batch of an epoch, shape (n_batches, batch_size), int32.

    One seeded shuffle of the examples per problem, the same for every backend
    and batch size; step t trains on row t mod n_batches. The last partial
    batch is dropped, as a DataLoader with drop_last does.
    """
    n = size.n_examples
    if not 1 <= batch_size <= n:
        raise ValueError(f"batch size {batch_size} must be between 1 and n_examples={n}")
    order = np.random.default_rng(seed_for(model, size, BATCH_ORDER_STREAM)).permutation(n).astype(np.int32)
    n_batches = n // batch_size
    schedule = order[: n_batches * batch_size].reshape(n_batches, batch_size)
    schedule.setflags(write=False)
    return schedule
