"""How the report's tables show their cells: formatters and column headers.

Tables keep raw numbers (so that a page can sort them); these formatters turn
them into text, leaving missing values blank, and HEADERS names each column as
a reader wants it in a table header, units included. summary.md and
index.html use both, so every output shows a column alike.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bench.report.schema import BASELINE_BACKEND, backend_label


def fmt(spec: str) -> Callable:
    """A formatter that leaves missing values blank."""

    def format_value(value):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return ""
        try:
            return spec.format(value)
        except (TypeError, ValueError):  # text where a number was expected: show it as it is
            return str(value)

    return format_value


COUNT = fmt("{:,.0f}")
RATIO = fmt("{:.3g}")
FIXED2 = fmt("{:.2f}")
MS = fmt("{:.3f}")
PCT = fmt("{:.1f}%")
SIGNED_PCT = fmt("{:+.1f}%")
P_VALUE = fmt("{:.2g}")
YES = lambda value: "yes" if str(value).lower() == "true" else ""  # noqa: E731

# Column names as a reader wants them in a table header (units included).
HEADERS = {
    "mlx_version": "MLX",
    "baseline_version": "baseline MLX",
    "steps_per_round": "K (steps/round)",
    "n_rounds": "rounds",
    "median_round_ms": "median round (ms)",
    "iqr_pct_of_median": "IQR (% of median)",
    "n_passes": "passes",
    "pass_spread_pct": "pass spread (% of median)",
    "steps_per_s": "steps/s",
    "samples_per_s": "samples/s",
    "gflops_per_s": "GFLOP/s",
    "gb_per_s": "GB/s",
    "peak_memory_mib": "peak memory (MiB)",
    "arithmetic_intensity": "intensity (flop/byte)",
    "roofline_pct": "% of roofline",
    "roofline_level": "data in (roofline level)",
    "bandwidth_pct": "% of its level's bandwidth",
    "roofline_note": "above the roofline: why",
    "baseline_steps_per_s": f"{backend_label(BASELINE_BACKEND)} steps/s",
    "other_steps_per_s": "against: steps/s",
    "other_case_id": "against: case_id",
    "ratio": "ratio (×, >1: backend faster)",
    "speedup": f"speedup (×, >1: faster than {backend_label(BASELINE_BACKEND)})",
    "device_class": "device class",
    "batch_size": "batch",
    "pct_change_median_time": "median time change (%)",
    "pct_change": "change (%, + slower)",
    "ci_low_pct": "95% CI low (%)",
    "ci_high_pct": "95% CI high (%)",
    "min_detectable_pct": "min. detectable (%)",
    "passes_needed": "passes needed",
    "n_older": "n older",
    "n_newer": "n newer",
    "p_value": "p",
    "p_value_adjusted": "adjusted p",
    "median_first_step_ms": "median first step (ms)",
    "first_in_process_ms": "first in process (ms)",
    "bare_loop_steps_per_s": "bare loop steps/s",
    "harness_overhead_ratio": "suite ÷ bare loop time",
    "n_ranks": "ranks",
    "scaling_efficiency": "scaling efficiency",
    "compute_s_per_step": "compute (s/step)",
    "collective_s_per_step": "collective (s/step)",
}
