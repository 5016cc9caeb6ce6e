"""index.html's release sections: the release runner's self-test and the MLX release verdicts.

Status boxes first (can this machine's verdicts be trusted? did a comparison
stand?), then the regressions and other changes, largest first, each with a
picture of its change and 95% interval.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.report import views
from bench.report.html_blocks import paragraph, section, status_box
from bench.report.html_figures import VERDICT_COLORS, interval_svg
from bench.report.html_tables import esc, html_table
from bench.report.regression import ALPHA

# Verdict rows shown in the headline; the rest are in the release tables below it.
HEADLINE_VERDICTS = 25


def self_test_boxes(self_tests: list[dict]) -> str:
    """The release runner's self-test, status first: can this machine's verdicts be trusted?"""
    boxes = []
    meaning = {
        "pass": "planted slowdowns caught, no false regression: verdicts on this machine can gate a release",
        "regression": "the self-test flagged a regression where none was planted, or missed a planted one",
        "inconclusive": "the self-test could not decide",
        "unfit": "too noisy to gate on: verdicts here are not to be trusted",
    }
    for test in sorted(self_tests, key=lambda t: str(t.get("created", ""))):
        status = str(test.get("status"))
        machine = test.get("machine")
        where = (machine.get("node") or "") if isinstance(machine, dict) else str(machine or "")
        lines = [esc(test.get("summary") or meaning.get(status, ""))]
        facts = []
        if test.get("false_regressions") is not None:
            facts.append(esc(f"{test['false_regressions']} false regression(s) in {test.get('cases', '?')} cases"))
        if isinstance(test.get("noise_pct_median"), (int, float)):
            facts.append(f"median noise {test['noise_pct_median']:.1f}%")
        if isinstance(test.get("min_detectable_pct_median"), (int, float)):
            facts.append(f"median min. detectable change {test['min_detectable_pct_median']:.1f}%")
        if "fit_to_gate" in test:
            facts.append("fit to gate a release" if test["fit_to_gate"] else "<b>not fit to gate a release</b>")
        lines.append("; ".join(facts))
        lines.append(f'<span class="meta">{esc(test.get("path", ""))}, {esc(test.get("created", ""))}</span>')
        planted = pd.DataFrame(test.get("planted") or [])
        table = ""
        if len(planted):
            if "slowdown_pct" in planted:
                planted["slowdown_pct"] = pd.to_numeric(planted["slowdown_pct"], errors="coerce")
            table = (
                "<details><summary>planted slowdowns</summary>"
                + html_table(
                    planted.rename(
                        columns={"slowdown_pct": "planted slowdown (%)", "pct_change": "measured change (%)"}
                    ),
                    {"planted slowdown (%)": views.PCT, "measured change (%)": views.SIGNED_PCT},
                )
                + "</details>"
            )
        calibration = test.get("calibration") or {}
        figures = ("coverage_95", "ks_p_value", "p_below_0_01", "p_below_0_05")
        if all(isinstance(calibration.get(key), (int, float)) for key in figures):
            lines.append(
                esc(
                    f"calibration over {calibration.get('cases')} A/A cases: p < 0.01 in {calibration['p_below_0_01']:.1%}, "
                    f"p < 0.05 in {calibration['p_below_0_05']:.1%}, KS p = {calibration['ks_p_value']:.2g}; "
                    f"95% intervals cover 0 in {calibration['coverage_95']:.1%}"
                )
            )
        for reason in test.get("unfit_reasons") or []:
            lines.append(f"<b>{esc(reason)}</b>")
        curve = pd.DataFrame(test.get("detection_curve") or [])
        if len(curve):
            table += (
                "<details open><summary>detection curve: planted slowdowns caught, by size</summary>"
                + html_table(
                    curve.rename(
                        columns={
                            "slowdown_pct": "planted (%)",
                            "applied_pct_median": "applied, median (%)",
                            "measured_pct_median": "measured, median (%)",
                            "detection_rate": "caught (share)",
                        }
                    ),
                    {
                        "planted (%)": views.PCT,
                        "applied, median (%)": views.SIGNED_PCT,
                        "measured, median (%)": views.SIGNED_PCT,
                    },
                )
                + "</details>"
            )
        title = f"Self-test of MLX {esc(test.get('release', '?'))}{' on ' + esc(where) if where else ''}: {esc(status.upper())}"
        boxes.append(status_box(status, title, lines) + table)
    return "".join(boxes)


def _interval_cell(rows: pd.DataFrame, threshold: float) -> list[str]:
    """An interval picture per verdict row, all on one scale."""
    pct = rows["pct_change"].to_numpy(dtype=float)
    low = rows["ci_low_pct"].to_numpy(dtype=float) if "ci_low_pct" in rows else np.full(len(rows), np.nan)
    high = rows["ci_high_pct"].to_numpy(dtype=float) if "ci_high_pct" in rows else np.full(len(rows), np.nan)
    spread = np.abs(np.concatenate([pct, low, high]))
    reach = min(max(float(np.nanmax(spread)) if np.isfinite(spread).any() else 0, 150 * threshold), 200.0)
    flagged = views.is_regression(rows).to_numpy()
    verdicts = rows["verdict"].astype(str).to_numpy() if "verdict" in rows else np.full(len(rows), "")
    return [
        interval_svg(
            p,
            lo,
            hi,
            100 * threshold,
            reach,
            (
                VERDICT_COLORS["regression" if f else "slower" if v == "slower" else v]
                if (f or v in VERDICT_COLORS)
                else "#777"
            ),
        )
        for p, lo, hi, f, v in zip(pct, low, high, flagged, verdicts)
    ]


def verdict_table(rows: pd.DataFrame, threshold: float, table_id: str, with_picture: bool) -> str:
    """Verdict rows, with an interval picture when asked."""
    if rows.empty:
        return '<p class="none">(none)</p>'
    shown = rows.copy()
    extra = {}
    if with_picture and "pct_change" in shown:
        pictures = _interval_cell(shown, threshold)
        shown.insert(list(shown.columns).index("pct_change"), "change and 95% interval", pictures)
        extra["change and 95% interval"] = lambda svg: f"<td>{svg}</td>"
    return html_table(shown, views.VERDICT_FORMATS, table_id, extra=extra)


def _notable(rows: pd.DataFrame) -> pd.DataFrame:
    """Broken cases first, then regressions, then other changes and undecided rows, largest change first."""
    if rows.empty or "verdict" not in rows:
        return rows
    rank = np.where(
        rows["verdict"] == "broken",
        0,
        np.where(
            views.is_regression(rows),
            1,
            np.where(rows["verdict"] == "same", 4, np.where(rows["verdict"] == "undecided", 3, 2)),
        ),
    )
    size = -rows["pct_change"].abs().fillna(0) if "pct_change" in rows else 0
    rows = rows.assign(_rank=rank, _size=size)
    rows = rows[rows["_rank"] < 4].sort_values(["_rank", "_size"])
    return rows.drop(columns=["_rank", "_size"])


def releases_section(versions: pd.DataFrame, release_verdicts: list[dict], threshold: float) -> str:
    """Release verdicts: each comparison's status, regressions and changes with their intervals."""
    parts = []
    for record in release_verdicts:
        machine = record.get("machine") or {}
        where = machine.get("node", "") if isinstance(machine, dict) else str(machine)
        for comparison in record.get("comparisons") or []:
            status = str(comparison.get("status", "?"))
            reason = comparison.get("reason") or (
                "NumPy controls steady: the MLX verdicts stand" if status == "ok" else ""
            )
            parts.append(
                status_box(
                    status,
                    f"MLX {esc(comparison.get('older', '?'))} → {esc(comparison.get('newer', '?'))}"
                    f"{' on ' + esc(where) if where else ''}: {esc(status)}",
                    [
                        esc(reason),
                        f'<span class="meta">{esc(record.get("path", ""))}, {esc(record.get("created", ""))}</span>',
                    ],
                )
            )
        rows = views.verdict_rows(pd.DataFrame(record.get("rows") or []))
        if len(rows):
            notable = _notable(rows)
            parts.append(
                f"<h4>Release runner's verdicts: {len(rows)} rows, {int(views.is_regression(rows).sum())} regression(s)</h4>"
                + html_table(views.verdict_counts(rows))
                + (
                    f"<p>Changes and undecided cases ({min(len(notable), HEADLINE_VERDICTS)} of {len(notable)} shown here; all rows in the release tables below):</p>"
                    + verdict_table(notable.head(HEADLINE_VERDICTS), threshold, "", True)
                    if len(notable)
                    else ""
                )
            )
    rows = views.verdict_rows(versions)
    rule = (
        f"A regression is slower by more than {100 * threshold:g}% in median per-step time and significant "
        f"(adjusted p ≤ {ALPHA}); the picture shows the change (dot), its 95% interval where known (bar), and ±{100 * threshold:g}% (dashed)."
    )
    if rows.empty:
        parts.append(paragraph("No case was measured under more than one MLX version on the same machine.", "none"))
    else:
        notable = _notable(rows)
        parts.append(
            f"<h4>This report's comparison of the runs (versions.csv): each release against the previous one</h4>{paragraph(esc(rule))}"
            + html_table(views.verdict_counts(rows))
            + (
                f"<p>{int(views.is_regression(rows).sum())} regression(s); changes and undecided cases, largest first "
                f"({min(len(notable), HEADLINE_VERDICTS)} of {len(notable)} here, every row in the details):</p>"
                + verdict_table(notable.head(HEADLINE_VERDICTS), threshold, "", True)
                if len(notable)
                else paragraph("Every case: same.")
            )
        )
    return section("releases", "MLX releases", "".join(parts))
