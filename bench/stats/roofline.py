"""The cache-aware roofline (Ilic et al.), shared by the terminal summary and the report.

A step of arithmetic intensity I (flops per byte) whose working set fits in a
cache level can run no faster than min(bandwidth of that level x I, peak
GFLOP/s); the share of that bound a case reaches says how much of the machine
it uses. The level is the smallest one whose capacity (over the usable CPUs:
private caches add up) holds the case's working set (bench.cases.models); data
larger than every cache comes from memory (DRAM). A level's bandwidth is never
taken below a slower level's: a measurement that says otherwise ran low, and a
bound must not be beaten. A run saved before cache levels were measured has
memory's bandwidth only: its bound is DRAM only, and a case whose data sat in
cache can exceed it; the note says so. (Measurement: bench.engine.machine_limits;
docs/stable-numbers.md, "The machine's own limits".)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LEVELS = ("L1", "L2", "L3")
MEMORY = "DRAM"
MEMORY_BANDWIDTH = "memory_bandwidth_gb_s"
PEAK = "peak_gflops_f32"


def capacity_field(level: str) -> str:
    """The flat field of a cache level's capacity in bytes, e.g. ``l2_capacity_bytes``."""
    return f"{level.lower()}_capacity_bytes"


def bandwidth_field(level: str) -> str:
    """The flat field of a cache level's read bandwidth in GB/s, e.g. ``l2_bandwidth_gb_s``."""
    return f"{level.lower()}_bandwidth_gb_s"


# The flat fields flat_limits gives (and the report's columns of the machine's limits).
LIMIT_FIELDS = (MEMORY_BANDWIDTH, PEAK) + tuple(f(level) for level in LEVELS for f in (capacity_field, bandwidth_field))


def _number(value) -> float:
    """A finite positive float, or NaN."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) and number > 0 else math.nan


def flat_limits(saved: dict | None) -> dict[str, float]:
    """A run's saved machine_limits as the flat fields of LIMIT_FIELDS (NaN where the run measured none)."""
    saved = saved if isinstance(saved, dict) else {}
    flat = {name: math.nan for name in LIMIT_FIELDS}
    flat[MEMORY_BANDWIDTH] = _number(saved.get(MEMORY_BANDWIDTH))
    flat[PEAK] = _number(saved.get(PEAK))
    for entry in saved.get("cache_levels") or []:
        if isinstance(entry, dict) and entry.get("level") in LEVELS:
            flat[capacity_field(entry["level"])] = _number(entry.get("capacity_bytes"))
            flat[bandwidth_field(entry["level"])] = _number(entry.get("bandwidth_gb_s"))
    return flat


@dataclass(frozen=True)
class Bound:
    """A case's roofline: the level its data is read from, that level's bandwidth, and the bound in GFLOP/s."""

    level: str  # "L1", "L2", "L3" or "DRAM"
    bandwidth_gb_s: float
    gflops_per_s: float  # min(bandwidth x intensity, peak)
    peak_gflops_per_s: float
    dram_only: bool  # the run measured no cache level: the bound assumes every byte comes from memory

    @property
    def label(self) -> str:
        """The level as shown: ``DRAM only`` where the run measured no cache level."""
        return f"{MEMORY} only" if self.dram_only else self.level


def _measured_levels(limits: dict) -> list[tuple[str, float, float]]:
    """(level, capacity, bandwidth) of every cache level the run measured, smallest first."""
    out = []
    for level in LEVELS:
        capacity, bandwidth = _number(limits.get(capacity_field(level))), _number(limits.get(bandwidth_field(level)))
        if not (math.isnan(capacity) or math.isnan(bandwidth)):
            out.append((level, capacity, bandwidth))
    return out


def cache_level(working_set_bytes: float, limits: dict) -> str:
    """The smallest measured level whose capacity holds the working set; DRAM when none does.

    An unknown working set gets the fastest level: the only choice that is still a bound.
    """
    levels = _measured_levels(limits)
    size = _number(working_set_bytes)
    for level, capacity, _ in levels:
        if math.isnan(size) or size <= capacity:
            return level
    return MEMORY


def level_bandwidth(level: str, limits: dict) -> float:
    """A level's bandwidth for the bound: the best of its own and every slower level's measurement."""
    names = [name for name, _, _ in _measured_levels(limits)] + [MEMORY]
    figures = {name: bandwidth for name, _, bandwidth in _measured_levels(limits)}
    figures[MEMORY] = _number(limits.get(MEMORY_BANDWIDTH))
    slower = [figures[name] for name in names[names.index(level) :]] if level in names else []
    slower = [b for b in slower if not math.isnan(b)]
    return max(slower) if slower else math.nan


def roofline_gflops(intensity: float, bandwidth_gb_s: float, peak_gflops: float) -> float:
    """The most GFLOP/s a kernel of this intensity can reach from a level of this bandwidth."""
    return min(bandwidth_gb_s * intensity, peak_gflops)


def roofline_bound(
    flops_per_step: float, bytes_per_step: float, working_set_bytes: float, limits: dict
) -> Bound | None:
    """The case's cache-aware bound, or None where the run measured no bandwidth or no peak."""
    peak, flops, nbytes = _number(limits.get(PEAK)), _number(flops_per_step), _number(bytes_per_step)
    if any(math.isnan(x) for x in (peak, flops, nbytes)):
        return None
    level = cache_level(working_set_bytes, limits)
    bandwidth = level_bandwidth(level, limits)
    if math.isnan(bandwidth):
        return None
    gflops = roofline_gflops(flops / nbytes, bandwidth, peak)
    return Bound(level, bandwidth, gflops, peak, dram_only=not _measured_levels(limits))


def roofline_fraction(
    gflops_per_s: float, flops_per_step: float, bytes_per_step: float, working_set_bytes: float, limits: dict
) -> float:
    """Share of the cache-aware bound reached (steps/s over the bound's steps/s), NaN where there is no bound."""
    bound = roofline_bound(flops_per_step, bytes_per_step, working_set_bytes, limits)
    return gflops_per_s / bound.gflops_per_s if bound is not None else math.nan


def above_bound_note(fraction: float, bound: Bound | None, gflops_per_s: float, gb_per_s: float) -> str:
    """Why a share exceeds 100% (``above bound: ...``), or "" when it does not."""
    if bound is None or not fraction > 1:
        return ""
    if bound.dram_only:
        return (
            "above bound: this run measured memory's bandwidth only (saved before cache levels were), "
            "and the case's data sat in cache"
        )
    if gflops_per_s > bound.peak_gflops_per_s:
        return (
            f"above bound: {gflops_per_s:.3g} GFLOP/s, more than the {bound.peak_gflops_per_s:.3g} GFLOP/s "
            "float32 matmul peak measured at session start (that measurement ran low)"
        )
    return (
        f"above bound: {gb_per_s:.3g} GB/s, more than the {bound.bandwidth_gb_s:.3g} GB/s measured for "
        f"{bound.level} at session start (that measurement ran low, or the data sat in a faster level)"
    )
