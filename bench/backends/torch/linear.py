"""PyTorch linear and logistic regression kernels: hand-written gradient, autograd, torch.compile.

Variants: `analytic` (the gradient written out in torch ops, no autograd),
`autograd` (torch.autograd.grad of the loss, then the update in place under
no_grad, the manual SGD loop of PyTorch's tutorials) and `compiled` (that very
autograd step under torch.compile). Also here, for bench.backends.torch.mlp
as well: the devices and their barriers, the compiled-step settings, the
peak-memory probe and what machine_info records.

On the CPU torch computes as it goes (barrier `eager`); on CUDA and MPS ops
are queued, so the `step` barrier synchronises after every step and `round`
once at the end of the round.
"""

from __future__ import annotations

import contextlib
import re
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from bench.backends import torch as backend
from bench.cases.case import Case
from bench.cases.datasets import Problem

# What every compiled step is compiled with (see bench.backends.torch.setup_compile).
COMPILE_OPTIONS = {"backend": "inductor", "dynamic": False, "fullgraph": True}
TIMED_STANCE = "fail_on_recompile"


# ---- devices, barriers, data ----------------------------------------------------------------
def torch_device(case: Case) -> torch.device:
    """The case's torch device; raises where PyTorch does not have it."""
    reason = backend.BACKEND.unavailable(case.device)
    if reason:
        raise RuntimeError(reason)
    barriers = backend.barriers_on(case.device)
    if case.barrier not in barriers:
        raise ValueError(f"torch on {case.device} has no barrier {case.barrier!r}; it has {', '.join(barriers)}")
    return torch.device(case.device)


def synchronizer(device: torch.device):
    """The function that waits for the device's queued work: None on the CPU, where nothing is ever queued."""
    if device.type == "cuda":
        return torch.cuda.synchronize
    if device.type == "mps":
        return torch.mps.synchronize
    return None


def settle_seconds(sync) -> float:
    """Seconds a synchronize takes now (the time to finish what a run left pending)."""
    start = time.perf_counter()
    if sync is not None:
        sync()
    return time.perf_counter() - start


def to_tensor(array: np.ndarray, device: torch.device, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A problem's array as a tensor on the device; on the CPU, in its dtype, the problem's own bytes.

    The problem's arrays are read-only and torch.from_numpy warns that it cannot
    protect them; nothing here ever writes to X, y or the batch schedule.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        tensor = torch.from_numpy(array)
    return tensor.to(device=device, dtype=dtype)


def batch_row_tensors(problem: Problem, device: torch.device) -> list[torch.Tensor] | None:
    """The mini-batch schedule as one int64 index tensor per batch (made before timing), or None for full batch."""
    if problem.batches is None:
        return None
    # int64 once here: indexing with int32 would convert the indices on every step.
    schedule = to_tensor(problem.batches, device, torch.int64)
    return list(schedule.unbind(0))


class CompiledStance:
    """The compiler stance of a compiled trainer's rounds: its first round may compile, no later one may.

    The first call of a compiled step compiles it for its shape, or finds it in
    dynamo's cache (a fresh trainer of a shape already compiled in this
    process); every later round runs under set_stance("fail_on_recompile"), so
    a timed round that would recompile raises instead.
    """

    def __init__(self) -> None:
        self.first = True

    def __call__(self):
        if self.first:
            self.first = False
            return contextlib.nullcontext()
        return torch.compiler.set_stance(TIMED_STANCE)


def compiled(fn):
    """torch.compile of a step with the suite's settings (bench.backends.torch.setup_compile)."""
    backend.setup_compile()
    return torch.compile(fn, **COMPILE_OPTIONS)


# ---- the kernels ----------------------------------------------------------------------------
def linear_loss(w, X, y):
    """1/(2n) ||Xw - y||^2."""
    return 0.5 * torch.mean(torch.square(X @ w - y))


def logistic_loss(w, X, y):
    """Mean binary cross-entropy of sigmoid(Xw), in the overflow-free softplus form.

    softplus(z) - y z equals -y log s(z) - (1-y) log(1 - s(z)) but stays finite
    (and its gradient stays s(z) - y) when |z| grows during long runs.
    """
    z = X @ w
    return torch.mean(F.softplus(z) - y * z)


def linear_grad(w, X, y, inv_n):
    """Hand-written gradient: X^T (Xw - y) / n."""
    return X.T @ (X @ w - y) * inv_n


def logistic_grad(w, X, y, inv_n):
    """Hand-written gradient: X^T (sigmoid(Xw) - y) / n."""
    return X.T @ (torch.sigmoid(X @ w) - y) * inv_n


LOSSES = {"linear": linear_loss, "logistic": logistic_loss}
GRADIENTS = {"linear": linear_grad, "logistic": logistic_grad}
VARIANTS = ("analytic", "autograd", "compiled")
# Compiled steps, one per (model, lr, gather), shared by every trainer: dynamo keeps
# one compiled graph per shape for each, so a fresh trainer finds its shape's.
_COMPILED_STEPS: dict[tuple, object] = {}


def make_step(model: str, variant: str, lr: float, inv_n: float, gather: bool = False):
    """Return step(w, X, y) -> w for a variant; with gather, step(w, X, y, rows)."""
    if variant not in VARIANTS:
        raise ValueError(f"torch has no variant {variant!r}")
    if variant == "compiled":
        key = (model, lr, gather)
        if key not in _COMPILED_STEPS:
            _COMPILED_STEPS[key] = compiled(make_step(model, "autograd", lr, inv_n, gather))
        return _COMPILED_STEPS[key]
    if variant == "analytic":
        grad = GRADIENTS[model]

        def step(w, X, y):
            return w - lr * grad(w, X, y, inv_n)

    else:
        loss = LOSSES[model]

        def step(w, X, y):
            (g,) = torch.autograd.grad(loss(w, X, y), w)
            with torch.no_grad():
                w.sub_(g, alpha=lr)
            return w

    if gather:  # a mini-batch step takes its rows from the full arrays, as a training loop does
        full_batch_step = step

        def step(w, X, y, rows):
            return full_batch_step(w, X[rows], y[rows])

    return step


class TorchTrainer:
    """Gradient descent in PyTorch for one linear or logistic case and problem.

    stop_accuracy is accepted for the Trainer API and ignored: PyTorch has no
    early-stopping (sync) case, so run() always does every step it is asked for.
    """

    def __init__(self, case: Case, problem: Problem, lr: float):
        if case.variant not in VARIANTS:
            raise ValueError(f"torch has no variant {case.variant!r}")
        self.device = torch_device(case)
        self.X = to_tensor(problem.X, self.device)
        self.y = to_tensor(problem.y, self.device)
        self.w0 = to_tensor(problem.start["w"], self.device).clone()
        self.batch_rows = batch_row_tensors(problem, self.device)
        self.step = make_step(case.model, case.variant, lr, 1 / problem.batch_rows, gather=self.batch_rows is not None)
        self.requires_grad = case.variant != "analytic"  # autograd differentiates w; the update is in place
        self.sync = synchronizer(self.device)
        self.every_step = case.barrier == "step"
        self.stance = CompiledStance() if case.variant == "compiled" else contextlib.nullcontext
        self.layout = "vector"
        self.reset()
        if self.sync is not None:
            self.sync()  # the copies to the device stay outside the timer

    def reset(self) -> None:
        self.w = self.w0.clone().requires_grad_(self.requires_grad)
        self.t = 0  # steps taken since reset: picks the next mini-batch

    def run(self, steps: int, stop_accuracy: float | None = None) -> int:
        X, y, w, step, sync, every_step = self.X, self.y, self.w, self.step, self.sync, self.every_step
        batch_rows, t = self.batch_rows, self.t
        with self.stance():
            if batch_rows is not None:
                n_batches = len(batch_rows)
                for i in range(t, t + steps):
                    w = step(w, X, y, batch_rows[i % n_batches])
                    if every_step:
                        sync()
            elif every_step:
                for _ in range(steps):
                    w = step(w, X, y)
                    sync()
            else:
                for _ in range(steps):
                    w = step(w, X, y)
            if sync is not None:
                sync()  # the round's barrier: every queued step is done
        self.w, self.t = w, t + steps
        return steps

    def settle(self) -> float:
        return settle_seconds(self.sync)

    def weights(self) -> np.ndarray:
        return self.w.detach().cpu().numpy().astype(np.float64).reshape(-1)


def bare_round_seconds(trainer, steps: int) -> float:
    """One round of the trainer's kernel as a plain loop, with the same barrier, timed with perf_counter."""
    if trainer.batch_rows is not None:
        raise ValueError("the bare loop is the full-batch kernel's (the harness-overhead check)")
    X, y, w, step, sync = trainer.X, trainer.y, trainer.w, trainer.step, trainer.sync
    with trainer.stance():
        start = time.perf_counter()
        if sync is None:
            for _ in range(steps):
                w = step(w, X, y)
        elif trainer.every_step:
            for _ in range(steps):
                w = step(w, X, y)
                sync()
        else:
            for _ in range(steps):
                w = step(w, X, y)
            sync()
        elapsed = time.perf_counter() - start
    trainer.w = w
    return elapsed


# ---- memory -----------------------------------------------------------------------------------
def allocated_bytes(device: str) -> int:
    """Bytes torch's allocator holds on an accelerator now (0 for the CPU and for a device not here)."""
    if device == "cuda" and torch.cuda.is_available():
        return torch.cuda.memory_allocated()
    if device == "mps" and torch.backends.mps.is_available():
        return torch.mps.current_allocated_memory()
    return 0


def held_tensor_bytes(trainer) -> int:
    """Bytes of the tensors a trainer holds: data, weights, modules' parameters and buffers, optimizer state.

    Each storage counts once. Gradients are left out: a step frees and makes them
    anew, so the profiler counts them among its temporaries.
    """
    seen, total = set(), 0

    def count(t: torch.Tensor) -> None:
        nonlocal total
        storage = t.untyped_storage()
        if storage.data_ptr() not in seen:
            seen.add(storage.data_ptr())
            total += storage.nbytes()

    def visit(value) -> None:
        if isinstance(value, torch.Tensor):
            count(value)
        elif isinstance(value, torch.nn.Module):
            for t in (*value.parameters(), *value.buffers()):
                count(t)
        elif isinstance(value, torch.optim.Optimizer):
            for state in value.state.values():
                for t in state.values():
                    visit(t)
        elif isinstance(value, dict):
            for v in value.values():
                visit(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                visit(v)

    for value in vars(trainer).values():
        visit(value)
    return total


def profiled_peak_bytes(run) -> int:
    """The most bytes live at once, over what existed before, while `run()` runs (CPU; torch.profiler).

    Sums c10's allocation (+) and free (-) events in time order. A free of a block
    allocated before the profile started is not reported, so each such block
    (the weights a step replaces) may count once more: at most a weight vector.
    """
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=False) as prof:
        run()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    live = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        live += event.nbytes()
        peak = max(peak, live)
    return peak


def peak_memory_bytes(trainer, steps: int, baseline: int) -> int:
    """Peak bytes while the trainer runs `steps` steps (see TorchBackend.peak_memory_bytes)."""
    device = trainer.device
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        trainer.run(steps)
        return max(torch.cuda.max_memory_allocated(device) - baseline, 0)
    if device.type == "mps":
        peak = torch.mps.current_allocated_memory()
        for _ in range(steps):
            trainer.run(1)  # ends in a synchronize: what is allocated now is what the step holds
            peak = max(peak, torch.mps.current_allocated_memory())
        return max(peak - baseline, 0)
    return held_tensor_bytes(trainer) + profiled_peak_bytes(lambda: trainer.run(steps))


# ---- what is recorded ---------------------------------------------------------------------------
def cuda_tf32_matmuls() -> bool:
    """Whether float32 CUDA matmuls run in TF32 now: a matmul precision below "highest", fp32_precision or allow_tf32."""
    if torch.get_float32_matmul_precision() != "highest":
        return True
    matmul = torch.backends.cuda.matmul
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # newer releases deprecate allow_tf32 in favour of fp32_precision
        try:
            return getattr(matmul, "fp32_precision", None) == "tf32" or bool(matmul.allow_tf32)
        except RuntimeError:  # torch refuses to read one API's setting after the other one set it
            return getattr(matmul, "fp32_precision", None) == "tf32"


def _parallel_summary() -> dict:
    """The parallel backend and the math libraries torch.__config__.parallel_info() names."""
    lines = [line.strip() for line in torch.__config__.parallel_info().splitlines()]
    summary = {}
    for line in lines:
        if line.startswith("ATen parallel backend:"):
            summary["torch_parallel_backend"] = line.split(":", 1)[1].strip()
        elif "Math Kernel Library" in line:
            summary["torch_mkl_version"] = line
        elif line.startswith("OpenMP"):
            summary["torch_openmp"] = line
    return summary


def _build_settings() -> dict:
    """BLAS_INFO and the CPU capability from torch.__config__.show()."""
    found = {}
    for key, value in re.findall(r"\b(BLAS_INFO|LAPACK_INFO)=([^,\s]+)", torch.__config__.show()):
        found["torch_" + key.lower()] = value
    return found


def torch_info() -> dict:
    """torch's version, threads, math libraries, devices and torch.compile settings, flat and prefixed torch_."""
    info = {
        "torch_version": torch.__version__,
        "torch_num_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "torch_mkl": torch.backends.mkl.is_available(),
        "torch_mkldnn": torch.backends.mkldnn.is_available(),
        "torch_openmp_available": torch.backends.openmp.is_available(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        **_build_settings(),
        **_parallel_summary(),
        "torch_compile": ", ".join(f"{k}={v}" for k, v in COMPILE_OPTIONS.items()),
        "torch_compile_recompile_limit": backend.RECOMPILE_LIMIT,
        "torch_compile_timed_stance": TIMED_STANCE,
        "torch_compile_trace_autograd_ops": True,
    }
    if torch.version.cuda:  # a CUDA build, with or without a device here
        info["torch_cuda_version"] = torch.version.cuda
    if torch.cuda.is_available():
        info["torch_cuda"] = torch.cuda.get_device_name(0)
        info["torch_cuda_device_count"] = torch.cuda.device_count()
        info["torch_cuda_tf32"] = cuda_tf32_matmuls()
    info["torch_mps_available"] = torch.backends.mps.is_available()
    return info
