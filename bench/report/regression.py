"""MLX version against MLX version, per case and machine: a verdict a CI job can trust.

For each case measured under more than one MLX version on the same machine,
each version is compared with the previous one and with the oldest. Per-step
times are compared (round time / K, since K is calibrated per run), pooled
over every run of a version (use ``--latest`` for one run per version).

- ``pct_change_median_time``: change of the median per-step time, in percent
  (positive: the newer version is slower).
- ``p_value``: two-sided Mann-Whitney U test of the raw per-step times;
  ``p_value_adjusted``: corrected for the number of comparisons made in the
  report (Holm by default, or Benjamini-Hochberg), each distinct pair of
  versions of a case counted once.
- ``verdict``: ``faster`` or ``slower`` when the adjusted p-value is at most
  ALPHA; ``same`` when it is not and the samples were large enough to have
  shown a lone change among this many comparisons; ``undecided`` otherwise:
  fewer than MIN_ROUNDS raw times on a side, no raw times saved, or too few
  to ever reach significance (3 rounds against 3 cannot, whatever the data).
- ``regression``: ``slower`` and slower by more than the threshold (default
  10% of the median time), and, where each version has two or more runs, every
  run of the newer version slower than every run of the older one. Pooled
  rounds treat run-to-run drift (another job on the machine for one run) as
  signal; the run-level condition keeps one disturbed run from failing a CI
  job. All conditions, so that neither noise nor a negligible but significant
  change fails a CI job.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.releases import DEFAULT_THRESHOLD, version_key
from bench.report.figures import add_figures, step_times
from bench.report.schema import CASE_KEYS, case_labels
from bench.report.stats import adjust_p, mann_whitney_p, smallest_possible_p

ALPHA = 0.05  # ...and significant at this level after correction
MIN_ROUNDS = 5  # fewer raw times than this on either side: undecided
VERDICTS = ("faster", "slower", "same", "undecided")

_GROUP = ["machine", *CASE_KEYS]
COLUMNS = [
    "machine",
    *[key for key in CASE_KEYS if key != "phase"],
    "case",
    "mlx_version",
    "baseline_version",
    "against",
    "median_step_s",
    "baseline_median_step_s",
    "steps_per_s",
    "baseline_steps_per_s",
    "pct_change_median_time",
    "n_times",
    "baseline_n_times",
    "n_runs",
    "baseline_n_runs",
    "p_value",
    "p_value_adjusted",
    "correction",
    "verdict",
    "regression",
    "reason",
]


def pool_versions(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per machine, case and MLX version: every run's per-step times pooled."""
    warm = frame[(frame["phase"] == "warm") & frame["mlx_version"].notna()].copy()
    warm["_steps"] = step_times(warm)
    pooled = []
    for key, part in warm.groupby([*_GROUP, "mlx_version"], sort=False, dropna=False):
        raw = [times for times in part["_steps"] if times is not None]
        times = np.concatenate(raw) if raw else None
        run_medians = [float(np.median(t)) for t in raw] if raw else list(part["median_step_s"].dropna())
        median = float(np.median(times)) if times is not None else float(part["median_step_s"].median())
        pooled.append(
            dict(
                zip([*_GROUP, "mlx_version"], key),
                step_times=times,
                n_times=0 if times is None else len(times),
                n_runs=len(part),
                run_median_step_s=run_medians,
                median_step_s=median,
            )
        )
    return pd.DataFrame(pooled)


def _pairs(pooled: pd.DataFrame) -> list[dict]:
    """Each version of a case against the previous one and the oldest (one test per distinct pair)."""
    rows = []
    if pooled.empty:
        return rows
    for _, case in pooled.groupby(_GROUP, sort=False, dropna=False):
        if len(case) < 2:
            continue
        ordered = case.iloc[sorted(range(len(case)), key=lambda i: version_key(case["mlx_version"].iloc[i]))]
        versions = [row for _, row in ordered.iterrows()]
        for i in range(1, len(versions)):
            for against, base in (("previous", versions[i - 1]), ("oldest", versions[0])):
                rows.append({"against": against, "new": versions[i], "base": base})
    return rows


def _test(new: pd.Series, base: pd.Series) -> tuple[float, str]:
    """(p-value or NaN, why no test was made) for one pair of pooled samples."""
    if new["step_times"] is None or base["step_times"] is None:
        return np.nan, "no raw round times saved"
    if min(new["n_times"], base["n_times"]) < MIN_ROUNDS:
        return np.nan, f"fewer than {MIN_ROUNDS} raw times ({new['n_times']} vs {base['n_times']})"
    return mann_whitney_p(new["step_times"], base["step_times"]), ""


def _every_run_slower(new: pd.Series, base: pd.Series) -> bool:
    """With 2+ runs on both sides: is each run of `new` slower than each run of `base`? True otherwise."""
    new_runs, base_runs = new["run_median_step_s"], base["run_median_step_s"]
    if len(new_runs) < 2 or len(base_runs) < 2:
        return True  # one run on a side: the pooled test is all there is
    return min(new_runs) > max(base_runs)


def compare_versions(
    frame: pd.DataFrame, threshold: float = DEFAULT_THRESHOLD, alpha: float = ALPHA, correction: str = "holm"
) -> pd.DataFrame:
    """versions.csv: every version of every case against the previous and the oldest (see module doc).

    `threshold` is a fraction (0.10 = 10% slower median time); `correction` is
    "holm" or "bh". Takes the table of ``load_results`` (figures added if missing).
    """
    if frame.empty:
        return pd.DataFrame(columns=COLUMNS)
    if "median_step_s" not in frame:
        frame = add_figures(frame)
    pairs = _pairs(pool_versions(frame))
    if not pairs:
        return pd.DataFrame(columns=COLUMNS)

    # One test per distinct (case, version, baseline): "previous" and "oldest" are
    # the same test for the second version and must count once in the correction.
    tests: dict[tuple, tuple[float, str]] = {}
    for pair in pairs:
        key = (*pair["new"][_GROUP], pair["new"]["mlx_version"], pair["base"]["mlx_version"])
        pair["key"] = key
        if key not in tests:
            tests[key] = _test(pair["new"], pair["base"])
    keys = list(tests)
    p_values = np.array([tests[k][0] for k in keys])
    adjusted = dict(zip(keys, adjust_p(p_values, correction)))
    family = int(np.sum(~np.isnan(p_values)))

    rows = []
    for pair in pairs:
        new, base = pair["new"], pair["base"]
        p_value, reason = tests[pair["key"]]
        p_adjusted = adjusted[pair["key"]]
        change = 100 * (new["median_step_s"] / base["median_step_s"] - 1)
        if np.isnan(p_value):
            verdict = "undecided"
        elif p_adjusted <= alpha and change != 0:
            verdict = "slower" if change > 0 else "faster"
        elif smallest_possible_p(int(new["n_times"]), int(base["n_times"])) > alpha / family:
            verdict = "undecided"
            reason = f"too few raw times ({new['n_times']} vs {base['n_times']}) to be significant among {family} comparisons"
        else:
            verdict = "same"
        regression = bool(verdict == "slower" and change > 100 * threshold)
        if regression and not _every_run_slower(new, base):
            regression = False
            reason = "slower in pooled rounds, but the runs of the two versions overlap: drift between runs, not a regression"
        row = {key: new[key] for key in _GROUP}
        row.update(
            mlx_version=new["mlx_version"],
            baseline_version=base["mlx_version"],
            against=pair["against"],
            median_step_s=new["median_step_s"],
            baseline_median_step_s=base["median_step_s"],
            steps_per_s=1 / new["median_step_s"],
            baseline_steps_per_s=1 / base["median_step_s"],
            pct_change_median_time=change,
            n_times=new["n_times"],
            baseline_n_times=base["n_times"],
            n_runs=new["n_runs"],
            baseline_n_runs=base["n_runs"],
            p_value=p_value,
            p_value_adjusted=p_adjusted,
            correction=correction,
            verdict=verdict,
            regression=regression,
            reason=reason,
        )
        rows.append(row)
    out = pd.DataFrame(rows)
    out["case"] = case_labels(out, with_size=True)
    return out[COLUMNS]


def regressions(versions: pd.DataFrame) -> pd.DataFrame:
    """The rows of a compare_versions table that are regressions, largest slowdown first."""
    # Compare as text, so a table read back from versions.csv ("True"/"False") works too.
    flagged = versions["regression"].astype(str).str.lower() == "true"
    return versions[flagged].sort_values("pct_change_median_time", ascending=False)
