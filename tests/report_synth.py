"""Synthetic pytest-benchmark results for the report's tests: chosen raw times, this suite's schema.

A saved file here has the shape `pytest --benchmark-only` writes (machine_info,
commit_info, benchmarks with extra_info and stats including raw `data`,
datetime, version), with round times drawn from a known distribution, so a
test can say what the report must conclude.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bench.cases.identity import case_id_of

MODELS = ("linear", "logistic")
SIZES = ((1_000, 10), (2_000, 20))
# (backend, variant, barrier, dtype) of each case a synthetic grid run has.
CASES = (
    ("numpy", "analytic", "eager", "float32"),
    ("numpy", "analytic", "sync", "float32"),
    ("numpy", "seed", "eager", "float64"),
    ("mlx", "autodiff", "step", "float32"),
    ("mlx", "autodiff", "round", "float32"),
    ("mlx", "autodiff", "sync", "float32"),
    ("mlx", "compiled", "step", "float32"),
)


def case_id(model, backend, variant, barrier, device, n, d) -> str:
    """The suite's case id, e.g. ``linear-mlx-compiled-step-cpu-n1000-d10``."""
    return f"{model}-{backend}-{variant}-{barrier}-{device}-n{n}-d{d}"


def step_time(model, backend, variant, barrier, n, d) -> float:
    """A made-up but fixed per-step time in seconds for a case (MLX faster on some, slower on others)."""
    base = 2e-9 * n * d + 5e-6
    factor = {"numpy": 1.0, "mlx": 0.6 if barrier == "round" else 1.4}[backend]
    factor *= 1.5 if barrier == "sync" else 1.0
    factor *= 1.2 if variant == "seed" else 1.0
    factor *= 1.3 if model == "logistic" else 1.0
    return base * factor


def benchmark(
    model="linear",
    backend="mlx",
    variant="autodiff",
    barrier="step",
    dtype="float32",
    n=1_000,
    d=10,
    device="cpu",
    steps_per_round=100,
    times=None,
    save_data=True,
    scenario="grid",
    **extra,
) -> dict:
    """One saved benchmark entry; `times` are its raw round times in seconds."""
    times = [float(t) for t in times]
    q1, median, q3 = np.percentile(times, [25, 50, 75])
    info = {
        "case_id": case_id(model, backend, variant, barrier, device, n, d),
        "model": model,
        "backend": backend,
        "variant": variant,
        "device": device,
        "dtype": dtype,
        "barrier": barrier,
        "n_examples": n,
        "n_features": d,
        "batch_size": n,
        "learning_rate": 0.01,
        "steps_per_round": steps_per_round,
        "flops_per_step": 4 * n * d + n + 3 * d,
        "bytes_per_step": (2 * n * d + 3 * n + 4 * d) * 4,
        "phase": "warm",
        "scenario": scenario,
        "steps_per_s": steps_per_round / median,
        "max_rel_error": 1e-7,
        "error_bound": 1e-4,
    }
    info.update(extra)
    if "case_id" not in extra:  # the one identity, also for mini-batches and hidden widths given in `extra`
        info["case_id"] = case_id_of(info)
    stats = {
        "min": min(times),
        "max": max(times),
        "mean": float(np.mean(times)),
        "stddev": float(np.std(times, ddof=1)) if len(times) > 1 else 0.0,
        "rounds": len(times),
        "median": float(median),
        "iqr": float(q3 - q1),
        "q1": float(q1),
        "q3": float(q3),
        "iterations": 1,
    }
    if save_data:
        stats["data"] = times
    return {
        "group": f"{model}-n{n}-d{d}",
        "name": f"test_{model}[{info['case_id']}]",
        "fullname": f"bench/test_{model}.py::test_{model}[{info['case_id']}]",
        "params": None,
        "param": info["case_id"],
        "extra_info": info,
        "options": {"timer": "perf_counter", "min_rounds": 5},
        "stats": stats,
    }


def run(
    benchmarks, mlx_version="0.30.0", node="ci-mac", date="2026-01-01T12:00:00.000000+00:00", **machine_extra
) -> dict:
    """A saved run (one file's JSON) holding `benchmarks`."""
    machine_info = {
        "node": node,
        "machine": "arm64",
        "system": "Darwin",
        "release": "24.0.0",
        "python_version": "3.12.1",
        "cpu": {"brand_raw": "Apple M1"},
        "cpu_model": "Apple M1",
        "usable_cpus": 8,
        "cpu_count": 8,
        "memory_total_bytes": 16 * 2**30,
        "numpy_version": "2.1.0",
        "numpy_blas": [
            {
                "user_api": "blas",
                "internal_api": "openblas",
                "version": "0.3.27",
                "num_threads": 8,
                "filepath": "/x/libopenblas.so",
            }
        ],
        "loaded_blas_libraries": ["/x/libopenblas.so"],
        "env": {"OMP_NUM_THREADS": "8"},
        "mlx_version": mlx_version,
        "mlx_default_device": "Device(gpu, 0)",
        "mlx_gpu_backend": "metal",
        "mlx_device_info": {"cpu": {}, "gpu": {"architecture": "applegpu_g13s"}},
        "mlx_blas": {"library": "Accelerate", "source": "macOS system framework"},
        "bench_settings": {"sizes": ["n1000-d10"], "mlx_devices": ["cpu"], "rounds": 15, "round_time_s": 0.02},
    }
    machine_info.update(machine_extra)
    return {
        "machine_info": machine_info,
        "commit_info": {"id": "0123456789abcdef0123456789abcdef01234567", "dirty": False, "branch": "main"},
        "benchmarks": list(benchmarks),
        "datetime": date,
        "version": "5.3.1",
    }


def grid_benchmarks(
    seed=0, rounds=15, noise=0.03, slow=None, slowdown=1.0, save_data=True, models=MODELS
) -> list[dict]:
    """Every case of MODELS x SIZES x CASES with lognormal round-time noise.

    `slow` is a case id whose times are multiplied by `slowdown`.
    """
    rng = np.random.default_rng(seed)
    out = []
    for model in models:
        for n, d in SIZES:
            for backend, variant, barrier, dtype in CASES:
                k = 100
                times = k * step_time(model, backend, variant, barrier, n, d) * rng.lognormal(0, noise, rounds)
                if slow == case_id(model, backend, variant, barrier, "cpu", n, d):
                    times = times * slowdown
                out.append(
                    benchmark(
                        model,
                        backend,
                        variant,
                        barrier,
                        dtype,
                        n,
                        d,
                        steps_per_round=k,
                        times=times,
                        save_data=save_data,
                    )
                )
    return out


def slowed(doc: dict, slow_case: str, factor: float) -> dict:
    """A copy of a run whose one case (by case id) has every raw round time multiplied by `factor`."""
    doc = json.loads(json.dumps(doc))
    for bench in doc["benchmarks"]:
        if bench["extra_info"]["case_id"] == slow_case:
            bench["stats"]["data"] = [t * factor for t in bench["stats"]["data"]]
            bench["stats"]["median"] *= factor
    return doc


def relabel(doc: dict, mlx_version: str, date: str) -> dict:
    """A copy of a run as if made under another MLX version at another date."""
    doc = json.loads(json.dumps(doc))
    doc["machine_info"]["mlx_version"] = mlx_version
    doc["datetime"] = date
    return doc


def write(folder: Path, name: str, doc: dict) -> Path:
    """Save a run as pytest-benchmark does: <folder>/<name>.json."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(doc))
    return path


# --------------------------------------------------------------------------- run-level data

RUN_FACTOR = 0.02  # sd of a run's common factor (log scale): a busy machine slows every case alike
CASE_NOISE = 0.02  # sd of a case's own effect in a run: the process's lasting offset for that case
ROUND_NOISE = 0.02  # sd of one round around its run's level
BURST = 1.4  # a burst: one case 40% slow for one whole run (K calibrated while slow, rounds agree)
BURST_RATE = 0.002  # bursts per case and run
OLDER, NEWER = "0.30.0", "0.31.0"  # the two releases of run_level


def run_level(
    seed=0,
    comparisons=1,
    cases=300,
    controls=90,
    runs=3,
    rounds=15,
    run_factor=RUN_FACTOR,
    case_noise=CASE_NOISE,
    round_noise=ROUND_NOISE,
    burst_rate=BURST_RATE,
    slowdowns=None,
    run_slowdowns=None,
    control_slowdown=1.0,
    bursts=(),
):
    """Log median per-step times of synthetic separately saved runs of two releases, many comparisons at once.

    Returns (log_times of shape comparisons x cases x 2*runs, each run's release
    ("old" for the first `runs`, then "new"), which cases are NumPy controls
    (the first `controls`)). Each run has a common factor, each case in each run
    its own effect, each round its noise; the run's figure is the median of its
    rounds. Bursts strike at random (`burst_rate`) and where `bursts` says
    ((case, run) pairs, in every comparison). `slowdowns` maps a case to a
    factor on its newer runs (a planted change), `run_slowdowns` a run to a
    factor on all its cases, `control_slowdown` multiplies every control in the
    newer runs.
    """
    rng = np.random.default_rng(seed)
    total = 2 * runs
    base = rng.uniform(np.log(1e-5), np.log(1e-2), (comparisons, cases, 1))
    level = (
        base
        + rng.normal(0, run_factor, (comparisons, 1, total))
        + rng.normal(0, case_noise, (comparisons, cases, total))
    )
    # The median of the rounds: round noise shrinks, but does not vanish, in a run's figure.
    level = level + np.median(rng.normal(0, round_noise, (comparisons, cases, total, rounds)), axis=3)
    level = level + np.log(BURST) * (rng.random((comparisons, cases, total)) < burst_rate)
    for case, run in bursts:
        level[:, case, run] += np.log(BURST)
    for case, factor in (slowdowns or {}).items():
        level[:, case, runs:] += np.log(factor)
    for run, factor in (run_slowdowns or {}).items():
        level[:, :, run] += np.log(factor)
    level[:, :controls, runs:] += np.log(control_slowdown)
    control = np.arange(cases) < controls
    return level, np.array([OLDER] * runs + [NEWER] * runs, dtype=object), control


# --------------------------------------------------------------------------- peer backends

PEER_SIZES = ((1_000, 10), (2_000, 20))
# (backend, variant, barrier, device, step time relative to NumPy's analytic case) of a run with every backend.
# Planted: on the CPU PyTorch is 2x MLX's fastest and JAX half of it; on the accelerators (MLX "gpu", PyTorch and
# JAX "cuda") PyTorch is again 2x MLX's fastest and JAX half of it.
PEER_CASES = (
    ("numpy", "analytic", "eager", "cpu", 1.0),
    ("numpy", "seed", "eager", "cpu", 1.3),  # float64: never anyone's fastest float32 case
    ("mlx", "compiled", "step", "cpu", 0.8),
    ("mlx", "autodiff", "step", "cpu", 1.2),
    ("mlx", "compiled", "round", "gpu", 0.2),
    ("mlx", "compiled", "step", "gpu", 0.3),
    ("torch", "compiled", "eager", "cpu", 0.4),
    ("torch", "autograd", "eager", "cpu", 0.9),
    ("torch", "compiled", "step", "cuda", 0.1),
    ("jax", "jit", "step", "cpu", 1.6),
    ("jax", "fori", "round", "cuda", 0.4),
)
PEER_MACHINE = {"torch_version": "2.5.1", "torch_num_threads": 8, "jax_version": "0.4.35", "jaxlib_version": "0.4.35"}


def in_passes(entry: dict, pass_medians, per_pass: int = 5, schema_version: int = 3) -> dict:
    """A benchmark entry re-laid as a passes run: round times and their pass in extra_info, per-step stats."""
    k = entry["extra_info"]["steps_per_round"]
    times = [m * (1 + 0.001 * r) for m in pass_medians for r in range(per_pass)]
    labels = [p + 1 for p in range(len(pass_medians)) for _ in range(per_pass)]
    steps = np.asarray(times) / k
    entry["extra_info"].update(
        schema_version=schema_version, round_times_s=times, round_pass=labels, passes=len(pass_medians)
    )
    entry["stats"] = {
        "min": float(steps.min()), "max": float(steps.max()), "mean": float(steps.mean()),
        "median": float(np.median(steps)), "q1": float(np.percentile(steps, 25)), "q3": float(np.percentile(steps, 75)),
        "rounds": len(steps), "iterations": k, "data": steps.tolist(), "ops": float(1 / steps.mean()),
    }  # fmt: skip
    return entry


def peer_benchmarks(seed=0, passes=3, models=("linear", "mlp"), cases=PEER_CASES, sizes=PEER_SIZES) -> list[dict]:
    """Every case of `cases` x `sizes` x `models` timed in `passes` passes (schema 3).

    Each pass has a common factor (a busy moment slows every case of it alike) and
    each case a little noise of its own, so per-pass ratios come out close to the
    planted ones. The MLP runs at hidden width 64 with mini-batches of 256.
    """
    rng = np.random.default_rng(seed)
    factors = rng.lognormal(0, 0.05, passes)
    out = []
    for model in models:
        shape = {"hidden": 64, "batch_size": 256} if model == "mlp" else {}
        for n, d in sizes:
            base = 2e-9 * n * d + 5e-6
            for backend, variant, barrier, device, relative in cases:
                k = 100
                medians = k * base * relative * factors * rng.lognormal(0, 0.002, passes)
                entry = benchmark(
                    model, backend, variant, barrier, "float64" if variant == "seed" else "float32", n, d,
                    device=device, steps_per_round=k, times=medians, **shape,
                )  # fmt: skip
                out.append(in_passes(entry, list(medians)))
    return out


def peer_run(seed=0, **run_args) -> dict:
    """A saved run of every backend (peer_benchmarks), with the peers' versions in machine_info."""
    return run(peer_benchmarks(seed), **{**PEER_MACHINE, **run_args})
