"""Peak memory of a case's training steps: its data plus the temporaries of its steps.

MLX counts through its allocator (reset the peak, run, take the larger of
peak and active, minus what was alive before the trainer existed). NumPy
counts through tracemalloc, which sees NumPy's buffers; tracemalloc slows
every allocation, so this runs after timing, never inside it. Both figures
mean the same thing: the bytes the trainer holds (design matrix, labels,
weights) plus the most its steps allocated at once.
"""

from __future__ import annotations

import tracemalloc

import numpy as np

from bench import compat

MEMORY_STEPS = 5  # steps run under measurement; peaks repeat from the first step on


def mlx_baseline_bytes() -> int:
    """MLX bytes alive now (arrays of earlier cases still referenced, caches)."""
    return compat.active_memory_bytes() or 0


def held_numpy_bytes(trainer) -> int:
    """Bytes of the NumPy arrays a trainer holds (shared read-only data included)."""
    seen, total = set(), 0
    for value in vars(trainer).values():
        arrays = value if isinstance(value, (list, tuple)) else [value]
        for a in arrays:
            if isinstance(a, np.ndarray):
                base = a if a.base is None else a.base
                if id(base) not in seen and isinstance(base, np.ndarray):
                    seen.add(id(base))
                    total += base.nbytes
    return total


def peak_memory_bytes(trainer, backend: str, baseline: int = 0, steps: int = MEMORY_STEPS) -> int:
    """Peak bytes while the trainer runs `steps` steps (see the module docstring)."""
    if backend == "mlx":
        compat.reset_peak_memory()
        trainer.run(steps)
        peak = max(compat.peak_memory_bytes() or 0, compat.active_memory_bytes() or 0)
        return max(peak - baseline, 0)
    held = held_numpy_bytes(trainer)
    already = tracemalloc.is_tracing()
    if not already:
        tracemalloc.start()
    tracemalloc.reset_peak()
    start, _ = tracemalloc.get_traced_memory()
    try:
        trainer.run(steps)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if not already:
            tracemalloc.stop()
    return held + max(peak - start, 0)
