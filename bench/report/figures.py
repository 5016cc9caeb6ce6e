"""Per-row figures: median round time and its spread, throughput, roofline, stability.

From the raw round times where the run saved them (``stats.data``), else from
pytest-benchmark's own median and quartiles. A round is K steps
(``steps_per_round``), so one step takes round time / K and steps/s is
K / median round time (DESIGN rule 3); samples/s, GFLOP/s and GB/s follow from
the batch size and the kernel's own flop and byte counts.

When a run's ``machine_info`` carries ``machine_limits`` (memory bandwidth,
peak float32 GFLOP/s), each row also gets its roofline bound and how close it
comes to it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.report.schema import RAW_TIMES

# The same stability rule as the end-of-run summary: IQR over this share of the
# median, or fewer rounds than this (too few to know the spread).
from bench.roofline import MIN_ROUNDS as MIN_STABLE_ROUNDS
from bench.roofline import UNSTABLE_IQR_SHARE as UNSTABLE_IQR_FRACTION


def _quartiles(samples: list) -> np.ndarray:
    """(q1, median, q3) of each raw sample as rows; NaN where a row has no raw times."""
    lengths = np.array([0 if times is None else len(times) for times in samples])
    quartiles = np.full((len(samples), 3), np.nan)
    # Samples of one length stack into one array: one NumPy call per length, not per row.
    for length in np.unique(lengths[lengths > 0]):
        rows = np.flatnonzero(lengths == length)
        stacked = np.stack([samples[i] for i in rows])
        quartiles[rows] = np.percentile(stacked, [25, 50, 75], axis=1).T
    return quartiles


def add_figures(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a copy of the tidy table with the figure columns of schema.FIGURE_COLUMNS."""
    frame = frame.copy()
    if frame.empty:
        return frame
    raw = frame[RAW_TIMES].notna().to_numpy()
    q1, median, q3 = _quartiles(frame[RAW_TIMES].tolist()).T
    # Without raw times, pytest-benchmark's own figures.
    q1 = np.where(raw, q1, frame["stats_q1_s"])
    median = np.where(raw, median, frame["stats_median_s"])
    q3 = np.where(raw, q3, frame["stats_q3_s"])
    rounds = np.where(raw, [0 if t is None else len(t) for t in frame[RAW_TIMES]], frame["stats_rounds"].fillna(0))
    steps = frame["steps_per_round"].to_numpy(dtype=float)

    frame["n_rounds"] = rounds.astype(int)
    frame["has_raw_times"] = raw
    frame["median_round_s"] = median
    frame["q1_round_s"] = q1
    frame["q3_round_s"] = q3
    frame["iqr_round_s"] = q3 - q1
    frame["iqr_pct_of_median"] = 100 * (q3 - q1) / median
    frame["median_step_s"] = median / steps
    frame["steps_per_s"] = steps / median
    frame["samples_per_s"] = frame["steps_per_s"] * frame["batch_size"]
    frame["gflops_per_s"] = frame["steps_per_s"] * frame["flops_per_step"] / 1e9
    frame["gb_per_s"] = frame["steps_per_s"] * frame["bytes_per_step"] / 1e9

    # Roofline: a kernel of intensity I flop/byte cannot beat min(bandwidth * I, peak).
    bandwidth, peak = frame["memory_bandwidth_gb_s"], frame["peak_gflops_f32"]
    frame["arithmetic_intensity"] = frame["flops_per_step"] / frame["bytes_per_step"]
    frame["roofline_gflops_per_s"] = np.fmin(bandwidth * frame["arithmetic_intensity"], peak)
    # fmin ignores a single missing limit; a bound needs both, so blank it then.
    frame.loc[bandwidth.isna() | peak.isna(), "roofline_gflops_per_s"] = np.nan
    frame["roofline_fraction"] = frame["gflops_per_s"] / frame["roofline_gflops_per_s"]
    frame["bandwidth_fraction"] = frame["gb_per_s"] / bandwidth

    spread_too_wide = frame["iqr_round_s"] > UNSTABLE_IQR_FRACTION * frame["median_round_s"]
    frame["unstable"] = spread_too_wide | (frame["n_rounds"] < MIN_STABLE_ROUNDS)
    return frame


def step_times(frame: pd.DataFrame, times_column: str = RAW_TIMES, k_column: str = "steps_per_round") -> list:
    """Raw per-step times of each row (round times / K), None where no raw times were saved."""
    return [None if times is None else times / k for times, k in zip(frame[times_column], frame[k_column])]
