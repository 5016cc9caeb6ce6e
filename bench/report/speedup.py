"""Backends against each other in the same run: steps/s ratios, their 95% intervals, which side is faster.

Two tables, two CSVs, because they answer two questions:

speedup.csv (``speedup_table``): every warm case of every backend other than
NumPy (MLX, PyTorch, JAX... whatever the data holds) against its NumPy
baseline, by bench.stats.pairing's rule (the terminal summary uses the same):
float32 ``analytic`` NumPy (the blog's float64 ``seed`` code in the blog
scenario), ``sync`` against ``sync`` cases, else ``eager``; same run, model,
scenario, size, batch size, hidden width and ranks. One row per case and run;
the pairing is written into it (``baseline_backend``, ``baseline_variant``,
``baseline_dtype``, ``baseline_barrier``, ``baseline_case_id``).
``speedup`` = the case's steps/s ÷ the baseline's (> 1: the case is faster).

backends.csv (``backends_table``): backend against backend, each at its best.
For every ordered pair of backends A != B in one run, at each model,
scenario, size, batch size, hidden width, ranks, dtype and device class
(``cpu``, or ``accelerator`` for any other device, so that MLX's ``gpu`` meets
PyTorch's ``cuda``), A's fastest case (by steps/s, over its variants and
barriers) against B's fastest; ``ratio`` = A's steps/s ÷ B's. Both orders are
rows (B against A is the reciprocal), so that ``backend == "mlx"`` selects all
of MLX's comparisons. The dtype is part of the group: a float64 case is never
the fastest against float32 ones.

The ratio's interval is the same in both tables. Cases timed in several passes
are compared within each pass (the suite times all backends' cases of a size
next to each other in every pass) and the per-pass ratios summarised: the
median of the per-pass log ratios, with a 95% interval across passes
(bench.stats.figures, as in the terminal: the run's pairs moderate each other,
the between-run term widens them). A pair without two common passes (a
run saved before passes existed, a one-pass case) has no interval: the
rounds of one pass share that moment's luck and are not samples
(docs/measurement.md, "Measurement rules", rule 8). ``faster``
names the faster backend only when the interval excludes 1, else
``inconclusive``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.stats.figures import ratio_intervals, step_times_by_pass
from bench.stats.pairing import BASELINE_BACKEND, baseline_of, faster_side
from bench.report.row_figures import step_times
from bench.report.schema import CASE_KEYS, RAW_TIMES, ROUND_PASS, backend_order, backend_versions, device_class
from bench.stats.intervals import CONFIDENCE, UNSTABLE_HALF_WIDTH

# Columns a matched pair must share: the same run, and the case's identity except what
# tells the two implementations apart (the baseline's variant, dtype and barrier are
# matched separately; NumPy runs on the CPU whatever the other backend's device).
_SAME = ("source_file", *(k for k in CASE_KEYS if k not in ("backend", "variant", "dtype", "barrier", "device")))
# What each side of a pair brings: its name, its figures, and what its ratio is computed from.
_SIDE = ("case_id", "backend", "backend_version", "variant", "dtype", "barrier", "device", "steps_per_s", "n_rounds")
_RAW = ("steps_per_round", RAW_TIMES, ROUND_PASS)
_RUN = ("machine", "run_datetime", "mlx_version", "mlx_blas")
_SIZE = ("scenario", "model", "n_examples", "n_features", "batch_size", "hidden", "n_ranks", "distributed_backend")
_TAIL = ("ci_method", "faster", "passes")

SPEEDUP_COLUMNS = (
    *_RUN,
    *_SIZE,
    "case_id",
    "backend",
    "backend_version",
    "variant",
    "dtype",
    "barrier",
    "device",
    "baseline_case_id",
    "baseline_backend",
    "baseline_backend_version",
    "baseline_variant",
    "baseline_dtype",
    "baseline_barrier",
    "steps_per_s",
    "baseline_steps_per_s",
    "speedup",
    "speedup_ci_low",
    "speedup_ci_high",
    "speedup_se_log",
    "unstable",
    *_TAIL,
    "rounds",
    "baseline_rounds",
    "source_file",
)

# A backend's best at one size: the groups its fastest case is chosen in (and compared in).
FASTEST_GROUP = ("source_file", *(k for k in _SAME if k != "source_file" and k != "phase"), "dtype", "device_class")

BACKENDS_COLUMNS = (
    *_RUN,
    *_SIZE,
    "dtype",
    "device_class",
    "backend",
    "backend_version",
    "case_id",
    "variant",
    "barrier",
    "device",
    "steps_per_s",
    "other_backend",
    "other_backend_version",
    "other_case_id",
    "other_variant",
    "other_barrier",
    "other_device",
    "other_steps_per_s",
    "ratio",
    "ratio_ci_low",
    "ratio_ci_high",
    *_TAIL,
    "rounds",
    "other_rounds",
    "source_file",
)


def baseline_keys(cases: pd.DataFrame) -> pd.DataFrame:
    """The NumPy (variant, dtype, barrier) each row is compared with, as three columns."""
    chosen = [baseline_of(scenario, barrier) for scenario, barrier in zip(cases["scenario"], cases["barrier"])]
    return pd.DataFrame(chosen, columns=["baseline_variant", "baseline_dtype", "baseline_barrier"], index=cases.index)


def _side(frame: pd.DataFrame, prefix: str, keys: list[str]) -> pd.DataFrame:
    """One side of a pair: the merge keys as they are, its own columns renamed with `prefix` (n_rounds: rounds)."""
    own = [c for c in (*_SIDE, *_RAW) if c in frame and c not in keys]
    side = frame[[*keys, *own]].rename(columns={c: f"{prefix}{c}" for c in own})
    return side.rename(columns={f"{prefix}n_rounds": f"{prefix}rounds"})


def pair_with_baseline(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(pairs, unmatched): warm rows of every non-NumPy backend joined with their NumPy baseline; rows without one."""
    warm = _with_backend_version(frame[frame["phase"] == "warm"])
    cases = warm[warm["backend"] != BASELINE_BACKEND]
    cases = pd.concat([cases, baseline_keys(cases)], axis=1)
    keys = [*_SAME, "baseline_variant", "baseline_dtype", "baseline_barrier"]
    baseline = warm[warm["backend"] == BASELINE_BACKEND].rename(
        columns={"variant": "baseline_variant", "dtype": "baseline_dtype", "barrier": "baseline_barrier"}
    )
    baseline = _side(baseline.drop_duplicates(keys), "baseline_", keys)
    # A saved field may already carry a side's name (the data-parallel rows' own baseline_steps_per_s):
    # the pair's columns win.
    cases = cases.drop(columns=[c for c in baseline.columns if c in cases and c not in keys])
    pairs = cases.merge(baseline, on=keys, how="left", indicator=True)
    matched = pairs["_merge"] == "both"
    return pairs[matched].drop(columns="_merge"), pairs[~matched].drop(columns="_merge")


def speedup_table(frame: pd.DataFrame) -> pd.DataFrame:
    """speedup.csv: one row per warm non-NumPy case and run, its steps/s ÷ its NumPy baseline's (see module doc)."""
    pairs, _ = pair_with_baseline(frame)
    if pairs.empty:
        return pd.DataFrame(columns=list(SPEEDUP_COLUMNS))
    out = pairs.rename(columns={"n_rounds": "rounds"})
    ratio, low, high, passes, method, se = _ratios(out, "baseline_")
    out["speedup"], out["speedup_ci_low"], out["speedup_ci_high"], out["speedup_se_log"] = ratio, low, high, se
    out["passes"], out["ci_method"] = passes, method
    # The unstable rule of every figure (bench.stats.intervals): an interval reaching more than 10% either side (it
    # is symmetric in log, so the upper side is the larger), or none.
    with np.errstate(invalid="ignore", divide="ignore"):
        reach = np.asarray(high, dtype=float) / np.asarray(ratio, dtype=float) - 1
    out["unstable"] = ~np.isfinite(reach) | (reach > UNSTABLE_HALF_WIDTH)
    out["faster"] = [
        faster_side(lo, hi, a, b) for lo, hi, a, b in zip(low, high, out["backend"], out["baseline_backend"])
    ]
    return _whole_rounds(out[list(SPEEDUP_COLUMNS)].reset_index(drop=True))


def fastest_cases(frame: pd.DataFrame) -> pd.DataFrame:
    """Each backend's fastest warm case (by steps/s) per run, model, scenario, size, batch, hidden, ranks, dtype
    and device class; with a ``device_class`` column."""
    warm = frame[(frame["phase"] == "warm") & np.isfinite(pd.to_numeric(frame["steps_per_s"], errors="coerce"))]
    if warm.empty:
        return warm.assign(device_class=pd.Series(dtype=object))
    warm = _with_backend_version(warm).reset_index(drop=True)
    warm["device_class"] = warm["device"].map(device_class)
    best = warm.groupby([*FASTEST_GROUP, "backend"], sort=False, dropna=False)["steps_per_s"].idxmax()
    return warm.loc[best.to_numpy()].reset_index(drop=True)


def backends_table(frame: pd.DataFrame) -> pd.DataFrame:
    """backends.csv: every ordered pair of backends of a run, fastest case against fastest case (see module doc)."""
    best = fastest_cases(frame)
    if best.empty or best["backend"].nunique() < 2:
        return pd.DataFrame(columns=list(BACKENDS_COLUMNS))
    others = _side(best, "other_", list(FASTEST_GROUP))
    best = best.drop(columns=[c for c in others.columns if c in best and c not in FASTEST_GROUP])
    pairs = best.merge(others, on=list(FASTEST_GROUP))
    pairs = pairs[pairs["backend"] != pairs["other_backend"]].rename(columns={"n_rounds": "rounds"})
    if pairs.empty:
        return pd.DataFrame(columns=list(BACKENDS_COLUMNS))
    order = {name: i for i, name in enumerate(backend_order(best["backend"]))}
    pairs = pairs.assign(_a=pairs["backend"].map(order), _b=pairs["other_backend"].map(order))
    pairs = pairs.sort_values(["source_file", *_SIZE, "dtype", "device_class", "_a", "_b"], kind="stable")
    pairs = pairs.reset_index(drop=True)
    ratio, low, high, passes, method, _ = _ratios(pairs, "other_")
    pairs["ratio"], pairs["ratio_ci_low"], pairs["ratio_ci_high"] = ratio, low, high
    pairs["passes"], pairs["ci_method"] = passes, method
    pairs["faster"] = [
        faster_side(lo, hi, a, b) for lo, hi, a, b in zip(low, high, pairs["backend"], pairs["other_backend"])
    ]
    return _whole_rounds(pairs[list(BACKENDS_COLUMNS)])


def _whole_rounds(table: pd.DataFrame) -> pd.DataFrame:
    """Round counts as whole numbers (a merge leaves them float): ``5``, not ``5.0``, in the CSVs."""
    for column in (c for c in table.columns if c.endswith("rounds")):
        table[column] = pd.to_numeric(table[column], errors="coerce").round().astype("Int64")
    return table


def _with_backend_version(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its ``backend_version`` column (the loader adds it; frames built otherwise get it here)."""
    return frame if "backend_version" in frame else frame.assign(backend_version=backend_versions(frame))


def _ratios(pairs: pd.DataFrame, prefix: str):
    """(ratio, low, high, passes, ci method, standard error of the log ratio) of each pair: the plain side's
    steps/s ÷ the `prefix` side's."""
    ratio = (pairs["steps_per_s"] / pairs[f"{prefix}steps_per_s"]).to_numpy(dtype=float, copy=True)
    low, high, se = np.full(len(pairs), np.nan), np.full(len(pairs), np.nan), np.full(len(pairs), np.nan)
    passes = np.zeros(len(pairs), dtype=int)
    method = np.full(len(pairs), "none: no raw rounds", dtype=object)
    # Timed in passes: the ratio pass by pass, its interval by bench.stats.figures over all the pairs of one run at
    # once, as the terminal's (the run's ratios of one backend moderate each other).
    runs: dict[object, list[tuple[int, tuple[dict, dict]]]] = {}
    for i, record in enumerate(pairs.to_dict("records")):
        case = {k: v for k, v in record.items() if not k.startswith(prefix)}
        base = {k.removeprefix(prefix): v for k, v in record.items() if k.startswith(prefix)}
        common = set(step_times_by_pass(case)) & set(step_times_by_pass(base))
        if len(common) < 2:
            continue
        passes[i] = len(common)
        runs.setdefault(record.get("source_file"), []).append((i, (case, base)))
    for members in runs.values():
        found = ratio_intervals([pair for _, pair in members])
        for (i, _), interval in zip(members, found):
            ratio[i] = float(np.exp(interval.centre))
            low[i], high[i] = interval.low_high
            se[i] = interval.se
            method[i] = f"t {CONFIDENCE:.0%} across passes, per-pass ratios (bench.stats.figures)"
    one_pass = (passes < 2) & np.array([m is not None for m in step_times(pairs)], dtype=bool)
    passes[one_pass] = 1
    method[one_pass] = "none: fewer than two passes in common (rounds of one pass are not samples, rule 8)"
    return ratio, low, high, passes, method, se

