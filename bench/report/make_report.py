"""The command line: python -m bench.report [PATH ...] [--out DIR] [filters] [--fail-on-regression].

Reads saved results, writes throughput.csv, speedup.csv (each case against
its NumPy baseline), backends.csv (backend against backend, fastest case
against fastest case), versions.csv, summary.md (a digest), index.html (the
page to open) and PNG plots into --out, and prints where they are. Exit status: 0 done; 1 --fail-on-regression
and a regression was found; 2 nothing usable to report, or a bad command line,
or an output that cannot be written; 4 --fail-on-regression, no regression, but
a comparison was inconclusive (its NumPy controls moved between the releases,
so its verdicts cannot be trusted). Bad input never ends in a traceback: each
unusable file is one warning line.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import pandas as pd

from bench.console.exit_codes import INCONCLUSIVE, OK, REGRESSION, USAGE
from bench.console.oneline import one_line
from bench.results.releases import DEFAULT_THRESHOLD, THRESHOLD_HELP, parse_threshold
from bench.report.export import FORMATS as EXPORT_FORMATS
from bench.report.export import write_export
from bench.report.row_figures import add_figures
from bench.report.filters import apply_filters, latest_note, latest_runs
from bench.report.html import build_page
from bench.report.load import read_results, warn_stderr
from bench.report.markdown import build_summary
from bench.report.outputs import all_or_nothing, write_csv, write_text
from bench.report.regression import comparisons, compare_versions, inconclusive, regressions
from bench.report.schema import CASE_KEYS, FIGURE_COLUMNS, RUN_COLUMNS
from bench.report.speedup import backends_table, speedup_table
from bench.stats.verdict_engine import CORRECTIONS, exit_status

DEFAULT_RESULTS = Path("results")
DEFAULT_OUT = Path("report")
# The one table of every command (bench.console.exit_codes): 3 is the release runner's "incomplete".
EXIT_OK, EXIT_REGRESSION, EXIT_ERROR, EXIT_INCONCLUSIVE = OK, REGRESSION, USAGE, INCONCLUSIVE
OUTPUT_FILES = ("throughput.csv", "speedup.csv", "backends.csv", "versions.csv", "summary.md", "index.html")


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the usage stays in --help)."""

    def error(self, message: str):
        print(f"error: {one_line(message)} (see --help)", file=sys.stderr)
        raise SystemExit(EXIT_ERROR)


def build_parser() -> argparse.ArgumentParser:
    """The report's argument parser (its --help is the reference for every option)."""
    parser = _OneLineParser(
        prog="python -m bench.report",
        description=(
            "Turn saved benchmark results into comparison CSVs (throughput, each backend's speedup over NumPy, "
            "backend against backend, MLX versions), "
            "a Markdown digest, one self-contained HTML page (index.html) and PNG plots. Inputs are only read, never changed."
        ),
        epilog=(
            "Exit status: 0 done; 1 a regression (with --fail-on-regression); 2 nothing usable to report, "
            "or a usage error; 4 no regression but an inconclusive comparison, whose NumPy controls moved "
            "between the releases (with --fail-on-regression). A regression wins over an inconclusive comparison."
        ),
    )
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        type=Path,
        help=f"results folder (searched recursively for *.json) or pytest-benchmark JSON file; default: {DEFAULT_RESULTS}/",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        metavar="DIR",
        help=f"folder for the report's files (default: {DEFAULT_OUT}/)",
    )
    parser.add_argument(
        "--machine",
        action="append",
        default=[],
        metavar="NAME",
        help="only machines whose id (host name/results subfolder (CPU model, CPUs, memory), e.g. 'mbp/Darwin-CPython-3.12-64bit (Apple M1, 8 CPUs, 16 GiB)') contains NAME; repeatable",
    )
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="MODEL",
        help="only this model (linear, logistic, mlp...); repeatable or comma-separated",
    )
    parser.add_argument(
        "--latest", action="store_true", help="only the newest run (saved file) per machine and MLX version"
    )
    parser.add_argument(
        "--threshold",
        type=parse_threshold,
        default=DEFAULT_THRESHOLD,
        metavar="T",
        help=THRESHOLD_HELP,
    )
    parser.add_argument(
        "--correction",
        choices=CORRECTIONS,
        default="holm",
        help="multiple-comparison correction over the MLX cases: holm (family-wise, default) or bh (Benjamini-Hochberg)",
    )
    parser.add_argument(
        "--fail-on-regression",
        action="store_true",
        help="exit with status 1 when an MLX case regressed, 4 when none did but a comparison was inconclusive",
    )
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots (faster, e.g. in CI)")
    parser.add_argument(
        "--export",
        nargs=2,
        action="append",
        default=[],
        metavar=("FORMAT", "FILE"),
        help="also write FILE for another tool: github-action-benchmark (customBiggerIsBetter JSON, steps/s per case); "
        "repeatable",
    )
    return parser


def throughput_columns(frame: pd.DataFrame) -> list[str]:
    """throughput.csv's column order: run, case, figures, then every other field as saved."""
    first = [*RUN_COLUMNS, "mlx_version", "case_id", *CASE_KEYS, "backend_version", "steps_per_round", *FIGURE_COLUMNS]
    first = [c for c in first if c in frame]
    return first + [c for c in frame.columns if c not in first]


def _error(message: str) -> int:
    print(f"error: {one_line(message)}", file=sys.stderr)
    return EXIT_ERROR


def export_target_problem(path: Path, out: Path) -> str | None:
    """Why an export may not be written at `path` (never replace what the user did not name as a file), or None."""
    if path.is_symlink():
        return "is a symbolic link; name the file itself"
    if path.exists() and not path.is_file():
        return "exists and is not a regular file"
    if path.resolve().parent == out.resolve() and path.name in OUTPUT_FILES:
        return f"is one of the report's own outputs in {out}; choose another name"
    if not path.parent.is_dir() and path.parent.resolve() != out.resolve():  # --out is made by the report
        return f"its folder {path.parent} does not exist"
    return None


def main(argv: list[str] | None = None) -> int:
    """Run the report; return the exit status (see the module docstring)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help, or argparse's own usage error (status 2)
        return int(stop.code or 0)
    paths = args.paths or [DEFAULT_RESULTS]
    models = [m.strip() for value in args.model for m in value.split(",") if m.strip()]
    if args.out.exists() and not args.out.is_dir():
        return _error(f"--out {args.out} is a file, not a folder")
    unknown = [kind for kind, _ in args.export if kind not in EXPORT_FORMATS]
    if unknown:
        return _error(f"--export {unknown[0]}: unknown format (known: {', '.join(EXPORT_FORMATS)})")
    for kind, raw in args.export:
        problem = export_target_problem(Path(raw), args.out)
        if problem:
            return _error(f"--export {kind} {raw}: {problem}")

    loaded = read_results(paths, warn_stderr)
    if loaded.frame.empty:
        where = ", ".join(map(str, paths))
        return _error(f"no usable benchmark results in {where} ({len(loaded.skipped)} skipped); nothing to report")
    frame = apply_filters(loaded.frame, args.machine, models)
    if frame.empty:
        return _error(f"no results match --machine {args.machine or 'any'} --model {models or 'any'}")
    note = latest_note(frame) if args.latest or args.export else None
    if note:
        print(f"note: {'--latest' if args.latest else '--export'}: {note}", file=sys.stderr)
    frame = latest_runs(frame) if args.latest else frame

    frame = add_figures(frame)
    speedup = speedup_table(frame)
    backends = backends_table(frame)
    versions = compare_versions(frame, args.threshold, correction=args.correction)

    # Outputs never replace something we read (a result passed as PATH into --out, say).
    inputs = {Path(p).resolve() for p in loaded.files} | {Path(p).resolve() for p, _ in loaded.skipped}
    inputs |= {Path(r["path"]).resolve() for r in loaded.release_verdicts + loaded.self_tests + loaded.histories}
    clash = [name for name in OUTPUT_FILES if (args.out / name).resolve() in inputs]
    clash += [str(path) for _, path in args.export if Path(path).resolve() in inputs]
    if clash:
        return _error(f"the report would overwrite input file(s) {', '.join(clash)}; choose another output")
    try:
        with all_or_nothing(args.out) as out:  # every output (exports too) replaced together, or none
            written = [
                write_csv(frame[throughput_columns(frame)], out / "throughput.csv"),
                write_csv(speedup, out / "speedup.csv"),
                write_csv(backends, out / "backends.csv"),
                write_csv(versions, out / "versions.csv"),
            ]
            plots = []
            if not args.no_plots:
                from bench.report.plots import write_plots  # matplotlib only when plots are wanted

                plots = write_plots(frame, speedup, versions, out)
            # What the digest and the page both say: the same inputs, figures and command.
            shared = dict(
                files=len(loaded.files),
                skipped=loaded.skipped,
                plots=plots,
                threshold=args.threshold,
                command=shlex.join(["python", "-m", "bench.report", *argv]),
                release_verdicts=loaded.release_verdicts,
                self_tests=loaded.self_tests,
                histories=loaded.histories,
            )
            summary = build_summary(frame, speedup, versions, correction=args.correction, **shared)
            written.append(write_text(summary, out / "summary.md"))
            outputs = [p.name for p in written]
            page = build_page(frame, speedup, versions, outputs=outputs, backends=backends, **shared)
            written.append(write_text(page, out / "index.html"))
            for kind, path in args.export:
                write_export(frame, kind, Path(path))
    except OSError as error:
        return _error(f"cannot write the report to {args.out}: {error.strerror or error}")
    for kind, path in args.export:
        print(f"exported {kind}: {path}")

    print(
        f"read {len(loaded.files)} file(s), {len(frame):,} rows ({len(loaded.skipped)} skipped); "
        f"wrote {', '.join(p.name for p in written)} and {len(plots)} plot(s) to {args.out}/"
    )
    found = regressions(versions)
    for _, row in found.iterrows():
        print(
            f"regression: {row['machine']} {row['case_id']}: MLX {row['older']} -> {row['newer']} "
            f"{row['pct_change']:+.1f}% per-step time (95% interval {row['ci_low_pct']:+.1f}% to {row['ci_high_pct']:+.1f}%, "
            f"adjusted p={row['p_value_adjusted']:.2g}, {row['n_older']} vs {row['n_newer']} runs)"
        )
    moved = inconclusive(versions)
    for row in moved.itertuples():
        print(f"inconclusive: {row.machine}: MLX {row.older} -> {row.newer}: {row.reason}")
    if len(versions):
        print(
            f"MLX versions: {len(found)} regression(s), {len(moved)} inconclusive comparison(s) "
            f"in {len(versions)} case comparison(s); see {args.out / 'versions.csv'}"
        )
    rows = zip(versions.get("verdict", []), versions.get("control", []), versions.get("comparison_status", []))
    return exit_status(rows, comparisons(versions)["status"], args.fail_on_regression)
