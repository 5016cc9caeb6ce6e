"""HTML tables for index.html: sortable, filterable, with marked rows and units in the headers.

Written by hand rather than with DataFrame.to_html or a Styler because every
cell needs two things those do not give: the formatted text a person reads and
the raw number (``data-v``) the page's script sorts by, so that 9,800 sorts
below 10,200 and blanks sort last. Filters are drop-downs over the columns a
reader narrows by (machine, model, backend, variant, size, device...) and one
free-text box; the script is in html.py.
"""

from __future__ import annotations

import html
from collections.abc import Callable

import numpy as np
import pandas as pd

from bench.report.schema import BASELINE_BACKEND, backend_label
from bench.report.views import HEADERS
from bench.stats.pairing import NEITHER

# Columns offered as drop-down filters, when a table has them and they hold few values.
FILTER_COLUMNS = (
    "machine", "MLX", "mlx_version", "newer", "older", "scenario", "model", "backend", "variant", "size", "device",
    "verdict", "faster", "case",
)  # fmt: skip
MAX_FILTER_VALUES = 80
# Tables shorter than this get no filter bar: a reader takes them in at a glance.
MIN_FILTER_ROWS = 10
# Never folded into the "every row" line: what names a row, and the marks a reader scans for.
NEVER_FOLD = ("case", "case_id", "verdict", "faster")  # and every "<ratio> faster" column
# Folded only when no row is flagged: a table of unstable rows keeps its badges.
FLAGS = ("unstable", "regression")


def esc(value) -> str:
    """Text made safe for HTML."""
    return html.escape(str(value), quote=True)


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _cell(value, format_value: Callable | None) -> str:
    """One <td>: readable text, and the raw number as its sort key."""
    missing = value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA
    if missing:
        return "<td></td>"
    text = (
        format_value(value)
        if format_value
        else (f"{value:,}" if _is_number(value) and float(value).is_integer() and abs(value) >= 10_000 else str(value))
    )
    sort_key = f' data-v="{float(value):.12g}"' if _is_number(value) else ""
    return f"<td{sort_key}>{esc(text)}</td>"


def _badge_cell(column: str, value) -> str | None:
    """Cells shown as a labelled badge: verdicts, which side is faster, unstable and regression flags."""
    text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
    if column == "verdict" and text:
        return f'<td><span class="badge v-{esc(text)}">{esc(text)}</span></td>'
    if column == "faster" or column.endswith(" faster"):  # a backend's name, or "neither"
        if not text:
            return "<td></td>"
        label = "too close" if text == NEITHER else backend_label(text)
        # Red for the baseline, blue for whichever backend beat it (any name), dashed for too close to call.
        kind = "neither" if text == NEITHER else "baseline" if text == BASELINE_BACKEND else "backend"
        return f'<td data-v-text="{esc(text)}"><span class="badge f-{esc(kind)}">{esc(label)}</span></td>'
    if column in ("unstable", "regression", "control"):
        if text.lower() != "true":
            return "<td></td>"
        label = {"unstable": "⚠ unstable", "regression": "regression", "control": "control"}[column]
        return f'<td><span class="badge v-{column}">{label}</span></td>'
    return None


def row_marks(frame: pd.DataFrame) -> list[str]:
    """CSS classes per row: unstable, undecided (or too close to call), regression."""
    marks = [[] for _ in range(len(frame))]
    checks = {
        "unstable": lambda f: f["unstable"].astype(str).str.lower() == "true" if "unstable" in f else None,
        "undecided": lambda f: (f["verdict"].astype(str) == "undecided") if "verdict" in f else None,
        "regression": lambda f: (f["regression"].astype(str).str.lower() == "true") if "regression" in f else None,
    }
    for name, check in checks.items():
        flags = check(frame)
        if flags is None:
            continue
        for i, flag in enumerate(flags.to_numpy()):
            if flag:
                marks[i].append(name)
    if "verdict" in frame:
        for i, verdict in enumerate(frame["verdict"].astype(str)):
            if verdict == "regression" and "regression" not in marks[i]:
                marks[i].append("regression")
    return [" ".join(m) for m in marks]


def filter_bar(frame: pd.DataFrame, headers: list[str]) -> str:
    """Drop-downs for the filterable columns present, a search box and the count of rows shown."""
    controls = []
    for index, column in enumerate(frame.columns):
        if column not in FILTER_COLUMNS:
            continue
        values = sorted({str(v) for v in frame[column].dropna()}, key=lambda v: (len(v) if column == "size" else 0, v))
        if not 1 < len(values) <= MAX_FILTER_VALUES:
            continue
        options = "".join(f'<option value="{esc(v)}">{esc(v)}</option>' for v in values)
        controls.append(
            f'<label>{esc(headers[index])} <select data-col="{index}"><option value="">all</option>{options}</select></label>'
        )
    controls.append('<label>contains <input type="search" placeholder="any text"></label>')
    return f'<div class="filters">{"".join(controls)}<span class="count">{len(frame):,} rows</span></div>'


def fold_constant_columns(frame: pd.DataFrame, formats: dict, keep: tuple = ()) -> tuple[pd.DataFrame, str]:
    """Drop the columns that hold one value in every row (of three or more) and say it once above the table:
    "every row: machine vm/Linux..., MLX 0.32.4". Wide tables read better without them."""
    if len(frame) < 3:
        return frame, ""
    folded, notes = [], []
    for column in frame.columns:
        if column in keep or column in NEVER_FOLD or str(column).endswith(" faster"):
            continue
        values = frame[column]
        if column in FLAGS and (values.astype(str).str.lower() == "true").any():
            continue
        if values.isna().all():
            folded.append(column)
            continue
        if values.notna().all() and values.astype(str).nunique() == 1:
            value = values.iloc[0]
            if isinstance(value, (bool, np.bool_)) or str(value).lower() in ("true", "false"):
                shown = f"{HEADERS.get(column, column)}: {'yes' if str(value).lower() == 'true' else 'no'}"
            else:
                shown = f"{HEADERS.get(column, column)} {formats[column](value) if column in formats else value}"
            folded.append(column)
            notes.append(shown)
    if len(frame.columns) - len(folded) < 2:
        return frame, ""
    note = f'<p class="every-row">Every row: {esc("; ".join(notes))}.</p>' if notes else ""
    return frame.drop(columns=folded), note


def html_table(
    frame: pd.DataFrame,
    formats: dict | None = None,
    table_id: str = "",
    caption: str = "",
    extra: dict | None = None,
    keep: tuple = (),
) -> str:
    """A sortable, filterable table of `frame`; `extra` maps a column to a function giving a cell's raw HTML;
    columns of one value are folded into a line above it, except those in `keep`."""
    if frame is None or frame.empty:
        return '<p class="none">(none)</p>'
    formats = formats or {}
    extra = extra or {}
    marks = row_marks(frame)  # before folding: a table whose every row is unstable still marks them
    frame, note = fold_constant_columns(frame, formats, keep=tuple(keep) + tuple(extra))
    headers = [HEADERS.get(c, c) for c in frame.columns]
    numeric = [
        pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c]) for c in frame.columns
    ]
    head = "".join(
        f'<th data-type="{"num" if num else "text"}" tabindex="0" title="sort by {esc(h)}">{esc(h)}</th>'
        for h, num in zip(headers, numeric)
    )
    body = []
    columns = list(frame.columns)
    for mark, values in zip(marks, frame.itertuples(index=False, name=None)):
        cells = []
        for column, value in zip(columns, values):
            if column in extra:
                cells.append(extra[column](value))
                continue
            badge = _badge_cell(column, value)
            cells.append(badge if badge is not None else _cell(value, formats.get(column)))
        body.append(f'<tr class="{mark}">' + "".join(cells) + "</tr>" if mark else "<tr>" + "".join(cells) + "</tr>")
    ident = f' id="{esc(table_id)}"' if table_id else ""
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return (
        f'<div class="table-block">{note}{filter_bar(frame, headers) if len(frame) >= MIN_FILTER_ROWS else ""}'
        f'<div class="scroll"><table class="data"{ident}>{cap}'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div></div>"
    )
