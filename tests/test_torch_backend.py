"""The PyTorch backend: its kernels match the float64 reference, its barriers hold, torch.compile never falls back."""

import importlib.util
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch._dynamo.utils import counters  # noqa: E402

from bench.backends.base import BackendOptionError  # noqa: E402
from bench.backends.numpy import blas_pools  # noqa: E402
from bench.backends.torch import BACKEND, TorchBackend  # noqa: E402
from bench.backends.torch import linear as torch_linear  # noqa: E402
from bench.backends.torch.linear import TorchTrainer  # noqa: E402
from bench.cases.case import Case, GridOptions, mlp_shapes  # noqa: E402
from bench.cases.checks import BarrierError, CorrectnessError, check_barrier, check_correctness  # noqa: E402
from bench.cases.datasets import make_problem  # noqa: E402
from bench.cases.models import LEARNING_RATE  # noqa: E402
from bench.cases.sizes import BLOG_SIZE, Size  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SIZE = Size(200, 8)
HIDDEN = 16
BATCH = 32
LINEAR_VARIANTS = ("analytic", "autograd", "compiled")
MLP_VARIANTS = ("nn", "compiled")


def torch_case(model, variant, batch_size=None, barrier="eager", device="cpu"):
    return Case(model, "torch", variant, barrier, device, batch_size, HIDDEN if model == "mlp" else None)


def build(case, size=SIZE, lr=LEARNING_RATE):
    problem = make_problem(case.model, size, case.batch_size, case.hidden)
    return BACKEND.make_trainer(case, problem, lr), problem


def unique_graphs() -> int:
    return counters["stats"]["unique_graphs"]


KERNELS = [(m, v) for m in ("linear", "logistic") for v in LINEAR_VARIANTS] + [("mlp", v) for v in MLP_VARIANTS]


def kernel_params():
    for model, variant in KERNELS:
        for batch in (None, BATCH):
            marks = [pytest.mark.slow] if variant == "compiled" else []  # a compile takes seconds here
            yield pytest.param(model, variant, batch, marks=marks, id=f"{model}-{variant}-b{batch or 'full'}")


# ---- correctness ----------------------------------------------------------------------------
@pytest.mark.parametrize("model, variant, batch", list(kernel_params()))
def test_kernel_matches_the_float64_reference(model, variant, batch):
    case = torch_case(model, variant, batch)
    trainer, problem = build(case)
    result = check_correctness(trainer, case, problem, LEARNING_RATE)
    assert result["max_rel_error"] <= result["error_bound"]
    assert result["matmul_precision"] == "float32"
    # A second check from reset() agrees with the first: reset really returns to the shared start.
    again = check_correctness(trainer, case, problem, LEARNING_RATE)
    assert again["max_rel_error"] == pytest.approx(result["max_rel_error"], rel=1e-3, abs=1e-9)
    assert trainer.layout == ("nn.Linear (out, in)" if model == "mlp" else "vector")


def test_weights_start_from_the_problem_start():
    for model, variant in (("linear", "autograd"), ("mlp", "nn")):
        trainer, problem = build(torch_case(model, variant))
        trainer.run(3)
        trainer.reset()
        np.testing.assert_array_equal(trainer.weights(), problem.start_vector())


@pytest.mark.parametrize("model, variant", [("linear", "analytic"), ("logistic", "analytic")])
def test_a_wrongly_scaled_hand_written_gradient_fails(model, variant):
    case = torch_case(model, variant)
    trainer, problem = build(case)
    gradient = torch_linear.GRADIENTS[model]
    trainer.step = lambda w, X, y: w - LEARNING_RATE * 2 * gradient(w, X, y, 1 / len(y))  # a factor off
    with pytest.raises(CorrectnessError, match="float64 reference"):
        check_correctness(trainer, case, problem, LEARNING_RATE)


def test_a_wrongly_scaled_autograd_step_fails():
    case = torch_case("logistic", "autograd")
    trainer, problem = build(case)

    # The classic slip: the sum instead of the mean, n times the gradient.
    def summed_step(w, X, y):
        z = X @ w
        (g,) = torch.autograd.grad(torch.sum(torch.nn.functional.softplus(z) - y * z), w)
        with torch.no_grad():
            w.sub_(g, alpha=LEARNING_RATE)
        return w

    trainer.step = summed_step
    with pytest.raises(CorrectnessError):
        check_correctness(trainer, case, problem, LEARNING_RATE)


def test_a_one_percent_wrong_mlp_learning_rate_fails():
    case = torch_case("mlp", "nn", BATCH)
    problem = make_problem("mlp", SIZE, BATCH, HIDDEN)
    trainer = BACKEND.make_trainer(case, problem, LEARNING_RATE * 1.01)
    with pytest.raises(CorrectnessError, match="their update by"):
        check_correctness(trainer, case, problem, LEARNING_RATE)


# ---- barriers -------------------------------------------------------------------------------
class PendingTrainer(TorchTrainer):
    """A round that returns with its steps still running: they run on another thread; settle() waits for them.

    On the CPU torch is eager, so this is how a round that skipped its barrier
    looks there: run() returns before the work is done.
    """

    def run(self, steps, stop_accuracy=None):
        self.pending = threading.Thread(target=TorchTrainer.run, args=(self, steps))
        self.pending.start()
        return steps

    def settle(self):
        start = time.perf_counter()
        self.pending.join()
        return time.perf_counter() - start

    def weights(self):
        self.settle()
        return super().weights()


def test_a_round_that_leaves_its_work_pending_fails_the_barrier_check():
    case = torch_case("linear", "analytic")
    problem = make_problem("linear", Size(2_000, 200))
    trainer = PendingTrainer(case, problem, LEARNING_RATE)
    with pytest.raises(BarrierError, match="did not end in its evaluation barrier"):
        check_barrier(trainer, case, 200)
    # Its weights are right once it has settled: only the barrier check can catch it.
    check_correctness(trainer, case, problem, LEARNING_RATE)


@pytest.mark.parametrize("model, variant", [("linear", "analytic"), ("logistic", "autograd"), ("mlp", "nn")])
def test_real_rounds_pass_the_barrier_check(model, variant):
    case = torch_case(model, variant)
    trainer, _ = build(case, Size(2_000, 200))
    trainer.run(2)
    assert check_barrier(trainer, case, 50) < 1e-3
    assert trainer.settle() < 1e-3  # eager: a synchronize has nothing to wait for


def test_mini_batches_follow_the_schedule_across_runs():
    # 3 + 7 steps in two runs are the same 10 steps as one run of 10.
    case = torch_case("linear", "autograd", BATCH)
    one, _ = build(case)
    two, _ = build(case)
    one.run(10)
    two.run(3)
    two.run(7)
    np.testing.assert_array_equal(one.weights(), two.weights())


def test_devices_a_machine_lacks_are_refused():
    for device in ("cuda", "mps"):
        if not BACKEND.unavailable(device):
            continue
        with pytest.raises(RuntimeError, match=f"PyTorch has no {device.upper()} device"):
            build(torch_case("linear", "autograd", barrier="step", device=device))
    with pytest.raises(ValueError, match="barrier"):
        build(torch_case("linear", "autograd", barrier="round"))  # the CPU is eager


def test_the_bare_loop_runs_the_same_step_with_the_same_barrier():
    case = torch_case("linear", "analytic")
    trainer, problem = build(case, Size(1_000, 100))
    seconds = BACKEND.bare_round_seconds(trainer, 20)
    assert 0 < seconds < 5
    # The bare loop advanced the trainer's own weights by 20 steps, as run(20) would.
    reference, _ = build(case, Size(1_000, 100))
    reference.run(20)
    np.testing.assert_allclose(trainer.weights(), reference.weights(), rtol=1e-6)


# ---- torch.compile ----------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("model, batch", [("linear", None), ("mlp", BATCH)])
def test_a_fresh_trainer_of_a_compiled_shape_does_not_compile_again(model, batch):
    case = torch_case(model, "compiled", batch)
    first, _ = build(case)
    first.run(1)  # compiles the shape (or finds it compiled by an earlier test)
    before = unique_graphs()
    start = time.perf_counter()
    fresh, problem = build(case)  # a later pass: a new trainer, the same shape
    fresh.run(1)
    assert unique_graphs() == before
    assert time.perf_counter() - start < 1.0  # a compile takes seconds here
    check_correctness(fresh, case, problem, LEARNING_RATE)


@pytest.mark.slow
def test_a_timed_round_never_compiles():
    case = torch_case("logistic", "compiled")
    trainer, _ = build(case)
    trainer.run(1)  # the first round may compile
    trainer.run(2)  # later ones find the compiled graph
    other = make_problem("logistic", Size(SIZE.n_examples + 1, SIZE.n_features))
    trainer.X, trainer.y = torch.from_numpy(other.X.copy()), torch.from_numpy(other.y.copy())
    with pytest.raises(RuntimeError, match="stance is 'fail_on_recompile'"):
        trainer.run(1)  # a shape it has not compiled: an error, not a compile


@pytest.mark.slow
def test_more_shapes_than_dynamos_default_limit_all_stay_compiled():
    # dynamo's default recompile_limit is 8 per function: the 9th shape on would silently run eagerly.
    default_limit = 8
    shapes = [Size(20 + i, 3) for i in range(default_limit + 1)]
    case = torch_case("linear", "compiled")
    for size in shapes:
        before = unique_graphs()
        trainer, problem = build(case, size)
        trainer.run(1)
        assert unique_graphs() == before + 1, f"{size}: no graph was compiled (a fallback to eager)"
        check_correctness(trainer, case, problem, LEARNING_RATE)
    assert torch._dynamo.config.recompile_limit > default_limit
    assert torch._dynamo.config.fail_on_recompile_limit_hit


@pytest.mark.slow
def test_reaching_the_recompile_limit_is_an_error_not_a_silent_fallback():
    def double(x):
        return 2 * x

    step = torch_linear.compiled(double)  # the suite's settings, on a function of its own
    # torch's own patch(), not pytest's monkeypatch: undoing a monkeypatch on dynamo's config
    # module deletes the setting for the rest of the process.
    with torch._dynamo.config.patch(recompile_limit=1):
        step(torch.ones(2))
        with pytest.raises(Exception, match="recompile limit|recompile_limit"):
            step(torch.ones(3))
    assert torch._dynamo.config.recompile_limit >= 8


# ---- memory ------------------------------------------------------------------------------------
def test_peak_memory_counts_the_data_and_the_steps_temporaries():
    size = Size(2_000, 200)
    trainer, problem = build(torch_case("linear", "analytic"), size)
    peak = BACKEND.peak_memory_bytes(trainer, 5, BACKEND.memory_baseline())
    data = problem.X.nbytes + problem.y.nbytes
    # The residual Xw - y (n floats) is a temporary of every step.
    assert data + size.n_examples * 4 <= peak < 1.5 * data

    mlp, mlp_problem = build(torch_case("mlp", "nn"), size)
    mlp.run(1)
    mlp_peak = BACKEND.peak_memory_bytes(mlp, 3, BACKEND.memory_baseline())
    activations = size.n_examples * HIDDEN * 4  # the hidden layer's output, kept for backward
    assert mlp_problem.X.nbytes + activations <= mlp_peak < 2 * mlp_problem.X.nbytes + 10 * activations


# ---- cases, options, what is recorded -------------------------------------------------------
def configured(value):
    backend = TorchBackend()
    backend.configure(lambda name: {"torch_device": value}[name])
    return backend


def test_grid_cases_per_size():
    backend = configured("cpu")
    size = Size(1_000, 100)
    full = GridOptions(quick=False)
    ids = [c.case_id(size) for c in backend.cases("linear", "grid", size, full)]
    assert ids == [
        "linear-torch-analytic-eager-cpu-n1000-d100",
        "linear-torch-autograd-eager-cpu-n1000-d100",
        "linear-torch-compiled-eager-cpu-n1000-d100",
        "linear-torch-autograd-eager-cpu-b32-n1000-d100",
        "linear-torch-compiled-eager-cpu-b32-n1000-d100",
        "linear-torch-autograd-eager-cpu-b256-n1000-d100",
        "linear-torch-compiled-eager-cpu-b256-n1000-d100",
    ]
    mlp = backend.cases("mlp", "grid", size, full)
    assert [(c.hidden, c.batch_size, c.variant) for c in mlp] == [
        (h, b, v) for h, b in mlp_shapes(size, full) for v in ("nn", "compiled")
    ]
    assert {c.barrier for c in mlp} == {"eager"}
    assert [c.variant for c in backend.cases("logistic", "cold", size, full)] == ["autograd", "compiled"]
    cold_mlp = backend.cases("mlp", "cold", size, full)
    assert [(c.variant, c.hidden, c.batch_size) for c in cold_mlp] == [("nn", 64, 256), ("compiled", 64, 256)]
    assert backend.cases("linear", "blog", size, full) == []


def test_the_quick_grid_compiles_at_the_blogs_size_only():
    backend, quick = configured("cpu"), GridOptions()
    blog = [c.case_id(BLOG_SIZE) for c in backend.cases("linear", "grid", BLOG_SIZE, quick) if c.variant == "compiled"]
    assert blog == ["linear-torch-compiled-eager-cpu-n1000-d100", "linear-torch-compiled-eager-cpu-b256-n1000-d100"]
    mlp = [(c.hidden, c.batch_size) for c in backend.cases("mlp", "grid", BLOG_SIZE, quick) if c.variant == "compiled"]
    assert mlp == [(64, 256), (64, None)]
    other = Size(10_000, 100)
    assert not [c for c in backend.cases("linear", "grid", other, quick) if c.variant == "compiled"]
    assert backend.cases("linear", "cold", other, quick) == []  # first calls at the blog's size only
    assert [c for c in backend.cases("linear", "grid", other, quick) if c.variant == "autograd" and c.batch_size]


def test_gpu_devices_run_step_and_round_barriers():
    backend = configured("cuda,mps")
    cases = backend.cases("logistic", "grid", Size(1_000, 100), GridOptions())
    assert {(c.device, c.barrier) for c in cases} == {(d, b) for d in ("cuda", "mps") for b in ("step", "round")}
    assert {c.variant for c in cases if c.batch_size} == {"autograd", "compiled"}


def test_device_option():
    assert configured("cpu").devices() == ("cpu",)
    assert configured("all").devices() == ("cpu", "cuda", "mps")
    assert configured("mps, cpu").devices() == ("mps", "cpu")
    for bad in ("gpu", "cpu,tpu", ","):
        with pytest.raises(BackendOptionError, match="--torch-device"):
            configured(bad)
    default = configured(None).devices()
    if torch.cuda.is_available():
        assert default == ("cuda",)
    elif torch.backends.mps.is_available():
        assert default == ("mps",)
    else:
        assert default == ("cpu",)


def test_unavailable_devices_say_why(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert BACKEND.unavailable("cpu") is None
    assert BACKEND.unavailable("cuda") == "PyTorch has no CUDA device on this machine"
    assert BACKEND.unavailable("mps") == "PyTorch has no MPS device on this machine"
    assert TorchBackend().devices() == ("cpu",)


def test_without_torch_the_backend_skips_and_records_nothing(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real_find_spec(name, *a)
    )
    backend = TorchBackend()
    assert backend.missing() == "torch is not installed (pip install -r requirements-peers.txt)"
    assert backend.machine_info() == {}
    assert backend.devices() == ("cpu",)
    assert backend.unavailable("cuda") == "PyTorch has no CUDA device on this machine"
    assert backend.memory_baseline() == 0


def test_the_backend_package_does_not_import_torch():
    code = (
        "import sys\n"
        "from bench.backends import get\n"
        "from bench.cases.case import GridOptions\n"
        "from bench.cases.sizes import Size\n"
        "backend = get('torch')\n"
        "backend.missing()\n"
        "backend.configure(lambda name: 'cpu')\n"
        "backend.cases('linear', 'grid', Size(1000, 100), GridOptions())\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


def test_machine_info_and_threads():
    info = BACKEND.machine_info()
    assert info["torch_version"] == torch.__version__
    assert all(key.startswith("torch_") for key in info)
    assert all(isinstance(v, (str, int, float, bool)) for v in info.values())  # flat
    numpy_threads = next(p["num_threads"] for p in blas_pools() if p.get("user_api") == "blas")
    assert info["torch_num_threads"] == torch.get_num_threads() == numpy_threads
    assert info["torch_interop_threads"] == torch.get_num_interop_threads()
    assert info["torch_blas_info"] == ("mkl" if torch.backends.mkl.is_available() else info["torch_blas_info"])
    assert "dynamic=False" in info["torch_compile"] and "fullgraph=True" in info["torch_compile"]
    assert info["torch_compile_timed_stance"] == "fail_on_recompile"
    assert ("torch_cuda" in info) == torch.cuda.is_available()
    assert info["torch_mps_available"] == torch.backends.mps.is_available()
    assert info.get("torch_cuda_version") == torch.version.cuda
    assert BACKEND.blas_threads(torch_case("linear", "analytic")) == torch.get_num_threads()


def test_tf32_matmuls_are_labelled_on_cuda_only():
    cuda, cpu = torch_case("mlp", "nn", device="cuda"), torch_case("mlp", "nn")
    previous = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("highest")
        assert BACKEND.matmul_precision(cuda) == "float32"
        torch.set_float32_matmul_precision("high")
        assert BACKEND.matmul_precision(cuda) == "tf32"
        assert BACKEND.matmul_precision(cpu) == "float32"
    finally:
        torch.set_float32_matmul_precision(previous)
