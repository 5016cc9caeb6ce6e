"""The benchmark cases: which backend, variant and barrier policy run for a model.

A Case is pure data; its id doubles as a pytest filter
(`-k "mlx-compiled"`). Barrier policies (DESIGN rule 2):
  step  - mx.eval every step, as a training loop that reads its loss does
  round - K lazy steps, one mx.eval at the end (the blog's linear example)
  sync  - read a value back to the host every step (the blog's early stopping)
  eager - NumPy, which computes as it goes
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.sizes import Size


@dataclass(frozen=True)
class Case:
    """One implementation under test: backend x variant x barrier x device."""

    model: str
    backend: str  # numpy | mlx
    variant: str  # numpy: analytic | analytic-1thread | seed ; mlx: autodiff | analytic | compiled | blog | nn (MLP)
    barrier: str  # eager | step | round | sync
    device: str = "cpu"
    batch_size: int | None = None  # None: full batch (all examples every step)
    hidden: int | None = None  # MLP hidden width; None for the linear models

    @property
    def dtype(self) -> np.dtype:
        """float64 for the blog's own NumPy code (`seed`), float32 otherwise."""
        return np.dtype(np.float64 if self.variant == "seed" else np.float32)

    @property
    def id(self) -> str:
        """pytest id fragment, e.g. ``mlx-compiled-step-cpu`` or ``mlx-nn-step-cpu-h64-b256``."""
        shape = (f"-h{self.hidden}" if self.hidden else "") + (f"-b{self.batch_size}" if self.batch_size else "")
        return f"{self.backend}-{self.variant}-{self.barrier}-{self.device}{shape}"

    def case_id(self, size: Size) -> str:
        """Full readable id, e.g. ``linear-mlx-compiled-step-cpu-n1000-d100``."""
        return f"{self.model}-{self.id}-{size.id}"

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


def mlp_batches(size: Size, hidden: int, options: GridOptions) -> list[int | None]:
    """The MLP's batch sizes at a size: the mini-batch, and full batch where the grid allows it."""
    batches = [MLP_BATCH_SIZE] if MLP_BATCH_SIZE < size.n_examples else []
    work = size.n_examples * size.n_features * hidden
    if options.mlp_full_batch_work is None or work <= options.mlp_full_batch_work:
        batches.append(None)
    return batches


def mlp_cases(mlx_devices: tuple[str, ...], size: Size, options: GridOptions) -> list[Case]:
    """The MLP's cases: hand-written NumPy, and MLX's nn + optimizers step, plain and compiled."""
    cases = []
    for hidden in options.hidden:
        for batch in mlp_batches(size, hidden, options):
            cases.append(Case("mlp", "numpy", "analytic", "eager", batch_size=batch, hidden=hidden))
            for device in mlx_devices:
                for variant, barrier in (("nn", "step"), ("nn", "round"), ("compiled", "step")):
                    cases.append(Case("mlp", "mlx", variant, barrier, device, batch_size=batch, hidden=hidden))
    return cases


def grid_cases(model: str, mlx_devices: tuple[str, ...], size: Size, options: GridOptions = GridOptions()) -> list[Case]:
    """Every case the size grid runs for a model at a size, NumPy first then MLX per device."""
    if model == "mlp":
        return mlp_cases(mlx_devices, size, options)
    cases = [
        Case(model, "numpy", "analytic", "eager"),
        Case(model, "numpy", "analytic-1thread", "eager"),
        Case(model, "numpy", "seed", "eager"),
        Case(model, "numpy", "analytic", "sync"),
    ]
    for device in mlx_devices:
        for variant in ("autodiff", "analytic", "compiled"):
            for barrier in ("step", "round"):
                cases.append(Case(model, "mlx", variant, barrier, device))
        cases.append(Case(model, "mlx", "autodiff", "sync", device))
    # Mini-batch SGD: the common training-loop shapes, not every variant again.
    for batch in (b for b in BATCH_SIZES if b < size.n_examples):
        cases.append(Case(model, "numpy", "analytic", "eager", batch_size=batch))
        for device in mlx_devices:
            cases.append(Case(model, "mlx", "autodiff", "step", device, batch_size=batch))
            cases.append(Case(model, "mlx", "compiled", "step", device, batch_size=batch))
            cases.append(Case(model, "mlx", "compiled", "round", device, batch_size=batch))
    return cases


def blog_cases(model: str, mlx_devices: tuple[str, ...], size: Size | None = None, options: GridOptions = GridOptions()) -> list[Case]:
    """The blog's own configurations: NumPy float64 code and MLX code as published.

    Linear: K lazy steps then one eval (`round`). Logistic: the accuracy check
    read back every step, stopping early above 95% (`sync`).
    """
    barrier = {"linear": ("eager", "round"), "logistic": ("sync", "sync")}[model]
    return [Case(model, "numpy", "seed", barrier[0])] + [
        Case(model, "mlx", "blog", barrier[1], device) for device in mlx_devices
    ]


def cold_cases(model: str, mlx_devices: tuple[str, ...], size: Size, options: GridOptions = GridOptions()) -> list[Case]:
    """Cases whose first call is timed on its own: where first-call costs differ.

    MLX traces the graph on a first call, and `compiled` also compiles it (and
    on Linux CPU may run g++); NumPy pays first-touch page faults only. The MLP
    runs its first hidden width in its mini-batch form.
    """
    if model == "mlp":
        hidden = options.hidden[0]
        batch = mlp_batches(size, hidden, options)[0]
        return [Case("mlp", "numpy", "analytic", "eager", batch_size=batch, hidden=hidden)] + [
            Case("mlp", "mlx", variant, "step", device, batch_size=batch, hidden=hidden)
            for device in mlx_devices
            for variant in ("nn", "compiled")
        ]
    cases = [Case(model, "numpy", "analytic", "eager")]
    for device in mlx_devices:
        cases += [Case(model, "mlx", variant, "step", device) for variant in ("autodiff", "analytic", "compiled")]
    return cases


# Which cases each kind of benchmark module runs (its SCENARIO attribute).
CASES_BY_SCENARIO = {"grid": grid_cases, "blog": blog_cases, "cold": cold_cases}
