"""How the report's reading time grows with the number of saved files (run by hand, not by pytest).

    python tests/report_scale.py [SAMPLE.json] [--counts 100,1000] [--full]

Copies one saved run N times into a temporary results folder (dates and MLX
versions varied, as a long history would have), then times load_results over
it, and with --full the whole report (`--no-plots`, then with plots). Prints
one line per N: seconds, milliseconds per file, and with --full the size of index.html.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.report import load_results, main  # noqa: E402

DEFAULT_SAMPLE = (
    Path(__file__).parent
    / "data"
    / "report"
    / "results"
    / "Linux-CPython-3.11-64bit"
    / "0001_7b7a985_20261127_151607.json"
)


def make_history(sample: Path, folder: Path, count: int) -> None:
    """`count` copies of `sample` under folder/<machine>/, each with its own date and one of 5 MLX versions."""
    doc = json.loads(sample.read_text())
    target = folder / "Linux-CPython-3.11-64bit"
    target.mkdir(parents=True)
    for i in range(count):
        doc["datetime"] = f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00+00:00"
        doc["machine_info"]["mlx_version"] = f"0.{28 + i % 5}.0"
        (target / f"{i + 1:04d}_run.json").write_text(json.dumps(doc))


def timed(function) -> float:
    """Seconds one call of `function` takes."""
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main_scale(argv=None) -> None:
    """Time reading (and with --full, the whole report) for each count."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sample", nargs="?", type=Path, default=DEFAULT_SAMPLE)
    parser.add_argument("--counts", default="100,1000")
    parser.add_argument("--full", action="store_true", help="also time the whole report")
    args = parser.parse_args(argv)
    for count in (int(c) for c in args.counts.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            results = Path(tmp) / "results"
            make_history(args.sample, results, count)
            frame = []
            load_s = timed(lambda results=results, frame=frame: frame.append(load_results([results])))
            line = f"{count:>5} files, {len(frame[0]):>6,} rows: load_results {load_s:6.2f} s ({1e3 * load_s / count:.2f} ms/file)"
            if args.full:
                quiet = lambda results=results: main([str(results), "--out", str(Path(tmp) / "report"), "--no-plots"])  # noqa: E731
                line += f"; report --no-plots {timed(quiet):6.2f} s"
                line += f"; report with plots {timed(lambda results=results: main([str(results), '--out', str(Path(tmp) / 'report')])):6.2f} s"
                page = Path(tmp) / "report" / "index.html"
                line += f"; index.html {page.stat().st_size / 1e6:.2f} MB"
            print(line, flush=True)


if __name__ == "__main__":
    main_scale()
