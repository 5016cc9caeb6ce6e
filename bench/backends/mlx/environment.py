"""What MLX records in every result's machine_info: its version, devices and the BLAS it really calls.

On Linux the BLAS is read from the process itself, not guessed: by asking the
dynamic linker which library provides the `cblas_sgemm` that libmlx calls.
A Linux `mlx[cpu]` wheel ships a reference (netlib) BLAS: a reader must see that.
"""

from __future__ import annotations

import os
import sys

from bench.backends.mlx import compat
from bench.engine.run_environment import library_defining, loaded_blas_libraries


def mlx_blas() -> dict:
    """Which BLAS MLX's CPU matmuls call, and how it was chosen."""
    if not compat.mlx_installed():
        return {}
    if sys.platform == "darwin":
        return {"library": "Accelerate", "source": "macOS system framework"}
    # libmlx is loaded privately by Python, so a cblas_sgemm in the global scope
    # (LD_PRELOAD) wins over the one bundled in the wheel.
    preloaded = library_defining("cblas_sgemm")
    if preloaded:
        return {"library": preloaded, "source": "global scope (--mlx-blas or LD_PRELOAD)"}
    import mlx.core as mx

    mlx_root = os.path.dirname(os.path.dirname(os.path.realpath(mx.__file__)))
    bundled = [p for p in loaded_blas_libraries() if p.startswith(mlx_root) and "blas" in os.path.basename(p)]
    if bundled:
        return {"library": bundled[0], "source": "bundled with the mlx wheel (reference BLAS)"}
    return {"library": "unknown", "source": "not found among loaded libraries"}


def mlx_blas_threads() -> int | None:
    """Threads MLX's CPU matmuls run on: 1 for the wheel's reference BLAS, else the pool of the library it calls."""
    from bench.backends.numpy import blas_pools

    found = mlx_blas()
    if "bundled" in found.get("source", ""):
        return 1
    # A libblas.so.3 front (Debian's alternatives) sits beside the OpenBLAS it loads.
    folder = os.path.dirname(os.path.realpath(found.get("library", "")))
    for pool in blas_pools():
        if os.path.dirname(os.path.realpath(str(pool.get("filepath", "")))) == folder:
            return pool.get("num_threads")
    return None


def mlx_info() -> dict:
    """MLX version, devices and what each device says about itself."""
    if not compat.mlx_installed():
        return {"mlx_version": None}
    import mlx.core as mx

    return {
        "mlx_version": compat.mlx_version(),
        "mlx_default_device": str(mx.default_device()),
        "mlx_gpu_backend": compat.gpu_backend(),
        "mlx_gpu_tf32_matmuls": compat.tf32_matmuls("gpu"),
        "mlx_device_info": {"cpu": compat.device_info("cpu"), "gpu": compat.device_info("gpu")},
        "mlx_blas": mlx_blas(),
    }
