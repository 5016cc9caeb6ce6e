"""What can go wrong with a worker, as exceptions: one line each, raised by the client and the pool."""

from __future__ import annotations


class WorkerError(AssertionError):
    """A request the worker answered with an error (a failed check, one line), or a worker that died."""


class WorkerRefused(WorkerError):
    """A worker that must not be used at all: another release or another machine than asked for."""


class WorkerTimeout(WorkerError):
    """A worker that did not answer within its deadline (it has been killed)."""
