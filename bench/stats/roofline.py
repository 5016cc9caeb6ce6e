"""Roofline figures shared by the terminal summary and the report.

A step of arithmetic intensity I (flops per byte) can run no faster than
min(bandwidth x I, peak GFLOP/s); the fraction of that bound a case reaches
says how much of the machine it uses. (Stability rules: bench.stats.stability.)
"""

from __future__ import annotations


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
