"""Verdicts from paired timings: per case, is the newer release slower, faster, the same, or undecided?

The unit is the worker process (a session), not the round: each process has a
lasting offset per case, so rounds of one process are not independent. Per
session, the case's change is the median over its blocks of log(newer round /
older round), blocks being neighbouring rounds of both releases. Across
sessions: the mean of those medians, with a t-interval whose variance is
moderated towards the typical variance of all cases of the comparison (a few
sessions can agree by luck; see "Compare MLX releases" in the README).

- regression: slower, one-sided test significant after Holm's correction over
  the MLX cases at `alpha` (1%), and the estimate beyond the threshold;
- faster: the same towards faster;
- same: the 95% interval of the change lies inside +-threshold;
- undecided: anything else (and always with fewer than 3 sessions), with the
  smallest change these sessions could have detected and the number of
  sessions needed to detect the threshold;
- broken: the newer release's case crashed, timed out, or failed its barrier
  or correctness check in any session (the error is the reason). A broken
  case is never silent: it comes first in every table and fails the gate.

NumPy cases are controls: their code is identical in every environment. A
control that moved (significant after Holm over the controls, and by more than
half the threshold) makes the MLX verdicts of its own group (model and size)
`inconclusive`; the controls moving together makes the whole comparison
`inconclusive`.
"""

from __future__ import annotations

import math
import statistics

import numpy as np
from scipy import stats

DEFAULT_ALPHA = 0.01
PRIOR_DF = 4  # weight, in sessions, of the typical variance in each case's moderated variance
MAX_SESSIONS_NEEDED = 200
MIN_SESSIONS_FOR_VERDICT = 3  # fewer sessions are never a regression or faster: 2 processes can agree by luck
METHOD = "paired"
VERDICTS = ("broken", "regression", "faster", "same", "undecided", "inconclusive")


def session_changes(record_sessions: list[dict], older: str, newer: str) -> list[float]:
    """Per session without errors for these releases: the median log(newer / older) over its blocks."""
    changes = []
    for record in record_sessions:
        if older in record.get("errors", {}) or newer in record.get("errors", {}):
            continue
        a, b = record["times"].get(older, []), record["times"].get(newer, [])
        if not a or len(a) != len(b):
            continue
        changes.append(statistics.median(math.log(y / x) for x, y in zip(a, b) if x > 0 and y > 0))
    return changes


def newer_errors(record_sessions: list[dict], newer: str) -> list[str]:
    """The newer release's errors of a case, one per session that had one (crash, timeout, failed check)."""
    return [record["errors"][newer] for record in record_sessions if newer in record.get("errors", {})]


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error), in the input order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def _pct(log_ratio: float) -> float:
    return (math.exp(log_ratio) - 1.0) * 100.0


def sessions_needed(sd: float, threshold: float, alpha_per_test: float, prior_var: float) -> int | None:
    """Sessions whose t-test would detect a change of `threshold` at this noise; None past MAX_SESSIONS_NEEDED."""
    effect = math.log1p(threshold)
    variance = sd * sd
    for n in range(2, MAX_SESSIONS_NEEDED + 1):
        df = n - 1 + PRIOR_DF
        var = ((n - 1) * variance + PRIOR_DF * prior_var) / df
        if stats.t.ppf(1 - alpha_per_test, df) * math.sqrt(var / n) < effect:
            return n
    return None


def case_statistics(changes: list[float], prior_var: float) -> dict:
    """Mean, moderated standard error and degrees of freedom of a case's session changes."""
    n = len(changes)
    mean = float(np.mean(changes)) if n else float("nan")
    sd = float(np.std(changes, ddof=1)) if n > 1 else float("nan")
    if n < 2:
        return {"n": n, "mean": mean, "sd": sd, "se": float("nan"), "df": 0}
    df = n - 1 + PRIOR_DF
    var = ((n - 1) * sd * sd + PRIOR_DF * prior_var) / df
    return {"n": n, "mean": mean, "sd": sd, "se": math.sqrt(var / n), "df": df}


def compare_pair(
    measurements: dict, older: str, newer: str, threshold: float, alpha: float = DEFAULT_ALPHA, machine: str = ""
) -> tuple[dict, list[dict]]:
    """(comparison, verdict rows) of one older/newer pair from a paired run's measurements."""
    cases = measurements["cases"]
    changes = {cid: session_changes(c["sessions"], older, newer) for cid, c in cases.items()}
    variances = [
        float(np.var(v, ddof=1))
        for cid, v in changes.items()
        if len(v) > 1 and cases[cid]["case"]["backend"] != "numpy"
    ]
    prior_var = float(np.median(variances)) if variances else 0.0
    rows = []
    for cid, case in cases.items():
        st = case_statistics(changes[cid], prior_var)
        row = {
            "machine": machine,
            "case_id": cid,
            "model": case["case"]["model"],
            "backend": case["case"]["backend"],
            "control": case["case"]["backend"] == "numpy",
            "older": older,
            "newer": newer,
            "pct_change": _pct(st["mean"]) if st["n"] else float("nan"),
            "ci_low_pct": float("nan"),
            "ci_high_pct": float("nan"),
            "p_value": float("nan"),
            "p_value_adjusted": float("nan"),
            "verdict": "undecided",
            "min_detectable_pct": float("nan"),
            "passes_needed": None,
            "n_older": st["n"],
            "n_newer": st["n"],
            "method": METHOD,
            "reason": "",
            "noise_pct": _pct(st["sd"]) if st["n"] > 1 else float("nan"),
            "steps_per_round": case.get("steps_per_round", case.get("steps")),  # "steps" in files before the engine
            "_stats": st,
        }
        if st["n"] >= 2:
            if st["se"] > 0:
                t_value = st["mean"] / st["se"]
                row["p_value"] = float(stats.t.sf(t_value, st["df"]))
                row["_p_less"] = float(stats.t.cdf(t_value, st["df"]))
                half = stats.t.ppf(0.975, st["df"]) * st["se"]
            else:  # every session identical (a fake, or a clock too coarse): no spread to test against
                row["p_value"] = 0.0 if st["mean"] > 0 else 1.0
                row["_p_less"] = 0.0 if st["mean"] < 0 else 1.0
                half = 0.0
            row["ci_low_pct"], row["ci_high_pct"] = _pct(st["mean"] - half), _pct(st["mean"] + half)
        else:
            errors = sorted({e for s in case["sessions"] for e in s.get("errors", {}).values()})
            row["reason"] = f"{st['n']} session(s) with timings of both releases" + (f": {errors[0]}" if errors else "")
        rows.append(row)

    for control in (False, True):
        family = [r for r in rows if r["control"] is control and not math.isnan(r["p_value"])]
        if not family:
            continue
        if control:  # a control may move either way: two-sided
            two_sided = holm([min(1.0, 2 * min(r["p_value"], r["_p_less"])) for r in family])
            for row, p in zip(family, two_sided):
                row["p_value_adjusted"] = p
                row["_p_less_adjusted"] = p
        else:
            for row, p, q in zip(family, holm([r["p_value"] for r in family]), holm([r["_p_less"] for r in family])):
                row["p_value_adjusted"], row["_p_less_adjusted"] = p, q
        per_test = alpha / len(family)  # Holm's first step: the smallest change any case could be flagged at
        for row in family:
            st = row["_stats"]
            row["min_detectable_pct"] = _pct(stats.t.ppf(1 - per_test, st["df"]) * st["se"])
            row["passes_needed"] = sessions_needed(st["sd"], threshold, per_test, prior_var)
            row["verdict"], row["reason"] = _verdict(row, threshold, alpha)

    comparison = {"older": older, "newer": newer, "status": "ok", "reason": ""}
    _judge_by_controls(rows, cases, comparison, threshold, alpha)
    for row in rows:
        broken = newer_errors(cases[row["case_id"]]["sessions"], newer)
        if broken:
            row["verdict"] = "broken"
            row["reason"] = f"{newer} failed in {len(broken)} session(s): {broken[0]}"
    for row in rows:
        # p_value is the test for a slowdown; keep the test for a speed-up beside it (a faster row's evidence).
        row["p_faster"] = row.get("_p_less", float("nan"))
        row["p_faster_adjusted"] = row.get("_p_less_adjusted", float("nan"))
        for key in [k for k in row if k.startswith("_")]:
            del row[key]
    return comparison, rows


def _group(case: dict) -> tuple:
    """The group a control judges: model and size."""
    return case["case"]["model"], case["size"]["n_examples"], case["size"]["n_features"]


def _judge_by_controls(rows: list[dict], cases: dict, comparison: dict, threshold: float, alpha: float) -> None:
    """A NumPy control that moved voids the MLX verdicts of its own group; a shift common to the controls, all.

    A control moved when it is significant (two-sided, Holm over the controls)
    and beyond half the threshold. Its group's MLX rows become `inconclusive`:
    something other than MLX changed their timings. When the controls moved
    together (the median of their changes beyond half the threshold and their
    mean significant at alpha), the machine changed between the releases'
    timings and the whole comparison is inconclusive.
    """
    controls = [r for r in rows if r["control"] and not math.isnan(r["p_value"])]
    moved = [r for r in controls if r["p_value_adjusted"] < alpha and abs(r["pct_change"]) > 50 * threshold]
    voided: dict[tuple, list[dict]] = {}
    for row in moved:
        voided.setdefault(_group(cases[row["case_id"]]), []).append(row)
    for row in rows:
        group_moved = voided.get(_group(cases[row["case_id"]]))
        if row["control"] or not group_moved:
            continue
        names = ", ".join(f"{r['case_id']} {r['pct_change']:+.1f}%" for r in group_moved[:2])
        row["verdict"] = "inconclusive"
        row["reason"] = (
            f"the NumPy control of its model and size moved ({names}), though its code is identical in both "
            "environments: something besides MLX changed this group's timings"
        )
    changes = [math.log1p(r["pct_change"] / 100) for r in controls]
    if len(changes) >= 3:
        shift = float(np.median(changes))
        p_shift = float(stats.ttest_1samp(changes, 0.0).pvalue) if np.std(changes) > 0 else 0.0
        if abs(_pct(shift)) > 50 * threshold and p_shift < alpha:
            comparison.update(
                status="inconclusive",
                reason=f"the {len(changes)} NumPy controls moved together by {_pct(shift):+.1f}% (median; p = {p_shift:.2g}): "
                "the machine ran differently for the two releases' timings",
            )
    if voided and comparison["status"] == "ok":
        comparison["reason"] = (
            f"{len(moved)} NumPy control(s) moved ("
            + ", ".join(f"{r['case_id']} {r['pct_change']:+.1f}%" for r in moved[:3])
            + "); the MLX verdicts of their group(s) are inconclusive: "
            + ", ".join(f"{m} at {n}x{d}" for m, n, d in voided)
        )


def _verdict(row: dict, threshold: float, alpha: float) -> tuple[str, str]:
    limit = threshold * 100
    if row["n_older"] < MIN_SESSIONS_FOR_VERDICT:
        return "undecided", f"{row['n_older']} sessions; a verdict needs at least {MIN_SESSIONS_FOR_VERDICT}"
    if row["p_value_adjusted"] < alpha and row["pct_change"] > limit:
        return "regression", ""
    if row["_p_less_adjusted"] < alpha and row["pct_change"] < -limit:
        return "faster", ""
    if -limit < row["ci_low_pct"] and row["ci_high_pct"] < limit:
        return "same", ""
    if row["p_value_adjusted"] < alpha and row["pct_change"] > 0:
        return "undecided", f"slower by {row['pct_change']:.1f}%, significant but not beyond the {limit:g}% threshold"
    needed = row["passes_needed"]
    more = f"; about {needed} sessions would detect {limit:g}%" if needed else ""
    return "undecided", f"the smallest change these sessions could detect is {row['min_detectable_pct']:.1f}%{more}"
