"""Roofline and stability figures shared by the terminal summary and the report.

Roofline: a step of arithmetic intensity I (flops per byte) can run no faster
than min(bandwidth x I, peak GFLOP/s); the fraction of that bound a case
reaches says how much of the machine it uses. Stability: a figure whose rounds
spread too widely, or that has too few rounds, is flagged rather than trusted,
as pyperf and torch.utils.benchmark warn.
"""

from __future__ import annotations

UNSTABLE_IQR_SHARE = 0.10  # IQR over 10% of the median round time
MIN_ROUNDS = 5


def arithmetic_intensity(flops_per_step: float, bytes_per_step: float) -> float:
    """Flops per byte moved."""
    return flops_per_step / bytes_per_step


def roofline_gflops(intensity: float, bandwidth_gb_s: float, peak_gflops: float) -> float:
    """The most GFLOP/s a kernel of this intensity can reach on this machine."""
    return min(bandwidth_gb_s * intensity, peak_gflops)


def roofline_fraction(gflops_per_s: float, flops_per_step: float, bytes_per_step: float, limits: dict) -> float:
    """Share of the roofline bound reached (may exceed 1 when data stays in cache)."""
    bound = roofline_gflops(
        arithmetic_intensity(flops_per_step, bytes_per_step), limits["memory_bandwidth_gb_s"], limits["peak_gflops_f32"]
    )
    return gflops_per_s / bound


def relative_spread(iqr: float, median: float) -> float:
    """IQR as a share of the median."""
    return iqr / median if median > 0 else float("inf")


def is_unstable(iqr: float, median: float, rounds: int) -> bool:
    """Too noisy or too few rounds to trust."""
    return rounds < MIN_ROUNDS or relative_spread(iqr, median) > UNSTABLE_IQR_SHARE
