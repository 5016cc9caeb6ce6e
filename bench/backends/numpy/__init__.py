"""NumPy: hand-written gradients computed eagerly; the baseline every other backend is compared with.

Variants: `analytic` (float32, 1-D vectors: the default comparison),
`analytic-1thread` (the same with NumPy's BLAS held to one thread, since MLX's
CPU element-wise kernels run on one thread) and `seed` (the blog's code
exactly: float64, its layouts). Kernels: bench.backends.numpy.linear and
bench.backends.numpy.mlp.
"""

from __future__ import annotations

import contextlib
import os
import tracemalloc

import numpy as np

from bench.backends.base import Backend
from bench.cases.case import Case, GridOptions, cold_mlp_shape, linear_batches, mlp_shapes
from bench.cases.sizes import Size


class NumpyBackend(Backend):
    name = "numpy"
    label = "NumPy"
    package = "numpy"
    install_hint = "pip install -r requirements.txt"
    trainers = {"mlp": "bench.backends.numpy.mlp:NumpyMlpTrainer", "*": "bench.backends.numpy.linear:NumpyTrainer"}
    bare_loop = "bench.backends.numpy.linear:bare_round_seconds"

    def cases(self, model: str, scenario: str, size: Size, grid: GridOptions) -> list[Case]:
        if scenario == "blog":
            # The blog's own NumPy code; its logistic run reads the accuracy back every step.
            return [Case(model, "numpy", "seed", "sync" if model == "logistic" else "eager")]
        if model == "mlp":
            shapes = [cold_mlp_shape(size, grid)] if scenario == "cold" else mlp_shapes(size, grid)
            return [Case("mlp", "numpy", "analytic", "eager", batch_size=b, hidden=h) for h, b in shapes]
        if scenario == "cold":
            return [Case(model, "numpy", "analytic", "eager")]
        cases = [
            Case(model, "numpy", "analytic", "eager"),
            Case(model, "numpy", "analytic-1thread", "eager"),
            Case(model, "numpy", "seed", "eager"),
            Case(model, "numpy", "analytic", "sync"),
        ]
        return cases + [Case(model, "numpy", "analytic", "eager", batch_size=b) for b in linear_batches(size)]

    def case_context(self, case: Case):
        if case.variant == "analytic-1thread":
            from threadpoolctl import threadpool_limits

            return threadpool_limits(limits=1, user_api="blas")
        return contextlib.nullcontext()

    def peak_memory_bytes(self, trainer, steps: int, baseline: int) -> int:
        """The arrays the trainer holds plus the most its steps allocated at once (tracemalloc sees NumPy's buffers).

        tracemalloc slows every allocation, so this runs after timing, never inside it.
        """
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

    def machine_info(self) -> dict:
        return {"numpy_version": np.__version__, "numpy_blas": blas_pools()}

    def blas_threads(self, case: Case) -> int | None:
        pools = blas_pools()
        return pools[0].get("num_threads") if pools else None


def held_numpy_bytes(trainer) -> int:
    """Bytes of the NumPy arrays a trainer holds (shared read-only data included), each buffer once."""
    seen, total = set(), 0
    for value in vars(trainer).values():
        if isinstance(value, dict):
            arrays = list(value.values())
        elif isinstance(value, (list, tuple)):
            arrays = list(value)
        else:
            arrays = [value]
        for a in arrays:
            if isinstance(a, np.ndarray):
                base = a if a.base is None else a.base
                if id(base) not in seen and isinstance(base, np.ndarray):
                    seen.add(id(base))
                    total += base.nbytes
    return total


def blas_pools() -> list[dict]:
    """threadpoolctl's view of the BLAS/OpenMP pools loaded in this process (NumPy's first)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keep = (
        "user_api",
        "internal_api",
        "prefix",
        "filepath",
        "version",
        "num_threads",
        "threading_layer",
        "architecture",
    )
    pools = [{k: p.get(k) for k in keep if k in p} for p in threadpool_info()]
    numpy_dir = os.path.dirname(os.path.dirname(np.__file__))
    # NumPy's own pool (in numpy.libs or scipy_openblas) first: that is the one its matmul uses.
    return sorted(pools, key=lambda p: not str(p.get("filepath", "")).startswith(numpy_dir))


BACKEND = NumpyBackend()
