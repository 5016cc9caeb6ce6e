"""JAX linear and logistic regression, and the trainer every JAX case shares.

jax.grad of the loss, plain SGD (w - lr g), under jax.jit. Variants: `jit`
(one jitted step per call, block_until_ready on the new weights after every
step: barrier `step`) and `fori` (a round of K steps inside one jitted
jax.lax.fori_loop, then block_until_ready: barrier `round`). The loop's trip
count is a traced argument, so one compile serves every K: calibration, the
warm-up and the timed rounds all call the same executable.

JAX dispatches asynchronously, on the CPU as on a GPU: a jitted call returns
before its work is done, so every run ends in block_until_ready and settle()
is a real barrier check. A mini-batch step takes its rows from the schedule
on the device by its step counter (t mod n_batches) and gathers X[rows],
y[rows] inside the jitted step, so the fori variant runs K mini-batch steps
in one call; the counter lives on the device beside the weights, and
consecutive runs continue the schedule. float32 throughout (jax_enable_x64
stays off).
"""

from __future__ import annotations

import functools
import time

import jax
import jax.numpy as jnp
import numpy as np

from bench.backends.jax import jax_device
from bench.cases.case import Case
from bench.cases.datasets import Problem, flatten_params

# variant -> its barrier policy
VARIANTS = {"jit": "step", "fori": "round"}


def linear_loss(w, X, y):
    """1/(2n) ||Xw - y||^2, the blog's MSE loss."""
    return 0.5 * jnp.mean(jnp.square(X @ w - y))


def logistic_loss(w, X, y):
    """Mean binary cross-entropy of sigmoid(Xw), in the overflow-free form.

    softplus(z) - y z equals -y log s(z) - (1-y) log(1 - s(z)) but stays finite
    (and its gradient stays s(z) - y) when |z| grows during long runs.
    """
    z = X @ w
    return jnp.mean(jnp.logaddexp(0.0, z) - y * z)


LOSSES = {"linear": linear_loss, "logistic": logistic_loss}


@functools.cache
def compiled_steps(loss, lr: float, batched: bool):
    """The jitted (step, round) of a loss and learning rate, made once per process.

    Module-level, so a freshly built trainer of a shape already compiled in
    this process (the session's later passes) hits JAX's cache instead of
    compiling again. Full batch: step(params, X, y) -> params and
    round(params, k, X, y) -> params. Mini-batch: step(params, t, X, y,
    schedule) -> (params, t) and round(params, t, k, X, y, schedule) ->
    (params, t), t the position in the schedule.
    """
    grad = jax.grad(loss)

    def update(params, X, y):
        # jax.tree.map covers one weight vector and the MLP's dict alike.
        return jax.tree.map(lambda p, g: p - lr * g, params, grad(params, X, y))

    if batched:

        def step(params, t, X, y, schedule):
            rows = schedule[t]
            return update(params, X[rows], y[rows]), (t + 1) % schedule.shape[0]

        def round_(params, t, k, X, y, schedule):
            return jax.lax.fori_loop(0, k, lambda _, state: step(*state, X, y, schedule), (params, t))

    else:

        def step(params, X, y):
            return update(params, X, y)

        def round_(params, k, X, y):
            return jax.lax.fori_loop(0, k, lambda _, p: step(p, X, y), params)

    return jax.jit(step), jax.jit(round_)


def block_vector(w):
    """Wait until one weight vector is computed."""
    return w.block_until_ready()


class JaxTrainer:
    """SGD in JAX for one case and problem: the linear models here, the MLP in a subclass (bench.backends.jax.mlp).

    stop_accuracy is accepted for the Trainer API and ignored: JAX runs no
    early-stopping (sync) case, so run() always does every step it is asked for.
    """

    layout = "vector"
    # Waits for the weights: one array's own method here, jax.block_until_ready for a pytree.
    block = staticmethod(block_vector)

    def __init__(self, case: Case, problem: Problem, lr: float):
        if case.variant not in VARIANTS:
            raise ValueError(f"jax has no variant {case.variant!r}")
        if case.barrier != VARIANTS[case.variant]:
            raise ValueError(f"jax {case.variant} runs with barrier {VARIANTS[case.variant]!r}, not {case.barrier!r}")
        self.device = jax_device(case.device)
        put = functools.partial(jax.device_put, device=self.device)
        # Conversion happens here, outside any timer; compilation waits for the first
        # call, which the harness times on its own (first_step_s).
        self.X = put(problem.X)
        self.y = put(problem.y)
        self.params0 = put(self.start_params(problem))
        self.batched = problem.batches is not None
        self.schedule = put(problem.batches) if self.batched else None
        self.position0 = put(np.int32(0)) if self.batched else None
        step, round_ = compiled_steps(self.loss(case.model), float(lr), self.batched)
        self.step = step if case.variant == "jit" else None
        self.round = round_ if case.variant == "fori" else None
        self.reset()
        jax.block_until_ready((self.X, self.y, self.params0, self.schedule, self.position0))

    # ---- what the MLP overrides ---------------------------------------------------------------
    def loss(self, model: str):
        """The loss function of the case's model."""
        return LOSSES[model]

    def start_params(self, problem: Problem):
        """The problem's start weights as the pytree the step takes (NumPy, before device_put)."""
        return problem.start["w"]

    def named_params(self) -> dict:
        """The current weights by name, as bench.cases.datasets.flatten_params takes them."""
        return {"w": self.params}

    # ---- the Trainer API ---------------------------------------------------------------------
    def reset(self) -> None:
        # JAX arrays are immutable: the start weights can be shared, never copied.
        self.params = self.params0
        self.position = self.position0  # on the device: the next row of the schedule
        self.t = 0  # steps taken since reset

    def run(self, steps: int, stop_accuracy: float | None = None) -> int:
        if self.batched:
            return self._run_batches(steps)
        params, X, y, block = self.params, self.X, self.y, self.block
        if self.round is not None:
            # A Python int: every K is the same weakly typed int32 argument, one executable for all.
            params = self.round(params, int(steps), X, y)
        else:
            step = self.step
            for _ in range(steps):
                params = step(params, X, y)
                block(params)
        block(params)  # the round's barrier: the new weights are computed
        self.params = params
        self.t += steps
        return steps

    def _run_batches(self, steps: int) -> int:
        params, t, X, y, schedule, block = self.params, self.position, self.X, self.y, self.schedule, self.block
        if self.round is not None:
            params, t = self.round(params, t, int(steps), X, y, schedule)
        else:
            step = self.step
            for _ in range(steps):
                params, t = step(params, t, X, y, schedule)
                block(params)
        block(params)  # the counter comes out of the same computation as the weights
        self.params, self.position = params, t
        self.t += steps
        return steps

    def settle(self) -> float:
        start = time.perf_counter()
        jax.block_until_ready((self.params, self.position))
        return time.perf_counter() - start

    def weights(self) -> np.ndarray:
        return flatten_params({name: np.asarray(p) for name, p in self.named_params().items()})

    # ---- what the memory probe reads ------------------------------------------------------------
    def compiled(self, steps: int):
        """The compiled executable run() calls for a run of `steps` steps (from JAX's cache once it ran)."""
        data = (self.X, self.y) + ((self.schedule,) if self.batched else ())
        counter = (self.position,) if self.batched else ()
        if self.round is not None:
            return self.round.lower(self.params, *counter, int(steps), *data).compile()
        return self.step.lower(self.params, *counter, *data).compile()


def held_device_bytes(trainer) -> int:
    """Bytes of the JAX arrays a trainer holds (data, schedule, start and current weights), each buffer once."""
    seen, total = set(), 0
    for value in vars(trainer).values():
        for leaf in jax.tree.leaves(value):
            if isinstance(leaf, jax.Array) and not leaf.is_deleted():
                for shard in leaf.addressable_shards:
                    key = (shard.device, shard.data.unsafe_buffer_pointer())
                    if key not in seen:
                        seen.add(key)
                        total += shard.data.nbytes
    return total


def compiled_peak_bytes(trainer, steps: int) -> int:
    """The trainer's buffers plus, from XLA's buffer assignment, the temporaries and outputs of its run's executable."""
    stats = trainer.compiled(steps).memory_analysis()
    # The arguments are the trainer's own buffers (counted once in held); a donated
    # argument (none here) would be reused for an output, hence the alias term.
    extra = stats.temp_size_in_bytes + stats.output_size_in_bytes - stats.alias_size_in_bytes
    return held_device_bytes(trainer) + max(extra, 0)


def bare_round_seconds(trainer: JaxTrainer, steps: int) -> float:
    """One round of the trainer's full-batch kernel as the plain loop a user would write, timed with perf_counter."""
    if trainer.batched:
        raise ValueError("the bare loop is the full-batch kernel's")
    params, X, y, block = trainer.params, trainer.X, trainer.y, trainer.block
    if trainer.round is not None:
        fused = trainer.round
        start = time.perf_counter()
        params = fused(params, int(steps), X, y)
        block(params)
        elapsed = time.perf_counter() - start
    else:
        step = trainer.step
        start = time.perf_counter()
        for _ in range(steps):
            params = step(params, X, y)
            block(params)
        elapsed = time.perf_counter() - start
    trainer.params = params
    trainer.t += steps
    return elapsed
