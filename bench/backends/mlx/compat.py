"""Every MLX API that differs between releases, guarded in one place.

The suite runs unchanged on mlx 0.26.5 to 0.32.x: `mx.is_available` appeared in
0.26.5, `mx.cuda.is_available` in 0.29 and `mx.device_info` in 0.31; older
releases only have the `mx.metal.*` spellings; `mx.distributed.init` and
`is_available` took no `backend` argument before the ring backend (MPI was the
only one). Nothing else in the suite should
test for an MLX attribute.

MLX is imported on first use, not at import time: `--mlx-blas` must load its
BLAS before MLX's own library is loaded (see bench.backends.mlx.blas).
"""

from __future__ import annotations

import functools
import os


@functools.cache
def _mlx():
    """mlx.core, imported on first call; None where MLX is not installed."""
    try:
        import mlx.core
    except ImportError:  # NumPy-only environments can still run the NumPy cases
        return None
    return mlx.core


def mlx_installed() -> bool:
    """Whether mlx.core imports in this environment."""
    return _mlx() is not None


def mlx_version() -> str | None:
    """The MLX release, e.g. '0.32.4', or None without MLX."""
    return getattr(_mlx(), "__version__", None)


def cuda_available() -> bool:
    """Whether MLX's CUDA backend is present and sees a GPU."""
    cuda = getattr(_mlx(), "cuda", None)
    return bool(cuda is not None and hasattr(cuda, "is_available") and cuda.is_available())


def metal_available() -> bool:
    """Whether MLX's Metal backend is present and usable."""
    metal = getattr(_mlx(), "metal", None)
    return bool(metal is not None and metal.is_available())


def gpu_available() -> bool:
    """Whether MLX has a GPU device here (Metal or CUDA)."""
    mx = _mlx()
    if mx is None:
        return False
    if hasattr(mx, "is_available"):
        return bool(mx.is_available(mx.gpu))
    return metal_available() or cuda_available()


def gpu_backend() -> str | None:
    """'metal', 'cuda' or None: which kind of GPU MLX would use."""
    if metal_available():
        return "metal"
    if cuda_available():
        return "cuda"
    return None


def tf32_matmuls(device_name: str) -> bool:
    """Whether MLX runs float32 matmuls on this device in TF32 (10-bit mantissa) tensor-core math.

    MLX's CUDA backend does so unless MLX_ENABLE_TF32=0 is set; CPU and Metal keep float32.
    """
    return device_name == "gpu" and gpu_backend() == "cuda" and os.environ.get("MLX_ENABLE_TF32", "1") != "0"


def device(name: str):
    """The mx.Device for 'cpu' or 'gpu'."""
    mx = _mlx()
    return mx.Device(mx.gpu if name == "gpu" else mx.cpu)


def device_info(name: str = "gpu") -> dict:
    """MLX's description of a device (plain JSON-able values); {} where MLX has none."""
    mx = _mlx()
    if mx is None:
        return {}
    info = {}
    try:
        if hasattr(mx, "device_info"):  # 0.31+: any device
            info = mx.device_info(device(name))
        elif name == "gpu" and metal_available():  # older releases: Metal only
            info = mx.metal.device_info()
    except (RuntimeError, TypeError, ValueError):
        info = {}  # the device is missing here: nothing to describe
    return {str(k): (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in dict(info).items()}


def _memory_function(name: str):
    """mx.<name> from 0.25 on, else mx.metal.<name>, else None."""
    mx = _mlx()
    if mx is None:
        return None
    if hasattr(mx, name):
        return getattr(mx, name)
    return getattr(getattr(mx, "metal", None), name, None)


def reset_peak_memory() -> None:
    """Zero MLX's peak-memory counter (no-op where the release lacks it)."""
    fn = _memory_function("reset_peak_memory")
    if fn is not None:
        fn()


def peak_memory_bytes() -> int | None:
    """MLX's peak allocated bytes since the last reset, or None."""
    fn = _memory_function("get_peak_memory")
    return int(fn()) if fn is not None else None


def active_memory_bytes() -> int | None:
    """MLX's currently allocated bytes, or None."""
    fn = _memory_function("get_active_memory")
    return int(fn()) if fn is not None else None


def distributed_available(backend: str) -> bool:
    """Whether this MLX build can start the distributed `backend` ('ring' or 'mpi') at all."""
    dist = getattr(_mlx(), "distributed", None)
    if dist is None:
        return False
    try:
        return bool(dist.is_available(backend))
    except TypeError:  # older releases: is_available() without a backend (MPI only)
        return backend == "mpi" and bool(dist.is_available())


def distributed_init(backend: str, strict: bool):
    """mx.distributed.init for one backend; strict raises where it cannot start."""
    dist = _mlx().distributed
    try:
        return dist.init(strict=strict, backend=backend)
    except TypeError:  # before `backend=`: MPI was the only backend
        if backend != "mpi":
            raise RuntimeError(f"MLX {mlx_version()} has no {backend!r} distributed backend") from None
        return dist.init(strict=strict)


def distributed_all_sum(x, group):
    """mx.distributed.all_sum over `group` (the keyword has been `group` in every release with it)."""
    return _mlx().distributed.all_sum(x, group=group)
