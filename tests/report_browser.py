"""Open the report's index.html in headless Chromium and say what a reader would see (used by the tests, or by hand).

    python tests/report_browser.py report/index.html [--screenshot page.png]

No browser driver is needed: a copy of the page gets two small scripts, one
first in <head> that records every error (uncaught exceptions, failed
promises, console.error, resources that fail to load) and one run after load
that checks the page the way a reader uses it (sections and figures visible,
a table sorted by a header click, filtered by a drop-down) and writes what it
found as JSON into the page. Chromium's --dump-dom prints the page after its
scripts ran; the JSON is read back from it. Debian's package is `chromium`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SECTIONS = ("answer", "blog", "releases", "details", "plots", "files")

RECORD_ERRORS = """<script>window.__errors=[];
window.addEventListener('error',function(e){window.__errors.push(e.message||('failed to load '+((e.target&&(e.target.src||e.target.href))||'a resource')));},true);
window.addEventListener('unhandledrejection',function(e){window.__errors.push('unhandled rejection: '+e.reason);});
(function(){var real=console.error;console.error=function(){window.__errors.push(Array.prototype.join.call(arguments,' '));real.apply(console,arguments);};})();
</script>"""

CHECK_PAGE = """<script>window.addEventListener('load',function(){var out={errors:window.__errors,sections:{},figures:0,heatmaps:0};
function visible(el){if(!el)return false;var r=el.getBoundingClientRect();return r.width>0&&r.height>0&&getComputedStyle(el).visibility!=='hidden';}
SECTIONS.forEach(function(id){out.sections[id]=visible(document.getElementById(id));});
var width=document.documentElement.clientWidth;out.page_overflow=document.documentElement.scrollWidth-width;
out.cut_off=[];document.querySelectorAll('table').forEach(function(t){if(!t.closest('.scroll')&&t.getBoundingClientRect().right>width+1)out.cut_off.push(t.className+' in '+((t.closest('section')||{}).id||'?'));});
document.querySelectorAll('#plots figure img').forEach(function(img){if(visible(img)&&img.naturalWidth>0)out.figures++;});
document.querySelectorAll('table.heatmap').forEach(function(t){if(visible(t))out.heatmaps++;});
try{var table=document.querySelector('table.data#'+TABLE)||document.querySelector('table.data');out.sorted_table=table.id;
 var ths=Array.prototype.slice.call(table.querySelectorAll('thead th')),num=ths.filter(function(h){return h.getAttribute('data-type')==='num';}),
  th=num.filter(function(h){return h.textContent.indexOf('steps/s')===0;})[0]||num[0];
 var idx=ths.indexOf(th);out.sort_column=th.textContent;
 function column(){return Array.prototype.map.call(table.tBodies[0].rows,function(r){var v=r.cells[idx].getAttribute('data-v');return v===null?null:parseFloat(v);}).filter(function(v){return v!==null;});}
 out.before=column();th.click();out.ascending=column();out.aria_after_one_click=th.getAttribute('aria-sort');th.click();out.descending=column();
 var block=table.closest('.table-block'),select=block.querySelector('select');
 if(select){select.value=select.options[1].value;select.dispatchEvent(new Event('input'));var col=+select.getAttribute('data-col');
  out.filter_value=select.value;out.filter_shown=[];Array.prototype.forEach.call(table.tBodies[0].rows,function(r){if(!r.hidden)out.filter_shown.push(r.cells[col].textContent.trim());});
  out.filter_count=block.querySelector('.count').textContent;}
}catch(e){out.errors.push('check failed: '+e);}
var pre=document.createElement('pre');pre.id='probe-result';pre.textContent=JSON.stringify(out);document.body.appendChild(pre);});
</script>"""


def find_chromium() -> str | None:
    """The Chromium executable ($CHROMIUM, or chromium / chromium-browser / google-chrome on PATH), or None."""
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _command(chromium: str, *flags: str) -> list[str]:
    # --no-sandbox: CI containers run as root, where Chromium's sandbox refuses to start.
    return [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run", *flags]


def probe(page: Path, chromium: str, table: str = "throughput", timeout: float = 60) -> dict:
    """What the checks found in `page` (see the module docstring), as a dict."""
    text = Path(page).read_text(encoding="utf-8")
    checks = CHECK_PAGE.replace("SECTIONS", json.dumps(list(SECTIONS))).replace("TABLE", json.dumps(table))
    instrumented = text.replace("<head>", "<head>" + RECORD_ERRORS, 1).replace("</body>", checks + "</body>", 1)
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "index.html"  # beside nothing: a page that needs other files fails here
        copy.write_text(instrumented, encoding="utf-8")
        done = subprocess.run(
            _command(chromium, "--window-size=1400,1000", "--virtual-time-budget=5000", "--dump-dom", copy.as_uri()),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    found = re.search(r'<pre id="probe-result">(.*?)</pre>', done.stdout, re.S)
    if not found:
        raise RuntimeError(f"chromium printed no result (exit {done.returncode}): {done.stderr[-500:]}")
    return json.loads(
        found.group(1).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
    )


def screenshot(
    page: Path, chromium: str, png: Path, width: int = 1400, height: int = 2400, timeout: float = 60
) -> Path:
    """A PNG of the top `height` pixels of `page`."""
    subprocess.run(
        _command(
            chromium,
            f"--window-size={width},{height}",
            f"--screenshot={Path(png).resolve()}",
            Path(page).resolve().as_uri(),
        ),
        capture_output=True,
        timeout=timeout,
        check=True,
    )
    return Path(png)


def main(argv=None) -> int:
    """Print the probe's findings for a page, and take a screenshot when asked."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("--screenshot", type=Path)
    parser.add_argument("--height", type=int, default=2400)
    args = parser.parse_args(argv)
    chromium = find_chromium()
    if not chromium:
        print("no chromium on PATH (Debian: apt-get install chromium)", file=sys.stderr)
        return 2
    print(json.dumps(probe(args.page, chromium), indent=1)[:3000])
    if args.screenshot:
        print(screenshot(args.page, chromium, args.screenshot, height=args.height))
    return 0


if __name__ == "__main__":
    sys.exit(main())
