"""MLX against NumPy in the same run: steps/s ratio, its 95% interval, which side is faster.

The pairing rule is bench.pairing's (the terminal summary uses the same), and
is written into every row as ``numpy_variant``, ``numpy_dtype`` and
``numpy_barrier``: float32 ``analytic`` NumPy (the blog's float64 ``seed``
code in the blog scenario), ``sync`` against ``sync`` cases, else ``eager``.

speedup > 1 means MLX is faster. Cases timed in several passes are compared
within each pass (the two were timed next to each other) and the per-pass
ratios summarised: the median, with a 95% t-interval across passes. Runs saved
before passes existed fall back to a percentile bootstrap of the ratio of
median per-step times from the raw round times of both cases. ``faster`` names
a side only when the interval excludes 1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.pairing import CONFIDENCE, baseline_of, faster_side, pass_ratio
from bench.report.figures import step_times
from bench.report.schema import CASE_KEYS, RAW_TIMES, ROUND_PASS
from bench.report.stats import ratio_ci
from bench.stability import pass_figures

# Bootstrapping fewer raw rounds than this gives intervals too coarse to mean anything.
MIN_CI_ROUNDS = 3

# Columns a matched pair must share: the same run, and the case's identity except what
# tells the two implementations apart (the baseline's variant, dtype and barrier are
# matched separately; NumPy runs on the CPU whatever MLX's device).
_SAME = ("source_file", *(k for k in CASE_KEYS if k not in ("backend", "variant", "dtype", "barrier", "device")))
_COLUMNS = (
    "machine",
    "run_datetime",
    "mlx_version",
    "mlx_blas",
    "scenario",
    "model",
    "n_examples",
    "n_features",
    "batch_size",
    "hidden",
    "n_ranks",
    "distributed_backend",
    "dtype",
    "device",
    "variant",
    "barrier",
    "numpy_variant",
    "numpy_dtype",
    "numpy_barrier",
    "mlx_steps_per_s",
    "numpy_steps_per_s",
    "speedup",
    "speedup_ci_low",
    "speedup_ci_high",
    "ci_method",
    "faster",
    "passes",
    "mlx_rounds",
    "numpy_rounds",
    "source_file",
)


def baseline_keys(mlx: pd.DataFrame) -> pd.DataFrame:
    """The NumPy (variant, dtype, barrier) each MLX row is compared with, as three columns."""
    chosen = [baseline_of(scenario, barrier) for scenario, barrier in zip(mlx["scenario"], mlx["barrier"])]
    return pd.DataFrame(chosen, columns=["numpy_variant", "numpy_dtype", "numpy_barrier"], index=mlx.index)


def pair_with_numpy(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(pairs, unmatched): warm MLX rows joined with their NumPy baseline; MLX rows without one."""
    warm = frame[frame["phase"] == "warm"]
    mlx = warm[warm["backend"] == "mlx"]
    mlx = pd.concat([mlx, baseline_keys(mlx)], axis=1)
    numpy = warm[warm["backend"] == "numpy"].rename(
        columns={"variant": "numpy_variant", "dtype": "numpy_dtype", "barrier": "numpy_barrier"}
    )
    keys = list(_SAME) + ["numpy_variant", "numpy_dtype", "numpy_barrier"]
    numpy = numpy.drop_duplicates(keys)[keys + ["steps_per_s", "n_rounds", "steps_per_round", RAW_TIMES, ROUND_PASS]]
    pairs = mlx.merge(numpy, on=keys, how="left", suffixes=("", "_numpy"), indicator=True)
    matched = pairs["_merge"] == "both"
    return pairs[matched].drop(columns="_merge"), pairs[~matched].drop(columns="_merge")


def speedup_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per warm MLX case and run: MLX/NumPy steps/s with its 95% interval (see module doc)."""
    pairs, _ = pair_with_numpy(frame)
    if pairs.empty:
        return pd.DataFrame(columns=list(_COLUMNS))
    out = pairs.rename(columns={"steps_per_s": "mlx_steps_per_s", "n_rounds": "mlx_rounds"})
    out["numpy_steps_per_s"] = out["steps_per_s_numpy"]
    out["numpy_rounds"] = out["n_rounds_numpy"]
    out["speedup"] = out["mlx_steps_per_s"] / out["numpy_steps_per_s"]

    low, high = np.full(len(out), np.nan), np.full(len(out), np.nan)
    passes = np.zeros(len(out), dtype=int)
    method = np.full(len(out), "none: no raw rounds", dtype=object)
    # Timed in passes: the ratio pass by pass (steps/s ratio = NumPy's step time over MLX's).
    for i, row in enumerate(out.itertuples(index=False)):
        numpy_steps, mlx_steps = _pass_steps(row, "_numpy"), _pass_steps(row, "")
        ratio = pass_ratio(numpy_steps, mlx_steps) if numpy_steps and mlx_steps else None
        if ratio is not None and ratio.passes >= 2:
            out.iloc[i, out.columns.get_loc("speedup")] = ratio.ratio
            low[i], high[i], passes[i] = ratio.low, ratio.high, ratio.passes
            method[i] = f"t {CONFIDENCE:.0%} across passes, per-pass ratios of median step times"
    _bootstrap_single_pass(out, passes, low, high, method)
    out["speedup_ci_low"], out["speedup_ci_high"] = low, high
    out["passes"] = passes
    out["ci_method"] = method
    out["faster"] = [faster_side(lo, hi, "mlx") for lo, hi in zip(low, high)]
    return out[list(_COLUMNS)].reset_index(drop=True)


def _pass_steps(row, suffix: str) -> dict[int, float] | None:
    """Median per-step time of each pass of one side of a pair, or None without pass labels."""
    times, labels = getattr(row, f"{RAW_TIMES}{suffix}"), getattr(row, f"{ROUND_PASS}{suffix}")
    if times is None or labels is None:
        return None
    figures = pass_figures(times, labels)
    k = getattr(row, f"steps_per_round{suffix}")
    return {int(p): m / k for p, m in zip(figures.pass_ids, figures.pass_medians)}


def _bootstrap_single_pass(out: pd.DataFrame, passes: np.ndarray, low: np.ndarray, high: np.ndarray, method) -> None:
    """Pairs without two common passes (runs saved before passes existed): bootstrap the rounds of each side."""
    mlx_steps = step_times(out)
    numpy_steps = step_times(out, f"{RAW_TIMES}_numpy", "steps_per_round_numpy")
    usable = np.array(
        [
            p < 2 and m is not None and n is not None and min(len(m), len(n)) >= MIN_CI_ROUNDS
            for p, m, n in zip(passes, mlx_steps, numpy_steps)
        ],
        dtype=bool,
    )
    if not usable.any():
        return
    # steps/s ratio = median NumPy step time / median MLX step time.
    low[usable], high[usable] = ratio_ci(
        [n for n, ok in zip(numpy_steps, usable) if ok], [m for m, ok in zip(mlx_steps, usable) if ok]
    )
    passes[usable] = 1
    method[usable] = f"bootstrap {CONFIDENCE:.0%} percentile, median step times (one pass)"
    method[(passes < 2) & ~usable & np.array([m is not None for m in mlx_steps])] = (
        f"none: fewer than {MIN_CI_ROUNDS} raw rounds"
    )
