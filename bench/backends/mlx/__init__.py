"""MLX: the library under test, lazy arrays evaluated at the case's barrier.

Variants of the linear models: `autodiff` (mx.grad of the loss, as the blog),
`analytic` (hand-written gradient), `compiled` (mx.compile of the autodiff
step) and `blog` (the blog's MLX code verbatim, blog scenario only); of the
MLP: `nn` (mlx.nn, nn.value_and_grad, mlx.optimizers.SGD) and `compiled`.
Devices: the GPU where MLX has one (Metal or CUDA), else the CPU
(`--mlx-device cpu|gpu|all`). Kernels: bench.backends.mlx.linear and
bench.backends.mlx.mlp; every MLX API that differs between releases is in
bench.backends.mlx.compat, and nothing here imports MLX before `--mlx-blas`
has chosen its BLAS (bench.backends.mlx.blas).
"""

from __future__ import annotations

from bench.backends.base import Backend, BackendOptionError, device_choice
from bench.backends.mlx import compat
from bench.cases.case import Case, GridOptions, cold_mlp_shape, linear_batches, mlp_shapes
from bench.cases.sizes import Size

DEVICES = ("cpu", "gpu")
LINEAR_VARIANTS = ("autodiff", "analytic", "compiled")


class MlxBackend(Backend):
    name = "mlx"
    label = "MLX"
    package = "mlx"
    install_hint = "pip install -r requirements.txt"
    trainers = {"mlp": "bench.backends.mlx.mlp:MlxMlpTrainer", "*": "bench.backends.mlx.linear:MlxTrainer"}
    bare_loop = "bench.backends.mlx.linear:bare_round_seconds"

    def __init__(self) -> None:
        self._devices: tuple[str, ...] | None = None
        self.blas_choice = "bundled"  # --mlx-blas

    def missing(self) -> str | None:
        if not compat.mlx_installed():
            return f"mlx is not installed ({self.install_hint})"
        return None

    def devices(self) -> tuple[str, ...]:
        if self._devices is None:  # not configured (a unit test, the release runner's worker): the default
            return ("gpu",) if compat.gpu_available() else ("cpu",)
        return self._devices

    def unavailable(self, device: str) -> str | None:
        if device == "gpu" and not compat.gpu_available():
            return "MLX has no GPU on this machine"
        return None

    def cases(self, model: str, scenario: str, size: Size, grid: GridOptions) -> list[Case]:
        devices = self.devices()
        if scenario == "blog":
            # The blog's MLX code: K lazy steps then one eval (linear); the accuracy read back every step (logistic).
            return [Case(model, "mlx", "blog", "sync" if model == "logistic" else "round", d) for d in devices]
        if model == "mlp":
            if scenario == "cold":
                hidden, batch = cold_mlp_shape(size, grid)
                return [Case("mlp", "mlx", v, "step", d, batch, hidden) for d in devices for v in ("nn", "compiled")]
            plans = (("nn", "step"), ("nn", "round"), ("compiled", "step"))
            return [
                Case("mlp", "mlx", variant, barrier, d, batch, hidden)
                for hidden, batch in mlp_shapes(size, grid)
                for d in devices
                for variant, barrier in plans
            ]
        if scenario == "cold":
            return [Case(model, "mlx", v, "step", d) for d in devices for v in LINEAR_VARIANTS]
        cases = []
        for d in devices:
            cases += [Case(model, "mlx", v, barrier, d) for v in LINEAR_VARIANTS for barrier in ("step", "round")]
            cases.append(Case(model, "mlx", "autodiff", "sync", d))
        # Mini-batch SGD: the common training-loop shapes, not every variant again.
        for batch in linear_batches(size):
            for d in devices:
                cases += [
                    Case(model, "mlx", "autodiff", "step", d, batch),
                    Case(model, "mlx", "compiled", "step", d, batch),
                    Case(model, "mlx", "compiled", "round", d, batch),
                ]
        return cases

    def runs_serially(self, case: Case) -> bool:
        """MLX's CPU backend runs its kernels one at a time on its stream thread, handed over from the Python thread.

        Its bundled BLAS is single-threaded (another BLAS, --mlx-blas, may not be).
        """
        return case.device == "cpu" and self.blas_choice == "bundled"

    def memory_baseline(self) -> int:
        """MLX bytes alive now (arrays of earlier cases still referenced, caches)."""
        return compat.active_memory_bytes() or 0

    def peak_memory_bytes(self, trainer, steps: int, baseline: int) -> int:
        """Through MLX's allocator: reset the peak, run, the larger of peak and active, less what was alive before."""
        compat.reset_peak_memory()
        trainer.run(steps)
        peak = max(compat.peak_memory_bytes() or 0, compat.active_memory_bytes() or 0)
        return max(peak - baseline, 0)

    def machine_info(self) -> dict:
        from bench.backends.mlx.environment import mlx_info

        return mlx_info()

    def blas_threads(self, case: Case) -> int | None:
        from bench.backends.mlx.environment import mlx_blas_threads

        return mlx_blas_threads()

    def matmul_precision(self, case: Case) -> str:
        # MLX's CUDA backend computes float32 matmuls in TF32 unless MLX_ENABLE_TF32=0 (bench.cases.checks.TF32_BOUNDS).
        if case.dtype.name == "float32" and compat.tf32_matmuls(case.device):
            return "tf32"
        return case.dtype.name

    def add_options(self, group) -> None:
        from bench.backends.mlx.blas import INSTALL_HINT

        group.addoption(
            "--mlx-device",
            default=None,
            help="MLX device: cpu, gpu or all (default: the GPU where MLX has one, else the CPU)",
        )
        group.addoption(
            "--mlx-blas",
            default="bundled",
            help="BLAS for MLX's CPU matmuls (Linux): bundled (the wheel's reference BLAS, default), "
            "openblas (a system OpenBLAS: " + INSTALL_HINT + ") or a path to a libblas",
        )

    def configure(self, getoption) -> None:
        # First of all: the BLAS must be in place before anything imports MLX.
        from bench.backends.mlx.blas import BlasError, select_mlx_blas

        choice = getoption("mlx_blas")
        try:
            select_mlx_blas(choice)
        except BlasError as error:
            raise BackendOptionError(str(error)) from None
        self.blas_choice = choice
        value = getoption("mlx_device")
        if value is not None and value not in (*DEVICES, "all"):
            raise BackendOptionError(f"--mlx-device: {value!r} is not one of {', '.join((*DEVICES, 'all'))}")
        self._devices = device_choice(value, DEVICES, "--mlx-device", self.devices())


BACKEND = MlxBackend()
