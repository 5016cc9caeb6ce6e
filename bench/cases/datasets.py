"""Seeded synthetic problems as float32 NumPy arrays, and the one cache that keeps them.

Every backend trains on exactly these bytes (docs/measurement.md, "Measurement rules", rule
6). A Problem carries everything a trainer needs: the data, the start weights
and, for a mini-batch case, the batch schedule; backends only convert it, and
the float64 reference reads the same object. Each problem's seed is derived
from (model, n_examples, n_features), so adding a size or a model never
changes another problem's data.

Lifetime: the cache keeps the problems of one (model, size) at a time, the
ones the case being timed uses (the grid runs sizes in order, each model's
cases together); asking for another (model, size) drops them. That is the
data the memory budget counts for a case (bench.cases.sizes.estimated_case_bytes).
Later passes rebuild a problem from its key rather than keep it alive.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from bench.cases.alignment import aligned
from bench.cases.sizes import Size
from reference.mlp import PARAM_ORDER as MLP_PARAM_ORDER

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
    """A training problem: data, test split, true weights, start weights and batch schedule."""

    model: str
    size: Size
    X: np.ndarray  # (n, d) float32
    y: np.ndarray  # (n,) float32; 0/1 labels for logistic; int32 class labels for mlp
    X_test: np.ndarray
    y_test: np.ndarray
    w_star: np.ndarray  # (d,) the weights that made the labels; (d, classes) for mlp
    # The start point every backend uses: {"w": (d,)} for linear and logistic; for the
    # MLP W1 (hidden, d), b1 (hidden,), W2 (classes, hidden), b2 (classes,), in
    # mlx.nn.Linear's (out, in) layout. float32, read-only.
    start: dict[str, np.ndarray]
    batch_size: int | None = None  # None: full batch
    hidden: int | None = None  # the MLP's hidden width
    # Row indices of every mini-batch of an epoch, (n_batches, batch_size) int32; step t
    # trains on row t mod n_batches. None for full batch.
    batches: np.ndarray | None = None
    # What is computed once from this problem and lives exactly as long as it (the
    # float64 reference's weights, keyed by (lr, steps)); see bench.cases.checks.
    memo: dict = field(default_factory=dict, repr=False)

    @property
    def n_examples(self) -> int:
        return self.size.n_examples

    @property
    def n_features(self) -> int:
        return self.size.n_features

    @property
    def batch_rows(self) -> int:
        """Examples per step."""
        return self.batch_size or self.size.n_examples

    @property
    def w0(self) -> np.ndarray:
        """The linear models' start weights, (d,) float32."""
        return self.start["w"]

    @property
    def nbytes(self) -> int:
        arrays = [self.X, self.y, self.X_test, self.y_test, self.w_star, *self.start.values()]
        if self.batches is not None:
            arrays.append(self.batches)
        return sum(a.nbytes for a in arrays)

    def start_vector(self) -> np.ndarray:
        """The start weights flattened like Trainer.weights(), float64."""
        return flatten_params(self.start)


def flatten_params(params: dict) -> np.ndarray:
    """Parameters as one float64 vector: "w" alone, or the MLP's in reference.mlp.PARAM_ORDER (W1, b1, W2, b2)."""
    names = ("w",) if "w" in params else MLP_PARAM_ORDER
    return np.concatenate([np.asarray(params[name], dtype=np.float64).reshape(-1) for name in names])


def n_test_examples(n_examples: int) -> int:
    """Held-out rows: the blog's 100, growing to 10% of large problems (capped)."""
    return max(100, min(n_examples // 10, 10_000))


def seed_for(model: str, size: Size, *stream: int) -> np.random.SeedSequence:
    """The seed of one problem (or of a named stream of it), stable across releases of this suite."""
    return np.random.SeedSequence([BASE_SEED, MODEL_SEED_IDS[model], size.n_examples, size.n_features, *stream])


class ProblemCache:
    """The problems of one (model, size) at a time; asking for another drops them (see the module doc)."""

    def __init__(self) -> None:
        self._key: tuple[str, Size] | None = None
        self._data: Problem | None = None
        self._problems: dict[tuple[int | None, int | None], Problem] = {}

    def get(self, model: str, size: Size, batch_size: int | None = None, hidden: int | None = None) -> Problem:
        """The problem of a model at a size, for a batch size (None: full batch) and an MLP hidden width."""
        if (model, size) != self._key:
            self.clear()
            self._data, self._key = _make_data(model, size), (model, size)
        key = (batch_size, hidden)
        if key not in self._problems:
            self._problems[key] = _with_start_and_batches(self._data, batch_size, hidden)
        return self._problems[key]

    def clear(self) -> None:
        """Drop every cached problem (the arrays go once no trainer holds them)."""
        self._key, self._data, self._problems = None, None, {}

    @property
    def nbytes(self) -> int:
        """Bytes the cache holds now (the data once: every problem of a key shares it)."""
        if self._data is None:
            return 0
        extra = sum(p.nbytes - self._data.nbytes for p in self._problems.values())
        return self._data.nbytes + extra


PROBLEMS = ProblemCache()


def make_problem(model: str, size: Size, batch_size: int | None = None, hidden: int | None = None) -> Problem:
    """The seeded problem of a model at a size (from the process's ProblemCache)."""
    return PROBLEMS.get(model, size, batch_size, hidden)


def _settled(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """The arrays on a cache line (bench.cases.alignment) and read-only: shared by every case, changed by none."""
    settled = tuple(aligned(a) for a in arrays)
    for a in settled:
        a.setflags(write=False)
    return settled


def _make_data(model: str, size: Size) -> Problem:
    """The seeded data of a model at a size (start weights of the linear models included)."""
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
        return _classification_data(rng, size, X, X_test)
    if model == "linear":
        y = X @ w_star + noise
        y_test = X_test @ w_star
    else:  # logistic: labels from sign(X w* + noise), as the blog
        y = ((X @ w_star + noise) > 0).astype(f32)
        y_test = ((X_test @ w_star) > 0).astype(f32)
    *arrays, w0 = _settled(X, y.astype(f32), X_test, y_test.astype(f32), w_star, w0.astype(f32))
    return Problem(model, size, *arrays, start={"w": w0})


def _classification_data(rng, size: Size, X, X_test) -> Problem:
    """MLP data: labels are the argmax of a random linear teacher's noisy scores (start weights per width)."""
    teacher = rng.standard_normal((size.n_features, MLP_CLASSES), dtype=np.float32)
    noise = rng.standard_normal((size.n_examples, MLP_CLASSES), dtype=np.float32)
    y = np.argmax(X @ teacher + 0.1 * noise, axis=1).astype(np.int32)
    y_test = np.argmax(X_test @ teacher, axis=1).astype(np.int32)
    return Problem("mlp", size, *_settled(X, y, X_test, y_test, teacher), start={})


def _with_start_and_batches(data: Problem, batch_size: int | None, hidden: int | None) -> Problem:
    """The data of a (model, size) with a case's start weights and batch schedule."""
    if data.model == "mlp":
        if not hidden:
            raise ValueError("an mlp problem needs its hidden width")
        start = mlp_initial_params(data.size, hidden)
    else:
        if hidden:
            raise ValueError(f"the {data.model} model has no hidden layer")
        start = data.start
    batches = batch_schedule(data.model, data.size, batch_size) if batch_size else None
    return replace(data, start=start, batch_size=batch_size, hidden=hidden, batches=batches, memo={})


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

    shapes = {
        "W1": ((hidden, d), d),
        "b1": ((hidden,), d),
        "W2": ((MLP_CLASSES, hidden), hidden),
        "b2": ((MLP_CLASSES,), hidden),
    }
    drawn = [uniform(shape, fan_in) for shape, fan_in in shapes.values()]  # in this order: the seeded stream
    return dict(zip(shapes, _settled(*drawn)))


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
    (schedule,) = _settled(order[: n_batches * batch_size].reshape(n_batches, batch_size))
    return schedule
