"""One verdict engine: the statistics every release comparison judges by (docs/releases.md, "Compare MLX releases").

Both comparisons hand it the same thing: per case and pair of releases, the
change of the log per-step time (`delta`), the case's own noise (a variance
and its degrees of freedom) and how many samples each side has. The report's
run-level comparison (bench.report.regression: one sample per saved run) and
the release runner's paired one (bench.versions.verdicts: one sample per
session of fresh workers, each the median log ratio of its interleaved
blocks) differ only in how they make those samples. Everything after is here:

1. **Noise prior.** The cases' variances are fitted with a scaled inverse
   chi-square (limma's moment fit, fit_noise_prior) and each case's variance
   shrunk towards it, **never below the case's own**: a case is never judged
   quieter than its own samples show. With fewer than MIN_PRIOR_CASES cases
   (a bisection of one case) there is no prior, and a case keeps its own
   variance and degrees of freedom.
2. **Tests.** A t test per case each way; Holm's correction over the MLX cases
   of the comparison (the family), the NumPy controls a family of their own.
3. **Verdicts.** With `threshold` t and `alpha` a:
   - `regression`: slower, adjusted p <= a, **and the estimate beyond t**, with
     at least MIN_SAMPLES samples a side. "Significant and beyond": a true
     change of exactly t is estimated beyond t about half the time, so it is
     caught about 50% of the time; 2t is caught nearly always (the self-test
     measures the curve on this machine).
   - `faster`: the mirror image; `same`: the 95% interval lies within +-t;
   - `undecided`: anything else, with the smallest change this data would
     detect with POWER (80%), significant and beyond t, and the samples a side
     that would detect 2t so (a change of exactly t never reaches 80%);
   - `broken` (the paired runner): the newer release crashed, timed out or
     failed a check; `inconclusive`: a NumPy control of the case's own group
     (model and size) moved.
4. **Controls.** A control moved when it is significant after Holm (two-sided)
   and beyond CONTROL_TOLERANCE x t: the MLX verdicts of its group become
   `inconclusive`. A shift common to all controls (significant at
   CONTROL_ALPHA and beyond CONTROL_TOLERANCE x t) makes the whole comparison
   `inconclusive`.
5. **Exit codes** (one precedence for every command): 1 a broken case, or a
   regression in a comparison whose status is ok; else 4 an inconclusive
   comparison or an MLX case left `inconclusive` by its group's control; else 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.special
import scipy.stats

from bench.console import exit_codes

ALPHA = 0.01  # family-wise error of the verdicts (Holm over the MLX cases of a comparison)
CONFIDENCE = 0.95  # of the intervals, and of the `same` verdict
POWER = 0.8  # of min_detectable_pct and passes_needed, everywhere
MIN_SAMPLES = 3  # fewer runs (or sessions) than this on a side is never a regression or faster
MIN_PRIOR_CASES = 10  # fewer cases than this: no noise prior, every case on its own variance
CONTROL_ALPHA = 0.05  # the controls moved as a whole: significant at this level...
CONTROL_TOLERANCE = 0.5  # ...and by more than this share of the threshold (also for one control)
CORRECTIONS = ("holm", "bh")
VERDICTS = ("broken", "regression", "inconclusive", "faster", "undecided", "same")  # reading order: worst first
EXIT_OK, EXIT_REGRESSION, EXIT_INCONCLUSIVE = exit_codes.OK, exit_codes.REGRESSION, exit_codes.INCONCLUSIVE
# What decide() adds to each test, as a verdict row carries it.
DECISION_FIELDS = (
    "pct_change",
    "ci_low_pct",
    "ci_high_pct",
    "p_value",
    "p_value_adjusted",
    "verdict",
    "min_detectable_pct",
    "passes_needed",
    "reason",
    "noise_pct",
    "p_slower",
    "p_faster",
    "p_faster_adjusted",
)


# --------------------------------------------------------------------------- noise prior


def trigamma_inverse(value: float) -> float:
    """The x > 0 with trigamma(x) = value (Newton's method, as limma's trigammaInverse)."""
    if value > 1e7:
        return 1 / np.sqrt(value)
    if value < 1e-6:
        return 1 / value
    x = 0.5 + 1 / value
    for _ in range(50):
        tri = float(scipy.special.polygamma(1, x))
        step = tri * (1 - tri / value) / float(scipy.special.polygamma(2, x))
        x += step
        if -step / x < 1e-8:
            break
    return x


def fit_noise_prior(variances, dfs, min_cases: int = MIN_PRIOR_CASES) -> tuple[float, float]:
    """(s0^2, d0): the typical variance of many cases and how many degrees of freedom it is worth.

    Fits a scaled inverse chi-square prior to sample variances s^2 with d degrees
    of freedom each, by the moments of log s^2 (limma's fitFDist). d0 is
    infinite when the variances spread no more than sampling alone explains; it
    is 0 (no prior) with fewer than `min_cases` usable variances.
    """
    variances, dfs = np.asarray(variances, dtype=float), np.asarray(dfs, dtype=float)
    usable = np.isfinite(variances) & (variances > 0) & (dfs > 0)
    if usable.sum() < max(2, min_cases):
        return np.nan, 0.0
    half = dfs[usable] / 2
    # log s^2 of a scaled chi-square has mean log s0^2 + digamma(d/2) - log(d/2) and variance trigamma(d/2).
    centred = np.log(variances[usable]) - scipy.special.digamma(half) + np.log(half)
    mean = float(np.mean(centred))
    excess = float(np.var(centred, ddof=1) - np.mean(scipy.special.polygamma(1, half)))
    if excess <= 0:
        return float(np.exp(mean)), np.inf
    d0 = 2 * trigamma_inverse(excess)
    return float(np.exp(mean + scipy.special.digamma(d0 / 2) - np.log(d0 / 2))), float(d0)


def shrink_variances(variances, dfs, prior_variance: float, prior_df: float) -> tuple[np.ndarray, np.ndarray]:
    """(variance, degrees of freedom) of each case after shrinkage towards the prior, never below its own.

    The posterior (d0 s0^2 + d s^2) / (d0 + d) with d0 + d degrees of freedom;
    where a case's own variance is the larger (one disturbed run, say), its own
    is kept: shrinking it down would turn that disturbance into a verdict. It
    keeps the posterior's degrees of freedom too: with its own alone (2 at three
    samples) Holm's correction over a release comparison's cases would catch a
    +30% change about half the time (tests/test_report_regression.py).
    Without a prior (d0 = 0) each case keeps its own variance and d.
    """
    variances, dfs = np.asarray(variances, dtype=float), np.asarray(dfs, dtype=float)
    own = np.where(dfs > 0, variances, np.nan)
    if not prior_df or not np.isfinite(prior_variance):
        return own, dfs.copy()
    if np.isinf(prior_df):
        posterior = np.full(variances.shape, prior_variance)
    else:
        posterior = (prior_df * prior_variance + dfs * np.nan_to_num(own)) / (prior_df + dfs)
    return np.fmax(posterior, own), dfs + prior_df


def moderate(variances, dfs, groups) -> tuple[np.ndarray, np.ndarray]:
    """(variance, degrees of freedom) of each case after shrinkage towards the prior of its own group.

    The one pooling rule of every figure and verdict: a backend's noise is its own, so
    the prior is fitted within each group (a backend; for the verdicts, the MLX cases
    and the NumPy controls), never across them.
    """
    variances, dfs = np.asarray(variances, dtype=float), np.asarray(dfs, dtype=float)
    groups = np.asarray(groups, dtype=object)
    noise, noise_df = np.full(variances.shape, np.nan), np.zeros(variances.shape)
    for group in dict.fromkeys(groups.tolist()):
        mine = groups == group
        prior_variance, prior_df = fit_noise_prior(variances[mine], dfs[mine])
        noise[mine], noise_df[mine] = shrink_variances(variances[mine], dfs[mine], prior_variance, prior_df)
    return noise, noise_df


# --------------------------------------------------------------------------- multiple tests


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values (family-wise error rate) of finite p-values."""
    p_values = np.asarray(p_values, dtype=float)
    m = len(p_values)
    order = np.argsort(p_values, kind="stable")
    # The i-th smallest is multiplied by (m - i); adjusted values never decrease along the order.
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p_values[order]))
    result = np.empty(m)
    result[order] = adjusted
    return result


def adjust_p(p_values, method: str = "holm") -> np.ndarray:
    """Adjusted p-values for one family of tests; NaN (no test made) stays NaN and is not counted."""
    p_values = np.asarray(p_values, dtype=float)
    adjusted = np.full(p_values.shape, np.nan)
    tested = ~np.isnan(p_values)
    if not tested.any():
        return adjusted
    if method == "holm":
        adjusted[tested] = holm(p_values[tested])
    elif method == "bh":
        adjusted[tested] = scipy.stats.false_discovery_control(p_values[tested], method="bh")
    else:
        raise ValueError(f"unknown correction {method!r}; expected one of {', '.join(CORRECTIONS)}")
    return adjusted


# --------------------------------------------------------------------------- verdicts


def pct(log_change) -> np.ndarray:
    """A change of the log time as a change of the time in percent."""
    return 100 * np.expm1(np.asarray(log_change, dtype=float))


def decide(
    tests: pd.DataFrame,
    threshold: float,
    alpha: float = ALPHA,
    correction: str = "holm",
    paired: bool = False,
    family_keys: tuple[str, ...] = ("older", "newer"),
    samples: str = "sessions",
) -> pd.DataFrame:
    """Verdicts (steps 2-3) of tests with columns delta, se, df, noise, n_older, n_newer, control.

    The MLX rows of each `family_keys` group form one family of Holm's
    correction, the controls another. paired: one sample per session holds
    both sides (the samples a side needed are n, not 2n as for two groups).
    Adds pct_change, ci_low_pct, ci_high_pct, p_value (the test in the
    direction of the change), p_value_adjusted, p_slower(_adjusted),
    p_faster(_adjusted), min_detectable_pct, passes_needed, noise_pct, verdict,
    reason. `samples` names the unit in the reasons ("runs" or "sessions").
    """
    tests = tests.reset_index(drop=True).copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        t = tests["delta"].to_numpy(dtype=float) / tests["se"].to_numpy(dtype=float)
    df = tests["df"].to_numpy(dtype=float)
    se = tests["se"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        zero_spread = (se == 0) & np.isfinite(tests["delta"].to_numpy(dtype=float))
        tests["p_slower"] = np.where(zero_spread, np.where(tests["delta"] > 0, 0.0, 1.0), scipy.stats.t.sf(t, df))
        tests["p_faster"] = np.where(zero_spread, np.where(tests["delta"] < 0, 0.0, 1.0), scipy.stats.t.cdf(t, df))
        half = np.where(zero_spread, 0.0, scipy.stats.t.ppf(0.5 + CONFIDENCE / 2, df) * se)
    tests["ci_low_pct"], tests["ci_high_pct"] = pct(tests["delta"] - half), pct(tests["delta"] + half)
    for column in ("p_slower_adjusted", "p_faster_adjusted", "family"):
        tests[column] = np.nan
    control = tests["control"].astype(bool)
    for _, part in tests.groupby([*family_keys, control.rename("_control")], sort=False):
        rows = part.index.to_numpy()
        for column in ("p_slower", "p_faster"):
            tests.loc[rows, f"{column}_adjusted"] = adjust_p(tests.loc[rows, column].to_numpy(dtype=float), correction)
        tests.loc[rows, "family"] = int(np.isfinite(tests.loc[rows, "p_slower"].to_numpy(dtype=float)).sum())

    limit = np.log1p(threshold)
    change = pct(tests["delta"])
    slower = change >= 0
    tests["pct_change"] = change
    tests["p_value"] = np.where(slower, tests["p_slower"], tests["p_faster"])
    tests["p_value_adjusted"] = np.where(slower, tests["p_slower_adjusted"], tests["p_faster_adjusted"])
    # A regression must be significant at the strictest step of the correction *and* estimated beyond the
    # threshold, so a true change is caught with POWER only when it lies z_POWER standard errors beyond the larger
    # of the two bars: the smallest change found with POWER is max(threshold, critical * se) + z_POWER * se.
    # A change of exactly the threshold is caught about half the time however many samples there are, so the
    # samples a side are those that catch twice the threshold with POWER (the size the self-test plants).
    family = tests["family"].fillna(1).clip(lower=1).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        critical = scipy.stats.t.ppf(1 - alpha / family, df)
        z_power = scipy.stats.t.ppf(POWER, df)
        tests["min_detectable_pct"] = pct(np.fmax(limit, critical * se) + z_power * se)
        # se of the change with n samples a side: sqrt(k * noise / n) (k = 1 paired, 2 for two groups); it must be
        # at most limit / z_power (the threshold's bar) and 2 * limit / (critical + z_power) (the significance bar).
        allowed = np.fmin(limit / z_power, 2 * limit / (critical + z_power))
        needed = np.ceil((1 if paired else 2) * tests["noise"].to_numpy(dtype=float) / allowed**2)
    tests["passes_needed"] = pd.array(np.where(np.isfinite(needed), np.maximum(needed, MIN_SAMPLES), np.nan)).astype(
        "Int64"
    )
    tests["noise_pct"] = 100 * np.sqrt(tests["noise"].astype(float))
    tests["verdict"], tests["reason"] = _verdicts(tests, threshold, alpha, samples)
    return tests


def _verdicts(tests: pd.DataFrame, threshold: float, alpha: float, samples: str) -> tuple[np.ndarray, list[str]]:
    """(verdict, reason) of every test (step 3), vectorised: a report may hold tens of thousands."""
    limit = 100 * threshold
    change = tests["pct_change"].to_numpy(dtype=float)
    tested = np.isfinite(tests["se"].to_numpy(dtype=float)) & np.isfinite(change)
    enough = np.minimum(tests["n_older"], tests["n_newer"]).to_numpy() >= MIN_SAMPLES
    slower = (tests["p_slower_adjusted"].to_numpy(dtype=float) <= alpha) & (change > limit) & tested
    faster = (tests["p_faster_adjusted"].to_numpy(dtype=float) <= alpha) & (change < -limit) & tested
    within = (tests["ci_low_pct"].to_numpy(dtype=float) > -limit) & (tests["ci_high_pct"].to_numpy(dtype=float) < limit)
    verdict = np.select(
        [~tested, ~enough, slower, faster, within & tested],
        ["undecided", "undecided", "regression", "faster", "same"],
        default="undecided",
    )
    reasons = [""] * len(tests)
    for i in np.flatnonzero(verdict == "undecided"):
        row = tests.iloc[i]
        one = samples.removesuffix("s")
        if not tested[i]:
            reasons[i] = f"one {one} per release: no {one}-to-{one} noise to test against"
        elif not enough[i]:
            way = "slower" if slower[i] else "faster" if faster[i] else "changed"
            reasons[i] = (
                f"{way} by {change[i]:+.1f}%, but fewer than {MIN_SAMPLES} {samples} on a side is never a verdict"
                f" ({min(row['n_older'], row['n_newer'])} here)"
            )
        elif row["p_slower_adjusted"] <= alpha and change[i] > 0:
            reasons[i] = f"slower by {change[i]:.1f}%, significant but not beyond the {limit:g}% threshold"
        else:
            needed = (
                ""
                if pd.isna(row["passes_needed"])
                else f"; about {row['passes_needed']} {samples} per release would tell"
            )
            reasons[i] = (
                f"{change[i]:+.1f}% (95% interval {row['ci_low_pct']:+.1f}% to {row['ci_high_pct']:+.1f}%) "
                f"is neither beyond nor within ±{limit:g}%{needed}"
            )
    return verdict, reasons


def moved_controls(tests: pd.DataFrame, threshold: float, alpha: float) -> pd.DataFrame:
    """The controls that moved: significant after Holm, two-sided, and beyond CONTROL_TOLERANCE x the threshold."""
    controls = tests[tests["control"].astype(bool)]
    two_sided = np.fmin(controls["p_slower_adjusted"], controls["p_faster_adjusted"]) <= alpha / 2
    return controls[two_sided & (controls["pct_change"].abs() > 100 * CONTROL_TOLERANCE * threshold)]


def void_groups(tests: pd.DataFrame, threshold: float, alpha: float, keys: tuple[str, ...] = ("older", "newer")):
    """Step 4: the MLX rows of a group whose control moved become `inconclusive` (in place); the moved controls."""
    moved = moved_controls(tests, threshold, alpha)
    for _, control in moved.iterrows():
        same_group = tests["group"] == control["group"]
        for key in keys:
            same_group &= tests[key] == control[key]
        mine = same_group & ~tests["control"].astype(bool) & (tests["verdict"] != "broken")
        tests.loc[mine, "verdict"] = "inconclusive"
        tests.loc[mine, "reason"] = (
            f"the NumPy control of its model and size moved ({control['case_id']} {control['pct_change']:+.1f}%), "
            "though its code is identical in both environments: something besides MLX changed this group's timings"
        )
    return moved


def common_shift_status(shift_pct: float, p_value: float, controls: int, threshold: float) -> tuple[str, str]:
    """(status, reason) of a comparison from the shift common to its controls (step 4)."""
    if np.isfinite(p_value) and p_value <= CONTROL_ALPHA and abs(shift_pct) > 100 * CONTROL_TOLERANCE * threshold:
        return "inconclusive", (
            f"the {controls} NumPy controls moved together by {shift_pct:+.1f}% (p = {p_value:.2g}): "
            "the machine ran differently for the two releases' timings"
        )
    return "ok", ""


def is_regression(verdict, control, comparison_status="ok") -> bool:
    """Whether a verdict row is a regression the gate acts on: an MLX case, `regression`, its comparison not inconclusive."""
    return str(verdict) == "regression" and not _truthy(control) and str(comparison_status) != "inconclusive"


def _truthy(value) -> bool:
    """True, or "True"/"true"/"1" as a CSV wrote it."""
    return value is True or str(value).strip().lower() in ("true", "1", "yes")


def exit_status(verdicts, statuses, fail_on_regression: bool) -> int:
    """Step 5: 0, or with fail_on_regression 1 (broken, or a regression where the comparison is ok), else 4 (inconclusive).

    `verdicts`: (verdict, control, comparison status) of every row; `statuses`: every comparison's status.
    """
    if not fail_on_regression:
        return EXIT_OK
    rows = list(verdicts)
    if any(v == "broken" for v, _, _ in rows):
        return EXIT_REGRESSION  # a release that crashes or computes wrong weights never passes
    if any(is_regression(v, control, status) for v, control, status in rows):
        return EXIT_REGRESSION
    if any(s != "ok" for s in statuses) or any(v == "inconclusive" and not _truthy(c) for v, c, _ in rows):
        return EXIT_INCONCLUSIVE  # the gate cannot vouch for every case: say so, never green
    return EXIT_OK
