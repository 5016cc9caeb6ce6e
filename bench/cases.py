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
    variant: str  # numpy: analytic | analytic-1thread | seed ; mlx: autodiff | analytic | compiled | blog
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


# Mini-batch sizes every model runs besides full batch (examples per step).
BATCH_SIZES = (32, 256)


def grid_cases(model: str, mlx_devices: tuple[str, ...], size: Size) -> list[Case]:
    """Every case the size grid runs for a model at a size, NumPy first then MLX per device."""
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


def blog_cases(model: str, mlx_devices: tuple[str, ...], size: Size | None = None) -> list[Case]:
    """The blog's own configurations: NumPy float64 code and MLX code as published.

    Linear: K lazy steps then one eval (`round`). Logistic: the accuracy check
    read back every step, stopping early above 95% (`sync`).
    """
    barrier = {"linear": ("eager", "round"), "logistic": ("sync", "sync")}[model]
    return [Case(model, "numpy", "seed", barrier[0])] + [
        Case(model, "mlx", "blog", barrier[1], device) for device in mlx_devices
    ]


def cold_cases(model: str, mlx_devices: tuple[str, ...], size: Size | None = None) -> list[Case]:
    """Cases whose first call is timed on its own: where first-call costs differ.

    MLX traces the graph on a first call, and `compiled` also compiles it (and
    on Linux CPU may run g++); NumPy pays first-touch page faults only.
    """
    cases = [Case(model, "numpy", "analytic", "eager")]
    for device in mlx_devices:
        cases += [Case(model, "mlx", variant, "step", device) for variant in ("autodiff", "analytic", "compiled")]
    return cases


# Which cases each kind of benchmark module runs (its SCENARIO attribute).
CASES_BY_SCENARIO = {"grid": grid_cases, "blog": blog_cases, "cold": cold_cases}
