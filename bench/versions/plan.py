"""The plan of a session: the order of runs, and the command and environment of each."""

from __future__ import annotations

import os
import random
from pathlib import Path

from bench.versions.common import CACHE_ENV_VAR, ORDERS
from bench.versions.environments import env_python


def run_order(releases: list[str], passes: int, order: str = "rotate", seed: int = 0) -> list[tuple[int, str]]:
    """(pass, release) in the order they run: every release once per pass, passes one after another.

    rotate: pass p starts at release p (A B C, B C A, C A B), so with as many
    passes as releases each release runs in every position exactly once;
    shuffle: a seeded random order per pass; fixed: the same order every pass.
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}, not {order!r}")
    rng = random.Random(seed)
    plan = []
    for index in range(passes):
        if order == "rotate":
            shift = index % len(releases) if releases else 0
            this_pass = releases[shift:] + releases[:shift]
        elif order == "shuffle":
            this_pass = list(releases)
            rng.shuffle(this_pass)
        else:
            this_pass = list(releases)
        plan.extend((index + 1, release) for release in this_pass)
    return plan


def save_name(release: str, pass_no: int) -> str:
    """The --benchmark-save name of one run; the saved file is NNNN_<name>.json."""
    return f"mlx-{release}-pass{pass_no}"


def pytest_command(python: Path, release: str, pass_no: int, sizes: str, storage: Path, extra: list[str]) -> list[str]:
    """The pytest command of one run; the user's pytest arguments come last, so they win."""
    return [
        str(python),
        "-m",
        "pytest",
        "--benchmark-only",
        f"--sizes={sizes}",
        f"--benchmark-storage=file://{storage.resolve()}",
        f"--benchmark-save={save_name(release, pass_no)}",
        *extra,
    ]


def child_environment(env_dir: Path) -> dict:
    """os.environ for a run inside `env_dir`, with everything that could leak the host's packages removed."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", CACHE_ENV_VAR)}
    # CACHE_ENV_VAR starts with MLX_, and bench.engine.run_environment records every MLX_* variable as
    # performance-relevant: a cache path is not, so it stays out of the results.
    env["VIRTUAL_ENV"] = str(env_dir)
    env["PATH"] = f"{env_python(env_dir).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONNOUSERSITE"] = "1"
    return env
