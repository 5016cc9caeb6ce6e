"""What a backend is: the one interface through which a library joins the suite.

A backend is a package under bench/backends/ whose ``__init__`` defines a
subclass of Backend (importing its library only on first use, so the suite
runs where the library is missing) and kernel modules that import it freely.
It is named once, in bench/backends/registry.py. Everything the rest of the
suite needs to know about a library goes through this interface, so nothing
outside bench/backends/ branches on a backend's name:

  which cases it runs       cases(model, scenario, size, grid)
  where they can run        devices(), unavailable(device)
  its trainer per model     trainers = {"mlp": "pkg.mlp:Class", "*": ...}, prepare()
                            (make_trainer(case, problem, lr) -> Trainer builds one)
  its bare loop             bare_loop = "pkg.module:function" (bare_round_seconds, the overhead check)
  where the quick grid runs quick_sizes (None: every size)
  its peak-memory probe     memory_baseline(), peak_memory_bytes(trainer, steps, baseline)
  what it records           machine_info(), blas_threads(case), matmul_precision(case)
  what a case runs inside   case_context(case), runs_serially(case)
  its command-line options  add_options(group), configure(getoption)

A Trainer owns its copy of one problem (bench.cases.datasets.Problem: data, start
weights and batch schedule, the same bytes for every backend) and its weights:
  reset()            back to the problem's start weights (outside any timer)
  run(steps, stop_accuracy=None) -> int
                     `steps` SGD steps ending in the case's barrier; with
                     stop_accuracy, stop early once the sync check passes it
                     (the blog's early stopping); returns the steps done
  settle() -> float  seconds to finish any work the last run left pending
                     (0 for an eager backend); see bench.cases.checks.check_barrier
  weights()          the current weights as one float64 NumPy vector, in the
                     order of bench.cases.datasets.flatten_params
  layout             a short text saying how the weights are laid out
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Callable
from typing import ClassVar, Protocol

import numpy as np

from bench.cases.case import Case, GridOptions
from bench.cases.datasets import Problem
from bench.cases.sizes import Size


class Trainer(Protocol):
    layout: str

    def reset(self) -> None: ...
    def run(self, steps: int, stop_accuracy: float | None = None) -> int: ...
    def settle(self) -> float: ...
    def weights(self) -> np.ndarray: ...


class BackendOptionError(ValueError):
    """A backend's command-line option has a value it cannot use (a usage error, one line)."""


class Backend:
    """One library's place in the suite; subclasses override what differs from these defaults."""

    name: ClassVar[str]  # as saved in results and written in case ids: "numpy", "mlx", "torch", "jax"
    label: ClassVar[str]  # as a report shows it: "NumPy", "MLX", "PyTorch", "JAX"
    package: ClassVar[str]  # the module whose absence skips every case of the backend
    install_hint: ClassVar[str]  # what to run to get it, said in the skip reason
    # The sizes of the default quick grid this backend runs (None: every one); the others run everywhere.
    quick_sizes: ClassVar[tuple[Size, ...] | None] = None
    # Where its kernels live, imported on first use: model -> "module:TrainerClass" ("*": every other
    # model), and "module:function" of its bare loop.
    trainers: ClassVar[dict[str, str]] = {}
    bare_loop: ClassVar[str] = ""

    # ---- availability and cases -------------------------------------------------------------
    def missing(self) -> str | None:
        """Why the backend cannot run here at all (its library is not installed), or None."""
        if importlib.util.find_spec(self.package) is None:
            return f"{self.package} is not installed ({self.install_hint})"
        return None

    def devices(self) -> tuple[str, ...]:
        """The devices this session's cases of the backend run on (after configure)."""
        return ("cpu",)

    def unavailable(self, device: str) -> str | None:
        """Why the backend cannot run on `device` here, or None (checked after missing())."""
        return None if device == "cpu" else f"{self.label} has no {device} device on this machine"

    def cases(self, model: str, scenario: str, size: Size, grid: GridOptions) -> list[Case]:
        """The backend's cases for a model at a size in a scenario ("grid", "blog", "cold")."""
        return []

    # ---- training ---------------------------------------------------------------------------
    def prepare(self) -> None:
        """Once-per-process set-up before the first trainer is built (e.g. thread counts); nothing by default."""

    def make_trainer(self, case: Case, problem: Problem, lr: float) -> Trainer:
        """Build the trainer of a case; data conversion and the first evaluation happen here, untimed."""
        self.prepare()
        path = self.trainers.get(case.model) or self.trainers.get("*")
        if path is None:
            raise ValueError(f"{self.name} has no trainer for the {case.model} model")
        return _imported(path)(case, problem, lr)

    def bare_round_seconds(self, trainer: Trainer, steps: int) -> float:
        """Seconds of one round of `steps` steps of the trainer's kernel, written as the plain loop a user would write."""
        if not self.bare_loop:
            raise NotImplementedError(f"{self.name} has no bare loop")
        return _imported(self.bare_loop)(trainer, steps)

    def case_context(self, case: Case) -> contextlib.AbstractContextManager:
        """What a whole case runs inside (calibration, every pass, the checks), e.g. a BLAS thread limit."""
        return contextlib.nullcontext()

    def runs_serially(self, case: Case) -> bool:
        """Whether the case hands its work between threads one at a time, so one CPU serves it best (bench.engine.affinity)."""
        return False

    # ---- what is recorded ---------------------------------------------------------------------
    def memory_baseline(self) -> int:
        """Bytes the backend holds before a trainer exists (earlier cases' arrays, caches)."""
        return 0

    def peak_memory_bytes(self, trainer: Trainer, steps: int, baseline: int) -> int | None:
        """Peak bytes while the trainer runs `steps` steps: its data plus its steps' temporaries (after timing)."""
        return None

    def machine_info(self) -> dict:
        """Flat fields for every result's machine_info, each prefixed with the backend's name (version, BLAS, threads, devices)."""
        return {}

    def blas_threads(self, case: Case) -> int | None:
        """Threads the case's matmuls run on right now (inside case_context)."""
        return None

    def matmul_precision(self, case: Case) -> str:
        """The precision the case's matmuls really run in: its dtype, or e.g. "tf32" on a GPU."""
        return case.dtype.name

    # ---- command line -----------------------------------------------------------------------
    def add_options(self, group) -> None:
        """Add the backend's own pytest options (e.g. --mlx-device) to the suite's option group."""

    def configure(self, getoption: Callable[[str], object]) -> None:
        """Read the backend's options at session start; raise BackendOptionError on a bad value."""


def _imported(path: str):
    """The object a "package.module:name" path names, importing its module."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def device_choice(value: str | None, known: tuple[str, ...], option: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """Parse a --<backend>-device value: one device, a comma list, or `all` (every known device)."""
    if value is None:
        return default
    if value == "all":
        return known
    chosen = tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
    unknown = [d for d in chosen if d not in known]
    if not chosen or unknown:
        raise BackendOptionError(
            f"{option}: {value!r}: expected one of {', '.join(known)}, a comma list of them, or all"
        )
    return chosen
