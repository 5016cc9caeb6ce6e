"""The machine's own limits, measured at the start of a benchmark session.

A throughput figure means little until it is set against what the machine can
do. NumPy measurements, saved in machine_info["machine_limits"]:

- read bandwidth of each cache level and of memory (the cache-aware roofline,
  Ilic et al.): a float32 working set sized to sit in L1, L2, L3 (between the
  level below and this one: bench.engine.cache_sizes reads the sizes) and one
  far beyond the largest cache, read over and over within one C call (NumPy's
  batched matmul over a view that repeats the buffer, so Python's per-call cost
  does not count), by two kernels (dot(x, x), which reads x once, and a
  matrix-vector product, which reads the matrix once), on one thread and on
  every usable CPU (each thread its own buffer, BLAS itself held to one thread:
  its own threads, spinning on a busy machine, can slow a matrix-vector
  product a hundredfold); the best of 5 passes of the fastest kernel and
  thread count counts. Memory's figure keeps its old name,
  memory_bandwidth_gb_s; the levels are in cache_levels;
- float32 matrix-multiply GFLOP/s: a 2,048-square sgemm through NumPy's BLAS
  with all its threads, best of several.

Each case's roofline bound is then min(bandwidth of its level x intensity, peak
GFLOP/s), with intensity = flops_per_step / bytes_per_step (bench.stats.roofline).
The best, not a typical, figure is kept because a bound must not be beaten.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.lib.stride_tricks import as_strided
from threadpoolctl import threadpool_limits

from bench.engine.cache_sizes import CacheLevel, cache_levels

BANDWIDTH_ARRAY_BYTES = 1 << 30  # the most memory's working set takes: 1 GiB
MEMORY_MIN_BYTES = 64 << 20  # the least, where no cache size is known
MEMORY_OVER_CACHE = 4  # memory's working set: this many times the largest cache's capacity
PASS_BYTES = 64 << 20  # each cache-level pass reads about this much: well over a millisecond at any cache speed
GEMV_COLUMNS = 256  # the matrix-vector kernel's row length: long rows, few output writes
KERNELS = ("dot", "gemv")
MATMUL_SIZE = 2_048
PASSES = 5


def repeated_reader(buffer: np.ndarray, reps: int, kernel: str) -> Callable[[], object]:
    """A call that reads `buffer` `reps` times in one NumPy call (a batched matmul over a repeating view)."""
    x = buffer.reshape(-1)
    out: np.ndarray
    if kernel == "dot":  # (1 x n) @ (n x 1) per batch item: x . x reads x once
        a = as_strided(x, shape=(reps, 1, x.size), strides=(0, x.nbytes, x.itemsize), writeable=False)
        b = as_strided(x, shape=(reps, x.size, 1), strides=(0, x.itemsize, x.itemsize), writeable=False)
        out = np.empty((reps, 1, 1), dtype=x.dtype)
    elif kernel == "gemv":  # (rows x 256) @ (256 x 1) per batch item: reads the matrix once
        matrix = x[: x.size // GEMV_COLUMNS * GEMV_COLUMNS].reshape(-1, GEMV_COLUMNS)
        vector = np.ones((GEMV_COLUMNS, 1), dtype=x.dtype)
        a = as_strided(matrix, shape=(reps, *matrix.shape), strides=(0, *matrix.strides), writeable=False)
        b = as_strided(vector, shape=(reps, *vector.shape), strides=(0, *vector.strides), writeable=False)
        out = np.empty((reps, matrix.shape[0], 1), dtype=x.dtype)
    else:
        raise ValueError(f"unknown bandwidth kernel {kernel!r}: expected one of {', '.join(KERNELS)}")
    return lambda: np.matmul(a, b, out=out)


def best_gb_s(
    buffers: list[np.ndarray],
    reps: int,
    kernel: str,
    passes: int = PASSES,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Best read bandwidth in GB/s over `passes`, each thread reading its own buffer `reps` times at once."""
    readers = [repeated_reader(b, reps, kernel) for b in buffers]
    nbytes = reps * sum(b.nbytes for b in buffers)
    best = 0.0
    with ThreadPoolExecutor(len(readers)) as pool:
        list(pool.map(lambda read: read(), readers))  # warm-up: the buffers into their level, the threads started
        for _ in range(passes):
            start = clock()
            list(pool.map(lambda read: read(), readers))  # NumPy releases the GIL in matmul
            best = max(best, nbytes / (clock() - start) / 1e9)
    return best


def level_bandwidth(
    arena: np.ndarray,
    working_set: int,
    thread_bytes: dict[int, int],
    reps_of: Callable[[int], int],
    passes: int = PASSES,
    clock: Callable[[], float] = time.perf_counter,
) -> dict:
    """Best bandwidth over thread counts and kernels; `thread_bytes` maps a thread count to the bytes each reads.

    Each thread reads its own slice of `arena` (float32, written once so its
    pages exist before timing): one allocation serves every level.
    """
    best = {"bandwidth_gb_s": 0.0, "threads": 0, "kernel": ""}
    for threads, per_thread in thread_bytes.items():
        # a whole number of gemv rows, and no more than the arena holds
        elements = min(arena.size // threads, max(GEMV_COLUMNS, per_thread // 4)) // GEMV_COLUMNS * GEMV_COLUMNS
        buffers = [arena[i * elements : (i + 1) * elements] for i in range(threads)]
        reps = reps_of(threads * elements * 4)
        for kernel in KERNELS:
            gb_s = best_gb_s(buffers, reps, kernel, passes, clock)
            if gb_s > best["bandwidth_gb_s"]:
                best = {"bandwidth_gb_s": gb_s, "threads": threads, "kernel": kernel}
    return {"working_set_bytes": working_set, **best}


def _cache_working_set(levels: list[CacheLevel], i: int) -> int:
    """A working set for level i: halfway between the level below and this one (per instance), so it sits here."""
    below = levels[i - 1].size_bytes if i else 0
    return (below + levels[i].size_bytes) // 2


def memory_working_set(levels: list[CacheLevel], cpus: int, memory_budget: int) -> int:
    """Bytes of memory's working set: several times the largest cache, within 64 MiB..1 GiB and the budget."""
    largest = max((level.capacity_bytes(cpus) for level in levels), default=0)
    ceiling = min(BANDWIDTH_ARRAY_BYTES, max(memory_budget // 4, MEMORY_MIN_BYTES))
    return int(min(ceiling, max(MEMORY_OVER_CACHE * largest, MEMORY_MIN_BYTES)))


def bandwidths(
    levels: list[CacheLevel],
    cpus: int,
    memory_budget: int,
    passes: int = PASSES,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[list[dict], dict]:
    """Each cache level's best read bandwidth (with its size and capacity over `cpus`), and memory's."""
    with threadpool_limits(limits=1, user_api="blas"):  # the threads are ours: one BLAS thread each
        return _bandwidths(levels, cpus, memory_budget, passes, clock)


def _bandwidths(levels, cpus, memory_budget, passes, clock) -> tuple[list[dict], dict]:
    threads = sorted({1, max(1, cpus)})
    array_bytes = memory_working_set(levels, cpus, memory_budget)
    arena = np.ones(array_bytes // 4, dtype=np.float32)

    def cache_reps(nbytes: int) -> int:
        return max(1, PASS_BYTES // max(1, nbytes))

    measured = []
    for i, level in enumerate(levels):
        working_set = _cache_working_set(levels, i)
        # With t threads, a shared instance is split between the threads that share it; a private one is each's own.
        sharing = {t: max(1, -(-t // max(1, -(-cpus // level.shared_by)))) for t in threads}
        split = {t: working_set // sharing[t] for t in threads}
        figures = level_bandwidth(arena, working_set, split, cache_reps, passes, clock)
        measured.append(
            {
                "level": level.name,
                "size_bytes": level.size_bytes,
                "shared_by_cpus": level.shared_by,
                "capacity_bytes": level.capacity_bytes(cpus),
                **figures,
            }
        )
    memory = level_bandwidth(arena, array_bytes, {t: array_bytes // t for t in threads}, lambda _: 1, passes, clock)
    return measured, memory


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
    """Every limit, with how it was measured."""
    levels, source = cache_levels()
    start = time.perf_counter()
    cache, memory = bandwidths(levels, cpus, memory_budget)
    seconds = time.perf_counter() - start
    kernels = f"float32 dot(x, x) and {GEMV_COLUMNS}-column matrix-vector product, best of {PASSES}"
    return {
        "memory_bandwidth_gb_s": memory["bandwidth_gb_s"],
        "memory_bandwidth_threads": memory["threads"],
        "memory_bandwidth_array_bytes": memory["working_set_bytes"],
        "memory_bandwidth_kernel": f"{kernels} (fastest: {memory['kernel']})",
        "cache_levels": cache,
        "cache_sizes_source": source,
        "bandwidth_seconds": seconds,
        "peak_gflops_f32": matmul_gflops(),
        "peak_gflops_kernel": f"NumPy float32 {MATMUL_SIZE}x{MATMUL_SIZE} matmul, best of {PASSES}",
    }
