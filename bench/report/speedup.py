"""MLX against NumPy in the same run: steps/s ratio, its 95% interval, which side is faster.

Pairing rule (written into every row as ``numpy_variant``, ``numpy_dtype`` and
``numpy_barrier``): each warm MLX case is divided by the NumPy case of the same
run, model, scenario, size, batch size and hidden width that is

- float32 ``analytic``, the suite's default comparison; in the blog scenario,
  which has no such case, the blog's own NumPy code (float64 ``seed``);
- barrier ``sync`` when the MLX case reads a value back every step (``sync``),
  else ``eager``: NumPy computes as it goes, which is what ``step`` and
  ``round`` rounds are compared against.

speedup > 1 means MLX is faster. Its interval is a percentile bootstrap of the
ratio of median per-step times (NumPy over MLX), from the raw round times of
both cases; ``faster`` names a side only when that interval excludes 1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.report.figures import step_times
from bench.report.schema import CASE_KEYS, RAW_TIMES
from bench.report.stats import CONFIDENCE, ratio_ci

# NumPy baseline (variant, dtype) per scenario; scenarios not listed use "default".
BASELINES = {"default": ("analytic", "float32"), "blog": ("seed", "float64")}
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
    "mlx_rounds",
    "numpy_rounds",
    "source_file",
)


def baseline_keys(mlx: pd.DataFrame) -> pd.DataFrame:
    """The NumPy (variant, dtype, barrier) each MLX row is compared with, as three columns."""
    chosen = [BASELINES.get(s, BASELINES["default"]) for s in mlx["scenario"]]
    return pd.DataFrame(
        {
            "numpy_variant": [variant for variant, _ in chosen],
            "numpy_dtype": [dtype for _, dtype in chosen],
            "numpy_barrier": np.where(mlx["barrier"] == "sync", "sync", "eager"),
        },
        index=mlx.index,
    )


def pair_with_numpy(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(pairs, unmatched): warm MLX rows joined with their NumPy baseline; MLX rows without one."""
    warm = frame[frame["phase"] == "warm"]
    mlx = warm[warm["backend"] == "mlx"]
    mlx = pd.concat([mlx, baseline_keys(mlx)], axis=1)
    numpy = warm[warm["backend"] == "numpy"].rename(
        columns={"variant": "numpy_variant", "dtype": "numpy_dtype", "barrier": "numpy_barrier"}
    )
    keys = list(_SAME) + ["numpy_variant", "numpy_dtype", "numpy_barrier"]
    numpy = numpy.drop_duplicates(keys)[keys + ["steps_per_s", "n_rounds", "steps_per_round", RAW_TIMES]]
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

    mlx_steps = step_times(out)
    numpy_steps = step_times(out, f"{RAW_TIMES}_numpy", "steps_per_round_numpy")
    usable = np.array(
        [
            m is not None and n is not None and min(len(m), len(n)) >= MIN_CI_ROUNDS
            for m, n in zip(mlx_steps, numpy_steps)
        ],
        dtype=bool,
    )
    low, high = np.full(len(out), np.nan), np.full(len(out), np.nan)
    # steps/s ratio = median NumPy step time / median MLX step time.
    low[usable], high[usable] = ratio_ci(
        [n for n, ok in zip(numpy_steps, usable) if ok], [m for m, ok in zip(mlx_steps, usable) if ok]
    )
    out["speedup_ci_low"], out["speedup_ci_high"] = low, high
    out["ci_method"] = np.where(
        usable,
        f"bootstrap {CONFIDENCE:.0%} percentile, median step times",
        f"none: fewer than {MIN_CI_ROUNDS} raw rounds",
    )
    out["faster"] = np.select([low > 1, high < 1], ["mlx", "numpy"], default="inconclusive")
    return out[list(_COLUMNS)].reset_index(drop=True)
