"""The report: saved pytest-benchmark results -> comparison CSVs, index.html, a summary.md digest and plots.

    python -m bench.report [PATH ...] [--out DIR] [--machine NAME] [--model MODEL]
                           [--latest] [--threshold 10%] [--fail-on-regression]

One module per concern:
  load.py        saved JSON -> one tidy table (one row per case per run); bad files skipped
  schema.py      the result schema (bench.schema) seen from the report, case ids (bench.identity), backend labels
  figures.py     per-row median, IQR, steps/s, samples/s, GFLOP/s, GB/s, roofline, stability
  stats.py       bootstrap intervals, empirical-Bayes noise shrinkage, Holm / Benjamini-Hochberg
  speedup.py     every backend against NumPy (speedup.csv), backend against backend at its fastest (backends.csv)
  regression.py  MLX version against version: run-level verdicts, NumPy controls (versions.csv)
  filters.py     --machine, --model, --latest
  views.py       the tables a reader sees, shared by summary.md and index.html (re-exported from
                 table_formats, table_rows, headline_tables, verdict_tables, detail_tables, machine_tables)
  markdown.py    summary.md, the digest
  html.py        index.html, the page (html_blocks, html_headline, html_releases, html_details: its sections;
                 html_tables.py: sortable tables; html_figures.py: inline pictures)
  plots.py       PNG plots
  outputs.py     atomic file writing
  cli.py         the command line, main(argv) -> exit status

For other modules (a release runner, a notebook):

    from bench.report import load_results, compare_versions
    versions = compare_versions(load_results(["results/"]), threshold=0.10)
"""

from bench.report.cli import main
from bench.report.figures import add_figures
from bench.report.load import load_results, read_results
from bench.report.regression import compare_versions, regressions
from bench.report.speedup import backends_table, speedup_table

__all__ = [
    "add_figures",
    "backends_table",
    "compare_versions",
    "load_results",
    "main",
    "read_results",
    "regressions",
    "speedup_table",
]
