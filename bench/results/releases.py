"""What the release runner (bench.versions) and the report (bench.report) must agree on.

One place for the order of MLX releases, the default regression threshold and
how a threshold is written on a command line, so `python -m bench.versions`
and `python -m bench.report` can never judge the same data differently.
"""

from __future__ import annotations

import argparse

from packaging.version import InvalidVersion, Version

DEFAULT_THRESHOLD = 0.10  # a regression is slower by more than 10% of the per-step time
# What the threshold means, in both commands' --help (bench.stats.verdict_engine, step 3).
THRESHOLD_HELP = (
    "a regression is significantly slower (Holm, 1%%) with its estimated change of the per-step time beyond this: "
    "10%% or 0.1 (default 10%%). Significant and beyond: a true change of exactly the threshold is caught about "
    "half the time, twice the threshold nearly always (the release runner's self-test measures it on this machine)"
)


def version_key(version: str):
    """Sort key for MLX versions: release order (0.9 < 0.10), unparseable ones last, by text."""
    try:
        return (0, Version(str(version)), "")
    except InvalidVersion:
        return (1, Version("0"), str(version))


def parse_threshold(text: str) -> float:
    """'10%' or '0.1' -> 0.1: the slowdown of the per-step time a regression must exceed."""
    value = text.strip()
    try:
        number = float(value.removesuffix("%").replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    fraction = number / 100 if value.endswith("%") else number
    if not 0 < fraction < 1:
        hint = f" (did you mean {value}%?)" if not value.endswith("%") and 1 <= number < 100 else ""
        raise argparse.ArgumentTypeError(f"must be between 0 and 100%: {text!r}{hint}")
    return fraction


# The backends a release comparison judges: MLX, whose releases are compared, and NumPy,
# the control that must not move. Peers (PyTorch, JAX) are left out: their own versions
# change on their own schedule, and a comparison of MLX releases must not blame MLX for them.
COMPARED_BACKENDS = ("numpy", "mlx")
