"""Where a figure's variance lies: between rounds, between passes, between runs (docs/measurement.md, "Where the variance lies").

Kalibera and Jones ("Rigorous benchmarking in reasonable time") measure the variance at each
level of an experiment and spend repetitions where it is. A case's log round times in one run
have two levels: rounds within a pass (one process, one moment) and passes (new processes,
minutes apart). A nested analysis of variance separates them, by the method of moments:

    within-pass variance  s_r^2 = mean over passes of the rounds' sample variance
    between-pass variance s_p^2 = max(0, var(pass means) - s_r^2 / r)

with r rounds a pass. The third level, between runs, is the run term (bench.stats.run_terms),
estimated from pairs of runs; it grows with a figure's noise, so a cell's is read at its median
pass variance, s_p^2 + s_r^2 / r. The figures are summarised per backend and size class (the
median over its cases) and saved with the run (machine_info["variance_components"]).

From them and the cost of a pass and of a round, Kalibera and Jones' rule gives the rounds a
pass that buy the most precision per machine-minute (a pass's cost as the session paid it,
its worker's start shared by the cases of its group: bench.engine.pass_costs):

    r* = sqrt((cost of a pass, rounds aside) / (cost of a round) * s_r^2 / s_p^2)

and the rest of the budget goes to passes. The run's own figures are printed beside the
rounds it used, so a reader sees whether the plan fits the machine.
"""

from __future__ import annotations

import math

import numpy as np

from bench.stats.run_terms import RunTerms, size_class


def nested_components(round_times, round_pass) -> tuple[float, float, int] | None:
    """(within-pass variance, between-pass variance, rounds a pass) of one case's log round times; None without
    two passes of two rounds."""
    times = np.log(np.asarray(round_times, dtype=float))
    labels = np.asarray(round_pass)
    groups = [times[labels == p] for p in np.unique(labels)]
    groups = [g for g in groups if len(g) >= 2]
    if len(groups) < 2:
        return None
    rounds = int(np.median([len(g) for g in groups]))
    within = float(np.mean([np.var(g, ddof=1) for g in groups]))
    between = max(0.0, float(np.var([np.mean(g) for g in groups], ddof=1)) - within / rounds)
    return within, between, rounds


def summarise(infos: list[dict], run_terms: RunTerms) -> dict[str, dict]:
    """Per backend and size class: the median within-pass and between-pass standard deviations of the cases'
    log round times, the run term's, in %, how many cases, and the rounds a pass Kalibera and Jones' rule asks for
    (from the cost of a pass and of a round saved with each case)."""
    cells: dict[str, list] = {}
    for info in infos:
        found = nested_components(info.get("round_times_s") or [], info.get("round_pass") or [])
        if found is None:
            continue
        key = f"{info.get('backend')}/{size_class(info.get('n_examples'), info.get('n_features'))}"
        cells.setdefault(key, []).append((found, info))
    summary = {}
    for key, members in sorted(cells.items()):
        within = float(np.median([m[0][0] for m in members]))
        between = float(np.median([m[0][1] for m in members]))
        term = run_terms.for_figure("steps", members[0][1])  # one cell: its cases share the term
        # The term grows with a figure's noise (bench.stats.run_terms): read at the cell's typical pass variance.
        noise = float(np.median([b + w / r for (w, b, r), _ in members]))
        costs = [
            optimal_rounds(w, b, info.get("pass_overhead_s"), info.get("median_round_s")) for (w, b, _), info in members
        ]
        costs = [c for c in costs if c is not None]
        optimal = float(np.median(costs)) if costs else None
        summary[key] = {
            "cases": len(members),
            "rounds_per_pass": int(np.median([m[0][2] for m in members])),
            "within_pass_sd_pct": _pct(within),
            "between_pass_sd_pct": _pct(between),
            "between_run_sd_pct": _pct(term.between(noise)),
            # Saved as JSON: a rule without a bound (passes that do not vary beyond their rounds) is said, not inf.
            "optimal_rounds_per_pass": optimal if optimal is None or math.isfinite(optimal) else None,
            "rounds_unbounded": optimal is not None and math.isinf(optimal),
        }
    return summary


def optimal_rounds(within: float, between: float, pass_cost_s, round_s) -> float | None:
    """Kalibera and Jones' rounds a pass, r* = sqrt(pass cost / round cost * within / between); None where a figure
    is missing, infinity where passes do not vary beyond their rounds."""
    try:
        pass_cost_s, round_s = float(pass_cost_s), float(round_s)
    except (TypeError, ValueError):
        return None
    if not (pass_cost_s > 0 and round_s > 0 and within >= 0):
        return None
    if between <= 0:
        return math.inf
    return math.sqrt(pass_cost_s / round_s * within / between)


def _pct(variance: float) -> float:
    return 100 * math.expm1(math.sqrt(max(variance, 0.0)))


def describe(summary: dict[str, dict]) -> list[str]:
    """One line per backend and size class, for the terminal."""
    lines = []
    for key, cell in summary.items():
        optimal = cell["optimal_rounds_per_pass"]
        advice = "" if optimal is None else f"; rounds a pass for the most precision per minute: {optimal:.1f}"
        if cell.get("rounds_unbounded"):  # the passes did not vary beyond their rounds
            advice = "; rounds a pass for the most precision per minute: as many as the time allows"
        lines.append(
            f"  {key}: {cell['cases']} cases; sd of a round {cell['within_pass_sd_pct']:.1f}%, of a pass "
            f"{cell['between_pass_sd_pct']:.1f}% (beyond its {cell['rounds_per_pass']} rounds), of a run "
            f"{cell['between_run_sd_pct']:.1f}%{advice}"
        )
    return lines
