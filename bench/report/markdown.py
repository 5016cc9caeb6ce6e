"""summary.md: a digest of the report that fits on a few screens.

What a reader of a CI log or a pull request wants at a glance: the release
runner's self-test, regressions, MLX against NumPy per machine, model and size
(the best and the worst MLX case), the blog's cases beside the blog's
figures, verdict counts per pair of MLX releases, distributed runs when there
are any, the machines, and how many rows were too noisy to trust. Every table row of the full report is in
index.html and every run in the CSVs; the digest says where.

When peers of MLX are in the results (PyTorch, JAX, any backend besides NumPy
and MLX), every backend is compared with NumPy in the same section ("Backends
against NumPy", a backend column in its table), and "Backends side by side"
follows: per machine and model, one row per size, batch size, hidden width and
device class, each backend's fastest case (steps/s and which case) and MLX's
ratio to each peer's fastest (backends.csv). With only NumPy and MLX the
digest is what it always was.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.report import views
from bench.report.regression import ALPHA, MIN_RUNS, inconclusive
from bench.report.schema import FOCUS_BACKEND, backend_label, peers_present
from bench.stats.intervals import UNSTABLE_RULE
from bench.stats.pairing import NEITHER
from reference import load_blog_figures

# Longest lists the digest prints before pointing to the page and the CSVs.
MAX_REGRESSIONS = 20
MAX_UNSTABLE = 10
MAX_SKIPPED = 10


def table(frame: pd.DataFrame, formats: dict | None = None) -> str:
    """A Markdown table of `frame`, columns formatted by `formats` (column -> function), headers readable."""
    if frame is None or frame.empty:
        return "_(none)_"
    frame = frame.copy()
    for column, format_value in (formats or {}).items():
        if column in frame:
            frame[column] = frame[column].map(format_value)
    frame = frame.astype(object).where(frame.notna(), "").rename(columns=views.HEADERS)
    return frame.to_markdown(index=False, disable_numparse=True)


def _more(shown: int, total: int, where: str) -> str:
    return f"\n\n{total - shown:,} more in {where}." if total > shown else ""


def section_self_test(self_tests: list[dict]) -> str:
    """The release runner's self-test status, one line each."""
    if not self_tests:
        return ""
    lines = []
    for test in sorted(self_tests, key=lambda t: str(t.get("created", ""))):
        lines.append(
            f"- **{str(test.get('status', '?')).upper()}**: self-test of MLX {test.get('release', '?')}"
            f"{'' if test.get('fit_to_gate', True) else ' (not fit to gate a release)'}: {test.get('summary', '')} (`{test.get('path', '')}`)"
        )
    return "## Self-test\n\n" + "\n".join(lines) + "\n"


def section_history(histories: list[dict]) -> str:
    """The release history's change points: where an MLX case's speed stepped between consecutive releases."""
    if not histories:
        return ""
    lines = []
    for record in sorted(histories, key=lambda r: str(r.get("created", ""))):
        releases = [str(r) for r in record.get("releases") or []]
        points = record.get("change_points") or []
        span = f"MLX {releases[0]} to {releases[-1]}" if releases else "MLX ?"
        lines.append(
            f"- {span}, {len(releases)} releases measured interleaved (`{record.get('path', '')}`): "
            f"{len(points)} change point(s)" + (":" if points else "")
        )
        for point in points:
            status = "" if point.get("status", "ok") == "ok" else f" (unconfirmed: {point.get('status')})"
            lines.append(
                f"  - {point.get('case_id')}: {point.get('older')} → {point.get('newer')} "
                f"{_signed(point.get('pct_change'))} [{_signed(point.get('ci_low_pct'))}, {_signed(point.get('ci_high_pct'))}] "
                f"**{point.get('verdict')}**{status}"
            )
        for moved in record.get("machine_changes") or []:
            lines.append(
                f"  - NumPy control {moved.get('case_id')} stepped {moved.get('older')} → {moved.get('newer')} "
                f"{_signed(moved.get('pct_change'))}: a machine change, MLX steps there inconclusive"
            )
        for release, why in (record.get("not_measured") or {}).items():
            lines.append(f"  - not measured: MLX {release}: {why}")
    return "## Release history\n\n" + "\n".join(lines) + "\n"


def _signed(value) -> str:
    """A change in % with its sign, or ? when missing."""
    return f"{value:+.1f}%" if isinstance(value, (int, float)) and value == value else "?"


def section_regressions(versions: pd.DataFrame, release_verdicts: list[dict], threshold: float, correction: str) -> str:
    """Regressions: this report's own (versions.csv) and the release runner's (release-verdicts.json)."""
    method = {"holm": "Holm", "bh": "Benjamini-Hochberg"}.get(correction, correction)
    tested = int((versions["p_value"].notna() & ~versions["control"].astype(bool)).sum()) if len(versions) else 0
    rule = (
        f"an MLX case whose per-step time, run by run and normalised by the NumPy controls of the same run, "
        f"is slower by more than {100 * threshold:g}%, with a one-sided {method}-adjusted p ≤ {ALPHA} over "
        f"{tested} MLX test(s) and at least {MIN_RUNS} runs on each side"
    )
    parts = [
        f"- **inconclusive**: {row.machine} MLX {row.older} → {row.newer}: {row.reason}"
        for row in (inconclusive(versions).itertuples() if len(versions) else [])
    ]
    for record in release_verdicts:
        for comparison in record.get("comparisons") or []:
            reason = f": {comparison['reason']}" if comparison.get("reason") else ""
            parts.append(
                f"- release runner, MLX {comparison.get('older')} → {comparison.get('newer')}: "
                f"**{comparison.get('status')}**{reason}"
            )
        rows = views.verdict_rows(pd.DataFrame(record.get("rows") or []))
        flagged = rows[views.is_regression(rows)] if len(rows) else rows
        parts.append(
            f"- release runner: {len(flagged)} regression(s) in {len(rows)} verdicts (`{record.get('path', '')}`)"
        )
    runner = ("\n".join(parts) + "\n\n") if parts else ""
    rows = views.verdict_rows(versions)
    found = rows[views.is_regression(rows)] if len(rows) else rows
    if found.empty:
        compared = "no case was measured under two MLX versions" if versions.empty else "none found"
        return f"## Regressions\n\n{runner}A regression is {rule}: {compared}.\n"
    found = found.sort_values("pct_change", ascending=False)
    columns = [c for c in ("machine", "case_id", "older", "newer", "pct_change", "p_value_adjusted") if c in found]
    body = table(found[columns].head(MAX_REGRESSIONS), views.VERDICT_FORMATS)
    return (
        f"## Regressions\n\n{runner}**{len(found)} regression(s)** against the previous MLX version; a regression is "
        f"{rule}.\n\n{body}{_more(MAX_REGRESSIONS, len(found), 'versions.csv')}\n"
    )


def section_answer(speedup: pd.DataFrame) -> str:
    """Each backend against NumPy per machine, model and size: how many of its cases win, the best and the worst."""
    cells = views.speedup_cells(speedup)
    title = views.answer_title(cells)
    if cells.empty:
        return f"## {title}\n\n_(no MLX case with a NumPy baseline in the same run)_\n"
    backends = views.compared_backends(cells)
    lines = []
    for (machine, version, model), part in cells[cells["scenario"] == "grid"].groupby(
        ["machine", "mlx_version", "model"], sort=True, dropna=False
    ):
        for backend in backends:
            mine = part[part["backend"] == backend]
            if len(mine):
                lines.append(f"- `{machine}` {views.mlx_text(version)}, **{model}**: {views.headline_sentence(mine)}.")
    by_size = views.headline_by_size(cells[cells["scenario"] != "blog"])
    if len(backends) == 1:
        label = backend_label(backends[0])
        ratio = f"speedup = {label} steps/s ÷ NumPy steps/s in the same run (> 1: {label} faster)"
    else:
        ratio = "speedup = a backend's steps/s ÷ NumPy steps/s in the same run (> 1: that backend faster)"
    return (
        f"## {title}\n\n{ratio}, "
        "newest run of each machine's newest MLX version; a side is faster only when the 95% interval across passes "
        "excludes 1. Every case: index.html and speedup.csv.\n\n"
        + "\n".join(lines)
        + f"\n\n{table(by_size, views.DETAIL_FORMATS)}\n"
    )


def side_by_side_text(table_rows: pd.DataFrame, backends: list[str], ratios: list[str]) -> tuple[pd.DataFrame, str]:
    """The side-by-side rows of one machine and model as Markdown cells ("steps/s (case)" per backend, ratios with
    a "≈" where the 95% interval includes 1), and what every row shares ("batch 256, hidden 64"), said once."""
    shown = pd.DataFrame(index=table_rows.index)
    shown["size"] = table_rows["size"]
    batch = [
        "full" if int(b) >= int(n) else f"{int(b):,}"
        for b, n in zip(table_rows["batch_size"], table_rows["n_examples"])
    ]
    places = {
        "batch_size": batch,
        "hidden": table_rows["hidden"].map(views.COUNT),
        "device_class": table_rows["device_class"].astype(str),
        "dtype": table_rows["dtype"].astype(str),
    }
    shared = []
    for column, values in places.items():
        values = pd.Series(values, index=table_rows.index)
        if values.nunique() > 1:
            shown[column] = values
        elif not (column == "hidden" and values.iloc[0] == "0") and not (
            column == "batch_size" and values.iloc[0] == "full"
        ):
            # One value in every row: said once above the table (full batch and no hidden layer go without saying).
            shared.append(f"{views.HEADERS.get(column, column)} {values.iloc[0]}")
    for backend in backends:
        label = backend_label(backend)
        if f"{label} steps/s" not in table_rows:
            continue
        steps, case = table_rows[f"{label} steps/s"], table_rows[f"{label} case"]
        shown[label] = ["" if pd.isna(v) else f"{views.COUNT(v)} ({c})" for v, c in zip(steps, case)]
    for column in ratios:
        close = table_rows[f"{column} faster"] == NEITHER
        shown[column] = [
            "" if pd.isna(v) else f"{'≈' if c else ''}{views.RATIO(v)}×" for v, c in zip(table_rows[column], close)
        ]
    return shown, ", ".join(shared)


def section_backends(frame: pd.DataFrame) -> str:
    """Backends side by side (only when peers of MLX are present): each backend's fastest case per size."""
    if not peers_present(frame["backend"].unique()):
        return ""
    rows, backends, ratios = views.side_by_side(frame)
    if rows.empty:
        return ""
    focus = backend_label(FOCUS_BACKEND)
    parts = [
        "## Backends side by side\n\nEach backend's fastest case (steps/s, and which: variant-barrier-device) in the "
        "newest grid run of each machine's newest MLX version, one row per size, batch size, hidden width and device "
        "class (`cpu`, or `accelerator`: MLX `gpu`, PyTorch `cuda`/`mps`, JAX `cuda`). "
        + (
            f"{focus} ÷ a peer is {focus}'s fastest steps/s over the peer's, taken pass by pass (≈: the 95% interval "
            "includes 1). "
            if ratios
            else ""
        )
        + "Every pair of backends, both ways: backends.csv.\n"
    ]
    for (machine, version, model), part in rows.groupby(["machine", "mlx_version", "model"], sort=True, dropna=False):
        shown, shared = side_by_side_text(part, backends, ratios)
        heading = f"`{machine}` {views.mlx_text(version)}, {model}" + (f" ({shared})" if shared else "")
        parts.append(f"### {heading}\n\n{table(shown)}\n")
    return "\n".join(parts)


def section_blog(frame: pd.DataFrame) -> str:
    """The blog's configurations: this machine's steps/s beside the blog's published figures."""
    figures = load_blog_figures()
    published = {(f["model"], f["backend"]): f["steps_per_s"] for f in figures["figures"]}
    rows = views.blog_rows(frame, published)
    if rows.empty:
        return "## The blog's cases\n\n_(no results of the blog scenario; run `pytest --benchmark-only benchmarks/test_blog.py`)_\n"
    rows = rows.assign(unstable=rows["unstable"].map(lambda u: "yes" if u else ""))
    return (
        f"## The blog's cases\n\nThe blog: {figures['machine']}. Its figures are one timing each; "
        f"here, the median of the rounds (newest run per machine and MLX version).\n\n"
        f"{table(rows, views.DETAIL_FORMATS)}\n\n{table(views.blog_ratios(rows, published), views.DETAIL_FORMATS)}\n"
    )


def section_versions(versions: pd.DataFrame) -> str:
    """MLX versions: verdict counts per machine and pair of releases."""
    rows = views.verdict_rows(versions)
    if rows.empty:
        return ""
    return (
        "## MLX versions\n\nEach release against the previous one on the same machine, run by run (each run "
        "normalised by its NumPy controls, which must come out `same`), verdicts counted; every comparison, against "
        "the previous and the oldest: versions.csv.\n\n"
        f"{table(views.verdict_counts(rows))}\n"
    )


def section_distributed(frame: pd.DataFrame) -> str:
    """Distributed runs (a few rows when present): throughput and scaling efficiency per rank count."""
    shown = views.distributed_detail(frame[frame["phase"] == "warm"])
    if shown.empty:
        return ""
    return f"## Distributed runs\n\n{table(shown, {'steps_per_s': views.COUNT, **views.DETAIL_FORMATS})}\n"


def section_machines(frame: pd.DataFrame) -> str:
    """Each machine and MLX version: what ran where."""
    shown = views.machines(frame).drop(columns=["env"], errors="ignore")
    notes = ""
    reference = views.reference_blas_machines(frame)
    if reference:
        notes = "\n\nMLX on " + ", ".join(f"`{m}`" for m in reference) + " " + views.REFERENCE_BLAS_NOTE
    return f"## Machines\n\n{table(shown)}{notes}\n"


def section_unstable(frame: pd.DataFrame) -> str:
    """How many rows are too noisy to trust, and the worst of the newest runs."""
    rule = UNSTABLE_RULE
    count = int(frame["unstable"].sum())
    half = pd.to_numeric(frame.get("steps_per_s_half_width_pct", pd.Series(dtype=float)), errors="coerce").dropna()
    widths = (
        f"95% intervals of steps/s over the {len(half):,} rows that carry one: half-width {half.median():.1f}% at the "
        f"median, {half.quantile(0.9):.1f}% at the 90th percentile (column `steps_per_s_half_width_pct`).\n\n"
        if len(half)
        else ""
    )
    if not count:
        return f"## Unstable rows\n\n{widths}None ({rule}).\n"
    shown = views.unstable_detail(frame).sort_values("iqr_pct_of_median", ascending=False)
    return (
        f"## Unstable rows\n\n{widths}{count} of {len(frame):,} row(s) over all runs with {rule} (column `unstable` of "
        f"throughput.csv; marked in index.html). Widest spread in the newest runs:\n\n"
        f"{table(shown.head(MAX_UNSTABLE).drop(columns=['run']), views.DETAIL_FORMATS)}"
        f"{_more(MAX_UNSTABLE, len(shown), 'index.html (Details, Unstable rows)')}\n"
    )


def section_files(plots: list[Path], skipped: list[tuple[str, str]]) -> str:
    """Where everything else is: the page, the CSVs, the plots, and the files skipped."""
    plot_names = ", ".join(f"[{p.name}]({p.name})" for p in plots) or "none (`--no-plots`)"
    skip_list = "\n".join(f"- `{path}`: {why}" for path, why in skipped[:MAX_SKIPPED]) or "_(none)_"
    return (
        "## Files\n\n"
        "- [index.html](index.html): the full report, every table sortable and filterable, plots inline\n"
        "- [throughput.csv](throughput.csv): one row per case per run\n"
        "- [speedup.csv](speedup.csv): each case ÷ its NumPy baseline per run, with 95% intervals\n"
        "- [backends.csv](backends.csv): backend against backend, fastest case against fastest case, per run and size\n"
        "- [versions.csv](versions.csv): every MLX release comparison\n"
        f"- plots: {plot_names}\n\n"
        f"### Skipped input files ({len(skipped)})\n\n{skip_list}{_more(MAX_SKIPPED, len(skipped), 'the warnings printed by the report')}\n"
    )


def build_summary(
    frame: pd.DataFrame,
    speedup: pd.DataFrame,
    versions: pd.DataFrame,
    *,
    files: int,
    skipped: list[tuple[str, str]],
    plots: list[Path],
    threshold: float,
    correction: str,
    command: str,
    release_verdicts: list[dict] | None = None,
    self_tests: list[dict] | None = None,
    histories: list[dict] | None = None,
) -> str:
    """The whole summary.md text."""
    release_verdicts, self_tests = release_verdicts or [], self_tests or []
    versions_seen, span = views.runs_read(frame)
    span = f", {span}" if span else ""
    head = (
        "# MLX SGD Bench report\n\n"
        f"`{command}`: {files} result file(s) read, {len(skipped)} skipped; {len(frame):,} rows from "
        f"{frame['machine'].nunique()} machine(s), MLX {versions_seen}{span}.\n\n"
        "The full report, with every table and plot: [index.html](index.html). Every row: the CSVs (see Files).\n"
    )
    sections = [
        head,
        section_self_test(self_tests),
        section_regressions(versions, release_verdicts, threshold, correction),
        section_history(histories or []),
        section_answer(speedup),
        section_backends(frame),
        section_blog(frame),
        section_versions(versions),
        section_distributed(frame),
        section_machines(frame),
        section_unstable(frame),
        section_files(plots, skipped),
    ]
    return "\n".join(s for s in sections if s)
