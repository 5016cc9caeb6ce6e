"""`--mlx-blas`: run MLX's CPU matmuls on a system OpenBLAS instead of the wheel's reference BLAS.

The Linux `mlx[cpu]` wheel bundles netlib's reference BLAS, which is
single-threaded and unblocked. libmlx is loaded privately by Python, so its
`cblas_sgemm` binds to the first definition in the process's global scope:
loading OpenBLAS with RTLD_GLOBAL before MLX is imported is the in-process
equivalent of LD_PRELOAD. NumPy is unaffected (its OpenBLAS uses prefixed
symbols). Which library MLX really calls is then read back by
bench.backends.mlx.environment.mlx_blas and saved with the results.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

INSTALL_HINT = "apt-get install libopenblas0-pthread"
# Where Debian/Ubuntu (alternatives), Fedora and Arch put an OpenBLAS that exports CBLAS.
OPENBLAS_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3",
    "/usr/lib/aarch64-linux-gnu/openblas-pthread/libblas.so.3",
    "/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3",
    "/usr/lib/aarch64-linux-gnu/openblas-openmp/libblas.so.3",
    "/usr/lib64/libopenblas.so.0",
    "/usr/lib/libopenblas.so.0",
)
CHOICES = ("bundled", "openblas")


class BlasError(Exception):
    """--mlx-blas cannot be honoured; the message is one line for the user."""


def find_openblas() -> str | None:
    """Path of a system OpenBLAS that exports cblas_sgemm, or None."""
    candidates = list(OPENBLAS_CANDIDATES)
    found = ctypes.util.find_library("openblas")
    if found:
        candidates.append(found)
    for path in candidates:
        try:
            if hasattr(ctypes.CDLL(path), "cblas_sgemm"):
                return path
        except OSError:
            continue
    return None


def select_mlx_blas(choice: str) -> str | None:
    """Make MLX use `choice` ('bundled', 'openblas' or a library path); return the loaded path."""
    if choice == "bundled":
        return None
    if not sys.platform.startswith("linux"):
        raise BlasError(f"--mlx-blas {choice}: only for Linux; MLX on macOS uses Accelerate")
    if "mlx.core" in sys.modules:
        raise BlasError(f"--mlx-blas {choice}: MLX was imported before its BLAS could be chosen")
    path = find_openblas() if choice == "openblas" else choice
    if path is None:
        raise BlasError(f"--mlx-blas openblas: no system OpenBLAS found; install it with: {INSTALL_HINT}")
    if choice != "openblas" and not os.path.exists(path):
        raise BlasError(f"--mlx-blas: {path} does not exist (use 'bundled', 'openblas' or a libblas path)")
    try:
        library = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
    except OSError as error:
        raise BlasError(f"--mlx-blas: cannot load {path}: {error}") from None
    if not hasattr(library, "cblas_sgemm"):
        raise BlasError(f"--mlx-blas: {path} has no cblas_sgemm, so MLX would not use it")
    return path
