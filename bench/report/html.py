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

This module puts the page together, with its style and script; its sections
are built in html_headline.py (the answer, the blog), html_releases.py (the
self-test, the release verdicts) and html_details.py (details, plots, files).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.report import views
from bench.report.html_blocks import section
from bench.report.html_details import details_section, files_section, plots_section
from bench.report.html_headline import answer_section, blog_section
from bench.report.html_history import history_section
from bench.report.html_releases import releases_section, self_test_boxes
from bench.report.html_tables import esc

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
.v-same{background:#e8e8e8}.v-undecided,.f-neither{border:1px dashed #555;background:#fff;color:#333}
.v-unstable{border:1px dashed var(--orange);background:#fff7e0;color:#000}.v-control{background:#e8e8e8}
table.heatmap td.hm{text-align:center;font-variant-numeric:tabular-nums;min-width:5.2rem;font-weight:600}
table.heatmap td.hm-close{outline:2px dashed #333;outline-offset:-4px;font-weight:400}
table.heatmap td.hm-none{color:#999;text-align:center;background:#eee}
table.heatmap th{background:var(--bg2);white-space:nowrap}table.heatmap th.hm-case{font-weight:500}
.legend{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;font-size:.82rem;margin:.3rem 0 1rem;color:var(--muted)}
.legend .scale{display:inline-block;width:14rem;height:.8rem;border:1px solid #999}
.model{display:inline-block;vertical-align:top;margin:0 2rem 1rem 0;max-width:100%;overflow-x:auto}
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
    histories: list[dict] | None = None,
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
            *((("history", "History"),) if histories else ()),
            ("details", "Details"),
            ("plots", "Plots"),
            ("files", "Files"),
        )
    )
    body = [
        f'<header><h1>MLX SGD Bench report</h1><p class="meta">{meta}</p><nav>{nav}</nav></header>',
        # The self-test says whether this machine's release verdicts can be trusted at all: before anything else.
        section("self-test", "Release runner's self-test", self_test_boxes(self_tests)) if self_tests else "",
        answer_section(frame, speedup),
        blog_section(frame),
        releases_section(versions, release_verdicts, threshold),
        history_section(histories or [], threshold),
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
