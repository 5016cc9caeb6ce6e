"""The benchmark cases as data: which backend, variant, barrier and device run a model.

A Case is pure data; its id (bench.cases.identity) doubles as a pytest filter
(`-k "mlx-compiled"`). Which cases exist is each backend's own business
(Backend.cases); bench.cases.grid asks every registered backend and orders the
answers. Barrier policies (docs/measurement.md, "Measurement rules", rule 2):
  step  - evaluate (or synchronise) every step, as a training loop that reads its loss does
  round - K lazy (asynchronous) steps, one evaluation at the end (the blog's linear example)
  sync  - read a value back to the host every step (the blog's early stopping)
  eager - a backend that computes as it goes (NumPy, PyTorch on the CPU)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.cases.identity import case_id, implementation_id
from bench.cases.sizes import Size

# Variants that compute in float64 (the blog's own NumPy code); every other case is float32.
FLOAT64_VARIANTS = ("seed",)


@dataclass(frozen=True)
class Case:
    """One implementation under test: backend x variant x barrier x device (x batch x hidden width)."""

    model: str
    backend: str  # a name in bench.backends.registry
    variant: str  # the backend's own: e.g. numpy analytic | seed ; mlx autodiff | compiled ; torch autograd
    barrier: str  # eager | step | round | sync
    device: str = "cpu"
    batch_size: int | None = None  # None: full batch (all examples every step)
    hidden: int | None = None  # MLP hidden width; None for the linear models

    @property
    def dtype(self) -> np.dtype:
        """float64 for the blog's own NumPy code (`seed`), float32 otherwise."""
        return np.dtype(np.float64 if self.variant in FLOAT64_VARIANTS else np.float32)

    @property
    def id(self) -> str:
        """The implementation's id, e.g. ``mlx-compiled-step-cpu`` or ``mlx-nn-step-cpu-h64-b256``."""
        return implementation_id(self.backend, self.variant, self.barrier, self.device, self.hidden, self.batch_size)

    def case_id(self, size: Size) -> str:
        """Full readable id, e.g. ``linear-mlx-compiled-step-cpu-n1000-d100``."""
        return case_id(self.model, self.id, size.n_examples, size.n_features)

    def batch_rows(self, size: Size) -> int:
        """Examples per step at this size."""
        return min(self.batch_size, size.n_examples) if self.batch_size else size.n_examples


# Mini-batch sizes the linear models run besides full batch (examples per step).
BATCH_SIZES = (32, 256)
# The MLP: hidden widths per grid, and its mini-batch size besides full batch.
HIDDEN_SIZES = {"quick": (64, 256), "full": (64, 256, 1_024)}
MLP_BATCH_SIZE = 256
# A full-batch MLP step costs ~6 n d h flops: at n d h = 1e9 that is seconds per
# step for MLX's bundled reference BLAS. The quick grid runs full-batch MLP steps
# only up to this much work (1,000 x 100 at h = 256, 10,000 x 100 at h = 64),
# and mini-batches at every size; `--sizes full` or an explicit list lifts it.
QUICK_MLP_FULL_BATCH_WORK = 100_000_000


@dataclass(frozen=True)
class GridOptions:
    """What besides sizes and devices shapes the grid (from the command line)."""

    hidden: tuple[int, ...] = HIDDEN_SIZES["quick"]
    mlp_full_batch_work: int | None = QUICK_MLP_FULL_BATCH_WORK  # None: no limit
    # The default quick grid (`--sizes quick`): a backend may keep its costliest variants
    # (those that compile every shape for seconds) to a few sizes there, so the main job
    # stays within minutes; any other grid runs every variant everywhere.
    quick: bool = True


def linear_batches(size: Size) -> list[int]:
    """The linear models' mini-batch sizes at a size (those smaller than the problem)."""
    return [b for b in BATCH_SIZES if b < size.n_examples]


def mlp_batches(size: Size, hidden: int, options: GridOptions) -> list[int | None]:
    """The MLP's batch sizes at a size: the mini-batch, and full batch where the grid allows it."""
    batches = [MLP_BATCH_SIZE] if MLP_BATCH_SIZE < size.n_examples else []
    work = size.n_examples * size.n_features * hidden
    if options.mlp_full_batch_work is None or work <= options.mlp_full_batch_work:
        batches.append(None)
    return batches


def mlp_shapes(size: Size, options: GridOptions) -> list[tuple[int, int | None]]:
    """Every (hidden width, batch size) the MLP runs at a size."""
    return [(hidden, batch) for hidden in options.hidden for batch in mlp_batches(size, hidden, options)]


def cold_mlp_shape(size: Size, options: GridOptions) -> tuple[int, int | None]:
    """The one MLP shape whose first call is timed: the first width in its first batch form (mini-batch)."""
    hidden = options.hidden[0]
    return hidden, mlp_batches(size, hidden, options)[0]
