"""The JAX backend: its kernels match the float64 reference, its barriers hold, its cases and options are as documented."""

import os
import subprocess
import sys

import pytest

jax = pytest.importorskip("jax")

import numpy as np  # noqa: E402

from bench.backends import BackendOptionError  # noqa: E402
from bench.backends.jax import (  # noqa: E402
    BACKEND,
    EIGEN_THREAD_NAME,
    JaxBackend,
    _count_threads,
    gpu_available,
    gpu_matmul_precision,
)
from bench.backends.jax.linear import LOSSES, JaxTrainer, held_device_bytes  # noqa: E402
from bench.backends.jax.mlp import JaxMlpTrainer, mlp_loss  # noqa: E402
from bench.cases.case import Case, GridOptions, linear_batches, mlp_shapes  # noqa: E402
from bench.cases.checks import BarrierError, CorrectnessError, check_barrier, check_correctness, relative_error  # noqa: E402
from bench.cases.datasets import flatten_params, make_problem  # noqa: E402
from bench.cases.models import LEARNING_RATE  # noqa: E402
from bench.cases.sizes import BLOG_SIZE, Size  # noqa: E402
from reference import reference_weights  # noqa: E402
from reference.mlp import mlp_reference_params  # noqa: E402

SIZE = Size(200, 8)
HIDDEN = 16
BATCH = 32  # 6 batches at 200 rows: 10 steps wrap around the schedule
MODELS = ("linear", "logistic", "mlp")
PLANS = (("jit", "step"), ("fori", "round"))
KERNELS = [(m, v, b, batch) for m in MODELS for v, b in PLANS for batch in (None, BATCH)]


def kernel_id(kernel):
    model, variant, barrier, batch = kernel
    return f"{model}-{variant}-{barrier}" + (f"-b{batch}" if batch else "")


def jax_case(model, variant="jit", barrier="step", batch=None):
    return Case(model, "jax", variant, barrier, "cpu", batch, HIDDEN if model == "mlp" else None)


def problem_of(case, size=SIZE):
    return make_problem(case.model, size, case.batch_size, case.hidden)


def expected(problem, steps, lr=LEARNING_RATE):
    """The float64 reference's weights after `steps` steps of the problem's schedule, flattened."""
    if problem.model == "mlp":
        return flatten_params(mlp_reference_params(problem.X, problem.y, problem.start, lr, steps, problem.batches))
    return reference_weights(problem.model, problem.X, problem.y, problem.w0, lr, steps, problem.batches)


def update_error(trainer, problem, steps):
    start = problem.start_vector()
    return relative_error(trainer.weights() - start, expected(problem, steps) - start)


# ---- correctness ------------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", KERNELS, ids=kernel_id)
def test_every_variant_matches_the_float64_reference(kernel):
    model, variant, barrier, batch = kernel
    case = jax_case(model, variant, barrier, batch)
    problem = problem_of(case)
    trainer = BACKEND.make_trainer(case, problem, LEARNING_RATE)
    result = check_correctness(trainer, case, problem, LEARNING_RATE)
    assert result["matmul_precision"] == "float32"
    assert result["max_rel_error"] <= result["error_bound"]
    assert result["update_rel_error"] <= result["update_error_bound"]
    # float32 everywhere: the weights, and nothing switched JAX to 64-bit.
    leaves = jax.tree.leaves(trainer.params)
    assert all(leaf.dtype == np.float32 for leaf in leaves)
    assert not jax.config.jax_enable_x64


def scaled(loss, factor):
    return lambda params, X, y: factor * loss(params, X, y)


class DoubledLinear(JaxTrainer):
    """The gradient a factor 2 off (the loss doubled)."""

    def loss(self, model):
        return scaled(LOSSES[model], 2.0)


class SlightlyOffMlp(JaxMlpTrainer):
    """An MLP whose every step is 1% too long: hidden under the weights' bound, not the update's."""

    def loss(self, model):
        return scaled(mlp_loss, 1.01)


@pytest.mark.parametrize("kernel", [k for k in KERNELS if k[3] is None], ids=kernel_id)
def test_a_wrongly_scaled_gradient_fails(kernel):
    model, variant, barrier, batch = kernel
    case = jax_case(model, variant, barrier, batch)
    problem = problem_of(case)
    trainer_class = SlightlyOffMlp if model == "mlp" else DoubledLinear
    trainer = trainer_class(case, problem, LEARNING_RATE)
    with pytest.raises(CorrectnessError, match="float64 reference"):
        check_correctness(trainer, case, problem, LEARNING_RATE)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("variant, barrier", PLANS)
def test_consecutive_runs_continue_the_mini_batch_schedule(model, variant, barrier):
    case = jax_case(model, variant, barrier, BATCH)
    problem = problem_of(case)
    trainer = BACKEND.make_trainer(case, problem, LEARNING_RATE)
    trainer.run(3)  # whatever ran before, reset() starts the schedule again
    trainer.reset()
    trainer.run(5)
    trainer.run(5)
    assert trainer.t == 10
    assert update_error(trainer, problem, 10) < 1e-3
    # Not the same as restarting the schedule at the second run: the test can tell them apart.
    restarted = BACKEND.make_trainer(case, problem, LEARNING_RATE)
    restarted.run(5)
    restarted.position = restarted.position0
    restarted.run(5)
    assert update_error(restarted, problem, 10) > 1e-2


def test_the_bare_loop_runs_the_trainers_own_kernel():
    for variant, barrier in PLANS:
        case = jax_case("logistic", variant, barrier)
        problem = problem_of(case)
        trainer = BACKEND.make_trainer(case, problem, LEARNING_RATE)
        assert BACKEND.bare_round_seconds(trainer, 10) > 0
        assert relative_error(trainer.weights(), expected(problem, 10)) < 1e-5


# ---- barriers ---------------------------------------------------------------------------------


class NoBarrierTrainer(JaxTrainer):
    """A round that returns as soon as JAX has dispatched it, without block_until_ready."""

    def run(self, steps, stop_accuracy=None):
        if self.round is not None:
            self.params = self.round(self.params, steps, self.X, self.y)
        else:
            for _ in range(steps):
                self.params = self.step(self.params, self.X, self.y)
        return steps


BIG = Size(20_000, 500)  # 40 MB of X: 20 steps take long enough to see them pending


@pytest.mark.slow
@pytest.mark.parametrize("variant, barrier", PLANS)
def test_a_round_without_block_until_ready_is_caught(variant, barrier):
    case = jax_case("linear", variant, barrier)
    problem = problem_of(case, BIG)
    trainer = NoBarrierTrainer(case, problem, LEARNING_RATE)
    trainer.run(1)  # compiled outside the check
    trainer.settle()
    with pytest.raises(BarrierError, match="did not end in its evaluation barrier"):
        check_barrier(trainer, case, 20)
    real = BACKEND.make_trainer(case, problem, LEARNING_RATE)
    real.run(1)
    assert check_barrier(real, case, 20) < 1e-3


@pytest.mark.parametrize("kernel", [k for k in KERNELS if k[0] != "logistic"], ids=kernel_id)
def test_real_rounds_leave_nothing_pending(kernel):
    model, variant, barrier, batch = kernel
    case = jax_case(model, variant, barrier, batch)
    trainer = BACKEND.make_trainer(case, problem_of(case), LEARNING_RATE)
    trainer.run(2)
    assert check_barrier(trainer, case, 20) < 1e-3
    assert trainer.settle() < 1e-3


# ---- compilation ------------------------------------------------------------------------------

TRACES = []


def counted_linear_loss(w, X, y):
    TRACES.append(w.shape)  # runs when JAX traces the step, never when it runs the compiled code
    return LOSSES["linear"](w, X, y)


class CountingTrainer(JaxTrainer):
    def loss(self, model):
        return counted_linear_loss


@pytest.mark.parametrize("variant, barrier", PLANS)
@pytest.mark.parametrize("batch", [None, BATCH])
def test_a_new_k_or_a_fresh_trainer_does_not_compile_again(variant, barrier, batch):
    case = jax_case("linear", variant, barrier, batch)
    problem = problem_of(case)
    trainer = CountingTrainer(case, problem, LEARNING_RATE)
    jitted = trainer.round or trainer.step
    TRACES.clear()
    trainer.run(1)  # the first call compiles (the harness times it alone: first_step_s)
    traced, compiled = len(TRACES), jitted._cache_size()
    assert traced == 1
    for k in (2, 7, 100, np.int64(3)):  # calibration's Ks, then the rounds' K (of whatever int type)
        trainer.run(k)
    fresh = CountingTrainer(case, make_problem("linear", SIZE, batch), LEARNING_RATE)  # a later pass's trainer
    fresh.run(5)
    assert len(TRACES) == traced and jitted._cache_size() == compiled
    assert update_error(trainer, problem, 113) < 1e-3


# ---- memory -----------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [None, BATCH])
def test_peak_memory_counts_the_data_and_the_steps_temporaries(batch):
    case = jax_case("mlp", "jit", "step", batch)
    problem = problem_of(case)
    trainer = BACKEND.make_trainer(case, problem, LEARNING_RATE)
    trainer.run(1)
    held = held_device_bytes(trainer)
    params_bytes = sum(a.nbytes for a in problem.start.values())
    data_bytes = problem.X.nbytes + problem.y.nbytes + (problem.batches.nbytes if batch else 0)
    assert held >= data_bytes + params_bytes
    peak = BACKEND.peak_memory_bytes(trainer, 5, BACKEND.memory_baseline())
    # Beyond the held buffers: at least the new weights and the hidden activations of a batch.
    rows = problem.batch_rows
    assert peak >= held + params_bytes + rows * HIDDEN * 4
    assert peak < held + 100 * (params_bytes + rows * (HIDDEN + 10 + problem.n_features) * 4)


# ---- cases, options, environment --------------------------------------------------------------


def test_cases_per_size_and_scenario():
    backend = JaxBackend()
    backend.configure(lambda name: "cpu")
    size, grid = BLOG_SIZE, GridOptions()
    linear = [c.case_id(size) for c in backend.cases("linear", "grid", size, grid)]
    assert linear[:2] == ["linear-jax-jit-step-cpu-n1000-d100", "linear-jax-fori-round-cpu-n1000-d100"]
    assert "logistic-jax-fori-round-cpu-b256-n1000-d100" in [
        c.case_id(size) for c in backend.cases("logistic", "grid", size, grid)
    ]
    assert len(linear) == 2 * (1 + len(linear_batches(size)))
    mlp = backend.cases("mlp", "grid", size, grid)
    assert [(c.hidden, c.batch_size) for c in mlp[::2]] == mlp_shapes(size, grid)
    assert {(c.variant, c.barrier) for c in mlp} == set(PLANS)
    assert [c.id for c in backend.cases("logistic", "cold", size, grid)] == ["jax-jit-step-cpu"]
    assert [c.id for c in backend.cases("mlp", "cold", size, grid)] == ["jax-jit-step-cpu-h64-b256"]
    assert backend.cases("linear", "blog", size, grid) == []
    backend.configure(lambda name: "all")
    both = backend.cases("linear", "grid", size, grid)
    assert len(both) == 2 * len(linear) and {c.device for c in both} == {"cpu", "cuda"}


def test_device_option():
    backend = JaxBackend()
    added = {}
    backend.add_options(type("Group", (), {"addoption": lambda self, name, **kw: added.setdefault(name, kw)})())
    assert "--jax-device" in added and added["--jax-device"]["default"] is None
    for value, devices in (
        ("cpu", ("cpu",)),
        ("cuda", ("cuda",)),
        ("all", ("cpu", "cuda")),
        ("cuda,cpu", ("cuda", "cpu")),
    ):
        backend.configure(lambda name, value=value: value)
        assert backend.devices() == devices
    for bad in ("gpu", "tpu", "cpu,metal", ""):
        with pytest.raises(BackendOptionError, match="--jax-device"):
            backend.configure(lambda name, bad=bad: bad)
    backend.configure(lambda name: None)
    assert backend.devices() == (("cuda",) if gpu_available() else ("cpu",))


def test_unavailable_reasons():
    assert BACKEND.missing() is None
    assert BACKEND.unavailable("cpu") is None
    if not gpu_available():
        assert "no CUDA GPU" in BACKEND.unavailable("cuda")
    assert BACKEND.unavailable("gpu") is not None


def test_without_jax_the_backend_says_why_and_imports_nothing():
    # A fresh interpreter in which `import jax` fails, as where it is not installed.
    code = (
        "import sys; sys.modules['jax'] = None\n"
        "import importlib\n"
        "from bench.cases.case import GridOptions\n"
        "from bench.cases.sizes import BLOG_SIZE\n"
        "b = importlib.import_module('bench.backends.jax').BACKEND\n"
        "print(b.missing())\n"
        "assert b.machine_info() == {}, b.machine_info()\n"
        "assert b.devices() == ('cpu',) and b.memory_baseline() == 0\n"
        "assert len(b.cases('linear', 'grid', BLOG_SIZE, GridOptions())) == 6\n"
        "assert sys.modules['jax'] is None and 'jaxlib' not in sys.modules\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "jax is not installed (pip install -r requirements-peers.txt)"


def test_machine_info_fields():
    info = BACKEND.machine_info()
    assert all(key.startswith(("jax_", "jaxlib_")) for key in info)
    assert info["jax_version"] == jax.__version__
    assert {
        "jaxlib_version",
        "jax_backend",
        "jax_devices",
        "jax_cpu_threads",
        "jax_xla_flags",
        "jax_default_matmul_precision",
    } <= set(info)
    assert any(d.startswith("cpu:0") for d in info["jax_devices"])
    assert info["jax_cpu_threads"] >= 1


def test_blas_threads_are_xla_cpu_pool():
    case = jax_case("linear")
    threads = BACKEND.blas_threads(case)
    if sys.platform.startswith("linux"):
        assert threads == _count_threads(EIGEN_THREAD_NAME) >= 1
    assert BACKEND.blas_threads(Case("linear", "jax", "jit", "step", "cuda")) is None


def test_matmul_precision_labels():
    assert BACKEND.matmul_precision(jax_case("mlp")) == "float32"
    assert gpu_matmul_precision(None, "9.0") == "tf32"
    assert gpu_matmul_precision("tensorfloat32", "8.0") == "tf32"
    assert gpu_matmul_precision("bfloat16", "8.6") == "tf32"  # the legacy name of Precision.DEFAULT
    assert gpu_matmul_precision("highest", "9.0") == "float32"
    assert gpu_matmul_precision("float32", None) == "float32"
    assert gpu_matmul_precision(None, "7.0") == "float32"  # no TF32 before Ampere
    assert gpu_matmul_precision("BF16_BF16_F32", "9.0") == "bf16_bf16_f32"
