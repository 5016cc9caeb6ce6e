"""Verdicts from paired timings: per case, is the newer release slower, faster, the same, broken, or undecided?

The unit is the worker process (a session), not the round: each process has a
lasting offset per case, so rounds of one process are not independent. Per
session, the case's change is the median over its blocks of log(newer round /
older round), blocks being neighbouring rounds of both releases. Across
sessions: their mean, their variance and the number of sessions go to the one
verdict engine (bench.stats.verdict_engine), which the report's run-level
comparison uses too: the noise prior (never below a case's own variance, none
under ten cases), Holm over the MLX cases, the verdicts, the controls that
judge their own group, the exit codes.

Besides the engine's verdicts a case is `broken` when the newer release's case
crashed, timed out, or failed its barrier or correctness check in any session
(the error is the reason): never silent, first in every table, and it fails
the gate.
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
from scipy import stats

from bench.stats import verdict_engine as engine

DEFAULT_ALPHA = engine.ALPHA
METHOD = "paired"
VERDICTS = engine.VERDICTS
MIN_SESSIONS_FOR_VERDICT = engine.MIN_SAMPLES


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


def _group(case: dict) -> str:
    """The group a control judges: model and size."""
    return f"{case['case']['model']}-n{case['size']['n_examples']}-d{case['size']['n_features']}"


def compare_pair(
    measurements: dict, older: str, newer: str, threshold: float, alpha: float = DEFAULT_ALPHA, machine: str = ""
) -> tuple[dict, list[dict]]:
    """(comparison, verdict rows) of one older/newer pair from a paired run's measurements."""
    cases = measurements["cases"]
    ids = list(cases)
    changes = {cid: session_changes(cases[cid]["sessions"], older, newer) for cid in ids}
    n = np.array([len(changes[cid]) for cid in ids], dtype=float)
    mean = np.array([float(np.mean(changes[cid])) if changes[cid] else np.nan for cid in ids])
    variance = np.array([float(np.var(changes[cid], ddof=1)) if len(changes[cid]) > 1 else np.nan for cid in ids])
    control = np.array([cases[cid]["case"]["backend"] == "numpy" for cid in ids], dtype=bool)
    dfs = np.maximum(n - 1, 0)
    # Each backend's prior of its own (bench.stats.verdict_engine.moderate): the MLX cases' noise never sets a control's.
    backends = [cases[cid]["case"]["backend"] for cid in ids]
    noise, noise_df = engine.moderate(variance, dfs, backends)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.sqrt(noise / n)
    tests = pd.DataFrame(
        {
            "case_id": ids,
            "group": [_group(cases[cid]) for cid in ids],
            "control": control,
            "older": older,
            "newer": newer,
            "delta": mean,
            "se": se,
            "df": noise_df,
            "noise": noise,
            "n_older": n.astype(int),
            "n_newer": n.astype(int),
        }
    )
    tests = engine.decide(tests, threshold, alpha, paired=True)
    moved = engine.void_groups(tests, threshold, alpha)
    comparison = {"older": older, "newer": newer, "status": "ok", "reason": ""}
    controls = tests[tests["control"] & np.isfinite(tests["delta"])]
    if len(controls) >= 3:
        shift = float(np.median(controls["delta"]))
        spread = float(np.std(controls["delta"], ddof=1))
        p_shift = float(stats.ttest_1samp(controls["delta"], 0.0).pvalue) if spread > 0 else (0.0 if shift else 1.0)
        status, reason = engine.common_shift_status(float(engine.pct(shift)), p_shift, len(controls), threshold)
        comparison.update(status=status, reason=reason)
    if len(moved) and comparison["status"] == "ok":
        comparison["reason"] = (
            f"{len(moved)} NumPy control(s) moved ("
            + ", ".join(f"{r['case_id']} {r['pct_change']:+.1f}%" for _, r in moved.head(3).iterrows())
            + "); the MLX verdicts of their group(s) are inconclusive: "
            + ", ".join(dict.fromkeys(moved["group"]))
        )
    rows = []
    for index, cid in enumerate(ids):
        test, case = tests.iloc[index], cases[cid]
        row = {
            "machine": machine,
            "case_id": cid,
            "model": case["case"]["model"],
            "backend": case["case"]["backend"],
            "control": bool(control[index]),
            "older": older,
            "newer": newer,
            **{key: _plain(test[key]) for key in engine.DECISION_FIELDS},
            "n_older": int(n[index]),
            "n_newer": int(n[index]),
            "method": METHOD,
            "steps_per_round": case.get("steps_per_round", case.get("steps")),  # "steps" in files before the engine
        }
        if not changes[cid]:
            errors = sorted({e for s in case["sessions"] for e in s.get("errors", {}).values()})
            row["reason"] = "0 session(s) with timings of both releases" + (f": {errors[0]}" if errors else "")
        broken = newer_errors(case["sessions"], newer)
        if broken:
            row["verdict"] = "broken"
            row["reason"] = f"{newer} failed in {len(broken)} session(s): {broken[0]}"
        rows.append(row)
    return comparison, rows


def _plain(value):
    """A pandas or NumPy scalar as plain Python (JSON-ready); missing as NaN or None."""
    if value is pd.NA or value is None:
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value
