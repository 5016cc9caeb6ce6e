"""Sequential confirmation: more sessions for what a run left open, until it is decided or the time budget ends.

One helper for the gate (an `undecided` case), the history (a candidate
step) and bisect (an undecided probe). A question is a pair of releases and
the MLX cases to decide between them; each look is a targeted paired rerun
(bench.versions.paired) of just those two releases and those cases, with the
NumPy controls of their groups (model and size) beside them, appended to the
run's own measurements as further sessions. After each look the pair is
judged again by the one verdict engine (bench.versions.verdicts.compare_pair)
on every session so far; a case whose verdict is no longer `undecided` is
decided and leaves the next looks.

Repeated looks at growing data inflate false alarms: five looks at 1% each
call a null case a regression far more often than 1%. So the number of looks
is fixed in advance (MAX_LOOKS) and each is tested at alpha / MAX_LOOKS
(Bonferroni over the looks; Holm over the cases of a look, as in any
comparison), which keeps the confirmation's own false regressions within
alpha whatever the looks see (docs/releases.md, "Confirmation"). The `same`
verdict keeps its 95% interval per look: it is the safe side (a case wrongly
called `same` fails no gate).

The budget is wall time: a look is sized from the measured cost of a
case-session (the run's own, then the confirmation's), and a look that would
not fit in what is left is not started.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

from bench.versions import verdicts

MAX_LOOKS = 4  # fixed in advance: the Bonferroni divisor of alpha
SESSIONS_PER_LOOK = 2  # sessions each look adds (fewer when the budget is short)
BUDGET_SHARE = 0.25  # --confirm-budget's default: this share of the run's measuring time
RULE = f"Bonferroni over at most {MAX_LOOKS} looks: each at alpha / {MAX_LOOKS}, Holm over the cases of a look"


@dataclass
class Question:
    """The MLX cases to decide between two releases (older, newer are side labels)."""

    older: str
    newer: str
    case_ids: list[str]


@dataclass
class Outcome:
    """What the confirmation did: per (older, newer, case) the final verdict row, and why it stopped."""

    rows: dict = field(default_factory=dict)  # (older, newer, case_id) -> verdict row after the last look
    looks: dict = field(default_factory=dict)  # (older, newer, case_id) -> looks that included the case
    sessions_added: dict = field(default_factory=dict)  # (older, newer) -> sessions added
    stopped: str = ""  # "decided" | "budget" | "looks" | "nothing to confirm"
    seconds: float = 0.0
    alpha_per_look: float = math.nan

    def record(self, key: tuple) -> dict:
        """The saved summary of one case's confirmation."""
        row = self.rows.get(key, {})
        return {
            "verdict": row.get("verdict", "undecided"),
            "pct_change": row.get("pct_change"),
            "ci_low_pct": row.get("ci_low_pct"),
            "ci_high_pct": row.get("ci_high_pct"),
            "p_value_adjusted": row.get("p_value_adjusted"),
            "sessions": row.get("n_newer"),
            "looks": self.looks.get(key, 0),
            "sessions_added": self.sessions_added.get(key[:2], 0),
            "alpha_per_look": self.alpha_per_look,
            "rule": RULE,
            "stopped": self.stopped if row.get("verdict", "undecided") == "undecided" else "decided",
            "reason": row.get("reason", ""),
        }


def default_budget(measuring_s: float, given: float | None) -> float:
    """The confirmation's seconds: the one given (0: none), else BUDGET_SHARE of the run's measuring time."""
    return float(given) if given is not None else BUDGET_SHARE * max(measuring_s, 0.0)


def controls_of(case_ids: list[str], entries: list[dict]) -> list[dict]:
    """The entries of these cases and of the NumPy controls of their groups (model and size), in grid order."""
    groups = {
        (e["case"]["model"], e["size"]["n_examples"], e["size"]["n_features"])
        for e in entries
        if e["case_id"] in case_ids
    }
    return [
        e
        for e in entries
        if e["case_id"] in case_ids
        or (e["case"]["backend"] == "numpy" and (e["case"]["model"], e["size"]["n_examples"], e["size"]["n_features"]) in groups)
    ]  # fmt: skip


def _case_session_s(measurements: dict, case_ids: list[str]) -> float:
    """Seconds one session of one case with two releases costs, from the run's records (scaled to two sides)."""
    costs = []
    for case_id in case_ids:
        for record in measurements["cases"][case_id]["sessions"]:
            sides = max(len(record.get("times", {})), 1)
            if record.get("seconds"):
                costs.append(record["seconds"] * min(2 / sides, 1.0))
    return sum(costs) / len(costs) if costs else 1.0


def confirm(
    measurements: dict,
    sides: dict,
    questions: list[Question],
    entries: list[dict],
    settings,
    start_worker,
    threshold: float,
    alpha: float,
    budget_s: float,
    machine: str = "",
    progress=print,
    clock=time.perf_counter,
) -> Outcome:
    """Add sessions to `measurements` for each open question until decided, MAX_LOOKS looks, or budget_s seconds.

    sides: label -> bench.versions.paired.Side; entries: the run's case
    entries; alpha: the family-wise level the caller's question has (each
    look tests at alpha / MAX_LOOKS).
    """
    from bench.versions.paired import run_paired

    outcome = Outcome(alpha_per_look=alpha / MAX_LOOKS)
    open_cases = {(q.older, q.newer): list(dict.fromkeys(q.case_ids)) for q in questions if q.case_ids}
    if not open_cases:
        outcome.stopped = "nothing to confirm"
        return outcome
    start = clock()
    per_case_s = {pair: _case_session_s(measurements, ids) for pair, ids in open_cases.items()}
    progress(
        f"confirming {sum(map(len, open_cases.values()))} case(s) in {len(open_cases)} pair(s) of releases: up to "
        f"{MAX_LOOKS} looks of {SESSIONS_PER_LOOK} sessions, each at alpha {outcome.alpha_per_look:.3g}, "
        f"within {budget_s:.0f} s"
    )
    outcome.stopped = "looks"
    for look in range(1, MAX_LOOKS + 1):
        if not open_cases:
            outcome.stopped = "decided"
            break
        chosen = {pair: controls_of(ids, entries) for pair, ids in open_cases.items()}
        session_s = sum(per_case_s[pair] * len(chosen[pair]) for pair in chosen)  # one session of every open pair
        left = budget_s - (clock() - start)
        sessions = min(SESSIONS_PER_LOOK, int(left // session_s) if session_s > 0 else SESSIONS_PER_LOOK)
        if sessions < 1:
            outcome.stopped = "budget"
            break
        for pair, cases in chosen.items():
            first = len(measurements["sessions"])
            began = clock()
            rerun = replace(settings, sessions=sessions, first_session=first, seed=settings.seed + 1_000 * look)
            run_paired([sides[pair[0]], sides[pair[1]]], cases, rerun, start_worker, progress, measurements)
            per_case_s[pair] = (clock() - began) / (sessions * len(cases))
            outcome.sessions_added[pair] = outcome.sessions_added.get(pair, 0) + sessions
            view = {"cases": {e["case_id"]: measurements["cases"][e["case_id"]] for e in cases}}
            _, rows = verdicts.compare_pair(view, pair[0], pair[1], threshold, outcome.alpha_per_look, machine)
            for row in rows:
                key = (*pair, row["case_id"])
                if row["case_id"] in open_cases[pair]:
                    outcome.rows[key] = row
                    outcome.looks[key] = look
            open_cases[pair] = [c for c in open_cases[pair] if outcome.rows[(*pair, c)]["verdict"] == "undecided"]
        open_cases = {pair: ids for pair, ids in open_cases.items() if ids}
        decided = sum(1 for key, row in outcome.rows.items() if row["verdict"] != "undecided")
        progress(f"  look {look}: {sessions} session(s) added; decided so far {decided} of {len(outcome.rows)}")
    else:
        if not open_cases:
            outcome.stopped = "decided"
    outcome.seconds = clock() - start
    return outcome


def step_candidates(found: list[dict], detections: dict, threshold: float) -> list[dict]:
    """The MLX steps worth more sessions: an interval reaching both sides of the threshold (the size is not
    settled), or a step whose t^2 is under twice the detector's penalty (its detection is marginal)."""
    limit = 100 * threshold
    chosen = []
    for step in found:
        if step["control"]:
            continue
        low, high = step["ci_low_pct"], step["ci_high_pct"]
        unsettled = (low < limit < high) or (low < -limit < high)
        penalty = detections[step["backend"]].penalty if step["backend"] in detections else math.nan
        marginal = math.isfinite(penalty) and step["t"] ** 2 < 2 * penalty
        if unsettled or marginal:
            chosen.append(step)
    return chosen


def apply_to_steps(found: list[dict], outcome, small: str) -> None:
    """Each confirmed step takes its confirmation's word: a significant step beyond the threshold is a change point,
    one within it is small, an undecided one stays as the detector found it; `confirmation` says which."""
    for step in found:
        key = (step["older"], step["newer"], step["case_id"])
        if key not in outcome.rows:
            continue
        step["confirmation"] = summary = outcome.record(key)
        step["detector_verdict"] = step["verdict"]
        if summary["verdict"] in ("regression", "faster"):
            step["verdict"] = summary["verdict"]
        elif summary["verdict"] == "same":
            step["verdict"] = small
