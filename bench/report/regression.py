"""MLX release against MLX release, per case and machine: run-level verdicts a CI job can trust.

The unit is the run (one saved file), never a round: rounds of one process
share that process's luck, so pooling them counts one disturbed run as many
independent samples. For every case, machine and run the figure is the run's
median per-step time (round time / K); all statistics are on its logarithm.

1. Normalisation by the NumPy controls. NumPy is identical in every release,
   so how far a run's NumPy cases sit from their usual time (the median over
   the controls of log(time / the case's median over all runs)) is that run's
   common factor: a busy machine, a slower VM. It is subtracted from every
   case of the run, so a run that was slow as a whole cancels out.
2. Noise per case: the spread of its normalised run figures around their
   release's mean, pooled over every release of the case on that machine.
3. Everything after is the one verdict engine (bench.stats.verdict_engine), which
   the release runner's paired comparison uses too: the noise prior (never
   below a case's own variance), the t tests, Holm over the MLX cases of each
   comparison (``--correction bh``: Benjamini-Hochberg), the verdicts
   (``regression``, ``faster``, ``same``, ``undecided``, and ``inconclusive``
   for the MLX cases of a group whose NumPy control moved), and the exit codes.
4. The controls' common factor is compared between the two releases: when
   it moved, significantly and by more than half the threshold, the whole
   comparison is ``inconclusive``: the machine ran differently for one
   release and the normalisation cannot be trusted to have taken it out.

Each version of a case is compared with the previous version and with the
oldest; a pair of versions is tested once, however it was reached.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import scipy.stats

from bench.stats import verdict_engine as engine
from bench.results.releases import COMPARED_BACKENDS, DEFAULT_THRESHOLD, version_key
from bench.report.row_figures import add_figures
from bench.report.schema import BASELINE_BACKEND, CASE_KEYS, case_ids
from bench.stats.verdict_engine import moderate

ALPHA = engine.ALPHA
MIN_RUNS = engine.MIN_SAMPLES  # fewer runs than this on a side is never a regression
METHOD = "run-level"
VERDICTS = engine.VERDICTS
STATUSES = ("ok", "inconclusive")

# The verdict record shared with the release runner and the HTML page, in this order.
VERDICT_COLUMNS = [
    "machine",
    "case_id",
    "model",
    "backend",
    "control",
    "older",
    "newer",
    "pct_change",
    "ci_low_pct",
    "ci_high_pct",
    "p_value",
    "p_value_adjusted",
    "verdict",
    "min_detectable_pct",
    "passes_needed",
    "n_older",
    "n_newer",
    "method",
    "reason",
]
_CASE = [key for key in CASE_KEYS if key != "phase"]  # only warm rows are compared
# After the verdict record: the comparison's status, then what finds the case again.
COLUMNS = [
    *VERDICT_COLUMNS,
    "comparison_status",
    "comparison_reason",
    "against",
    "case",
    *[key for key in _CASE if key not in ("model", "backend")],
    "older_median_step_s",
    "newer_median_step_s",
    "noise_pct",
    "correction",
]


# --------------------------------------------------------------------------- arrays


def normalise(log_times: np.ndarray, control: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """(normalised log times, each run's common factor, whether there were controls to normalise by).

    `log_times` is cases x runs (NaN: not measured in that run); `control` marks
    the NumPy cases. A run's factor is the median, over its controls, of how far
    each sits from that control's median over all runs.
    """
    runs = log_times.shape[1]
    controls = log_times[np.asarray(control, dtype=bool)]
    measured = np.isfinite(controls)
    if not len(controls) or not measured.any(axis=0).all():
        return log_times, np.zeros(runs), False  # some run has no control: none is normalised
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a control measured in no run: all-NaN row
        relative = controls - np.nanmedian(controls, axis=1, keepdims=True)
        factors = np.nanmedian(relative, axis=0)
    return log_times - factors, factors, True


def within_variance(values: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(variance, degrees of freedom) of each row around its group means, pooled over the groups."""
    squares = np.zeros(values.shape[0])
    dfs = np.zeros(values.shape[0])
    for group in np.unique(groups):
        part = values[:, groups == group]
        count = np.isfinite(part).sum(axis=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # rows not measured in this group
            mean = np.nanmean(part, axis=1, keepdims=True)
        squares += np.nansum((part - mean) ** 2, axis=1)
        dfs += np.maximum(count - 1, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(dfs > 0, squares / dfs, np.nan), dfs


def release_pairs(versions) -> list[tuple[str, str, str]]:
    """(older, newer, against) of each distinct pair: every version against the previous and the oldest."""
    ordered = sorted(set(versions), key=version_key)
    pairs = [(ordered[i - 1], ordered[i], "previous") for i in range(1, len(ordered))]
    return pairs + [(ordered[0], ordered[i], "oldest") for i in range(2, len(ordered))]


def pair_tests(log_times: np.ndarray, run_versions, control) -> tuple[pd.DataFrame, list[dict]]:
    """Unadjusted run-level tests of every case and pair of releases of one machine (steps 1-3).

    Returns one row per case and pair (column `case_index` into log_times) and
    one dict per pair: the controls' common factor (shift, its p-value) and
    whether the runs were normalised.
    """
    run_versions = np.asarray(run_versions, dtype=object)
    control = np.asarray(control, dtype=bool)
    normalised, factors, has_controls = normalise(log_times, control)
    variance, dfs = within_variance(normalised, run_versions)
    noise, noise_df = moderate(variance, dfs, control)  # the MLX cases and the NumPy controls, each their own prior
    factor_variance, factor_df = within_variance(factors[None, :], run_versions)

    rows, pairs = [], []
    for older, newer, against in release_pairs(run_versions):
        old, new = run_versions == older, run_versions == newer
        n_old, n_new = np.isfinite(log_times[:, old]).sum(axis=1), np.isfinite(log_times[:, new]).sum(axis=1)
        both = np.flatnonzero((n_old > 0) & (n_new > 0))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # cases measured under one release only
            delta = np.nanmean(normalised[:, new], axis=1) - np.nanmean(normalised[:, old], axis=1)
            se = np.sqrt(noise * (1 / n_old + 1 / n_new))
            old_median = np.exp(np.nanmedian(log_times[:, old], axis=1))
            new_median = np.exp(np.nanmedian(log_times[:, new], axis=1))
        rows.append(
            pd.DataFrame(
                {
                    "case_index": both,
                    "older": older,
                    "newer": newer,
                    "against": against,
                    "control": control[both],
                    "delta": delta[both],
                    "se": se[both],
                    "df": noise_df[both],
                    "noise": noise[both],
                    "n_older": n_old[both],
                    "n_newer": n_new[both],
                    "older_median_step_s": old_median[both],
                    "newer_median_step_s": new_median[both],
                    "normalised": has_controls,
                }
            )
        )
        shift = _control_shift(factors, old, new, factor_variance[0], factor_df[0], has_controls)
        pairs.append({"older": older, "newer": newer, **shift})
    table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    return table, pairs


def _control_shift(factors, old, new, variance: float, df: float, has_controls: bool) -> dict:
    """The change of the controls' common factor from the older release's runs to the newer's."""
    if not has_controls:
        return {"control_shift": np.nan, "control_shift_p": np.nan, "has_controls": False}
    shift = float(np.mean(factors[new]) - np.mean(factors[old]))
    p_value = np.nan
    if df > 0 and variance > 0:
        t = shift / np.sqrt(variance * (1 / old.sum() + 1 / new.sum()))
        p_value = float(2 * scipy.stats.t.sf(abs(t), df))
    elif df > 0:
        p_value = 1.0 if shift == 0 else 0.0  # no spread at all between runs
    return {"control_shift": shift, "control_shift_p": p_value, "has_controls": True}


def decide(
    tests: pd.DataFrame,
    pairs: list[dict],
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = ALPHA,
    correction: str = "holm",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Verdicts of run-level tests (steps 3-4): (one row per case and pair, one row per comparison).

    `tests` and `pairs` come from ``pair_tests``, with a `machine` column/key
    added when several machines are judged together; a `group` column (model
    and size) says which MLX rows a moved control voids (without it, every MLX
    row of its comparison).
    """
    tests = tests.reset_index(drop=True).copy()
    for column, default in (("machine", ""), ("group", ""), ("case_id", None)):
        if column not in tests:
            tests[column] = tests["case_index"] if column == "case_id" else default
    keys = ("machine", "older", "newer")
    tests = engine.decide(tests, threshold, alpha, correction, paired=False, family_keys=keys, samples="runs")
    moved = engine.void_groups(tests, threshold, alpha, keys)
    tests["method"] = METHOD
    tests["correction"] = correction
    return tests, _comparisons(moved, pairs, threshold)


def _comparisons(moved: pd.DataFrame, pairs: list[dict], threshold: float) -> pd.DataFrame:
    """One row per machine and pair of releases: status ok or inconclusive, and why (step 4)."""
    out = []
    for pair in pairs:
        machine = pair.get("machine", "")
        shift = float(engine.pct(pair["control_shift"]))
        if not pair["has_controls"]:
            status, reason = "ok", "no NumPy controls in every run: runs not normalised, controls not checked"
        else:
            status, _ = engine.common_shift_status(shift, pair["control_shift_p"], 0, threshold)
            reason = (
                f"the NumPy controls moved {shift:+.1f}% as a whole (p={pair['control_shift_p']:.2g}): "
                "the machine ran differently for one release"
                if status != "ok"
                else ""
            )
            mine = moved[
                (moved["machine"] == machine) & (moved["older"] == pair["older"]) & (moved["newer"] == pair["newer"])
            ]
            if len(mine):
                worst = mine.loc[mine["pct_change"].abs().idxmax()]
                voided = (
                    f"{len(mine)} NumPy control(s) moved against the others (e.g. {worst['case_id']} "
                    f"{worst['pct_change']:+.1f}%): the MLX verdicts of their group are inconclusive"
                )
                reason = f"{reason}; {voided}" if reason else voided
        out.append(
            {
                "machine": machine,
                "older": pair["older"],
                "newer": pair["newer"],
                "status": status,
                "reason": reason,
                "control_shift_pct": shift,
                "control_shift_p": pair["control_shift_p"],
            }
        )
    columns = ["machine", "older", "newer", "status", "reason", "control_shift_pct", "control_shift_p"]
    return pd.DataFrame(out, columns=columns)


def judge(
    log_times: np.ndarray,
    run_versions,
    control,
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = ALPHA,
    correction: str = "holm",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Verdicts for one machine's cases x runs of log per-step times: (tests, comparisons)."""
    tests, pairs = pair_tests(np.asarray(log_times, dtype=float), run_versions, control)
    return decide(tests, pairs, threshold, alpha, correction)


# --------------------------------------------------------------------------- tables


def _machine_arrays(warm: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """(one row per case with its identity, cases x runs log per-step times, each run's version)."""
    # groupby + unstack, not pivot_table(dropna=False): that one spans every combination of the keys' values.
    table = warm.groupby([*_CASE, "source_file"], dropna=False)["_log_step"].median().unstack("source_file")
    runs = warm.drop_duplicates("source_file").set_index("source_file")["mlx_version"]
    cases = table.index.to_frame(index=False)
    # The loader's case_id (the saved one from schema 3 on, else bench.cases.identity's), computed where a frame lacks it.
    ids = case_ids(cases).to_numpy(dtype=object)
    if "case_id" in warm:
        found = (
            warm.groupby(_CASE, dropna=False, sort=False)["case_id"].first().reindex(table.index).to_numpy(dtype=object)
        )
        ids = [f if isinstance(f, str) and f else computed for f, computed in zip(found, ids)]
    cases["case_id"] = list(ids)
    cases["case"] = [str(i).removeprefix(f"{m}-") for i, m in zip(cases["case_id"], cases["model"])]
    return cases, table.to_numpy(dtype=float), runs.reindex(table.columns).to_numpy(dtype=object)


def compare_versions(
    frame: pd.DataFrame, threshold: float = DEFAULT_THRESHOLD, alpha: float = ALPHA, correction: str = "holm"
) -> pd.DataFrame:
    """versions.csv: run-level verdicts of every case, every version against the previous and the oldest.

    `threshold` is a fraction (0.10 = 10% slower per-step time). Takes the
    table of ``load_results`` (figures added if missing). The comparison's
    status is on each row (`comparison_status`, `comparison_reason`).
    """
    empty = pd.DataFrame(columns=COLUMNS)
    if frame.empty:
        return empty
    if "median_step_s" not in frame:
        frame = add_figures(frame)
    # MLX's cases and NumPy's controls only (bench.results.releases.COMPARED_BACKENDS).
    warm = frame[
        (frame["phase"] == "warm") & frame["mlx_version"].notna() & frame["backend"].isin(COMPARED_BACKENDS)
    ].copy()
    warm = warm[np.isfinite(warm["median_step_s"]) & (warm["median_step_s"] > 0)]
    warm["mlx_version"] = warm["mlx_version"].astype(str)
    warm["_log_step"] = np.log(warm["median_step_s"].astype(float))

    all_tests, all_pairs, identities = [], [], []
    for machine, part in warm.groupby("machine", sort=True):
        if part["mlx_version"].nunique() < 2:
            continue
        cases, log_times, run_versions = _machine_arrays(part)
        tests, pairs = pair_tests(log_times, run_versions, (cases["backend"] == BASELINE_BACKEND).to_numpy())
        if tests.empty:
            continue
        tests["machine"] = machine
        tests["case_id"] = cases["case_id"].to_numpy(dtype=object)[tests["case_index"].to_numpy()]
        groups = (
            cases["model"].astype(str) + "-n" + cases["n_examples"].astype(str) + "-d" + cases["n_features"].astype(str)
        )
        tests["group"] = groups.to_numpy(dtype=object)[tests["case_index"].to_numpy()]
        identities.append(cases.drop(columns="case_id").assign(machine=machine).rename_axis("case_index").reset_index())
        all_tests.append(tests)
        all_pairs.extend({**pair, "machine": machine} for pair in pairs)
    if not all_tests:
        return empty
    tests, comparisons = decide(pd.concat(all_tests, ignore_index=True), all_pairs, threshold, alpha, correction)
    tests = tests.merge(pd.concat(identities, ignore_index=True), on=["machine", "case_index"], how="left")
    status = comparisons.rename(columns={"status": "comparison_status", "reason": "comparison_reason"})
    pair = ["machine", "older", "newer"]
    tests = tests.merge(status[[*pair, "comparison_status", "comparison_reason"]], on=pair)
    tests["control"] = tests["control"].astype(bool)
    # Reading order: machine, then release order of the newer and the older version, then case.
    order = sorted(
        range(len(tests)),
        key=lambda i: (
            tests["machine"].iloc[i],
            version_key(tests["newer"].iloc[i]),
            version_key(tests["older"].iloc[i]),
            tests["case_id"].iloc[i],
        ),
    )
    return tests.iloc[order][COLUMNS].reset_index(drop=True)


def comparisons(versions: pd.DataFrame) -> pd.DataFrame:
    """One row per machine and pair of releases of a compare_versions table: status and reason."""
    columns = ["machine", "older", "newer", "comparison_status", "comparison_reason"]
    if versions.empty:
        return pd.DataFrame(columns=["machine", "older", "newer", "status", "reason"])
    found = versions[columns].drop_duplicates(["machine", "older", "newer"])
    found = found.rename(columns={"comparison_status": "status", "comparison_reason": "reason"})
    return found.fillna({"reason": ""}).reset_index(drop=True)


def inconclusive(versions: pd.DataFrame) -> pd.DataFrame:
    """The comparisons of a compare_versions table whose NumPy controls moved."""
    found = comparisons(versions)
    return found[found["status"] == "inconclusive"]


def regressions(versions: pd.DataFrame) -> pd.DataFrame:
    """MLX rows with the verdict `regression` in comparisons whose status is ok, largest slowdown first."""
    if versions.empty:
        return versions
    # As text, so a table read back from versions.csv ("True"/"False") works too.
    control = versions["control"].astype(str).str.lower() == "true"
    flagged = (versions["verdict"] == "regression") & ~control & (versions["comparison_status"] == "ok")
    return versions[flagged].sort_values("pct_change", ascending=False)
