"""A standalone reproducer of one case's speed under one MLX release: NumPy and MLX only (docs/releases.md).

bench.versions.reproducer writes this file's source beside a history, with
CASE filled in and this docstring replaced by what the history found. It
imports nothing of the suite, so a maintainer can run it anywhere:

    uv run --with "mlx[cpu]==A" python script.py      # one release: rounds of K steps, median and spread
    python script.py --interleave A B                 # both, round by round in fresh processes (uses uv)

The data are built as the suite builds them (the same seeded generator, the
same draws in the same order), the kernel is the suite's, K steps per round
end in the case's barrier, and rounds are timed after a warm-up.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shlex
import statistics
import subprocess
import sys
import time

import numpy as np

CASE: dict = {}  # filled in by bench.versions.reproducer

BASE_SEED = 20_240_101
MODEL_SEED_IDS = {"linear": 1, "logistic": 2, "mlp": 3}
BATCH_ORDER_STREAM, MLP_INIT_STREAM = 101, 102
CLASSES, LABEL_NOISE, INIT_SCALE, LEARNING_RATE = 10, 1e-2, 1e-2, 0.01
# Two-sided 95% t quantiles by degrees of freedom (no SciPy needed); beyond 30, 1.96.
T975 = [12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23, 2.20, 2.18, 2.16, 2.14, 2.13]
T975 += [2.12, 2.11, 2.10, 2.09, 2.09, 2.08, 2.07, 2.07, 2.06, 2.06, 2.06, 2.05, 2.05, 2.05, 2.04]


def seed(model: str, n: int, d: int, *stream: int) -> np.random.SeedSequence:
    """The suite's seed of one problem (or of a named stream of it)."""
    return np.random.SeedSequence([BASE_SEED, MODEL_SEED_IDS[model], n, d, *stream])


def make_data(model: str, n: int, d: int, batch: int | None, hidden: int | None) -> dict:
    """X, y, the start weights and the batch schedule, drawn exactly as the suite draws them."""
    rng = np.random.default_rng(seed(model, n, d))
    f32 = np.float32
    n_test = max(100, min(n // 10, 10_000))
    w_star = rng.standard_normal(d, dtype=f32)
    X = rng.standard_normal((n, d), dtype=f32)
    rng.standard_normal((n_test, d), dtype=f32)  # the held-out rows: drawn, so every later draw is the suite's
    noise = LABEL_NOISE * rng.standard_normal(n, dtype=f32)
    w0 = (INIT_SCALE * rng.standard_normal(d, dtype=f32)).astype(f32)
    data = {"X": X}
    if model == "mlp":
        teacher = rng.standard_normal((d, CLASSES), dtype=f32)
        scores = rng.standard_normal((n, CLASSES), dtype=f32)
        data["y"] = np.argmax(X @ teacher + 0.1 * scores, axis=1).astype(np.int32)
        init = np.random.default_rng(seed("mlp", n, d, MLP_INIT_STREAM, hidden))

        def uniform(shape, fan_in):
            bound = 1 / np.sqrt(fan_in)
            return init.uniform(-bound, bound, size=shape).astype(f32)

        data["start"] = {
            "W1": uniform((hidden, d), d),
            "b1": uniform((hidden,), d),
            "W2": uniform((CLASSES, hidden), hidden),
            "b2": uniform((CLASSES,), hidden),
        }
    elif model == "linear":
        data["y"], data["start"] = (X @ w_star + noise).astype(f32), {"w": w0}
    else:  # logistic: labels from sign(X w* + noise)
        data["y"], data["start"] = ((X @ w_star + noise) > 0).astype(f32), {"w": w0}
    data["batches"] = None
    if batch:
        order = np.random.default_rng(seed(model, n, d, BATCH_ORDER_STREAM)).permutation(n).astype(np.int32)
        data["batches"] = order[: (n // batch) * batch].reshape(n // batch, batch)
    return data


def linear_kernel(case: dict, data: dict):
    """run(steps) for linear and logistic regression: the suite's variants and barriers."""
    import mlx.core as mx

    model, variant, barrier = case["model"], case["variant"], case["barrier"]
    column = variant == "blog" and model == "logistic"  # the blog's logistic code used (d, 1) columns
    shape = (-1, 1) if column else (-1,)
    X, y = mx.array(data["X"]), mx.array(data["y"]).reshape(shape)
    y_bool = y > 0.5
    w0 = mx.array(data["start"]["w"]).reshape(shape)
    rows = [mx.array(r) for r in data["batches"]] if data["batches"] is not None else None
    mx.eval(X, y, y_bool, w0, *(rows or []))
    inv_n = 1 / (len(data["batches"][0]) if rows else X.shape[0])
    lr = LEARNING_RATE

    def loss(w, X, y):
        if model == "linear":
            return 0.5 * mx.mean(mx.square(X @ w - y))
        z = X @ w
        if variant == "blog":
            s = mx.sigmoid(z)
            return mx.mean(-y * mx.log(s) - (1 - y) * mx.log(1 - s))
        return mx.mean(mx.logaddexp(mx.zeros_like(z), z) - y * z)

    if variant == "analytic":

        def step(w, X, y):
            r = X @ w - y if model == "linear" else mx.sigmoid(X @ w) - y
            return w - lr * (X.T @ r * inv_n)

    else:
        grad = mx.grad(loss)

        def step(w, X, y):
            return w - lr * grad(w, X, y)

    if rows is not None:
        full = step

        def step(w, X, y, r):
            return full(w, X[r], y[r])

    step = mx.compile(step) if variant == "compiled" else step

    def metric(w):
        if model == "linear":
            return 0.5 * mx.mean(mx.square(X @ w - y))
        return mx.mean((X @ w > 0) == y_bool)

    state = {"w": w0, "t": 0}

    def run(steps: int) -> None:
        w, t = state["w"], state["t"]
        for i in range(t, t + steps):
            w = step(w, X, y, rows[i % len(rows)]) if rows is not None else step(w, X, y)
            if barrier == "step":
                mx.eval(w)
            elif barrier == "sync":
                metric(w).item()
        mx.eval(w)  # the round's barrier: all updated state is computed
        state["w"], state["t"] = w, t + steps

    return run


def mlp_kernel(case: dict, data: dict):
    """run(steps) for the MLP: nn.Module, nn.value_and_grad and optim.SGD, as the suite times it."""
    import mlx.core as mx
    import mlx.nn as nn
    import mlx.optimizers as optim

    class Mlp(nn.Module):
        def __init__(self, d, hidden):
            super().__init__()
            self.l1, self.l2 = nn.Linear(d, hidden), nn.Linear(hidden, CLASSES)

        def __call__(self, x):
            return self.l2(nn.relu(self.l1(x)))

    X, y = mx.array(data["X"]), mx.array(data["y"])
    start = data["start"]
    model = Mlp(X.shape[1], case["hidden"])
    model.update(
        {
            "l1": {"weight": mx.array(start["W1"]), "bias": mx.array(start["b1"])},
            "l2": {"weight": mx.array(start["W2"]), "bias": mx.array(start["b2"])},
        }
    )
    optimizer = optim.SGD(learning_rate=LEARNING_RATE)
    optimizer.init(model.trainable_parameters())
    rows = None
    if data["batches"] is not None:
        schedule = mx.array(data["batches"])
        rows = [schedule[i] for i in range(schedule.shape[0])]
    mx.eval(X, y, model.parameters(), optimizer.state, *(rows or []))
    loss_and_grad = nn.value_and_grad(model, lambda m, X, y: nn.losses.cross_entropy(m(X), y, reduction="mean"))

    def step(X, y):
        loss, grads = loss_and_grad(model, X, y)
        optimizer.update(model, grads)
        return loss

    if rows is not None:
        full = step

        def step(X, y, r):
            return full(X[r], y[r])

    if case["variant"] == "compiled":
        state = [model.state, optimizer.state]
        step = mx.compile(step, inputs=state, outputs=state)
    counter = {"t": 0}

    def run(steps: int) -> None:
        t = counter["t"]
        for i in range(t, t + steps):
            step(X, y, rows[i % len(rows)]) if rows is not None else step(X, y)
            if case["barrier"] == "step":
                mx.eval(model.parameters(), optimizer.state)
        mx.eval(model.parameters(), optimizer.state)
        counter["t"] = t + steps

    return run


def build(case: dict, n: int, d: int):
    """The case's kernel on its data, warmed up: run(steps), with the device chosen."""
    import mlx.core as mx

    mx.set_default_device(mx.gpu if case.get("device") == "gpu" else mx.cpu)
    data = make_data(case["model"], n, d, case.get("batch_size"), case.get("hidden"))
    run = (mlp_kernel if case["model"] == "mlp" else linear_kernel)(case, data)
    run(1)  # first-call costs (tracing, compilation) stay out of the rounds
    return run


def time_round(run, steps: int) -> float:
    """Seconds of one round: K steps ending in the case's barrier."""
    start = time.perf_counter()
    run(steps)
    return time.perf_counter() - start


def environment() -> dict:
    """What this process runs on: MLX and NumPy versions, the BLAS libraries loaded, thread settings."""
    import mlx.core as mx

    blas = []
    try:
        with open("/proc/self/maps") as maps:  # Linux: the BLAS libraries really loaded
            blas = sorted({line.split()[-1] for line in maps if "blas" in line.lower() and "/" in line})
    except OSError:
        blas = ["Accelerate (macOS)"] if sys.platform == "darwin" else []
    threads = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    return {
        "mlx": mx.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "blas": blas,
        "threads": {k: v for k, v in threads.items() if v is not None},
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
    }


def t_interval(values: list[float]) -> tuple[float, float, float]:
    """(mean, 95% low, 95% high) of a t interval; no interval from one value."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, math.nan, math.nan
    df = len(values) - 1
    half = (T975[df - 1] if df <= len(T975) else 1.96) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def single(args) -> int:
    """Time this release alone: rounds of K steps, median and spread per step."""
    case = CASE
    run = build(case, args.n, args.d)
    for _ in range(args.warmup):
        time_round(run, args.steps)
    times = sorted(time_round(run, args.steps) for _ in range(args.rounds))
    per_step = [1e6 * t / args.steps for t in times]
    q1, median, q3 = statistics.quantiles(per_step, n=4) if len(per_step) > 1 else per_step * 3
    env = environment()
    print(f"{case['case_id']} at n={args.n} d={args.d}, K={args.steps} steps per round, {args.rounds} rounds")
    print(f"environment: {json.dumps(env)}")
    print(
        f"mlx {env['mlx']}: {median:.2f} us/step (median; quartiles {q1:.2f} to {q3:.2f}, "
        f"range {per_step[0]:.2f} to {per_step[-1]:.2f}); {args.steps / statistics.median(times):,.0f} steps/s"
    )
    return 0


def worker(args) -> int:
    """Serve rounds over stdin/stdout for --interleave: a hello line, then one line of seconds per 'round'."""
    run = build(CASE, args.n, args.d)
    for _ in range(args.warmup):
        time_round(run, args.steps)
    print(json.dumps(environment()), flush=True)
    for line in sys.stdin:
        if line.strip() != "round":
            break
        print(repr(time_round(run, args.steps)), flush=True)
    return 0


def worker_command(release: str, args) -> list[str]:
    """How a worker of one release starts: uv with the release pinned, or --worker-python for both sides."""
    this = os.path.abspath(__file__)
    sizes = ["--n", str(args.n), "--d", str(args.d), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    if args.worker_python:
        return [args.worker_python, this, "--worker", *sizes]
    # The recorded requirement of a release (a wheel's path included), else the platform's for this number.
    extra = "mlx[cpu]" if sys.platform.startswith("linux") else "mlx"
    spec = CASE.get("specs", {}).get(release) or f"{extra}=={release}"
    numpy = CASE.get("numpy")
    pins = ["--with", f"numpy=={numpy}"] if numpy else []
    return ["uv", "run", "--quiet", "--no-project", "--with", spec, *pins, "python", this, "--worker", *sizes]


def interleave(args) -> int:
    """Both releases round by round, every block in a random order, in --sessions pairs of fresh processes."""
    rng = random.Random(args.seed)
    labels = list(args.interleave)
    per_session, medians = [], {label: [] for label in labels}
    for session in range(args.sessions):
        procs = {}
        try:
            for label in labels:
                command = worker_command(label, args)
                procs[label] = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                hello = procs[label].stdout.readline()
                if not hello:
                    print(f"error: the worker of {label} did not start: {shlex.join(command)}", file=sys.stderr)
                    return 1
                if session == 0:
                    print(f"{label}: {hello.strip()}")
            times = {label: [] for label in labels}
            for _ in range(args.rounds):
                order = list(labels)
                rng.shuffle(order)
                for label in order:
                    procs[label].stdin.write("round\n")
                    procs[label].stdin.flush()
                    times[label].append(float(procs[label].stdout.readline()))
        finally:
            for proc in procs.values():
                if proc.stdin and not proc.stdin.closed:
                    proc.stdin.close()
                proc.wait(timeout=60)
        ratios = [math.log(b / a) for a, b in zip(times[labels[0]], times[labels[1]])]
        per_session.append(statistics.median(ratios))
        for label in labels:
            medians[label].append(1e6 * statistics.median(times[label]) / args.steps)
        print(f"session {session + 1}: " + ", ".join(f"{lb} {medians[lb][-1]:.2f} us/step" for lb in labels))
    mean, low, high = t_interval(per_session)
    for label in labels:
        print(f"mlx {label}: {statistics.median(medians[label]):.2f} us/step (median of {args.sessions} sessions)")
    interval = "" if math.isnan(low) else f" [{100 * math.expm1(low):+.1f}, {100 * math.expm1(high):+.1f}] (95%)"
    print(f"{labels[0]} -> {labels[1]}: time per step {100 * math.expm1(mean):+.1f}%{interval}")
    return 0


def main(argv=None) -> int:
    """The command line (see the module docstring)."""
    case = CASE or {}
    parser = argparse.ArgumentParser(description=f"reproduce {case.get('case_id', 'a case')} (NumPy and MLX only)")
    parser.add_argument("--n", type=int, default=case.get("n_examples", 1_000), help="examples")
    parser.add_argument("--d", type=int, default=case.get("n_features", 10), help="features")
    parser.add_argument("--steps", type=int, default=case.get("steps_per_round") or 100, help="K steps per round")
    parser.add_argument("--rounds", type=int, default=30, help="timed rounds (per session with --interleave)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    parser.add_argument("--interleave", nargs=2, metavar=("OLDER", "NEWER"), help="time both releases interleaved")
    parser.add_argument("--sessions", type=int, default=4, help="--interleave: pairs of fresh processes")
    parser.add_argument("--seed", type=int, default=0, help="--interleave: seed of the block orders")
    parser.add_argument("--worker-python", help="--interleave: run both workers with this interpreter (A/A)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.n, args.d, args.steps, args.rounds, args.sessions) < 1 or args.warmup < 0:
        parser.error("--n, --d, --steps, --rounds and --sessions must be at least 1, --warmup at least 0")
    if case.get("batch_size") and case["batch_size"] > args.n:
        parser.error(f"--n must be at least the batch size {case['batch_size']}")
    if args.worker:
        return worker(args)
    if args.interleave:
        return interleave(args)
    return single(args)


if __name__ == "__main__":
    sys.exit(main())
