"""PyTorch: a peer of MLX, eager on the CPU, asynchronous on CUDA and MPS.

Variants of the linear models: `analytic` (hand-written gradient in torch
ops), `autograd` (torch.autograd.grad of the loss) and `compiled`
(torch.compile of the autograd step); of the MLP: `nn` (two nn.Linear,
F.cross_entropy, torch.optim.SGD) and `compiled` (torch.compile of a whole
step, forward, gradients and SGD's update). Barriers: `eager` on the CPU,
where every op is done when it returns; `step` (synchronise after every step)
and `round` (once per round) on `cuda` and `mps` (`--torch-device
cpu|cuda|mps|all`; default: CUDA, else MPS, else the CPU). Kernels:
bench.backends.torch.linear and bench.backends.torch.mlp.

Nothing here imports torch at module import time: without torch installed
every case skips with one reason (missing()), and machine_info() says nothing.
"""

from __future__ import annotations

import importlib.util

from bench.backends.base import Backend, device_choice
from bench.cases.case import MLP_BATCH_SIZE, Case, GridOptions, cold_mlp_shape, linear_batches, mlp_shapes
from bench.cases.sizes import BLOG_SIZE, QUICK_PEERS, Size

DEVICES = ("cpu", "cuda", "mps")
LINEAR_VARIANTS = ("analytic", "autograd", "compiled")
# Mini-batches and the cold scenario: the training-loop variants, not the hand-written one again.
LOOP_VARIANTS = ("autograd", "compiled")
MLP_VARIANTS = ("nn", "compiled")
DEVICE_LABELS = {"cuda": "CUDA", "mps": "MPS"}

# dynamo's recompile limits while the suite runs (see setup_compile()): far above any grid's shapes.
RECOMPILE_LIMIT = 10_000

_set_up = False
_compile_set_up = False


def compiles_in(grid: GridOptions, size: Size, batch: int | None, hidden: int | None) -> bool:
    """Whether the grid has a compiled case of this shape.

    torch.compile takes seconds per shape (g++ on the CPU, 2.4-12 s on a 2-core
    machine with an empty cache), so the quick grid compiles at the blog's size
    only: full batch, the largest mini-batch and the first MLP width. Any other
    grid compiles every shape.
    """
    if not grid.quick:
        return True
    largest = max(linear_batches(size) + [MLP_BATCH_SIZE])
    return size == BLOG_SIZE and batch in (None, largest) and hidden in (None, grid.hidden[0])


def torch_installed() -> bool:
    """Whether torch can be imported here (found without importing it)."""
    return importlib.util.find_spec("torch") is not None


def device_present(device: str) -> bool:
    """Whether PyTorch has this device here (imports torch; False without it)."""
    if device == "cpu":
        return True
    if not torch_installed():
        return False
    import torch

    if device == "cuda":
        return torch.cuda.is_available()
    if device == "mps":
        return torch.backends.mps.is_available()
    return False


def setup() -> None:
    """Once per process, on the backend's first use: torch's intra-op threads as many as NumPy's BLAS has.

    threadpoolctl's view of NumPy's pool, so the two eager baselines are
    compared on the same number of cores.
    """
    global _set_up
    if _set_up:
        return
    import torch

    from bench.backends.numpy import blas_pools

    numpy_threads = next((p.get("num_threads") for p in blas_pools() if p.get("user_api") == "blas"), None)
    if numpy_threads:
        torch.set_num_threads(numpy_threads)
    _set_up = True


def setup_compile() -> None:
    """Once per process, before the first compiled step: dynamo's settings for a grid of shapes.

    Every compiled step is specialised per shape, and a grid has more shapes
    (sizes x batch sizes x widths) than dynamo's default recompile_limit of 8
    per function, past which dynamo would silently run the step eagerly. So
    the limits are raised far above any grid, and fail_on_recompile_limit_hit
    turns reaching them anyway into an error, never a silent fallback. Each
    step is compiled with dynamic=False (one static kernel per shape; by
    default dynamo compiles the second shape it sees as a dynamic-shape kernel
    and reuses that for every later one, so a case's kernel would depend on
    which cases ran before it) and fullgraph=True (a graph break is an error,
    not a half-eager step). trace_autograd_ops lets dynamo trace
    torch.autograd.grad into the graph (by default it graph-breaks there).
    Every round of a trainer after its first runs under
    torch.compiler.set_stance("fail_on_recompile"), so no timed round can
    compile (bench.backends.torch.linear.CompiledStance).
    """
    global _compile_set_up
    if _compile_set_up:
        return
    import torch._dynamo

    config = torch._dynamo.config
    config.recompile_limit = max(config.recompile_limit, RECOMPILE_LIMIT)
    config.accumulated_recompile_limit = max(config.accumulated_recompile_limit, RECOMPILE_LIMIT)
    config.fail_on_recompile_limit_hit = True
    config.trace_autograd_ops = True
    _compile_set_up = True


class TorchBackend(Backend):
    name = "torch"
    label = "PyTorch"
    package = "torch"
    install_hint = "pip install -r requirements-peers.txt"
    trainers = {"mlp": "bench.backends.torch.mlp:TorchMlpTrainer", "*": "bench.backends.torch.linear:TorchTrainer"}
    bare_loop = "bench.backends.torch.linear:bare_round_seconds"
    quick_sizes = QUICK_PEERS

    def prepare(self) -> None:
        setup()  # torch's threads as many as NumPy's BLAS has

    def __init__(self) -> None:
        self._devices: tuple[str, ...] | None = None

    def devices(self) -> tuple[str, ...]:
        if self._devices is None:  # not configured (a unit test, a worker): the default
            return self.default_devices()
        return self._devices

    def default_devices(self) -> tuple[str, ...]:
        """CUDA where PyTorch has it, else MPS, else the CPU (the CPU without torch: its cases skip)."""
        for device in ("cuda", "mps"):
            if device_present(device):
                return (device,)
        return ("cpu",)

    def unavailable(self, device: str) -> str | None:
        if device_present(device):
            return None
        return f"PyTorch has no {DEVICE_LABELS.get(device, device)} device on this machine"

    def cases(self, model: str, scenario: str, size: Size, grid: GridOptions) -> list[Case]:
        if scenario == "blog":
            return []  # the blog had no PyTorch code
        if scenario == "cold" and grid.quick and size != BLOG_SIZE:
            return []  # the quick grid times first calls at the blog's size only
        if model == "mlp":
            shapes = [cold_mlp_shape(size, grid)] if scenario == "cold" else mlp_shapes(size, grid)
            plans = [(v, batch, hidden) for hidden, batch in shapes for v in MLP_VARIANTS]
        elif scenario == "cold":
            plans = [(v, None, None) for v in LOOP_VARIANTS]
        else:
            plans = [(v, None, None) for v in LINEAR_VARIANTS]
            plans += [(v, batch, None) for batch in linear_batches(size) for v in LOOP_VARIANTS]
        return [
            Case(model, "torch", variant, barrier, device, batch, hidden)
            for device in self.devices()
            for variant, batch, hidden in plans
            if variant != "compiled" or compiles_in(grid, size, batch, hidden)
            for barrier in barriers_on(device)
        ]

    def memory_baseline(self) -> int:
        """Bytes torch's allocator holds on the accelerators now (0 on the CPU, whose probe counts from zero)."""
        if not torch_installed():
            return 0
        from bench.backends.torch.linear import allocated_bytes

        return sum(allocated_bytes(d) for d in self.devices())

    def peak_memory_bytes(self, trainer, steps: int, baseline: int) -> int:
        """Peak bytes while the trainer runs `steps` steps: the data it holds plus its steps' temporaries.

        tracemalloc cannot see torch's allocations, so this asks torch:
          cuda  torch.cuda.reset_peak_memory_stats, run, max_memory_allocated less
                the baseline (what was allocated before the trainer existed)
          mps   no peak counter exists: current_allocated_memory sampled after
                every synchronised step, less the baseline (a lower bound of the
                peak inside a step)
          cpu   the bytes of the tensors the trainer holds (each storage once,
                the problem's shared arrays included), plus the peak of the live
                bytes its steps allocate, from the allocation and free events of
                torch.profiler with profile_memory=True (c10's CPU allocator
                reports each of them; MKL's own scratch buffers are not seen)
        Runs after timing, never inside it: the profiler slows every op.
        """
        from bench.backends.torch.linear import peak_memory_bytes

        return peak_memory_bytes(trainer, steps, baseline)

    def machine_info(self) -> dict:
        if not torch_installed():
            return {}
        from bench.backends.torch.linear import torch_info

        setup()  # the threads recorded are the threads the cases run on
        return torch_info()

    def blas_threads(self, case: Case) -> int | None:
        if not torch_installed():
            return None
        import torch

        return torch.get_num_threads()

    def matmul_precision(self, case: Case) -> str:
        # PyTorch computes float32 CUDA matmuls in TF32 only when asked to (allow_tf32, or a
        # float32 matmul precision below "highest"); bench.cases.checks then uses TF32_BOUNDS.
        if case.device == "cuda" and case.dtype.name == "float32" and torch_installed():
            from bench.backends.torch.linear import cuda_tf32_matmuls

            if cuda_tf32_matmuls():
                return "tf32"
        return case.dtype.name

    def add_options(self, group) -> None:
        group.addoption(
            "--torch-device",
            default=None,
            help="PyTorch device: cpu, cuda, mps, a comma list of them or all "
            "(default: CUDA where PyTorch has it, else MPS, else the CPU)",
        )

    def configure(self, getoption) -> None:
        value = getoption("torch_device")
        # No value: the default, found on first use (it imports torch to look for a GPU).
        self._devices = None if value is None else device_choice(value, DEVICES, "--torch-device", ())


def barriers_on(device: str) -> tuple[str, ...]:
    """The barriers a device's cases run: `eager` on the CPU; `step` and `round` on an asynchronous GPU."""
    return ("eager",) if device == "cpu" else ("step", "round")


BACKEND = TorchBackend()
