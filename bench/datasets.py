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
MODEL_SEED_IDS = {"linear": 1, "logistic": 2}
LABEL_NOISE = 1e-2  # the blog's eps scale
INIT_SCALE = 1e-2  # the blog's w0 scale


@dataclass(frozen=True, eq=False)
class Problem:
    """A training problem: data, test split, true weights and a start point."""

    model: str
    size: Size
    X: np.ndarray  # (n, d) float32
    y: np.ndarray  # (n,) float32; 0/1 labels for logistic
    X_test: np.ndarray
    y_test: np.ndarray
    w_star: np.ndarray  # (d,) the weights that made the labels
    w0: np.ndarray  # (d,) the start point every backend uses

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


def seed_for(model: str, size: Size) -> np.random.SeedSequence:
    """The seed of one problem, stable across releases of this suite."""
    return np.random.SeedSequence([BASE_SEED, MODEL_SEED_IDS[model], size.n_examples, size.n_features])


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
