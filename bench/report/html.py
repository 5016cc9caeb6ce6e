"""index.html: one self-contained page that opens with the answer, then the details.

Order of the page: per machine and model, MLX against NumPy across sizes as a
coloured table, with one sentence that says it (one table and sentence per
backend when peers of MLX, PyTorch or JAX, are present, and then the backends
side by side: each one's fastest case per size and MLX's ratio to each peer's);
the blog's cases beside the blog's figures; the MLX release verdicts with
their intervals and, where the release runner ran one, its self-test. Then
every table, sortable and filterable, every plot, and the files. Style and a
few lines of script are inline: the page needs no network and no build step,
and can be mailed or attached to a CI run as it is.

Tables show the newest run per machine and MLX version, and the heat maps
each machine's newest MLX version, so the page stays small however many runs
are read; the CSVs beside it keep every row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.releases import version_key
from bench.report import views
from bench.report.html_figures import (
    VERDICT_COLORS,
    embedded_png,
    heatmap_legend,
    interval_svg,
    speedup_heatmap,
    speedup_norm,
)
from bench.report.html_tables import esc, html_table
from bench.report.regression import ALPHA
from bench.report.schema import backend_label, peers_present
from bench.stability import AGREEMENT, MIN_ROUNDS, UNSTABLE_IQR_SHARE
from reference import load_blog_figures

# Verdict rows shown in the headline; the rest are in the release tables below it.
HEADLINE_VERDICTS = 25

STYLE = """
:root{--fg:#1b1b1b;--muted:#555;--line:#d0d0d0;--bg2:#f4f4f4;--blue:#0072B2;--orange:#E69F00;--verm:#D55E00}
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);margin:0 auto;padding:0 1.2rem 3rem;max-width:1500px}
header{border-bottom:2px solid var(--fg);margin-bottom:1rem;padding-top:.6rem}
h1{font-size:1.6rem;margin:.3rem 0}h2{font-size:1.3rem;margin:2rem 0 .5rem;border-bottom:1px solid var(--line)}
h3{font-size:1.1rem;margin:1.3rem 0 .4rem}h4{font-size:1rem;margin:1rem 0 .3rem}
nav a{margin-right:1rem}.meta{color:var(--muted);font-size:.9rem}
code{background:var(--bg2);padding:0 .2rem;border-radius:3px;font-size:.88em}
.answer{font-size:1rem;margin:.2rem 0 .5rem}.none{color:var(--muted);font-style:italic}
table{border-collapse:collapse;font-size:.85rem}
th,td{border:1px solid var(--line);padding:.2rem .45rem;text-align:left;vertical-align:middle;white-space:nowrap}
.every-row{font-size:.85rem;color:var(--muted);margin:.3rem 0}
td[data-v]{text-align:right;font-variant-numeric:tabular-nums}
table.data thead th{background:var(--bg2);cursor:pointer;position:sticky;top:0;white-space:nowrap}
table.data thead th:after{content:" ⇅";color:#999}
table.data thead th[aria-sort=ascending]:after{content:" ▲";color:var(--fg)}
table.data thead th[aria-sort=descending]:after{content:" ▼";color:var(--fg)}
table.data tbody tr:nth-child(even){background:#fafafa}
tr.unstable td,tr.undecided td{color:#666;font-style:italic}
tr.regression td{background:#fde7dc}
.scroll{max-height:32rem;overflow:auto;border:1px solid var(--line)}
.filters{display:flex;flex-wrap:wrap;gap:.3rem .9rem;align-items:center;margin:.4rem 0;font-size:.85rem}
.filters select,.filters input{font-size:.85rem}.count{color:var(--muted)}
.badge{display:inline-block;padding:0 .4rem;border-radius:.6rem;font-size:.8rem;font-style:normal;white-space:nowrap;border:1px solid transparent}
.v-regression{background:var(--verm);color:#fff;font-weight:600}.v-slower{background:var(--orange);color:#000}
.v-faster,.f-backend{background:var(--blue);color:#fff}.f-baseline{background:#b2182b;color:#fff}
.v-same{background:#e8e8e8}.v-undecided,.f-inconclusive{border:1px dashed #555;background:#fff;color:#333}
.v-unstable{border:1px dashed var(--orange);background:#fff7e0;color:#000}.v-control{background:#e8e8e8}
table.heatmap td.hm{text-align:center;font-variant-numeric:tabular-nums;min-width:5.2rem;font-weight:600}
table.heatmap td.hm-close{outline:2px dashed #333;outline-offset:-4px;font-weight:400}
table.heatmap td.hm-none{color:#999;text-align:center;background:#eee}
table.heatmap th{background:var(--bg2);white-space:nowrap}table.heatmap th.hm-case{font-weight:500}
.legend{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;font-size:.82rem;margin:.3rem 0 1rem;color:var(--muted)}
.legend .scale{display:inline-block;width:14rem;height:.8rem;border:1px solid #999}
.model{display:inline-block;vertical-align:top;margin:0 2rem 1rem 0;max-width:36rem}
.status{border:2px solid;border-radius:6px;padding:.6rem .9rem;margin:.6rem 0;max-width:60rem}
.status strong{font-size:1.05rem}
.st-pass,.st-ok{border-color:var(--blue);background:#e6f1f8}
.st-regression{border-color:var(--verm);background:#fde7dc}
.st-inconclusive,.st-unfit{border-color:var(--orange);background:#fff4dc}
figure{margin:1rem 0;max-width:100%}figure img{max-width:100%;height:auto;border:1px solid var(--line)}
figcaption{font-size:.85rem;color:var(--muted)}
details>summary{cursor:pointer;font-weight:600;margin:.6rem 0}
svg.ci{vertical-align:middle}
"""

# Sorting and filtering: every table.data sorts on a header click (numbers by their
# raw data-v value, blanks last) and filters by its drop-downs and search box.
SCRIPT = """
(function(){
function key(td,num){if(!td)return null;if(num){var v=td.getAttribute('data-v');return v===null||v===''?null:parseFloat(v);}
 return (td.getAttribute('data-v-text')||td.textContent).trim().toLowerCase();}
function sortBy(th){var table=th.closest('table'),idx=Array.prototype.indexOf.call(th.parentNode.children,th);
 var num=th.getAttribute('data-type')==='num',asc=th.getAttribute('aria-sort')!=='ascending';
 table.querySelectorAll('thead th').forEach(function(h){h.removeAttribute('aria-sort');});
 th.setAttribute('aria-sort',asc?'ascending':'descending');
 var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
 rows.sort(function(a,b){var x=key(a.cells[idx],num),y=key(b.cells[idx],num);
  if(x===null||x==='')return (y===null||y==='')?0:1;if(y===null||y==='')return -1;
  return (x<y?-1:x>y?1:0)*(asc?1:-1);});
 rows.forEach(function(r){body.appendChild(r);});}
function filter(block){var table=block.querySelector('table'),selects=block.querySelectorAll('select'),
 text=(block.querySelector('input[type=search]').value||'').toLowerCase(),shown=0;
 Array.prototype.forEach.call(table.tBodies[0].rows,function(r){var ok=true;
  selects.forEach(function(s){if(s.value!==''&&r.cells[+s.getAttribute('data-col')].textContent.trim()!==s.value)ok=false;});
  if(ok&&text&&r.textContent.toLowerCase().indexOf(text)<0)ok=false;r.hidden=!ok;if(ok)shown++;});
 block.querySelector('.count').textContent=shown.toLocaleString()+' of '+table.tBodies[0].rows.length.toLocaleString()+' rows';}
document.querySelectorAll('table.data thead th').forEach(function(th){th.addEventListener('click',function(){sortBy(th);});
 th.addEventListener('keydown',function(e){if(e.key==='Enter'||e.key===' '){e.preventDefault();sortBy(th);}});});
document.querySelectorAll('.table-block').forEach(function(block){
 block.querySelectorAll('select,input').forEach(function(c){c.addEventListener('input',function(){filter(block);});});});
})();
"""


def _section(ident: str, title: str, body: str) -> str:
    return f'<section id="{ident}"><h2>{esc(title)}</h2>{body}</section>'


def _p(text: str, cls: str = "") -> str:
    return f'<p class="{cls}">{text}</p>' if cls else f"<p>{text}</p>"


def side_by_side_block(side: pd.DataFrame, ratios: list[str]) -> str:
    """The side-by-side table of one machine: each backend's fastest case per model and size, MLX ÷ each peer."""
    if side.empty:
        return ""
    shown = side.drop(columns=["machine", "mlx_version", "n_examples"])
    formats = {c: views.COUNT for c in shown.columns if c.endswith(" steps/s")} | {c: views.RATIO for c in ratios}
    formats |= {"batch_size": views.COUNT, "hidden": views.COUNT}
    return (
        "<h4>Backends side by side: the fastest case of each</h4>"
        + _p(
            esc(
                "Per model, size, batch size, hidden width and device class (cpu, or accelerator: MLX gpu, PyTorch "
                "cuda/mps, JAX cuda), each backend's fastest case (variant-barrier-device) and its steps/s; "
                "a ratio is MLX's fastest steps/s over the peer's, taken pass by pass, and the column beside it "
                "names the side its 95% interval favours. Every pair, both ways: backends.csv."
            )
        )
        + html_table(shown, formats, keep=("model", "size"))
    )


def answer_section(frame: pd.DataFrame, speedup: pd.DataFrame) -> str:
    """Per machine (its newest MLX version) and model: one sentence and the speedup heat map of each backend
    compared with NumPy; with peers of MLX present, the backends side by side."""
    cells = views.speedup_cells(speedup)
    grid = cells[cells["scenario"] == "grid"] if len(cells) else cells
    title = views.answer_title(cells)
    side, _, ratios = (
        views.side_by_side(frame) if peers_present(frame["backend"].unique()) else (pd.DataFrame(), [], [])
    )
    if grid.empty and side.empty:
        return _section("answer", title, _p("No MLX grid case with a NumPy baseline in the same run.", "none"))
    backends = views.compared_backends(grid)
    label = backend_label(backends[0]) if len(backends) == 1 else None  # None: several, one heat map each
    # Each machine and MLX version once, from the heat maps' rows and the side-by-side table's alike.
    runs = pd.concat([grid[["machine", "mlx_version"]], side[["machine", "mlx_version"]] if len(side) else None])
    runs = runs.drop_duplicates().astype(object)
    parts = []
    for machine, version in sorted(runs.itertuples(index=False), key=lambda r: (str(r[0]), version_key(r[1]))):
        machine_cells = grid[views.same_run(grid, machine, version)]
        parts.append(f"<h3>{esc(machine)} — {esc(views.mlx_text(version))}</h3>")
        if machine in views.reference_blas_machines(frame):
            parts.append(_p(f"MLX here {esc(views.REFERENCE_BLAS_NOTE.replace('`', ''))}", "answer"))
        if len(machine_cells):
            # One colour scale per machine: a slow machine's 40x would wash out another's 1.5x.
            norm = speedup_norm(machine_cells["speedup"])
            parts.append(heatmap_legend(norm, label))
            for model, model_cells in machine_cells.groupby("model", sort=True):
                inner = []
                for backend in backends:
                    mine = model_cells[model_cells["backend"] == backend]
                    if mine.empty:
                        continue
                    heading = "" if len(backends) == 1 else f"<h5>{esc(backend_label(backend))} ÷ NumPy</h5>"
                    inner.append(
                        f'{heading}<p class="answer">{esc(views.headline_sentence(mine))}.</p>{speedup_heatmap(mine, norm)}'
                    )
                parts.append(f'<div class="model"><h4>{esc(model)}</h4>{"".join(inner)}</div>')
        if len(side):
            parts.append(side_by_side_block(side[views.same_run(side, machine, version)], ratios))
    return _section("answer", title, "".join(parts))


def blog_section(frame: pd.DataFrame) -> str:
    """The blog's cases beside the blog's published figures."""
    figures = load_blog_figures()
    published = {(f["model"], f["backend"]): f["steps_per_s"] for f in figures["figures"]}
    rows = views.blog_rows(frame, published)
    if rows.empty:
        body = _p(
            "No results of the blog scenario; run <code>pytest --benchmark-only bench/test_blog.py</code>.", "none"
        )
    else:
        body = (
            _p(
                f"The blog: {esc(figures['machine'])}. Its figures are one timing each; here, the median of the rounds "
                "(newest run per machine and MLX version)."
            )
            + html_table(rows, views.DETAIL_FORMATS, "blog")
            + "<h4>MLX ÷ NumPy, here and in the blog</h4>"
            + html_table(views.blog_ratios(rows, published), views.DETAIL_FORMATS, "blog-ratios")
        )
    return _section("blog", "The blog's cases", body)


def _status_box(status: str, title: str, lines: list[str]) -> str:
    return (
        f'<div class="status st-{esc(status)}"><strong>{title}</strong>'
        + "".join(f"<br>{line}" for line in lines)
        + "</div>"
    )


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
        title = f"Self-test of MLX {esc(test.get('release', '?'))}{' on ' + esc(where) if where else ''}: {esc(status.upper())}"
        boxes.append(_status_box(status, title, lines) + table)
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
    """Regressions first, then other changes and undecided rows, largest change first."""
    if rows.empty or "verdict" not in rows:
        return rows
    rank = np.where(
        views.is_regression(rows),
        0,
        np.where(rows["verdict"] == "same", 3, np.where(rows["verdict"] == "undecided", 2, 1)),
    )
    rows = rows.assign(_rank=rank, _size=-rows["pct_change"].abs() if "pct_change" in rows else 0)
    rows = rows[rows["_rank"] < 3].sort_values(["_rank", "_size"])
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
                _status_box(
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
        parts.append(_p("No case was measured under more than one MLX version on the same machine.", "none"))
    else:
        notable = _notable(rows)
        parts.append(
            f"<h4>This report's comparison of the runs (versions.csv): each release against the previous one</h4>{_p(esc(rule))}"
            + html_table(views.verdict_counts(rows))
            + (
                f"<p>{int(views.is_regression(rows).sum())} regression(s); changes and undecided cases, largest first "
                f"({min(len(notable), HEADLINE_VERDICTS)} of {len(notable)} here, every row in the details):</p>"
                + verdict_table(notable.head(HEADLINE_VERDICTS), threshold, "", True)
                if len(notable)
                else _p("Every case: same.")
            )
        )
    return _section("releases", "MLX releases", "".join(parts))


def details_section(
    frame: pd.DataFrame,
    speedup: pd.DataFrame,
    versions: pd.DataFrame,
    release_verdicts: list[dict],
    threshold: float,
    backends: pd.DataFrame | None = None,
) -> str:
    """Every table, sortable and filterable."""
    warm = frame[frame["phase"] == "warm"]
    title = views.answer_title(views.speedup_cells(speedup))
    rule = (
        f"no majority of passes within {AGREEMENT:.0%} of the median, rounds' IQR above {UNSTABLE_IQR_SHARE:.0%} "
        f"of the median, or fewer than {MIN_ROUNDS} rounds"
    )
    blocks = [
        (
            f"{title}, every case",
            "speedup = the case's steps/s ÷ its NumPy baseline's in the same run; `too close` when the "
            "95% interval (across passes; a bootstrap of the rounds for runs saved before passes) includes 1. Newest run per machine and MLX version (every run: speedup.csv).",
            html_table(views.speedup_detail(speedup), views.DETAIL_FORMATS, "speedup"),
        ),
    ]
    if backends is not None and peers_present(frame["backend"].unique()):
        blocks.append(
            (
                "Backend against backend, every pair",
                "Each backend's fastest case against each other backend's at the same model, size, batch size, hidden "
                "width, dtype and device class; ratio = the first backend's steps/s ÷ the other's, taken pass by pass. "
                "Newest run per machine and MLX version (every run: backends.csv).",
                html_table(views.backends_detail(backends), views.DETAIL_FORMATS, "backends"),
            )
        )
    blocks += [
        (
            "Throughput",
            f"Warm rounds, newest run per machine and MLX version (every run: throughput.csv). K = steps per "
            f"round; steps/s = K ÷ median round time. Unstable (greyed, marked): {rule}.",
            html_table(views.throughput_detail(warm), views.DETAIL_FORMATS, "throughput"),
        ),
        (
            "MLX releases, every comparison",
            "versions.csv, each release against the previous one; undecided rows greyed.",
            verdict_table(views.verdict_rows(versions), threshold, "versions", False),
        ),
    ]
    for record in release_verdicts:
        blocks.append(
            (
                f"Release runner's verdicts ({record.get('path', '')})",
                "",
                verdict_table(views.verdict_rows(pd.DataFrame(record.get("rows") or [])), threshold, "", False),
            )
        )
    blocks += [
        (
            "Unstable rows",
            f"{int(frame['unstable'].sum())} row(s) over all runs with {rule}; those of the newest run per machine and MLX version.",
            html_table(views.unstable_detail(frame), views.DETAIL_FORMATS, "unstable"),
        ),
        (
            "Cold start",
            "First step of a freshly built trainer (tracing, compilation, page faults).",
            html_table(views.cold_detail(frame), views.DETAIL_FORMATS, "cold"),
        ),
        (
            "Harness overhead",
            "Suite round time ÷ bare perf_counter loop of the same kernel (1.000: the harness costs nothing).",
            html_table(views.overhead_detail(warm), views.DETAIL_FORMATS, "overhead"),
        ),
        ("Distributed runs", "", html_table(views.distributed_detail(warm), views.DETAIL_FORMATS, "distributed")),
        ("Machines", "", html_table(views.machines(frame), {}, "machines")),
    ]
    body = []
    for title, intro, table in blocks:
        if 'class="none"' in table and title in ("Cold start", "Harness overhead", "Distributed runs"):
            continue  # tables that exist only when the results carry their fields
        body.append(f"<h3>{esc(title)}</h3>" + (_p(esc(intro)) if intro else "") + table)
    notes = [f"<code>{esc(m)}</code>" for m in views.reference_blas_machines(frame)]
    if notes:
        body.append(_p("MLX on " + ", ".join(notes) + " " + esc(views.REFERENCE_BLAS_NOTE.replace("`", ""))))
    return _section("details", "Details", "".join(body))


def plots_section(plots: list[Path]) -> str:
    """Every PNG plot of the report, inline."""
    if not plots:
        return _section("plots", "Plots", _p("No plots (run without <code>--no-plots</code> to draw them).", "none"))
    captions = {
        "throughput": "steps/s against problem size, newest MLX version",
        "speedup": "a backend's steps/s ÷ NumPy's over (n_examples, n_features)",
        "backends": "the fastest case of each backend by problem size",
        "versions": "steps/s by MLX version (median; bars: IQR over runs)",
    }
    figures = [embedded_png(p, captions.get(p.name.split("-")[0], p.stem)) for p in plots]
    return _section("plots", "Plots", "".join(figures))


def files_section(outputs: list[str], skipped: list[tuple[str, str]]) -> str:
    """The CSVs beside the page, and the input files that were skipped."""
    links = " · ".join(f'<a href="{esc(name)}">{esc(name)}</a>' for name in outputs)
    skip = "".join(f"<li><code>{esc(path)}</code>: {esc(why)}</li>" for path, why in skipped)
    return _section(
        "files",
        "Files",
        _p(f"Every row is in the files beside this page: {links}.")
        + (
            f"<h3>Skipped input files ({len(skipped)})</h3><ul>{skip}</ul>"
            if skipped
            else _p("No input file was skipped.")
        ),
    )


def build_page(
    frame: pd.DataFrame,
    speedup: pd.DataFrame,
    versions: pd.DataFrame,
    *,
    files: int,
    skipped: list[tuple[str, str]],
    plots: list[Path],
    threshold: float,
    command: str,
    outputs: list[str],
    release_verdicts: list[dict] | None = None,
    self_tests: list[dict] | None = None,
    backends: pd.DataFrame | None = None,
) -> str:
    """The whole index.html text; `backends` is backends.csv's table (its every-pair table shows when peers ran)."""
    release_verdicts, self_tests = release_verdicts or [], self_tests or []
    versions_seen, span = views.runs_read(frame)
    span = f"; {span}" if span else ""
    meta = (
        f"<code>{esc(command)}</code>: {files} result file(s) read, {len(skipped)} skipped; {len(frame):,} rows from "
        f"{frame['machine'].nunique()} machine(s), MLX {esc(versions_seen)}{esc(span)}."
    )
    nav = "".join(
        f'<a href="#{i}">{t}</a>'
        for i, t in (
            ("answer", views.answer_title(views.speedup_cells(speedup)).replace(" against ", " vs ")),
            ("blog", "Blog"),
            ("releases", "Releases"),
            ("details", "Details"),
            ("plots", "Plots"),
            ("files", "Files"),
        )
    )
    body = [
        f'<header><h1>MLX SGD Bench report</h1><p class="meta">{meta}</p><nav>{nav}</nav></header>',
        # The self-test says whether this machine's release verdicts can be trusted at all: before anything else.
        _section("self-test", "Release runner's self-test", self_test_boxes(self_tests)) if self_tests else "",
        answer_section(frame, speedup),
        blog_section(frame),
        releases_section(versions, release_verdicts, threshold),
        details_section(frame, speedup, versions, release_verdicts, threshold, backends),
        plots_section(plots),
        files_section(outputs, skipped),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>MLX SGD Bench report</title>"
        f"<style>{STYLE}</style></head><body>{''.join(body)}<script>{SCRIPT}</script></body></html>\n"
    )
