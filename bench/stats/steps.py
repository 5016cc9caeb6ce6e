"""Where a case's speed stepped over ordered releases, and by how much (docs/releases.md, "Release history").

The data of one case is its release-by-session table: per release and session
of fresh workers, the log of the session's median round time. Every release is
timed in every session, interleaved, so a session's luck (the machine at that
moment, the process's lasting offset) is shared by all releases of the row:

1. **Two-way fit.** log time = session + release + noise. The release effects
   are the table's release means (a session's offset is common to all of them
   and cancels in every difference); the residual noise is pooled over the
   whole table, (R - 1)(S - 1) degrees of freedom for R releases and S
   sessions. A session that misses a release is left out of that case's
   table, and a release with no session at all is left out of the case.
2. **Noise over a backend's cases.** The cases' residual variances are
   moderated with the verdict engine's noise prior (bench.stats.verdict_engine:
   limma's moment fit, never below a case's own variance): cases whose noise
   agrees pool their degrees of freedom, a case noisier than the rest keeps
   its own.
3. **Segmentation.** The release means, in units of their own standard error
   (sigma / sqrt(S)), are split into constant segments by exact optimal
   partitioning with a Gaussian cost: the split minimising the residual sum
   of squares plus a penalty per step (the problem PELT solves; with a few
   dozen releases it is solved exactly, without pruning). It is asv's
   penalised step fit with an L2 cost instead of L1, the noise known from the
   sessions instead of guessed from the series.
4. **The penalty by simulation.** Under no change at all the smallest penalty
   that finds no step in any case is a statistic whose distribution depends
   only on the table shapes and the noise prior's degrees of freedom (the
   statistic is free of the noise's scale and of every session effect). The
   penalty is its CALIBRATION_LEVEL upper quantile over SIMULATIONS simulated
   null histories of the same shapes, so that at most FALSE_ALARM_RATE of null
   histories (all cases of the family together) show any step, the
   simulation's own error included. The cases' true noise in the simulation is
   drawn from the fitted prior, so it is as uneven as the real cases' is.
5. **Each step** between two adjacent segments: the difference of their means,
   with a 95% t interval from the pooled noise (standard error sigma x
   sqrt(1/(S n_left) + 1/(S n_right))).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from bench.stats.intervals import Interval
from bench.stats.verdict_engine import fit_noise_prior, shrink_variances

FALSE_ALARM_RATE = 0.01  # of a null history (every case of the family) showing any step
# The penalty is the quantile at this level of SIMULATIONS null histories: half the allowed rate, so that the
# simulation's own sampling error (the true rate of the 11th largest of 2,000 is 0.5% +- 0.16%) leaves the real
# rate under FALSE_ALARM_RATE (the chance that it does not is about 1%).
CALIBRATION_LEVEL = FALSE_ALARM_RATE / 2
SIMULATIONS = 2_000
SEED = 20_240_601  # the simulations are seeded: one history always gets the same penalty
# The prior's degrees of freedom are rounded down to this grid before simulating (fewer is the more cautious
# side), so that histories of one shape share a calibration. 0: no prior (each case on its own noise).
PRIOR_DF_GRID = (0.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, math.inf)


@dataclass(frozen=True)
class CaseTable:
    """One case's release-by-session table of log median round times: releases in order, complete."""

    case_id: str
    releases: tuple  # the labels of the rows, oldest first
    logs: np.ndarray  # releases x sessions


@dataclass(frozen=True)
class Step:
    """A step between two adjacent segments of one case: older is the last release before it, newer the first after."""

    case_id: str
    older: str
    newer: str
    log_change: float  # newer segment's mean minus older segment's, in log time
    se: float
    df: float
    segment_before: tuple  # the releases of the segment before the step
    segment_after: tuple

    @property
    def pct_change(self) -> float:
        """The step in time per step, in %."""
        return 100 * math.expm1(self.log_change)

    @property
    def ci_pct(self) -> tuple[float, float]:
        """Its 95% interval, in %."""
        low, high = Interval(self.log_change, self.se, self.df).low_high  # the one t interval (bench.stats.intervals)
        return 100 * (low - 1), 100 * (high - 1)


@dataclass
class Detection:
    """The steps of one family of cases (one backend), with what they rest on."""

    penalty: float  # per step, in squared standard errors
    prior_df: float  # the noise prior's degrees of freedom (0: none, inf: the cases' noise agrees)
    noise: dict = field(default_factory=dict)  # case_id -> (noise sd in log, degrees of freedom)
    segments: dict = field(default_factory=dict)  # case_id -> [(first release, last release, mean log)]
    steps: list = field(default_factory=list)


def case_table(case_id: str, sessions: list[dict], labels: list[str]) -> CaseTable | None:
    """The table of one case from its paired records: per session, each release's log median round time.

    A release measured in no session is left out; a session missing any
    remaining release is left out. None with fewer than two releases or two
    sessions (nothing to segment, no noise to measure).
    """
    cells = []
    for record in sessions:
        row = {}
        for label in labels:
            times = [t for t in record.get("times", {}).get(label, []) if t > 0]
            if times and label not in record.get("errors", {}):
                row[label] = math.log(float(np.median(times)))
        cells.append(row)
    kept = [label for label in labels if any(label in row for row in cells)]
    complete = [row for row in cells if all(label in row for label in kept)]
    if len(kept) < 2 or len(complete) < 2:
        return None
    return CaseTable(case_id, tuple(kept), np.array([[row[label] for row in complete] for label in kept]))


def two_way(logs: np.ndarray) -> tuple[np.ndarray, float, int]:
    """(release means, residual variance, its degrees of freedom) of session + release fitted to a complete table."""
    logs = np.asarray(logs, dtype=float)
    releases, sessions = logs.shape
    means = logs.mean(axis=1)
    residual = logs - means[:, None] - logs.mean(axis=0)[None, :] + logs.mean()
    df = (releases - 1) * (sessions - 1)
    return means, float((residual**2).sum() / df) if df else math.nan, df


def moderated_noise(variances, dfs) -> tuple[np.ndarray, np.ndarray, float]:
    """(variance, degrees of freedom, prior's degrees of freedom) of each case, step 2 of the module doc.

    A case whose own variance is above the moderated one keeps it and its own
    degrees of freedom: it borrows nothing from quieter cases.
    """
    variances, dfs = np.asarray(variances, dtype=float), np.asarray(dfs, dtype=float)
    prior_variance, prior_df = fit_noise_prior(variances, dfs)
    pooled, _ = shrink_variances(variances, dfs, prior_variance, prior_df)
    borrowed = pooled > variances
    return pooled, np.where(borrowed, dfs + prior_df, dfs), float(prior_df)


def _costs(z: np.ndarray) -> np.ndarray:
    """cost[..., s, t]: residual sum of squares of z[..., s:t] about its mean (inf where t <= s)."""
    n = z.shape[-1]
    zero = np.zeros((*z.shape[:-1], 1))
    p1 = np.concatenate([zero, np.cumsum(z, axis=-1)], axis=-1)
    p2 = np.concatenate([zero, np.cumsum(z**2, axis=-1)], axis=-1)
    length = np.arange(n + 1)[None, :] - np.arange(n + 1)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        cost = (p2[..., None, :] - p2[..., :, None]) - (p1[..., None, :] - p1[..., :, None]) ** 2 / length
    return np.where(length > 0, cost, np.inf)


def partition_costs(z: np.ndarray, pointers: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """(best[..., m], last[m, ..., t]): the least cost of z cut into m + 1 segments, and the DP's back-pointers.

    Exact optimal partitioning over every number of steps m = 0 .. n - 1,
    vectorised over the leading axes (histories, cases); the back-pointers
    only when asked (the simulation needs the costs alone).
    """
    cost = _costs(np.asarray(z, dtype=float))
    n = cost.shape[-1] - 1
    current = cost[..., 0, :]  # one segment: 0..t
    best, last = [current[..., n]], [np.zeros(current.shape, dtype=int)]
    for _ in range(1, n):
        candidates = current[..., :, None] + cost  # [..., s, t]: m segments up to s, then one s..t
        if pointers:
            last.append(np.argmin(candidates, axis=-2))
        current = np.min(candidates, axis=-2)
        best.append(current[..., n])
    return np.stack(best, axis=-1), np.stack(last) if pointers else None


def null_statistic(z: np.ndarray) -> np.ndarray:
    """The smallest penalty per step at which z shows no step: max over m >= 1 of (cost with none - cost with m) / m."""
    best, _ = partition_costs(z)
    if best.shape[-1] < 2:
        return np.zeros(best.shape[:-1])
    gains = best[..., :1] - best[..., 1:]
    return np.max(gains / np.arange(1, best.shape[-1]), axis=-1)


def segment(z: np.ndarray, penalty: float) -> list[int]:
    """The positions k (a step between z[k - 1] and z[k]) that minimise cost + penalty x steps for one series."""
    best, last = partition_costs(np.asarray(z, dtype=float)[None, :], pointers=True)
    steps = int(np.argmin(best[0] + penalty * np.arange(best.shape[-1])))
    cuts, end = [], len(z)
    for m in range(steps, 0, -1):
        end = int(last[m, 0, end])
        cuts.append(end)
    return sorted(cuts)


def prior_df_step(prior_df: float) -> float:
    """The prior's degrees of freedom rounded down to PRIOR_DF_GRID (fewer: the heavier-tailed, cautious side)."""
    return max(g for g in PRIOR_DF_GRID if g <= prior_df) if prior_df > 0 else 0.0


def simulate_null(
    shapes: tuple, prior_df: float, simulations: int = SIMULATIONS, seed: int = SEED, chunk: int = 1_000
) -> np.ndarray:
    """Per simulated null history with these (releases, sessions) table shapes: the least penalty finding no step.

    Each case's true noise variance is drawn from a scaled inverse chi-square
    with prior_df degrees of freedom (equal for all when infinite; independent,
    as unequal as can be, when 0); its table is pure noise. The statistic is
    scale-free, so the prior's scale does not matter.
    """
    rng = np.random.default_rng(seed)
    found = []
    for start in range(0, simulations, chunk):
        n = min(chunk, simulations - start)
        variances, dfs, means = [], [], []
        for releases, sessions in shapes:
            if math.isinf(prior_df) or prior_df <= 0:
                scale = np.ones(n)  # 0: no pooling, so each case's scale cancels in its own statistic
            else:
                scale = np.sqrt(prior_df / rng.chisquare(prior_df, n))
            table = rng.standard_normal((n, releases, sessions)) * scale[:, None, None]
            residual = table - table.mean(axis=2, keepdims=True) - table.mean(axis=1, keepdims=True)
            residual += table.mean(axis=(1, 2), keepdims=True)
            df = (releases - 1) * (sessions - 1)
            variances.append((residual**2).sum(axis=(1, 2)) / df)
            dfs.append(df)
            means.append(table.mean(axis=2) * math.sqrt(sessions))
        variances = np.stack(variances, axis=1)  # histories x cases
        if prior_df > 0:
            pooled = np.stack([moderated_noise(row, dfs)[0] for row in variances])
        else:
            pooled = variances
        statistic = np.zeros(n)
        for index, mean in enumerate(means):
            statistic = np.maximum(statistic, null_statistic(mean / np.sqrt(pooled[:, index : index + 1])))
        found.append(statistic)
    return np.concatenate(found)


@lru_cache(maxsize=64)
def calibrated_penalty(shapes: tuple, prior_df: float, simulations: int = SIMULATIONS, seed: int = SEED) -> float:
    """The penalty per step for a family of tables of these shapes: the CALIBRATION_LEVEL upper quantile of the null."""
    null = simulate_null(shapes, prior_df, simulations, seed)
    return float(np.quantile(null, 1 - CALIBRATION_LEVEL, method="higher"))


def detect_steps(tables: list[CaseTable], simulations: int = SIMULATIONS, seed: int = SEED) -> Detection:
    """The steps of every case of one family (one backend's cases of a history), steps 1-5 of the module doc."""
    tables = [t for t in tables if t.logs.shape[0] >= 2 and t.logs.shape[1] >= 2]
    if not tables:
        return Detection(math.nan, 0.0)
    fits = [two_way(t.logs) for t in tables]
    variances, dfs, prior_df = moderated_noise([f[1] for f in fits], [f[2] for f in fits])
    prior_df = prior_df_step(prior_df)
    shapes = tuple(sorted(t.logs.shape for t in tables))
    penalty = calibrated_penalty(shapes, prior_df, simulations, seed)
    detection = Detection(penalty, prior_df)
    for table, (means, _, _), variance, df in zip(tables, fits, variances, dfs):
        sessions = table.logs.shape[1]
        sd = math.sqrt(variance)
        detection.noise[table.case_id] = (sd, float(df))
        if not (sd > 0 and math.isfinite(sd)):
            continue  # no noise measured: no scale to judge a step by
        cuts = segment(means * math.sqrt(sessions) / sd, penalty)
        bounds = [0, *cuts, len(means)]
        detection.segments[table.case_id] = [
            (table.releases[a], table.releases[b - 1], float(means[a:b].mean())) for a, b in zip(bounds, bounds[1:])
        ]
        for a, k, b in zip(bounds, bounds[1:], bounds[2:]):
            se = sd * math.sqrt(1 / (sessions * (k - a)) + 1 / (sessions * (b - k)))
            detection.steps.append(
                Step(
                    table.case_id,
                    table.releases[k - 1],
                    table.releases[k],
                    float(means[k:b].mean() - means[a:k].mean()),
                    se,
                    float(df),
                    table.releases[a:k],
                    table.releases[k:b],
                )
            )
    return detection
