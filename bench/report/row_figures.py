"""Per-row figures: a case's round time over its passes, its spread, throughput, roofline, stability.

From the raw round times where the run saved them, else from pytest-benchmark's
own median and quartiles (converted to round times by the loader). A round is K
steps (``steps_per_round``), so one step takes round time / K and steps/s is
K / round time; samples/s, GFLOP/s and GB/s follow from the batch size and the
kernel's own flop and byte counts. A case timed in several passes has the
median of its pass medians as its round time, and is flagged unstable by the
width of the 95% interval the run saved with it (bench.stats.intervals, the same as
the terminal summary's); files saved before intervals existed by the older
rule of bench.stats.stability.

When a run's ``machine_info`` carries ``machine_limits`` (bandwidth per cache
level and of memory, peak float32 GFLOP/s), each CPU row also gets its working
set, the level it fits in, its cache-aware roofline bound, how close it comes
to it, and why where it exceeds it (bench.stats.roofline). A figure that overflows (a saved field at an extreme, such as a
flop count of 1e308) is left blank (NaN), never reported as infinite.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.report.schema import RAW_TIMES, ROUND_PASS
from bench.cases.models import working_set_of
from bench.stats.intervals import UNSTABLE_HALF_WIDTH
from bench.stats.roofline import LIMIT_FIELDS, above_bound_note, roofline_bound
from bench.stats.stability import pass_figures_many, unstable

_FIGURES = ("median", "q1", "q3", "pass_spread", "iqr_share", "agreeing_share", "passes", "rounds")


def _pass_figures(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """bench.stats.stability's figures of every row with raw times (NaN elsewhere), one NumPy call per layout."""
    out = {name: np.full(len(frame), np.nan) for name in _FIGURES}
    layouts: dict[tuple, list[int]] = {}
    for i, (times, passes) in enumerate(zip(frame[RAW_TIMES], frame[ROUND_PASS])):
        if times is not None:
            labels = tuple(passes) if passes is not None else (1,) * len(times)
            layouts.setdefault(labels, []).append(i)
    for labels, rows in layouts.items():
        many = pass_figures_many(np.stack([frame[RAW_TIMES].iloc[i] for i in rows]), np.array(labels))
        for name in _FIGURES:
            out[name][rows] = many[name]
    return out


def add_figures(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a copy of the tidy table with the figure columns of schema.FIGURE_COLUMNS."""
    frame = frame.copy()
    if frame.empty:
        return frame
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # overflows are blanked at the end
        return _with_figures(frame)


def _with_figures(frame: pd.DataFrame) -> pd.DataFrame:
    if ROUND_PASS not in frame:
        frame[ROUND_PASS] = None
    raw = frame[RAW_TIMES].notna().to_numpy()
    figures = _pass_figures(frame)
    # Without raw times, pytest-benchmark's own figures: one pass, its quartiles.
    q1 = np.where(raw, figures["q1"], frame["stats_q1_s"])
    median = np.where(raw, figures["median"], frame["stats_median_s"])
    q3 = np.where(raw, figures["q3"], frame["stats_q3_s"])
    rounds = np.where(raw, figures["rounds"], frame["stats_rounds"].fillna(0))
    passes = np.where(raw, figures["passes"], 1)
    pass_spread = np.where(raw, figures["pass_spread"], 0.0)
    iqr_share = np.where(raw, figures["iqr_share"], (q3 - q1) / median)
    agreeing = np.where(raw, figures["agreeing_share"], 1.0)
    steps = frame["steps_per_round"].to_numpy(dtype=float)

    frame["n_rounds"] = rounds.astype(int)
    frame["has_raw_times"] = raw
    frame["median_round_s"] = median
    frame["q1_round_s"] = q1
    frame["q3_round_s"] = q3
    frame["iqr_round_s"] = q3 - q1
    frame["iqr_pct_of_median"] = 100 * (q3 - q1) / median
    frame["n_passes"] = passes.astype(int)
    frame["pass_spread_pct"] = 100 * pass_spread
    frame["median_step_s"] = median / steps
    frame["steps_per_s"] = steps / median
    frame["samples_per_s"] = frame["steps_per_s"] * frame["batch_size"]
    frame["gflops_per_s"] = frame["steps_per_s"] * frame["flops_per_step"] / 1e9
    frame["gb_per_s"] = frame["steps_per_s"] * frame["bytes_per_step"] / 1e9

    frame["arithmetic_intensity"] = frame["flops_per_step"] / frame["bytes_per_step"]
    frame = _with_roofline(frame)

    # The width of the 95% interval the run saved (bench.stats.intervals) decides, as in the terminal; files saved
    # before intervals existed keep the rule they were judged by (bench.stats.stability).
    old_rule = unstable(rounds, agreeing, iqr_share)
    if "interval_machine_probes" in frame:  # saved with every case since intervals exist
        half = pd.to_numeric(frame["steps_per_s_half_width_pct"], errors="coerce").to_numpy(dtype=float)
        by_width = ~(half <= 100 * UNSTABLE_HALF_WIDTH)  # no interval (one pass): unstable
        frame["unstable"] = np.where(frame["interval_machine_probes"].notna().to_numpy(), by_width, old_rule)
    else:
        frame["unstable"] = old_rule
    figures = [c for c in frame.columns if c in _DERIVED and pd.api.types.is_float_dtype(frame[c])]
    frame[figures] = frame[figures].replace([np.inf, -np.inf], np.nan)
    return frame


# add_figures' own float columns, blanked where they overflowed.
_DERIVED = (
    "median_round_s", "q1_round_s", "q3_round_s", "iqr_round_s", "iqr_pct_of_median", "pass_spread_pct",
    "median_step_s", "steps_per_s", "samples_per_s", "gflops_per_s", "gb_per_s", "arithmetic_intensity",
    "roofline_bandwidth_gb_s", "roofline_gflops_per_s", "roofline_fraction", "bandwidth_fraction",
)  # fmt: skip


def _roofline_row(row: dict) -> dict:
    """One row's cache-aware roofline figures (bench.stats.roofline): NaN or blank where it has none."""
    blank = {
        "roofline_level": "", "roofline_bandwidth_gb_s": np.nan, "roofline_gflops_per_s": np.nan,
        "roofline_fraction": np.nan, "bandwidth_fraction": np.nan, "roofline_note": "",
    }  # fmt: skip
    # The limits are the CPU's (measured with NumPy at session start): they bound no other device.
    if row["device"] != "cpu":
        return blank
    bound = roofline_bound(row["flops_per_step"], row["bytes_per_step"], row["working_set_bytes"], row)
    if bound is None:
        return blank
    fraction = row["gflops_per_s"] / bound.gflops_per_s
    return {
        "roofline_level": bound.label,
        "roofline_bandwidth_gb_s": bound.bandwidth_gb_s,
        "roofline_gflops_per_s": bound.gflops_per_s,
        "roofline_fraction": fraction,
        "bandwidth_fraction": row["gb_per_s"] / bound.bandwidth_gb_s,
        "roofline_note": above_bound_note(fraction, bound, row["gflops_per_s"], row["gb_per_s"]),
    }


def _with_roofline(frame: pd.DataFrame) -> pd.DataFrame:
    """The working set of every row, and the bound of the level it fits in, its share and why it is above it."""
    sizes = frame[["model", "n_examples", "n_features", "batch_size", "hidden", "dtype"]].to_dict("records")
    frame["working_set_bytes"] = [_working_set(row) for row in sizes]
    needed = ["device", "flops_per_step", "bytes_per_step", "working_set_bytes", "gflops_per_s", "gb_per_s"]
    rows = frame[needed + [c for c in LIMIT_FIELDS if c in frame]].to_dict("records")
    figures = pd.DataFrame([_roofline_row(row) for row in rows], index=frame.index)
    for column in figures:
        frame[column] = figures[column]
    return frame


def _working_set(row: dict) -> float:
    """bench.cases.models.working_set_of of a row, NaN where its fields cannot say (an unknown dtype name)."""
    try:
        return float(working_set_of(row))
    except (TypeError, ValueError, KeyError):
        return np.nan


def step_times(frame: pd.DataFrame, times_column: str = RAW_TIMES, k_column: str = "steps_per_round") -> list:
    """Raw per-step times of each row (round times / K), None where no raw times were saved."""
    return [None if times is None else times / k for times, k in zip(frame[times_column], frame[k_column])]
