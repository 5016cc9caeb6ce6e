"""The report: saved pytest-benchmark results -> comparison CSVs, index.html, a summary.md digest and plots.

    python -m bench.report [PATH ...] [--out DIR] [--machine NAME] [--model MODEL]
                           [--latest] [--threshold 10%] [--fail-on-regression]

One module per concern, one line each in docs/extending.md, "Layout".

For other modules (a release runner, a notebook):

    from bench.report import load_results, compare_versions
    versions = compare_versions(load_results(["results/"]), threshold=0.10)
"""

from bench.report.make_report import main
from bench.report.row_figures import add_figures
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
