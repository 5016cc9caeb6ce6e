"""The environment of a run (DESIGN rule 7), saved in every result's machine_info.

Versions, the MLX device and its info, the BLAS library each backend actually
loaded, thread counts, the CPU model and the environment variables that change
performance. On Linux the BLAS is read from the process itself, not guessed:
NumPy's through threadpoolctl, MLX's by asking the dynamic linker which library
provides the `cblas_sgemm` that libmlx calls.
"""

from __future__ import annotations

import ctypes
import os
import platform
import re
import sys

import numpy as np

from bench import compat

# Variables that change what a benchmark measures; recorded when set.
PERF_ENV_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "LD_PRELOAD",
    "CUDA_VISIBLE_DEVICES",
)
_BLAS_NAME = re.compile(r"(blas|lapack|mkl|accelerate|blis|atlas)", re.IGNORECASE)


def cpu_model() -> str:
    """The CPU's marketing name."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        try:
            import subprocess

            return subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            pass
    return platform.processor() or platform.machine()


def usable_cpus() -> int:
    """CPUs this process may run on (affinity-aware where the OS tells)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def cpu_count() -> int | None:
    """Logical CPUs of the machine (not only those this process may use: pinning does not change the machine)."""
    return os.cpu_count()


def memory_total_bytes() -> int | None:
    """The machine's physical memory in bytes, or None where the OS does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        pass
    if sys.platform == "darwin":
        try:
            import subprocess

            return int(subprocess.run(["sysctl", "-n", "hw.memsize"], capture_output=True, text=True, check=True).stdout)
        except (OSError, ValueError, subprocess.CalledProcessError):
            pass
    return None


def loaded_blas_libraries() -> list[str]:
    """Paths of every BLAS/LAPACK-like shared library mapped into this process (Linux)."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "/" in line and ".so" in line}
    except OSError:
        return []
    return sorted(p for p in paths if _BLAS_NAME.search(os.path.basename(p)))


def _library_defining(symbol: str) -> str | None:
    """The file of the globally visible library that defines `symbol`, if any (Linux)."""

    class DlInfo(ctypes.Structure):
        _fields_ = [
            ("dli_fname", ctypes.c_char_p),
            ("dli_fbase", ctypes.c_void_p),
            ("dli_sname", ctypes.c_char_p),
            ("dli_saddr", ctypes.c_void_p),
        ]

    try:
        process = ctypes.CDLL(None)
        address = ctypes.cast(getattr(process, symbol), ctypes.c_void_p)
        info = DlInfo()
        if process.dladdr(address, ctypes.byref(info)) and info.dli_fname:
            return os.path.realpath(info.dli_fname.decode())
    except (AttributeError, OSError):
        return None
    return None


def mlx_blas() -> dict:
    """Which BLAS MLX's CPU matmuls call, and how it was chosen."""
    if not compat.mlx_installed():
        return {}
    if sys.platform == "darwin":
        return {"library": "Accelerate", "source": "macOS system framework"}
    # libmlx is loaded privately by Python, so a cblas_sgemm in the global scope
    # (LD_PRELOAD) wins over the one bundled in the wheel.
    preloaded = _library_defining("cblas_sgemm")
    if preloaded:
        return {"library": preloaded, "source": "global scope (--mlx-blas or LD_PRELOAD)"}
    import mlx.core as mx

    mlx_root = os.path.dirname(os.path.dirname(os.path.realpath(mx.__file__)))
    bundled = [p for p in loaded_blas_libraries() if p.startswith(mlx_root) and "blas" in os.path.basename(p)]
    if bundled:
        return {"library": bundled[0], "source": "bundled with the mlx wheel (reference BLAS)"}
    return {"library": "unknown", "source": "not found among loaded libraries"}


def blas_threads(backend: str) -> int | None:
    """Threads the backend's BLAS runs with right now (inside any thread limits).

    NumPy: its pool as threadpoolctl sees it. MLX: the pool of the library
    mlx_blas() found; the wheel's reference BLAS has no threads of its own (1).
    """
    pools = numpy_blas()
    if backend == "numpy":
        return pools[0].get("num_threads") if pools else None
    library = mlx_blas().get("library", "")
    if "bundled" in mlx_blas().get("source", ""):
        return 1
    # A libblas.so.3 front (Debian's alternatives) sits beside the OpenBLAS it loads.
    folder = os.path.dirname(os.path.realpath(library))
    for pool in pools:
        if os.path.dirname(os.path.realpath(str(pool.get("filepath", "")))) == folder:
            return pool.get("num_threads")
    return None


def numpy_blas() -> list[dict]:
    """threadpoolctl's view of the BLAS/OpenMP pools loaded here (NumPy's first)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keep = ("user_api", "internal_api", "prefix", "filepath", "version", "num_threads", "threading_layer", "architecture")
    pools = [{k: p.get(k) for k in keep if k in p} for p in threadpool_info()]
    numpy_dir = os.path.dirname(os.path.dirname(np.__file__))
    # NumPy's own pool (in numpy.libs or scipy_openblas) first: that is the one its matmul uses.
    return sorted(pools, key=lambda p: not str(p.get("filepath", "")).startswith(numpy_dir))


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


def collect() -> dict:
    """Everything rule 7 asks for, as plain JSON-able values."""
    info = {
        "cpu_model": cpu_model(),
        "usable_cpus": usable_cpus(),
        # With the CPU model, what tells two machines of one host name apart (see the README's Reports).
        "cpu_count": cpu_count(),
        "memory_total_bytes": memory_total_bytes(),
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "numpy_blas": numpy_blas(),
        "loaded_blas_libraries": loaded_blas_libraries(),
        "env": {k: os.environ[k] for k in PERF_ENV_VARS if k in os.environ}
        | {k: v for k, v in os.environ.items() if k.startswith("MLX_")},
    }
    info.update(mlx_info())
    return info
