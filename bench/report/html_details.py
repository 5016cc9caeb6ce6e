"""index.html's closing sections: every table (sortable and filterable), every plot, and the files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.report import views
from bench.report.html_blocks import paragraph, section
from bench.report.html_figures import embedded_png
from bench.report.html_releases import verdict_table
from bench.report.html_tables import esc, html_table
from bench.report.schema import peers_present
from bench.stats.intervals import UNSTABLE_RULE


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
    rule = UNSTABLE_RULE
    blocks = [
        (
            f"{title}, every case",
            "speedup = the case's steps/s ÷ its NumPy baseline's in the same run; `too close` when the "
            "95% interval (across passes; none for a figure of one pass) includes 1. Newest run per machine and MLX version (every run: speedup.csv).",
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
        body.append(f"<h3>{esc(title)}</h3>" + (paragraph(esc(intro)) if intro else "") + table)
    notes = [f"<code>{esc(m)}</code>" for m in views.reference_blas_machines(frame)]
    if notes:
        body.append(paragraph("MLX on " + ", ".join(notes) + " " + esc(views.REFERENCE_BLAS_NOTE.replace("`", ""))))
    return section("details", "Details", "".join(body))


def plots_section(plots: list[Path]) -> str:
    """Every PNG plot of the report, inline."""
    if not plots:
        return section(
            "plots", "Plots", paragraph("No plots (run without <code>--no-plots</code> to draw them).", "none")
        )
    captions = {
        "throughput": "steps/s against problem size, newest MLX version",
        "speedup": "a backend's steps/s ÷ NumPy's over (n_examples, n_features)",
        "backends": "the fastest case of each backend by problem size",
        "versions": "steps/s by MLX version (median; bars: IQR over runs)",
    }
    figures = [embedded_png(p, captions.get(p.name.split("-")[0], p.stem)) for p in plots]
    return section("plots", "Plots", "".join(figures))


def files_section(outputs: list[str], skipped: list[tuple[str, str]]) -> str:
    """The CSVs beside the page, and the input files that were skipped."""
    links = " · ".join(f'<a href="{esc(name)}">{esc(name)}</a>' for name in outputs)
    skip = "".join(f"<li><code>{esc(path)}</code>: {esc(why)}</li>" for path, why in skipped)
    return section(
        "files",
        "Files",
        paragraph(f"Every row is in the files beside this page: {links}.")
        + (
            f"<h3>Skipped input files ({len(skipped)})</h3><ul>{skip}</ul>"
            if skipped
            else paragraph("No input file was skipped.")
        ),
    )
