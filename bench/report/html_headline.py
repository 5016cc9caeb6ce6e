"""index.html's opening sections: the answer, and the blog's cases beside the blog's figures.

Per machine (its newest MLX version) and model: each backend against NumPy
across sizes as a coloured table with one sentence that says it, and, when
peers of MLX are present, the backends side by side; then the blog's cases.
"""

from __future__ import annotations

import pandas as pd

from bench.results.releases import version_key
from bench.report import views
from bench.report.html_blocks import paragraph, section
from bench.report.html_figures import heatmap_legend, speedup_heatmap, speedup_norm
from bench.report.html_tables import esc, html_table
from bench.report.schema import backend_label, peers_present
from reference import load_blog_figures


def side_by_side_block(side: pd.DataFrame, ratios: list[str]) -> str:
    """The side-by-side table of one machine: each backend's fastest case per model and size, MLX ÷ each peer."""
    if side.empty:
        return ""
    shown = side.drop(columns=["machine", "mlx_version", "n_examples"])
    formats = {c: views.COUNT for c in shown.columns if c.endswith(" steps/s")} | {c: views.RATIO for c in ratios}
    formats |= {"batch_size": views.COUNT, "hidden": views.COUNT}
    return (
        "<h4>Backends side by side: the fastest case of each</h4>"
        + paragraph(
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
        return section("answer", title, paragraph("No MLX grid case with a NumPy baseline in the same run.", "none"))
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
            parts.append(paragraph(f"MLX here {esc(views.REFERENCE_BLAS_NOTE.replace('`', ''))}", "answer"))
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
    return section("answer", title, "".join(parts))


def blog_section(frame: pd.DataFrame) -> str:
    """The blog's cases beside the blog's published figures."""
    figures = load_blog_figures()
    published = {(f["model"], f["backend"]): f["steps_per_s"] for f in figures["figures"]}
    rows = views.blog_rows(frame, published)
    if rows.empty:
        body = paragraph(
            "No results of the blog scenario; run <code>pytest --benchmark-only benchmarks/test_blog.py</code>.", "none"
        )
    else:
        body = (
            paragraph(
                f"The blog: {esc(figures['machine'])}. Its figures are one timing each; here, the median of the rounds "
                "(newest run per machine and MLX version)."
            )
            + html_table(rows, views.DETAIL_FORMATS, "blog")
            + "<h4>MLX ÷ NumPy, here and in the blog</h4>"
            + html_table(views.blog_ratios(rows, published), views.DETAIL_FORMATS, "blog-ratios")
        )
    return section("blog", "The blog's cases", body)
