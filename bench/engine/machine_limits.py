"""The machine's own limits, measured at the start of a benchmark session.

A throughput figure means little until it is set against what the machine can
do. Two NumPy measurements, saved in machine_info["machine_limits"]:

- memory read bandwidth, STREAM-style: float32 dot(x, x) over an array far
  larger than the caches (it reads x once), best of several passes, on one
  thread and split over every usable CPU; the faster counts;
- float32 matrix-multiply GFLOP/s: a 2,048-square sgemm through NumPy's BLAS
  with all its threads, best of several.

Each case's roofline bound is then min(bandwidth x intensity, peak GFLOP/s),
with intensity = flops_per_step / bytes_per_step (see bench.report).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

BANDWIDTH_ARRAY_BYTES = 1 << 30  # 1 GiB: far beyond any L3 of today's CPUs
MATMUL_SIZE = 2_048
PASSES = 5


def read_bandwidth_gb_s(x: np.ndarray, threads: int = 1, passes: int = PASSES) -> float:
    """Best read bandwidth in GB/s over `passes` dot products of a large float32 array."""
    chunks = np.array_split(x, threads)
    best = 0.0
    with ThreadPoolExecutor(threads) as pool:
        for _ in range(passes):
            start = time.perf_counter()
            list(pool.map(lambda c: np.dot(c, c), chunks))  # NumPy releases the GIL in BLAS
            best = max(best, x.nbytes / (time.perf_counter() - start) / 1e9)
    return best


def matmul_gflops(size: int = MATMUL_SIZE, passes: int = PASSES) -> float:
    """Best float32 sgemm GFLOP/s of NumPy's BLAS at size x size."""
    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    a @ a  # warm-up: thread pool start, page faults
    best = 0.0
    for _ in range(passes):
        start = time.perf_counter()
        a @ a
        best = max(best, 2 * size**3 / (time.perf_counter() - start) / 1e9)
    return best


def measure(cpus: int, memory_budget: int) -> dict:
    """Both limits, with how they were measured."""
    array_bytes = int(min(BANDWIDTH_ARRAY_BYTES, max(memory_budget // 4, 64 << 20)))
    x = np.ones(array_bytes // 4, dtype=np.float32)  # written once: pages are touched before timing
    by_threads = {t: read_bandwidth_gb_s(x, t) for t in sorted({1, cpus})}
    del x
    threads = max(by_threads, key=by_threads.get)
    return {
        "memory_bandwidth_gb_s": by_threads[threads],
        "memory_bandwidth_threads": threads,
        "memory_bandwidth_array_bytes": array_bytes,
        "memory_bandwidth_kernel": "float32 dot(x, x), best of 5",
        "peak_gflops_f32": matmul_gflops(),
        "peak_gflops_kernel": f"NumPy float32 {MATMUL_SIZE}x{MATMUL_SIZE} matmul, best of 5",
    }
