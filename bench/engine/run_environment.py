"""The environment of a run (docs/measurement.md, "Measurement rules", rule 7), saved in every result's machine_info.

The machine (CPU model, CPUs, memory, Python) and the environment variables
that change performance, here; each installed backend adds its own fields
(version, devices, the BLAS it actually loaded, threads) through
Backend.machine_info, e.g. bench.backends.mlx.environment.
"""

from __future__ import annotations

import ctypes
import os
import platform
import re
import sys

from bench import __version__

# Variables that change what a benchmark measures; recorded when set.
PERF_ENV_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "LD_PRELOAD",
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
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

            return int(
                subprocess.run(["sysctl", "-n", "hw.memsize"], capture_output=True, text=True, check=True).stdout
            )
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


def library_defining(symbol: str) -> str | None:
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


def collect() -> dict:
    """Everything rule 7 asks for, as plain JSON-able values."""
    from bench.backends import all_backends

    info = {
        "mlx_sgd_bench_version": __version__,
        "cpu_model": cpu_model(),
        "usable_cpus": usable_cpus(),
        # With the CPU model, what tells two machines of one host name apart (docs/reports.md, "Reports: comparing saved runs").
        "cpu_count": cpu_count(),
        "memory_total_bytes": memory_total_bytes(),
        "python_version": platform.python_version(),
        "loaded_blas_libraries": loaded_blas_libraries(),
        "env": {k: os.environ[k] for k in PERF_ENV_VARS if k in os.environ}
        | {k: v for k, v in os.environ.items() if k.startswith("MLX_")},
    }
    for backend in all_backends():
        if backend.missing() is None:
            info.update(backend.machine_info())  # flat fields prefixed with the backend's name
    return info


def machine_identity() -> dict:
    """What makes two timings comparable: host, CPU model, core count, memory, OS, Python build."""
    return {
        "host": platform.node(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_bytes": memory_total_bytes(),
        "system": f"{platform.system()}-{platform.machine()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }
