"""index.html's "Release history": per case, its time relative to the oldest release, release by release.

One small chart per case (x: the releases in version order; y: time per step
relative to the oldest release, its 95% interval as a bar), the change points
the release runner's step detector found (bench.stats.steps) marked at the newer
release (red: slower, blue: faster, black: broken), in a table that sorts and
filters like the page's others. The data are history.json files written by
`python -m bench.versions --history` (bench.versions.history).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from bench.report.html_blocks import paragraph, section
from bench.report.html_figures import VERDICT_COLORS
from bench.report.html_tables import esc, html_table
from bench.report.views import SIGNED_PCT

CHART_WIDTH, CHART_HEIGHT = 220, 60
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_Y = 34, 6, 8


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def history_svg(points: list[dict], changes: dict[str, str], threshold_pct: float) -> str:
    """One case's history as inline SVG: a dot per release (its change against the oldest), its interval,
    the ±threshold band, and the change points coloured by verdict. `points` are in release order."""
    values = [p[k] for p in points for k in ("pct", "low", "high") if _finite(p.get(k))]
    top = max([threshold_pct, *values]) * 1.1
    bottom = min([-threshold_pct, *values]) * 1.1
    span = CHART_WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    step = span / max(1, len(points) - 1)

    def y(value: float) -> float:
        return MARGIN_Y + (top - value) / (top - bottom) * (CHART_HEIGHT - 2 * MARGIN_Y)

    parts = [
        f'<rect x="{MARGIN_LEFT}" y="{y(threshold_pct):.1f}" width="{span}" height="{y(-threshold_pct) - y(threshold_pct):.1f}" fill="#eee"/>',
        f'<line x1="{MARGIN_LEFT}" y1="{y(0):.1f}" x2="{CHART_WIDTH - MARGIN_RIGHT}" y2="{y(0):.1f}" stroke="#888"/>',
        f'<text x="{MARGIN_LEFT - 3}" y="{y(top / 1.1) + 3:.1f}" text-anchor="end" font-size="9">{top / 1.1:+.0f}%</text>',
        f'<text x="{MARGIN_LEFT - 3}" y="{y(bottom / 1.1) + 3:.1f}" text-anchor="end" font-size="9">{bottom / 1.1:+.0f}%</text>',
    ]
    line = []
    for index, point in enumerate(points):
        x = MARGIN_LEFT + index * step
        verdict = changes.get(point["release"])
        color = VERDICT_COLORS.get(verdict, "#555") if verdict in ("regression", "faster", "broken") else "#555"
        label = f"mlx {point['release']}: " + (
            f"{point['pct']:+.1f}% against {points[0]['release']}" if _finite(point.get("pct")) else "not measured"
        )
        if _finite(point.get("low")) and _finite(point.get("high")):
            label += f" (95% interval {point['low']:+.1f}% to {point['high']:+.1f}%)"
            parts.append(
                f'<line x1="{x:.1f}" y1="{y(point["high"]):.1f}" x2="{x:.1f}" y2="{y(point["low"]):.1f}" stroke="{color}" stroke-width="2"/>'
            )
        if verdict in ("regression", "faster", "broken"):
            label += f"; {verdict} against the release before"
        if _finite(point.get("pct")):
            line.append(f"{x:.1f},{y(point['pct']):.1f}")
            radius = 4 if verdict in ("regression", "faster", "broken") else 2.2
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y(point["pct"]):.1f}" r="{radius}" fill="{color}"><title>{esc(label)}</title></circle>'
            )
    if len(line) > 1:
        parts.insert(2, f'<polyline points="{" ".join(line)}" fill="none" stroke="#bbb"/>')
    first, last = points[0]["release"], points[-1]["release"]
    parts.append(f'<text x="{MARGIN_LEFT}" y="{CHART_HEIGHT - 1}" font-size="9">{esc(first)}</text>')
    parts.append(
        f'<text x="{CHART_WIDTH - MARGIN_RIGHT}" y="{CHART_HEIGHT - 1}" font-size="9" text-anchor="end">{esc(last)}</text>'
    )
    summary = f"time per step from mlx {first} to {last}, relative to {first}"
    return (
        f'<svg class="history" width="{CHART_WIDTH}" height="{CHART_HEIGHT}" role="img" aria-label="{esc(summary)}">'
        f"<title>{esc(summary)}</title>{''.join(parts)}</svg>"
    )


def history_table(record: dict, threshold: float) -> pd.DataFrame:
    """One row per case: its change points, the newest release against the oldest, and the key of its chart."""
    rows = pd.DataFrame(record.get("rows") or [])
    releases = [str(r) for r in record.get("releases") or []]
    if rows.empty or len(releases) < 2 or not {"case_id", "release"} <= set(rows.columns):
        return pd.DataFrame()
    points = record.get("change_points") or []
    table = []
    for case_id, part in rows.groupby("case_id", sort=False):
        first = part.iloc[0]
        newest = part[part["release"].astype(str) == releases[-1]]
        steps = [p for p in points if p.get("case_id") == case_id]
        table.append(
            {
                "case_id": case_id,
                "history": case_id,
                "model": first.get("model"),
                "backend": first.get("backend"),
                "control": bool(first.get("control")),
                "change points": "\n".join(
                    f"{p.get('older')}→{p.get('newer')} {p.get('pct_change', float('nan')):+.1f}% {p.get('verdict')}"
                    + ("" if p.get("status", "ok") == "ok" else " (unconfirmed)")
                    + (
                        f"\n{REPRODUCER} {_beside(record, p['reproducer'])}"
                        if isinstance(p.get("reproducer"), str)
                        else ""
                    )
                    for p in steps
                )
                or "none",
                f"{releases[-1]} vs {releases[0]} (%)": float(newest["pct_vs_oldest"].iloc[0])
                if len(newest) and "pct_vs_oldest" in newest
                else np.nan,
            }
        )
    return pd.DataFrame(table)


REPRODUCER = "reproducer:"  # a change point's standalone script (bench.versions.reproducer), a link on the page


def _beside(record: dict, relative: str) -> str:
    """A file the history wrote beside its history.json, as a path the reader can open."""
    return str(Path(str(record.get("path") or "history.json")).parent / relative)


def _cell(text: str) -> str:
    """The change-points cell: one per line, a reproducer line as a link to its script."""
    lines = []
    for line in str(text).splitlines():
        if line.startswith(REPRODUCER):
            target = line.removeprefix(REPRODUCER).strip()
            lines.append(f'<a href="{esc(Path(target).as_uri() if Path(target).is_absolute() else target)}">'
                         f"{esc(Path(target).name)}</a>")  # fmt: skip
        else:
            lines.append(esc(line))
    return f"<td>{'<br>'.join(lines)}</td>"


def _charts(record: dict, threshold: float) -> dict[str, str]:
    """Every case's chart, by case id."""
    rows = pd.DataFrame(record.get("rows") or [])
    releases = [str(r) for r in record.get("releases") or []]
    charts = {}
    for case_id, part in rows.groupby("case_id", sort=False):
        by_release = {str(r["release"]): r for _, r in part.iterrows()}
        points = [
            {
                "release": release,
                "pct": by_release[release].get("pct_vs_oldest") if release in by_release else None,
                "low": by_release[release].get("ci_low_pct") if release in by_release else None,
                "high": by_release[release].get("ci_high_pct") if release in by_release else None,
            }
            for release in releases
        ]
        changes = {
            str(p.get("newer")): str(p.get("verdict"))
            for p in record.get("change_points") or []
            if p.get("case_id") == case_id
        }
        charts[case_id] = history_svg(points, changes, 100 * threshold)
    return charts


def history_section(histories: list[dict], threshold: float) -> str:
    """The page's "Release history" section, or nothing when no history was read."""
    if not histories:
        return ""
    parts = []
    for record in sorted(histories, key=lambda r: str(r.get("created", ""))):
        releases = [str(r) for r in record.get("releases") or []]
        machine = record.get("machine") or {}
        where = (machine.get("host") or machine.get("node") or "") if isinstance(machine, dict) else str(machine)
        points = record.get("change_points") or []
        missing = record.get("not_measured") or {}
        settings = record.get("settings") or {}
        # The record's own threshold where it has one (null: this report's).
        threshold_used = settings.get("threshold") if settings.get("threshold") is not None else threshold
        intro = (
            f"MLX {esc(releases[0] if releases else '?')} to {esc(releases[-1] if releases else '?')}: "
            f"{len(releases)} releases measured all interleaved on {esc(where or '?')} "
            f"({esc(settings.get('sessions', '?'))} sessions, grid {esc(settings.get('sizes', '?'))}, "
            f"{esc(record.get('created', ''))}). Each chart: time per step relative to {esc(releases[0] if releases else '?')} "
            f"(dot) with its 95% interval (bar); the grey band is ±{100 * threshold_used:g}%; a large red dot is a "
            f"step slower than the release before, blue faster, black broken. Steps are found over all releases at "
            f"once (a two-way fit of sessions and releases, segmentation with a penalty that keeps null histories to "
            f"at most 1% with any step) and are change points beyond the threshold. "
            f"{len(points)} change point(s) among the MLX cases."
        )
        moved = record.get("machine_changes") or []
        if moved:
            intro += " The NumPy controls stepped (a machine change; MLX steps at that release are inconclusive): " + (
                "; ".join(
                    f"{esc(m.get('case_id'))} {esc(m.get('older'))}→{esc(m.get('newer'))} {m.get('pct_change', 0):+.1f}%"
                    for m in moved
                )
                + "."
            )
        if record.get("reproducers"):
            intro += (
                " Each change point links its reproducer, a standalone NumPy-and-MLX script to run under both "
                f"releases (the environments' differences: {esc(_beside(record, 'reproducers/README.md'))})."
            )
        if missing:
            intro += " Not measured: " + "; ".join(f"{esc(k)} ({esc(v)})" for k, v in missing.items()) + "."
        table = history_table(record, threshold_used)
        charts = _charts(record, threshold_used)
        newest = next((c for c in table.columns if c.endswith("(%)")), None)
        parts.append(
            paragraph(intro)
            + html_table(
                table,
                {newest: SIGNED_PCT} if newest else {},
                extra={
                    "history": lambda case_id: f"<td>{charts.get(case_id, '')}</td>",
                    # One change point a line, so the column stays narrow and the charts stay in view.
                    "change points": _cell,
                },
                keep=("control",),
            )
            + f'<p class="meta">{esc(record.get("path", ""))}</p>'
        )
    return section("history", "Release history", "".join(parts))
