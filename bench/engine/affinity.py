"""Which CPUs a case's threads may run on, set for every thread of the process.

On a shared VM, where the scheduler places a process's threads decides much
of a serial backend's speed: MLX's CPU backend hands every evaluation from the
Python thread to its stream thread and back, and when the two sit on different
vCPUs each hand-off pays a cross-CPU wake-up. docs/figures/intel-xeon-vm-2026-11-28.md,
"Figures: 2-core Intel Xeon VM", gives the measured size of that effect. A case that hands its work
between threads one at a time (Backend.runs_serially: MLX on the CPU
with its bundled BLAS) therefore runs with all its threads on one CPU by
default, so its figure does not depend on the scheduler's luck; every other
case keeps every usable CPU. The choice is saved with each result
(``cpu_affinity``).

Linux only (elsewhere nothing is pinned and ``cpu_affinity`` records None).
os.sched_setaffinity(0, ...) moves only the calling thread, and the threads
MLX and OpenBLAS started earlier keep their own masks, so every thread listed
in /proc/self/task is moved.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

CHOICES = ("auto", "none")  # or a CPU list such as "1" or "0,1"


def supported() -> bool:
    """Whether this platform lets a process choose its threads' CPUs."""
    return hasattr(os, "sched_setaffinity") and Path("/proc/self/task").is_dir()


def usable_cpus() -> tuple[int, ...]:
    """The CPUs this process may use, ascending (all of os.cpu_count() where affinity is unsupported)."""
    if hasattr(os, "sched_getaffinity"):
        return tuple(sorted(os.sched_getaffinity(0)))
    return tuple(range(os.cpu_count() or 1))


def parse_cpus(text: str) -> tuple[int, ...] | str:
    """--cpu-affinity: "auto", "none" or a CPU list like "1" or "0,2"; raises ValueError with a one-line reason."""
    value = text.strip().lower()
    if value in CHOICES:
        return value
    try:
        cpus = tuple(sorted({int(part) for part in value.split(",") if part.strip()}))
    except ValueError:
        raise ValueError(f"--cpu-affinity: {text!r} is not auto, none or a CPU list like 1 or 0,2") from None
    missing = sorted(set(cpus) - set(usable_cpus()))
    if not cpus or missing:
        raise ValueError(f"--cpu-affinity: CPU(s) {missing or text!r} not usable here (usable: {list(usable_cpus())})")
    return cpus


def serial_cpus(choice: tuple[int, ...] | str) -> tuple[int, ...] | None:
    """The CPUs for a serial case under a --cpu-affinity choice: one CPU for auto (the last usable), None for none."""
    if choice == "none" or not supported():
        return None
    if choice == "auto":
        return (usable_cpus()[-1],)  # CPU 0 usually takes more of the machine's interrupts
    return choice


def _set_all_threads(cpus) -> None:
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):  # a thread may end while we walk the list
            os.sched_setaffinity(int(task.name), cpus)


@contextlib.contextmanager
def pinned(cpus: tuple[int, ...] | None):
    """Run the block with every thread of the process on `cpus` (no change for None), then restore."""
    if cpus is None or not supported():
        yield
        return
    before = os.sched_getaffinity(0)
    _set_all_threads(cpus)
    try:
        yield
    finally:
        _set_all_threads(before)


def cpu_sets(spec: str | None, available: list[int] | None = None) -> list[list[int]]:
    """The CPU sets sessions are pinned to, in turn: 'auto' (each usable CPU alone, in turn), 'none', or '0' / '0,1' / '0;1'.

    A ';' separates sets that sessions take in turn; ',' or '-' lists the CPUs of one set.
    """
    if available is None:
        available = list(usable_cpus()) if hasattr(os, "sched_getaffinity") else []
    text = (spec or "auto").strip().lower()
    if text == "none" or not available:
        return [[]]
    if text == "auto":
        return [[cpu] for cpu in available]
    sets = []
    for part in text.split(";"):
        cpus: list[int] = []
        for piece in part.split(","):
            piece = piece.strip()
            try:
                if "-" in piece:
                    low, high = (int(x) for x in piece.split("-", 1))
                    cpus.extend(range(low, high + 1))
                elif piece:
                    cpus.append(int(piece))
            except ValueError:
                raise ValueError(
                    f"--cpus {spec!r}: {piece!r} is not a CPU number or range (expected auto, none, or e.g. 0 / 0,1 / '0;1')"
                ) from None
        missing = sorted(set(cpus) - set(available))
        if not cpus or missing:
            raise ValueError(f"--cpus {spec!r}: CPUs {missing or '(none)'} are not usable here (usable: {available})")
        sets.append(sorted(set(cpus)))
    return sets
