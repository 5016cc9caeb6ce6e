"""Backends: one package per library, each a Backend (bench.backends.base) registered in bench.backends.registry.

The rest of the suite reaches a library only through these functions, and
never branches on a backend's name.
"""

from __future__ import annotations

import functools
import importlib

from bench.backends.base import Backend, BackendOptionError, Trainer
from bench.backends.registry import BACKENDS

__all__ = ["Backend", "BackendOptionError", "Trainer", "all_backends", "get", "make_trainer"]


@functools.cache
def get(name: str) -> Backend:
    """The registered backend of a name (its package imported; its library not yet)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; registered: {', '.join(BACKENDS)}")
    return importlib.import_module(BACKENDS[name]).BACKEND


def all_backends() -> list[Backend]:
    """Every registered backend, in the registry's order."""
    return [get(name) for name in BACKENDS]


def make_trainer(case, problem, lr: float) -> Trainer:
    """Build the trainer of a case through its backend; data conversion happens here, before any timer."""
    if (problem.model, problem.batch_size, problem.hidden) != (case.model, case.batch_size, case.hidden):
        raise ValueError(
            f"{case.id}: the problem is {problem.model} with batch size {problem.batch_size} and hidden width "
            f"{problem.hidden}; make it with make_problem(case.model, size, case.batch_size, case.hidden)"
        )
    return get(case.backend).make_trainer(case, problem, lr)
