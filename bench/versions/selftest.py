"""`--self-test RELEASE`: the gate checks itself on this machine, and can fail where the gate fails.

One release in two environments, labelled as two releases (A and B), timed
paired exactly like a real comparison, with plants in B:

- **slowdowns** in many MLX cases at 0.5x to 2x the threshold, multiplicative
  (before its steps, each timed round busies its thread for the factor's
  share of the round's work, counted in the thread's CPU time, so that the
  machine's drift and whatever else takes the CPU lengthen the plant as they
  lengthen real work: bench.engine.runner);
  each is scored against the slowdown actually applied, and their detection
  rate by size is the detection curve. At 2x the threshold, at least 95% of
  the plants (19 of 20) must come out `regression`;
  and the slowdown applied must lie within the measured 95% interval about as
  often as a 95% interval promises (the gate measures a change at its size);
- **broken cases**: one returns weights 1% off, one skips its barrier; both
  must come out `broken`;
- **leftovers**: one case leaves a spinning thread behind, one holds memory;
  the case after each must stay an A/A `same` (the isolation policy,
  bench.engine.isolation; MLX_SGD_BENCH_ISOLATION=off shows what they do
  without the check).

Every other MLX case is an A/A comparison. Their calibration is measured: the
p-values must look uniform (a Kolmogorov-Smirnov test) and the 95% intervals
must not cover 0 significantly less often than 95% of the time (COVERAGE_ALPHA). Sessions alternate the grid's order and
its reverse; the A/A changes of the two orders must agree (no systematic
order effect across cases).

Status and exit code: pass 0; regression 1 (a false regression or a false
`broken` among the A/A cases: the gate would fail a good release);
inconclusive 4 (the NumPy controls moved together); unfit 5 (the gate is
blind or miscalibrated here: plants at 2x missed, a broken plant passed, the
p-values or intervals off, or the two orders disagree; the reasons are
listed). `fit_to_gate` is a pass whose median smallest detectable change is
within twice the threshold: a change is called only when significant *and*
beyond the threshold, so no change of exactly the threshold is caught with 80%
power, while one of twice the threshold (the size the plants have) should be.
"""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter
from pathlib import Path

import numpy as np
from scipy import stats

from bench.stats.intervals import mean_interval
from bench.versions import verdict_files, verdicts
from bench.versions.common import EXIT_OK, EXIT_REGRESSION
from bench.versions.common import EXIT_UNFIT as EXIT_UNFIT
from bench.versions.compare import EXIT_INCONCLUSIVE, judge, machine_label, measure, settings_record
from bench.versions.modes import SelfTestSettings
from bench.versions.paired import PairedSettings, Side
from bench.versions.targets import Target

STATUS_EXIT = {"pass": EXIT_OK, "regression": EXIT_REGRESSION, "inconclusive": EXIT_INCONCLUSIVE, "unfit": EXIT_UNFIT}
# Planted slowdowns as multiples of the threshold, and how many cases get each: 20 at twice the
# threshold (at least 19 must be caught), fewer at the sizes that draw the rest of the curve.
PLANT_MULTIPLES = {2.0: 20, 1.5: 4, 1.0: 4, 0.75: 4, 0.5: 4}
CATCH_AT_TWICE = 0.95  # share of the 2x plants that must come out `regression`
# The A/A intervals are 95% intervals: too few covering 0 is overconfidence. Judged by a one-sided binomial test
# (scipy.stats.binomtest) at COVERAGE_ALPHA rather than a fixed share, which at a self-test's fifty cases would be
# either too lenient (90%) or fail a calibrated gate by chance a third of the time (93%).
COVERAGE_ALPHA = 0.01
UNIFORM_ALPHA = 0.001  # a KS test of the A/A p-values against uniform below this: miscalibrated
ORDER_ALPHA = 0.01  # grid order against reversed order, across the A/A cases
LEFTOVER_KINDS = ("spin", "memory")


def _group(entry: dict) -> tuple:
    case, size = entry["case"], entry["size"]
    return case["model"], case["backend"], size["n_examples"], size["n_features"]


def choose_leftovers(cases: list[dict], avoid: set[str]) -> dict[str, str]:
    """case_id -> leftover kind: MLX cases followed, in grid order, by another unplanted case of their group."""
    chosen, used_groups = {}, set()
    kinds = list(LEFTOVER_KINDS)
    for entry, following in zip(cases, cases[1:]):
        if not kinds:
            break
        if entry["case"]["backend"] != "mlx" or _group(entry) != _group(following) or _group(entry) in used_groups:
            continue
        if entry["case_id"] in avoid or following["case_id"] in avoid:
            continue
        chosen[entry["case_id"]] = kinds.pop(0)
        used_groups.add(_group(entry))
    return chosen


def after_leftovers(cases: list[dict], leftovers: dict[str, str]) -> dict[str, str]:
    """case_id of a leftover plant -> the case timed right after it (grid order)."""
    ids = [c["case_id"] for c in cases]
    return {case_id: ids[ids.index(case_id) + 1] for case_id in leftovers if ids.index(case_id) + 1 < len(ids)}


def choose_broken(cases: list[dict]) -> dict[str, str]:
    """case_id -> broken plant: wrong weights in an MLX case, a skipped barrier in an MLX linear full-batch round."""
    mlx = [c for c in cases if c["case"]["backend"] == "mlx"]
    barrier = [
        c
        for c in mlx
        if c["case"]["model"] in ("linear", "logistic")
        and c["case"]["barrier"] == "round"
        and not c["case"].get("batch_size")
    ]
    chosen = {}
    if barrier:
        chosen[barrier[len(barrier) // 2]["case_id"]] = "barrier"
    rest = [c for c in mlx if c["case_id"] not in chosen]
    if rest:
        chosen[rest[len(rest) // 3]["case_id"]] = "weights"
    return chosen


def choose_plants(cases: list[dict], threshold: float, avoid: set[str], seed: int = 0) -> dict[str, float]:
    """case_id -> slowdown fraction: MLX cases spread over the grid, at the multiples of PLANT_MULTIPLES."""
    candidates = [c["case_id"] for c in cases if c["case"]["backend"] == "mlx" and c["case_id"] not in avoid]
    twice = [2.0] * PLANT_MULTIPLES[2.0]
    others = [
        m
        for count in range(max(PLANT_MULTIPLES.values()))
        for m in PLANT_MULTIPLES
        if m != 2.0 and count < PLANT_MULTIPLES[m]
    ]
    # Twice the threshold and the other sizes in turn, so a small grid still gets some of each.
    multiples = [m for pair in zip(twice, others) for m in pair] + twice[len(others) :] + others[len(twice) :]
    # Leave most MLX cases unplanted: the A/A comparisons are half of what the self-test measures.
    multiples = multiples[: max(1, min(len(multiples), len(candidates) // 3))]
    random.Random(seed).shuffle(multiples)
    step = len(candidates) / len(multiples) if candidates else 1
    chosen = [candidates[int(i * step)] for i in range(len(multiples)) if candidates]
    return {case_id: multiple * threshold for case_id, multiple in zip(chosen, multiples)}


def applied_slowdowns(measurements: dict, label: str, plants: dict[str, float]) -> dict[str, float]:
    """case_id -> the slowdown the worker actually applied (%): per session the median round ratio, then the mean."""
    applied = {}
    for case_id in plants:
        per_session = [
            statistics.median(record["planted"][label])
            for record in measurements["cases"][case_id]["sessions"]
            if record.get("planted", {}).get(label)
        ]
        if per_session:
            applied[case_id] = (statistics.fmean(per_session) - 1) * 100
    return applied


def order_agreement(measurements: dict, older: str, newer: str, case_ids: list[str]) -> dict:
    """The A/A changes of grid-order sessions against reversed-order ones: mean difference, its interval, a t-test."""
    differences = []
    for case_id in case_ids:
        sessions = measurements["cases"][case_id]["sessions"]
        grid = verdicts.session_changes([s for s in sessions if s["session"] % 2 == 0], older, newer)
        reverse = verdicts.session_changes([s for s in sessions if s["session"] % 2 == 1], older, newer)
        if grid and reverse:
            differences.append(statistics.fmean(reverse) - statistics.fmean(grid))
    if len(differences) < 3:
        return {"cases": len(differences), "agree": None, "reason": "fewer than 3 cases timed in both orders"}
    interval = mean_interval(differences)
    p_value = float(stats.ttest_1samp(differences, 0.0).pvalue) if interval.se > 0 else 1.0
    low, high = interval.low_high  # a zero spread gives a zero-width interval
    return {
        "cases": len(differences),
        "mean_difference_pct": math.expm1(interval.centre) * 100,
        "ci_low_pct": (low - 1) * 100,
        "ci_high_pct": (high - 1) * 100,
        "p_value": p_value,
        "agree": p_value >= ORDER_ALPHA,
    }


def calibration(aa: list[dict]) -> dict:
    """How honest the A/A verdicts are: KS test of the two-sided p-values against uniform; coverage of 0."""
    p_values = [
        min(1.0, 2 * min(r.get("p_slower", r["p_value"]), r.get("p_faster", r["p_value"])))
        for r in aa
        if r["p_value"] == r["p_value"] and r.get("p_faster", 0) == r.get("p_faster", 0)
    ]
    intervals = [r for r in aa if r["ci_low_pct"] == r["ci_low_pct"] and r["ci_high_pct"] == r["ci_high_pct"]]
    covering = sum(r["ci_low_pct"] <= 0 <= r["ci_high_pct"] for r in intervals)
    coverage = covering / len(intervals) if intervals else None
    test = _coverage_test(covering, len(intervals)) if intervals else None
    band = test.proportion_ci(0.95, method="exact") if test else None
    ks = stats.kstest(p_values, "uniform") if len(p_values) >= 5 else None
    return {
        "cases": len(p_values),
        "ks_statistic": float(ks.statistic) if ks else None,
        "ks_p_value": float(ks.pvalue) if ks else None,
        "p_below_0_01": sum(p < 0.01 for p in p_values) / len(p_values) if p_values else None,
        "p_below_0_05": sum(p < 0.05 for p in p_values) / len(p_values) if p_values else None,
        "coverage_95": coverage,
        "coverage_95_low": None if band is None else float(band.low),
        "coverage_95_high": None if band is None else float(band.high),
        "coverage_p_value": None if test is None else float(test.pvalue),
        "uniform": None if ks is None else bool(ks.pvalue >= UNIFORM_ALPHA),
        "covered": None if test is None else bool(test.pvalue >= COVERAGE_ALPHA),
    }


def plant_sizes(planted: list[dict]) -> dict:
    """Whether the gate measures a change at its size: the applied slowdown within each plant's 95% interval.

    A gate that catches every plant but reads +28% where +20% was applied
    overstates every real change. Judged like the A/A coverage (a one-sided
    binomial test at COVERAGE_ALPHA): a calibrated gate's few misses pass.
    """
    known = [
        p["ci_low_pct"] <= p["applied_pct"] <= p["ci_high_pct"]
        for p in planted
        if p["applied_pct"] is not None and not np.isnan([p["ci_low_pct"], p["ci_high_pct"]]).any()
    ]
    if not known:
        return {"plants": 0, "within": 0, "share": None, "p_value": None, "covered": None}
    within = sum(known)
    test = _coverage_test(within, len(known))
    return {
        "plants": len(known),
        "within": within,
        "share": within / len(known),
        "p_value": float(test.pvalue),
        "covered": bool(test.pvalue >= COVERAGE_ALPHA),
    }


def _coverage_test(covering: int, intervals: int):
    """Whether 95% intervals hold their truth less often than 95% (one-sided binomial test; covered: p >= COVERAGE_ALPHA)."""
    return stats.binomtest(covering, intervals, 0.95, alternative="less")


def detection_curve(planted: list[dict], threshold: float) -> list[dict]:
    """Per plant size (as a multiple of the threshold): plants, caught, measured and applied slowdowns."""
    curve = []
    for multiple in sorted({p["multiple"] for p in planted}):
        these = [p for p in planted if p["multiple"] == multiple]
        curve.append(
            {
                "multiple": multiple,
                "slowdown_pct": multiple * threshold * 100,
                "plants": len(these),
                "caught": sum(p["caught"] for p in these),
                "detection_rate": sum(p["caught"] for p in these) / len(these),
                "applied_pct_median": statistics.median(p["applied_pct"] for p in these if p["applied_pct"] is not None)
                if any(p["applied_pct"] is not None for p in these)
                else None,
                "measured_pct_median": statistics.median(p["pct_change"] for p in these),
            }
        )
    return curve


def summarize(
    comparison: dict,
    rows: list[dict],
    plants: dict[str, float],
    threshold: float,
    leftovers: dict[str, str] | None = None,
    followers: dict[str, str] | None = None,
    broken: dict[str, str] | None = None,
    applied: dict[str, float] | None = None,
    order: dict | None = None,
) -> dict:
    """The self-test's findings and status from the A/B rows."""
    broken, applied, leftovers, followers = broken or {}, applied or {}, leftovers or {}, followers or {}
    by_id = {r["case_id"]: r for r in rows}
    planted = [
        {
            "case_id": case_id,
            "multiple": round(slowdown / threshold, 3),
            "slowdown_pct": slowdown * 100,
            "applied_pct": applied.get(case_id),
            "pct_change": by_id[case_id]["pct_change"],
            "ci_low_pct": by_id[case_id]["ci_low_pct"],
            "ci_high_pct": by_id[case_id]["ci_high_pct"],
            "verdict": by_id[case_id]["verdict"],
            "caught": by_id[case_id]["verdict"] == "regression",
        }
        for case_id, slowdown in plants.items()
        if case_id in by_id
    ]
    broken_plants = [
        {"case_id": c, "plant": kind, "verdict": by_id[c]["verdict"], "reason": by_id[c]["reason"]}
        for c, kind in broken.items()
        if c in by_id
    ]
    isolation = [
        {
            "leftover": kind,
            "left_by": case_id,
            "next_case": followers[case_id],
            "pct_change": by_id[followers[case_id]]["pct_change"],
            "ci_low_pct": by_id[followers[case_id]]["ci_low_pct"],
            "ci_high_pct": by_id[followers[case_id]]["ci_high_pct"],
            "verdict": by_id[followers[case_id]]["verdict"],
        }
        for case_id, kind in leftovers.items()
        if case_id in followers and followers[case_id] in by_id
    ]
    aa = [r for r in rows if not r["control"] and r["case_id"] not in plants and r["case_id"] not in broken]
    false_alarms = [r for r in aa if r["verdict"] in ("regression", "broken")]
    false_faster = [r for r in aa if r["verdict"] == "faster"]
    noise = [r["noise_pct"] for r in aa if r["noise_pct"] is not None and np.isfinite(r["noise_pct"])]
    detectable = [
        r["min_detectable_pct"]
        for r in aa
        if r["min_detectable_pct"] is not None and np.isfinite(r["min_detectable_pct"])
    ]
    calibrated = calibration(aa)
    sized = plant_sizes(planted)
    curve = detection_curve(planted, threshold) if planted else []
    twice = next((point for point in curve if point["multiple"] == 2.0), None)

    unfit = []
    if twice is None:
        unfit.append("no plant at twice the threshold")
    elif twice["detection_rate"] < CATCH_AT_TWICE:
        unfit.append(f"{twice['caught']} of {twice['plants']} plants at +{twice['slowdown_pct']:.0f}% caught")
    unfit += [f"broken plant ({b['plant']}) came out {b['verdict']}" for b in broken_plants if b["verdict"] != "broken"]
    if calibrated["uniform"] is False:
        unfit.append(f"A/A p-values not uniform (KS p = {calibrated['ks_p_value']:.2g})")
    if calibrated["covered"] is False:
        unfit.append(f"95% intervals cover 0 in {calibrated['coverage_95']:.0%} of A/A cases")
    if sized["covered"] is False:
        unfit.append(
            f"the applied slowdown lies within the measured interval for only {sized['within']} of {sized['plants']} plants"
        )
    if order and order.get("agree") is False:
        unfit.append(
            f"grid and reversed order disagree by {order['mean_difference_pct']:+.2f}% (p = {order['p_value']:.2g})"
        )
    if false_alarms:
        status = "regression"
    elif comparison["status"] != "ok":
        status = "inconclusive"
    elif unfit:
        status = "unfit"
    else:
        status = "pass"
    noise_median = statistics.median(noise) if noise else float("nan")
    detectable_median = statistics.median(detectable) if detectable else float("nan")
    fit = status == "pass" and detectable_median <= 2 * threshold * 100  # module doc: twice the threshold
    summary = (
        f"{status}: {len(false_alarms)} false regressions in {len(aa)} A/A cases; "
        + (f"{twice['caught']} of {twice['plants']} plants at +{twice['slowdown_pct']:.0f}% caught; " if twice else "")
        + f"broken plants {', '.join(b['verdict'] for b in broken_plants) or 'none'}; "
        f"noise {noise_median:.1f}% (median), smallest detectable change {detectable_median:.1f}% (median); "
        + ("fit to gate CI with these settings" if fit else "NOT fit to gate CI with these settings")
        + (f" ({'; '.join(unfit)})" if unfit else "")
    )
    return {
        "status": status,
        "false_regressions": len(false_alarms),
        "false_faster": len(false_faster),
        "false_regression_cases": [r["case_id"] for r in false_alarms],
        "cases": len(aa),
        "planted": planted,
        "detection_curve": curve,
        "broken_plants": broken_plants,
        "isolation": isolation,
        "calibration": calibrated,
        "plant_sizes": sized,
        "order": order,
        "unfit_reasons": unfit,
        "noise_pct_median": noise_median,
        "noise_pct_p90": float(np.percentile(noise, 90)) if noise else float("nan"),
        "min_detectable_pct_median": detectable_median,
        "fit_to_gate": fit,
        "comparison": comparison,
        "summary": summary,
    }


def run_self_test(
    args: SelfTestSettings, target: Target, twin: Target, pythons: dict, start_worker, settings: PairedSettings
) -> int:
    """Time the A/A pair with the plants in B, judge it, write self-test.json and release-verdicts.json; its exit status."""
    from dataclasses import replace

    from bench.versions.compare import grid_cases, select_cases

    probe = Side(target.label, Path(pythons[target.label]), target.version)
    # The plants depend on the case list, which the suite's snapshot gives: list first, then plant.
    cases, _ = grid_cases(start_worker, probe, args.sizes, args.mlx_device, settings.timeout_s)
    selected = select_cases(cases, args.cases)
    broken = choose_broken(selected)
    leftovers = choose_leftovers(selected, set(broken))
    followers = after_leftovers(selected, leftovers)
    plants = choose_plants(
        selected, args.threshold, set(broken) | set(leftovers) | set(followers.values()), settings.seed
    )
    sides = [
        Side(target.label, Path(pythons[target.label]), target.version),
        Side(
            twin.label, Path(pythons[twin.label]), twin.version, slowdown=plants, leave_behind=leftovers, broken=broken
        ),
    ]
    if not (settings.shuffle_cases or settings.reverse_cases):
        settings = replace(settings, alternate_order=True)  # the order check: grid order, then reversed, in turn
    print(
        f"self-test: in {twin.label}: {len(plants)} slowdowns ("
        + ", ".join(f"{count} at +{size:.1%}" for size, count in sorted(Counter(plants.values()).items(), reverse=True))
        + "), broken "
        + ", ".join(f"{c} ({k})" for c, k in broken.items()),
        flush=True,
    )
    for case_id, kind in leftovers.items():
        print(f"self-test: {case_id} leaves {kind} behind in {twin.label}'s worker; next: {followers.get(case_id)}")
    data, identity, cases = measure(args, sides, start_worker, settings, args.results / verdict_files.MEASUREMENTS_JSON)
    comparisons, rows = judge(data, [(target.label, twin.label)], args.threshold, args.alpha, machine_label(identity))
    aa_ids = [
        r["case_id"] for r in rows if not r["control"] and r["case_id"] not in plants and r["case_id"] not in broken
    ]
    order = order_agreement(data, target.label, twin.label, aa_ids) if settings.alternate_order else None
    applied = applied_slowdowns(data, twin.label, plants)
    result = summarize(comparisons[0], rows, plants, args.threshold, leftovers, followers, broken, applied, order)
    record = settings_record(args, settings, len(cases))
    record.update(plants=plants, leftovers=leftovers, broken=broken)
    verdict_files.write_verdicts(args.results, verdict_files.verdicts_document(identity, record, comparisons, rows))
    document = {
        "kind": verdict_files.SELF_TEST_KIND,
        "schema_version": verdict_files.SCHEMA_VERSION,
        "created": verdict_files.now(),
        "release": target.label,
        "machine": identity,
        "settings": record,
        **result,
    }
    verdict_files.write_json(args.results / verdict_files.SELF_TEST_JSON, document)
    print_report(result, rows, plants, broken)
    print(f"self-test: {args.results / verdict_files.SELF_TEST_JSON}")
    return STATUS_EXIT[result["status"]]


def print_report(result: dict, rows: list[dict], plants: dict, broken: dict | None = None) -> None:
    """The self-test's findings: A/A, calibration, detection curve, broken plants, isolation, order."""
    broken = broken or {}
    aa = [r for r in rows if not r["control"] and r["case_id"] not in plants and r["case_id"] not in broken]
    print(
        f"A/A (same release, no plant): {len(aa)} MLX cases, {result['false_regressions']} false regressions, "
        f"{result['false_faster']} false 'faster'"
        + (f": {', '.join(result['false_regression_cases'])}" if result["false_regression_cases"] else "")
    )
    cal = result["calibration"]
    if cal["ks_p_value"] is not None:
        print(
            f"calibration over {cal['cases']} A/A cases: p < 0.01 in {cal['p_below_0_01']:.1%}, p < 0.05 in "
            f"{cal['p_below_0_05']:.1%} (uniform: 1% and 5%); KS test against uniform p = {cal['ks_p_value']:.3g}; "
            f"95% intervals cover 0 in {cal['coverage_95']:.1%}"
            + (
                f" [{cal['coverage_95_low']:.1%}, {cal['coverage_95_high']:.1%}], binomial p = {cal['coverage_p_value']:.2g}"
                if cal.get("coverage_p_value") is not None
                else ""
            )
        )
    controls = [r for r in rows if r["control"]]
    print(
        f"NumPy controls: {len(controls)}, {sum(r['verdict'] != 'same' for r in controls)} not 'same'; comparison {result['comparison']['status']}"
        + (f" ({result['comparison']['reason']})" if result["comparison"]["reason"] else "")
    )
    for point in result["detection_curve"]:
        applied = point["applied_pct_median"]
        print(
            f"planted +{point['slowdown_pct']:.1f}% ({point['multiple']:g}x the threshold): {point['caught']} of "
            f"{point['plants']} caught; applied {'?' if applied is None else f'{applied:+.1f}%'} (median), "
            f"measured {point['measured_pct_median']:+.1f}% (median)"
        )
    sized = result.get("plant_sizes") or {}
    if sized.get("plants"):
        print(
            f"plant sizes: the applied slowdown lies within the measured 95% interval for {sized['within']} of "
            f"{sized['plants']} plants ({sized['share']:.0%}; binomial p = {sized['p_value']:.2g} against 95%)"
        )
    for plant in result["broken_plants"]:
        print(
            f"broken plant ({plant['plant']}) in {plant['case_id']}: {plant['verdict']}"
            + (f" ({plant['reason']})" if plant["reason"] else "")
        )
    for check in result["isolation"]:
        print(
            f"isolation: {check['left_by']} left {check['leftover']} behind; the next case {check['next_case']}: "
            f"{check['pct_change']:+.1f}% [{check['ci_low_pct']:+.1f}, {check['ci_high_pct']:+.1f}], verdict {check['verdict']}"
        )
    order = result.get("order")
    if order and order.get("agree") is not None:
        print(
            f"order: reversed against grid order over {order['cases']} A/A cases: {order['mean_difference_pct']:+.2f}% "
            f"[{order['ci_low_pct']:+.2f}, {order['ci_high_pct']:+.2f}], p = {order['p_value']:.2g}: "
            + ("agree" if order["agree"] else "DISAGREE")
        )
    print(
        f"per-case noise (sd of the session changes): median {result['noise_pct_median']:.2f}%, 90th percentile {result['noise_pct_p90']:.2f}%"
    )
    print(f"smallest detectable change: median {result['min_detectable_pct_median']:.1f}% over the A/A cases")
    print(f"self-test: {result['summary']}")
