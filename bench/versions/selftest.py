"""`--self-test RELEASE`: the gate checks itself on this machine.

One release in two environments, labelled as two releases (A and B), timed
paired exactly like a real comparison. In B's workers a slowdown is planted in
two cases (30% and 10% by default: a busy-wait inside the timed round,
calibrated to that worker's own round time). Both run in one session: every
case without a plant is an A/A comparison, whose regressions are false alarms;
the planted cases say whether a real slowdown is caught. The output keeps the
two apart.

Status and exit code: pass 0 (no false regression, the controls still, the
30% plant caught); regression 1 (a false regression: the gate would fail a
good release); inconclusive 4 (a NumPy control moved); unfit 5 (the 30% plant
was missed). `fit_to_gate` is a pass whose median smallest detectable change is
within the threshold.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np

from bench.versions import output
from bench.versions.common import EXIT_OK, EXIT_REGRESSION
from bench.versions.compare import EXIT_INCONCLUSIVE, judge, machine_label, measure, settings_record
from bench.versions.paired import PairedSettings, Side
from bench.versions.targets import Target

EXIT_UNFIT = 5
STATUS_EXIT = {"pass": EXIT_OK, "regression": EXIT_REGRESSION, "inconclusive": EXIT_INCONCLUSIVE, "unfit": EXIT_UNFIT}
# The planted slowdowns: one large enough that any usable gate must catch it, one at a typical threshold.
DEFAULT_PLANTS = (
    ("linear-mlx-compiled-step-cpu-n1000-d100", 0.30),
    ("logistic-mlx-autodiff-step-cpu-b256-n10000-d100", 0.10),
)


def choose_plants(cases: list[dict], wanted: list[tuple[str, float]]) -> dict[str, float]:
    """case_id -> slowdown: the wanted cases where the grid has them, else the first MLX cases it has."""
    ids = [c["case_id"] for c in cases if c["case"]["backend"] == "mlx"]
    plants, spare = {}, [i for i in ids if i not in dict(wanted)]
    for case_id, slowdown in wanted:
        if case_id in ids:
            plants[case_id] = slowdown
        elif spare:
            plants[spare.pop(0)] = slowdown
    return plants


def summarize(comparison: dict, rows: list[dict], plants: dict[str, float], threshold: float) -> dict:
    """The self-test's verdict-format fields from the A/B rows."""
    planted = []
    for case_id, slowdown in plants.items():
        row = next(r for r in rows if r["case_id"] == case_id)
        caught = row["verdict"] == "regression" or (
            row["p_value_adjusted"] is not None and row["p_value_adjusted"] < 0.01 and row["pct_change"] > 0
        )
        planted.append(
            {
                "case_id": case_id,
                "slowdown_pct": slowdown * 100,
                "pct_change": row["pct_change"],
                "verdict": row["verdict"],
                "caught": bool(caught),
            }
        )
    aa = [r for r in rows if not r["control"] and r["case_id"] not in plants]
    false_regressions = [r for r in aa if r["verdict"] == "regression"]
    false_faster = [r for r in aa if r["verdict"] == "faster"]
    noise = [r["noise_pct"] for r in aa if r["noise_pct"] is not None and np.isfinite(r["noise_pct"])]
    detectable = [
        r["min_detectable_pct"]
        for r in aa
        if r["min_detectable_pct"] is not None and np.isfinite(r["min_detectable_pct"])
    ]
    largest = max(planted, key=lambda p: p["slowdown_pct"]) if planted else None
    if false_regressions:
        status = "regression"
    elif comparison["status"] != "ok":
        status = "inconclusive"
    elif largest is None or not largest["caught"]:
        status = "unfit"
    else:
        status = "pass"
    noise_median = statistics.median(noise) if noise else float("nan")
    detectable_median = statistics.median(detectable) if detectable else float("nan")
    fit = status == "pass" and detectable_median <= threshold * 100
    caught = ", ".join(
        f"{p['slowdown_pct']:.0f}% {'caught' if p['caught'] else 'missed'} ({p['pct_change']:+.1f}%)" for p in planted
    )
    summary = (
        f"{status}: {len(false_regressions)} false regressions in {len(aa)} A/A cases; planted {caught}; "
        f"noise {noise_median:.1f}% (median), smallest detectable change {detectable_median:.1f}% (median); "
        + ("fit to gate CI with these settings" if fit else "NOT fit to gate CI with these settings")
    )
    return {
        "status": status,
        "false_regressions": len(false_regressions),
        "false_faster": len(false_faster),
        "false_regression_cases": [r["case_id"] for r in false_regressions],
        "cases": len(aa),
        "planted": planted,
        "noise_pct_median": noise_median,
        "noise_pct_p90": float(np.percentile(noise, 90)) if noise else float("nan"),
        "min_detectable_pct_median": detectable_median,
        "fit_to_gate": fit,
        "comparison": comparison,
        "summary": summary,
    }


def run_self_test(
    args, target: Target, twin: Target, pythons: dict, start_worker, settings: PairedSettings, wanted_plants=None
) -> int:
    """Time the A/A pair with the plants in B, judge it, write self-test.json and release-verdicts.json; its exit status."""
    probe = [Side(target.label, Path(pythons[target.label]), target.version)]
    # The plants depend on the case list, which the suite's snapshot gives: list first, then plant.
    from bench.versions.compare import grid_cases, select_cases

    cases, _ = grid_cases(start_worker, probe[0], args.sizes, args.mlx_device, settings.timeout_s)
    plants = choose_plants(select_cases(cases, args.cases), list(wanted_plants or DEFAULT_PLANTS))
    sides = [
        Side(target.label, Path(pythons[target.label]), target.version),
        Side(twin.label, Path(pythons[twin.label]), twin.version, slowdown=plants),
    ]
    print(
        "self-test: planted in " + twin.label + ": " + ", ".join(f"{c} +{s:.0%}" for c, s in plants.items()), flush=True
    )
    data, identity, cases = measure(args, sides, start_worker, settings, args.results / output.MEASUREMENTS_JSON)
    comparisons, rows = judge(data, [(target.label, twin.label)], args.threshold, args.alpha, machine_label(identity))
    result = summarize(comparisons[0], rows, plants, args.threshold)
    record = settings_record(args, settings, len(cases))
    record["plants"] = plants
    output.write_verdicts(args.results, output.verdicts_document(identity, record, comparisons, rows))
    document = {
        "kind": output.SELF_TEST_KIND,
        "schema_version": output.SCHEMA_VERSION,
        "created": output.now(),
        "release": target.label,
        "machine": identity,
        "settings": record,
        **result,
    }
    output.write_json(args.results / output.SELF_TEST_JSON, document)
    print_report(result, rows, plants)
    print(f"self-test: {args.results / output.SELF_TEST_JSON}")
    return STATUS_EXIT[result["status"]]


def print_report(result: dict, rows: list[dict], plants: dict) -> None:
    """The self-test's findings, A/A and planted apart."""
    aa = [r for r in rows if not r["control"] and r["case_id"] not in plants]
    print(
        f"A/A (same release, no plant): {len(aa)} MLX cases, {result['false_regressions']} false regressions, "
        f"{result['false_faster']} false 'faster'"
        + (f": {', '.join(result['false_regression_cases'])}" if result["false_regression_cases"] else "")
    )
    controls = [r for r in rows if r["control"]]
    print(
        f"NumPy controls: {len(controls)}, {sum(r['verdict'] != 'same' for r in controls)} not 'same'; comparison {result['comparison']['status']}"
        + (f" ({result['comparison']['reason']})" if result["comparison"]["reason"] else "")
    )
    for plant in result["planted"]:
        print(
            f"planted +{plant['slowdown_pct']:.0f}% in {plant['case_id']}: measured {plant['pct_change']:+.1f}%, "
            f"verdict {plant['verdict']}, {'caught' if plant['caught'] else 'MISSED'}"
        )
    print(
        f"per-case noise (sd of the session changes): median {result['noise_pct_median']:.2f}%, 90th percentile {result['noise_pct_p90']:.2f}%"
    )
    noisiest = sorted(
        (r for r in aa if r["noise_pct"] is not None and np.isfinite(r["noise_pct"])), key=lambda r: -r["noise_pct"]
    )[:5]
    for row in noisiest:
        print(
            f"  noisiest: {row['case_id']} {row['noise_pct']:.1f}% (smallest detectable {row['min_detectable_pct']:.1f}%)"
        )
    print(f"smallest detectable change: median {result['min_detectable_pct_median']:.1f}% over the A/A cases")
    print(f"self-test: {result['summary']}")
