"""JAX: jax.grad of the loss under jax.jit, dispatched asynchronously, waited for at the case's barrier.

Variants, for the linear models and the MLP alike: `jit` (one jitted SGD step
per call, block_until_ready on the new weights after every step: barrier
`step`) and `fori` (a round of K steps in one jitted jax.lax.fori_loop whose
trip count is traced, so one compile serves every K: barrier `round`). No
flax or optax: the MLP is a plain pytree updated with jax.tree.map. Devices:
the GPU where JAX sees one (CUDA), else the CPU (`--jax-device cpu|cuda|all`).
Kernels: bench.backends.jax.linear (the trainer every case shares) and
bench.backends.jax.mlp. Nothing here imports JAX at import time, so the suite
runs where it is missing.

Threads: XLA's CPU client sizes its intra-op (Eigen) pool, which its matmuls
run on, once, when the client is created: PJRT_NPROC (or NPROC) threads where
set, else one per CPU the process may use. Before the first JAX call this
module sets PJRT_NPROC to NumPy's BLAS thread count where neither variable is
set, so both libraries get the same number of threads; `blas_threads` reports
the pool as it really is (its threads, counted in /proc on Linux).

Compilation: the jitted step functions are made once per process (per model,
learning rate and batch form), so a fresh trainer of a shape compiled before
(the session's later passes, the cold scenario's later rounds) reuses the
executable; only a process's first trainer of a shape pays the compile, in
its first step (first_step_s).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys

from bench.backends.base import Backend, device_choice
from bench.cases.case import Case, GridOptions, cold_mlp_shape, linear_batches, mlp_shapes
from bench.cases.sizes import BLOG_SIZE, QUICK_PEERS, Size

DEVICES = ("cpu", "cuda")
# variant -> barrier: a barrier every step, or one per round of K steps in one call
PLANS = (("jit", "step"), ("fori", "round"))
# The thread count of XLA's CPU pool: read by XLA from these, in this order, when its CPU client starts.
THREAD_VARIABLES = ("PJRT_NPROC", "NPROC")
EIGEN_THREAD_NAME = "tf_XLAEigen"  # how XLA names the pool's threads (/proc/self/task/*/comm)
# jax_default_matmul_precision values whose float32 matmuls keep every float32 bit on a GPU.
FULL_PRECISION = frozenset({"highest", "float32", "F32_F32_F32", "F64_F64_F64"})


class JaxBackend(Backend):
    name = "jax"
    label = "JAX"
    package = "jax"
    install_hint = "pip install -r requirements-peers.txt"
    trainers = {"mlp": "bench.backends.jax.mlp:JaxMlpTrainer", "*": "bench.backends.jax.linear:JaxTrainer"}
    bare_loop = "bench.backends.jax.linear:bare_round_seconds"
    quick_sizes = QUICK_PEERS

    def prepare(self) -> None:
        match_numpy_threads()  # before anything starts XLA's CPU client

    def __init__(self) -> None:
        self._devices: tuple[str, ...] | None = None  # None: the default, found on first use

    # ---- availability and cases ---------------------------------------------------------------
    def devices(self) -> tuple[str, ...]:
        if self._devices is None:  # not configured (a unit test, a worker): the default
            return ("cuda",) if gpu_available() else ("cpu",)
        return self._devices

    def unavailable(self, device: str) -> str | None:
        if device == "cuda":
            if gpu_available():
                return None
            return f"JAX sees no CUDA GPU on this machine (its platforms: {', '.join(platforms())}; see jax[cuda12])"
        return super().unavailable(device)

    def cases(self, model: str, scenario: str, size: Size, grid: GridOptions) -> list[Case]:
        if scenario == "blog":
            return []  # the blog timed NumPy and MLX only
        if scenario == "cold" and grid.quick and size != BLOG_SIZE:
            return []  # the quick grid times first calls at the blog's size only
        devices = self.devices()
        if model == "mlp":
            if scenario == "cold":
                hidden, batch = cold_mlp_shape(size, grid)
                return [Case("mlp", "jax", "jit", "step", d, batch, hidden) for d in devices]
            return [
                Case("mlp", "jax", variant, barrier, d, batch, hidden)
                for hidden, batch in mlp_shapes(size, grid)
                for d in devices
                for variant, barrier in PLANS
            ]
        if scenario == "cold":
            return [Case(model, "jax", "jit", "step", d) for d in devices]
        cases = [Case(model, "jax", variant, barrier, d) for d in devices for variant, barrier in PLANS]
        for batch in linear_batches(size):
            cases += [Case(model, "jax", variant, barrier, d, batch) for d in devices for variant, barrier in PLANS]
        return cases

    # ---- training ------------------------------------------------------------------------------
    # ---- what is recorded ----------------------------------------------------------------------
    def memory_baseline(self) -> int:
        """Bytes in use on JAX's GPUs now (their allocators keep counts); 0 on the CPU, whose probe counts buffers."""
        if "jax" not in sys.modules or not gpu_available():
            return 0  # nothing of JAX's can be alive before it is imported
        return sum((d.memory_stats() or {}).get("bytes_in_use", 0) for d in _jax().devices("cuda"))

    def peak_memory_bytes(self, trainer, steps: int, baseline: int) -> int:
        """The trainer's device buffers plus its run's temporaries and outputs (XLA's buffer assignment).

        jax.live_arrays() and tracemalloc do not see an executable's
        temporaries, and the CPU device keeps no allocator counts
        (memory_stats() is None in jax 0.10), so the figure is the bytes of the
        arrays the trainer holds (data, labels, schedule, start and current
        weights) plus the temp and output sizes of the compiled executable its
        run calls (Compiled.memory_analysis(), the buffers XLA assigns it). On
        a GPU the allocator's peak_bytes_in_use is read too, but it is the
        process's high-water mark and JAX cannot reset it: where this run
        raised it, the run's peak less the baseline is the measurement; where
        an earlier case had set it higher, the buffer count stands.
        """
        from bench.backends.jax.linear import compiled_peak_bytes

        stats = trainer.device.memory_stats() or {}
        before = stats.get("peak_bytes_in_use")
        trainer.run(steps)
        counted = compiled_peak_bytes(trainer, steps)
        if before is None:
            return counted
        after = (trainer.device.memory_stats() or {}).get("peak_bytes_in_use", before)
        return max(after - baseline, 0) if after > before else counted

    def machine_info(self) -> dict:
        if self.missing() is not None:
            return {}
        jax = _jax()
        import jaxlib

        devices = list(jax.devices())
        if jax.default_backend() != "cpu":
            devices += jax.devices("cpu")
        precision = jax.config.jax_default_matmul_precision
        return {
            "jax_version": jax.__version__,
            "jaxlib_version": jaxlib.__version__,  # the name the report reads (bench.report.schema)
            "jax_backend": jax.default_backend(),
            "jax_devices": [f"{d.platform}:{d.id} {d.device_kind}" for d in devices],
            "jax_cpu_threads": cpu_threads(),
            "jax_pjrt_nproc": os.environ.get("PJRT_NPROC"),
            "jax_xla_flags": os.environ.get("XLA_FLAGS", ""),
            "jax_default_matmul_precision": precision if precision is not None else "default",
        }

    def blas_threads(self, case: Case) -> int | None:
        """The threads of XLA's CPU intra-op pool, which its matmuls (Eigen) run on; None on a GPU."""
        return cpu_threads() if case.device == "cpu" else None

    def matmul_precision(self, case: Case) -> str:
        if case.device != "cuda":
            return "float32"  # XLA's CPU matmuls are plain float32
        jax = _jax()
        capability = getattr(jax.devices("cuda")[0], "compute_capability", None)
        return gpu_matmul_precision(jax.config.jax_default_matmul_precision, capability)

    # ---- command line --------------------------------------------------------------------------
    def add_options(self, group) -> None:
        group.addoption(
            "--jax-device",
            default=None,
            help="JAX device: cpu, cuda or all (default: cuda where JAX sees a GPU, else the CPU)",
        )

    def configure(self, getoption) -> None:
        value = getoption("jax_device")
        # device_choice raises BackendOptionError on a device JAX does not have a case for.
        self._devices = None if value is None else device_choice(value, DEVICES, "--jax-device", ())
        match_numpy_threads()  # session start: before any case starts XLA's CPU client


def _jax():
    """JAX itself, imported on first use, after XLA's CPU pool has been matched to NumPy's BLAS."""
    match_numpy_threads()
    import jax

    return jax


def _backends_started() -> bool:
    """Whether JAX has created its clients already (then their thread pools are fixed)."""
    if "jax" not in sys.modules:
        return False
    try:
        from jax._src import xla_bridge
    except ImportError:
        return True  # cannot tell: leave the environment alone
    started = getattr(xla_bridge, "backends_are_initialized", None)
    return True if started is None else bool(started())


def match_numpy_threads() -> None:
    """Give XLA's CPU pool NumPy's BLAS thread count (PJRT_NPROC), unless the user set one or the client exists."""
    if any(os.environ.get(v) for v in THREAD_VARIABLES):
        return  # the user's choice
    if importlib.util.find_spec("jax") is None or _backends_started():
        return  # nothing to size, or too late: the pool exists
    from bench.backends.numpy import blas_pools

    pools = blas_pools()
    threads = pools[0].get("num_threads") if pools else None
    if threads:
        os.environ["PJRT_NPROC"] = str(int(threads))


def expected_pool_threads() -> int:
    """The pool size XLA's CPU client picks (xla/pjrt/utils.cc DefaultThreadPoolSize)."""
    for variable in THREAD_VARIABLES:
        value = os.environ.get(variable, "")
        if value.strip().lstrip("-").isdigit():
            return max(0, int(value))
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def cpu_threads() -> int | None:
    """Threads XLA's CPU matmuls may use: its Eigen pool's threads, counted, or else what XLA would pick."""
    if "--xla_cpu_multi_thread_eigen=false" in os.environ.get("XLA_FLAGS", ""):
        return 1  # Eigen's contractions then run on the calling thread only
    if importlib.util.find_spec("jax") is None:
        return None
    _jax().devices("cpu")  # the pool exists once the CPU client does
    counted = _count_threads(EIGEN_THREAD_NAME)
    return counted if counted else expected_pool_threads()


def _count_threads(name: str) -> int:
    """Threads of this process with a given name (Linux /proc; 0 elsewhere)."""
    count = 0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return 0
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/comm") as comm:
                count += comm.read().strip() == name
        except OSError:
            continue  # the thread ended while we looked
    return count


@functools.cache
def gpu_available() -> bool:
    """Whether JAX sees a CUDA GPU (imports JAX; False where it is missing)."""
    if importlib.util.find_spec("jax") is None:
        return False
    try:
        return bool(_jax().devices("cuda"))
    except RuntimeError:  # "Unknown backend cuda": no CUDA plugin, or no GPU behind it
        return False


def platforms() -> list[str]:
    """The platforms JAX runs on here, e.g. ["cpu"]."""
    jax = _jax()
    return sorted({d.platform for d in jax.devices()} | {"cpu"})


def jax_device(device: str):
    """The JAX device of a case's device name ("cpu" or "cuda")."""
    jax = _jax()
    if device == "cpu":
        return jax.devices("cpu")[0]
    if device == "cuda":
        if not gpu_available():
            raise RuntimeError("JAX sees no CUDA GPU on this machine")
        return jax.devices("cuda")[0]
    raise ValueError(f"jax has no device {device!r}; known: {', '.join(DEVICES)}")


def gpu_matmul_precision(setting: str | None, compute_capability: str | None) -> str:
    """The precision float32 matmuls run in on a CUDA GPU under jax_default_matmul_precision `setting`.

    XLA lets a float32 dot at the default precision (None, "default",
    "bfloat16", "high", "tensorfloat32": Precision DEFAULT or HIGH) use TF32
    tensor cores, which keep 10 mantissa bits, from Ampere (compute
    capability 8.0) on; only "highest"/"float32" (or the F32 algorithm) keep
    float32. The checks then use their TF32 bounds. An explicit dot algorithm
    preset is reported by its own name (e.g. "bf16_bf16_f32").
    """
    if setting in FULL_PRECISION:
        return "float32"
    if setting is not None and setting.isupper() and setting != "TF32_TF32_F32":
        return setting.lower()  # an explicit algorithm preset
    try:
        major = int(str(compute_capability).split(".")[0])
    except ValueError:
        major = None  # unknown: assume a current GPU
    if major is not None and major < 8:
        return "float32"  # no TF32 before Ampere
    return "tf32"


BACKEND = JaxBackend()
