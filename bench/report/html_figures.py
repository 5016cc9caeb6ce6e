"""Pictures inside index.html: the speedup heat map as a coloured table, verdict intervals as small inline
SVG, and the report's PNG plots embedded as base64 data.

The headline pictures are drawn as HTML and SVG, not as images, so that they
cost a few kilobytes, stay sharp at any zoom, can be read by a screen reader
and exist even with ``--no-plots``. Colours come from matplotlib's RdBu
diverging map (red: NumPy faster, blue: the backend compared with it faster,
MLX or any other), which readers with red-green colour blindness tell apart;
every cell also carries its number, and cells too close to call carry a "≈".
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import LogNorm, to_hex

from bench.report.outputs import read_output
from bench.report.html_tables import esc
from bench.report.schema import BASELINE_BACKEND, backend_label
from bench.stats.pairing import NEITHER

DIVERGING = colormaps["RdBu"]
# Okabe-Ito colours of the verdicts, as the page's CSS uses them.
VERDICT_COLORS = {
    "broken": "#000000",
    "regression": "#D55E00",
    "inconclusive": "#CC79A7",
    "slower": "#E69F00",
    "faster": "#0072B2",
    "same": "#777777",
    "undecided": "#999999",
}


def _size_order(sizes) -> list[str]:
    """``1,000×100`` labels in order of elements of X, then examples."""

    def key(label: str):
        n, d = (int(part.replace(",", "")) for part in label.split("×"))
        return (n * d, n)

    return sorted(set(sizes), key=key)


def _text_color(rgba) -> str:
    """Black on pale cells, white on dark ones (relative luminance)."""
    r, g, b = rgba[:3]
    return "#000" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else "#fff"


def speedup_norm(values: pd.Series) -> LogNorm:
    """A log colour scale symmetric around 1 that reaches the largest ratio (at least 2× each way)."""
    finite = values[np.isfinite(values) & (values > 0)]
    reach = float(np.max(np.abs(np.log10(finite)))) if len(finite) else 0.3
    reach = max(reach, np.log10(2))
    return LogNorm(vmin=10**-reach, vmax=10**reach)


def speedup_heatmap(cells: pd.DataFrame, norm: LogNorm) -> str:
    """One backend's cases (rows) by problem size (columns): its steps/s ÷ NumPy's, coloured, for one machine and
    model."""
    sizes = _size_order(cells["size"])
    cases = sorted(cells["case"].unique())
    lookup = {(r.case, r.size): r for r in cells.itertuples(index=False)}
    head = "".join(f"<th>{esc(s)}</th>" for s in sizes)
    rows = []
    for case in cases:
        tds = []
        for size in sizes:
            row = lookup.get((case, size))
            if row is None or not np.isfinite(row.speedup):
                tds.append('<td class="hm-none" title="not measured">–</td>')
                continue
            rgba = DIVERGING(float(norm(row.speedup)))
            close = row.faster == NEITHER
            interval = (
                f"; 95% CI {row.speedup_ci_low:.3g}–{row.speedup_ci_high:.3g}"
                if np.isfinite(row.speedup_ci_low)
                else ""
            )
            title = f"{case} at {size}: {row.speedup:.3g}× ({row.steps_per_s:,.0f} vs {row.baseline_steps_per_s:,.0f} steps/s{interval})"
            tds.append(
                f'<td class="hm{" hm-close" if close else ""}" style="background:{to_hex(rgba)};color:{_text_color(rgba)}" '
                f'title="{esc(title)}" data-v="{row.speedup:.6g}">{"≈" if close else ""}{row.speedup:.2g}×</td>'
            )
        rows.append(f'<tr><th class="hm-case">{esc(case)}</th>{"".join(tds)}</tr>')
    label = " / ".join(backend_label(b) for b in dict.fromkeys(cells["backend"])) if "backend" in cells else "MLX"
    return (
        f'<table class="heatmap"><thead><tr><th>{esc(label)} case \\ size (examples×features)</th>'
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def heatmap_legend(norm: LogNorm, label: str | None = "MLX") -> str:
    """The colour scale of the heat maps, with its meaning in words; `label` names the backend compared with
    NumPy (None: several, each in its own heat map)."""
    stops = ", ".join(to_hex(DIVERGING(x)) for x in np.linspace(0, 1, 9))
    baseline = backend_label(BASELINE_BACKEND)
    side, subject = (label, f"{label} steps/s") if label else ("the backend", "each backend's steps/s")
    return (
        f'<div class="legend"><span>{esc(baseline)} faster · '
        f"{norm.vmin:.2g}×</span>"
        f'<span class="scale" style="background:linear-gradient(to right, {stops})"></span>'
        f"<span>{norm.vmax:.2g}× · {esc(side)} faster</span>"
        f'<span class="legend-note">speedup = {esc(subject)} ÷ {esc(baseline)} steps/s in the same run; '
        "≈ and a dashed border: the 95% interval includes 1 (too close to call). Hover a cell for its figures.</span></div>"
    )


def interval_svg(pct: float, low: float, high: float, threshold_pct: float, reach: float, color: str) -> str:
    """A small forest-plot row: the change in % (dot), its 95% interval (bar), zero and ±threshold (lines)."""
    width, height = 180, 16

    def x(value: float) -> float:
        return width / 2 + (max(-reach, min(reach, value)) / reach) * (width / 2 - 4)

    parts = [
        f'<line x1="{x(0):.1f}" y1="1" x2="{x(0):.1f}" y2="{height - 1}" stroke="#444"/>',
        f'<line x1="{x(threshold_pct):.1f}" y1="1" x2="{x(threshold_pct):.1f}" y2="{height - 1}" stroke="#D55E00" stroke-dasharray="2,2"/>',
        f'<line x1="{x(-threshold_pct):.1f}" y1="1" x2="{x(-threshold_pct):.1f}" y2="{height - 1}" stroke="#0072B2" stroke-dasharray="2,2"/>',
    ]
    if np.isfinite(low) and np.isfinite(high):
        parts.append(
            f'<line x1="{x(low):.1f}" y1="8" x2="{x(high):.1f}" y2="8" stroke="{color}" stroke-width="3" stroke-linecap="round"/>'
        )
    if np.isfinite(pct):
        parts.append(f'<circle cx="{x(pct):.1f}" cy="8" r="3.5" fill="{color}" stroke="#000" stroke-width="0.6"/>')
    label = f"{pct:+.1f}%" + (
        f" (95% CI {low:+.1f}% to {high:+.1f}%)" if np.isfinite(low) and np.isfinite(high) else ""
    )
    return (
        f'<svg class="ci" width="{width}" height="{height}" role="img" aria-label="{esc(label)}">'
        f"<title>{esc(label)}</title>{''.join(parts)}</svg>"
    )


def embedded_png(path: Path, caption: str) -> str:
    """A PNG file as an <img> with its data inline, in a <figure> with a caption."""
    data = base64.b64encode(read_output(path)).decode("ascii")  # the plot may still wait for its rename
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{esc(caption)}">'
        f"<figcaption>{esc(caption)} (<code>{esc(Path(path).name)}</code>)</figcaption></figure>"
    )
