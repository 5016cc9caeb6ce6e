"""The report's tables as DataFrames, shared by summary.md and index.html.

Each function turns the report's computed tables (throughput rows, speedup.csv,
backends.csv, versions.csv, release-verdict files) into the frame a reader
sees: chosen columns in reading order, raw numbers (so that a page can sort
them) and the formatter of each column (so that every output shows them
alike). Long tables keep the newest run per machine and MLX version; the CSVs
hold every run. Backends are names in the data: every backend with a NumPy
baseline gets its speedup rows, and when peers of MLX (PyTorch, JAX...) are
present, ``side_by_side`` puts each backend's fastest case next to the others'.

This module is where the pages find every table; each lives with its concern:
  table_formats.py    cell formatters (COUNT, RATIO...) and column headers
  table_rows.py       rows in reading order, case and size labels, newest MLX version
  headline_tables.py  each backend against NumPy, the backends side by side
  verdict_tables.py   release verdicts: rows, regressions, counts
  detail_tables.py    every case: blog, speedup, backends, throughput, cold, overhead,
                      distributed, unstable; DETAIL_FORMATS
  machine_tables.py   the machines and MLX versions read, the report's header line
"""

from __future__ import annotations

from bench.report.detail_tables import (
    DETAIL_FORMATS,
    THROUGHPUT_FORMATS,
    backends_detail,
    blog_ratios,
    blog_rows,
    cold_detail,
    distributed_detail,
    overhead_detail,
    speedup_detail,
    throughput_detail,
    unstable_detail,
)
from bench.report.headline_tables import (
    SIDE_KEYS,
    answer_title,
    compared_backends,
    headline_by_size,
    headline_sentence,
    side_by_side,
    speedup_cells,
)
from bench.report.machine_tables import REFERENCE_BLAS_NOTE, machines, reference_blas_machines, runs_read
from bench.report.table_formats import (
    COUNT,
    FIXED2,
    HEADERS,
    MS,
    P_VALUE,
    PCT,
    RATIO,
    SIGNED_PCT,
    YES,
    fmt,
)
from bench.report.table_rows import mlx_text, newest_version, same_run, size_text, with_case
from bench.report.verdict_tables import VERDICT_COLUMNS, VERDICT_FORMATS, is_regression, verdict_counts, verdict_rows

__all__ = [
    "COUNT",
    "DETAIL_FORMATS",
    "FIXED2",
    "HEADERS",
    "MS",
    "PCT",
    "P_VALUE",
    "RATIO",
    "REFERENCE_BLAS_NOTE",
    "SIDE_KEYS",
    "SIGNED_PCT",
    "THROUGHPUT_FORMATS",
    "VERDICT_COLUMNS",
    "VERDICT_FORMATS",
    "YES",
    "answer_title",
    "backends_detail",
    "blog_ratios",
    "blog_rows",
    "cold_detail",
    "compared_backends",
    "distributed_detail",
    "fmt",
    "headline_by_size",
    "headline_sentence",
    "is_regression",
    "machines",
    "mlx_text",
    "newest_version",
    "overhead_detail",
    "reference_blas_machines",
    "runs_read",
    "same_run",
    "side_by_side",
    "size_text",
    "speedup_cells",
    "speedup_detail",
    "throughput_detail",
    "unstable_detail",
    "verdict_counts",
    "verdict_rows",
    "with_case",
]
