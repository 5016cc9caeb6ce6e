"""PNG plots: steps/s against problem size, speedup heatmaps against NumPy, backends side by side, MLX versions.

Drawn with matplotlib's Agg canvas on standalone Figure objects (no pyplot):
no display is needed and no global figure state builds up over many plots.
One file per machine and model (and, for the speedup heatmaps, per backend
compared with NumPy: speedup-<model>-<backend>-<machine>.png); each plot shows
the newest MLX version of its machine, and the median over that version's runs
where there are several. When peers of MLX are present, backends-<model>-...
shows the fastest case of each backend by size, one panel per batch size and
hidden width, cpu and accelerator apart.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

from bench.results.releases import version_key
from bench.report.outputs import write_figure
from bench.report.regression import regressions
from bench.report.schema import (
    BASELINE_BACKEND,
    backend_label,
    backend_order,
    case_labels,
    peers_present,
)
from bench.report.speedup import fastest_cases

# Colour-blind-safe colours: Okabe and Ito's eight, then Paul Tol's muted scheme for
# further families; line style (barrier) and marker (device) tell lines apart as well.
PALETTE = (
    "#000000",
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#0072B2",
    "#D55E00",
    "#CC79A7",
    "#332288",
    "#44AA99",
    "#999933",
    "#882255",
    "#CC6677",
    "#88CCEE",
    "#AA4499",
    "#DDCC77",
    "#F0E442",
)  # fmt: skip  (pale yellows last: faint as lines on white)
REGRESSION_COLOR = "#D55E00"  # vermillion: visible to every kind of colour vision
_BARRIER_STYLE = {"eager": "-", "step": "-", "round": "--", "sync": ":"}
_DEVICE_MARKER = {"cpu": "o", "gpu": "D", "cuda": "^", "mps": "v"}
_CLASS_STYLE = {"cpu": "-", "accelerator": "--"}
_PANEL_COLUMNS = 3


def slug(text: str) -> str:
    """A file-name-safe form of a machine id."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("_") or "machine"


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)  # the Agg backend renders it, whatever matplotlib's default is
    return figure


def _plain_log_axis(axis) -> None:
    """Label a log axis with plain numbers (20,000 not 2x10^4), at powers of ten and at 2x and 5x."""

    def label(value, _position, minor):
        """The tick label of `value`; minor ticks only at 2x and 5x."""
        if value <= 0:
            return ""
        leading = round(value / 10 ** np.floor(np.log10(value)), 6)
        if minor and leading not in (2, 5):
            return ""
        return f"{value:,.0f}" if value >= 1 else f"{value:g}"

    axis.set_major_formatter(FuncFormatter(lambda v, p: label(v, p, False)))
    axis.set_minor_formatter(FuncFormatter(lambda v, p: label(v, p, True)))


def _blas_suffix(blas: str) -> str:
    """File-name suffix of a run whose MLX used another BLAS than its wheel's own (--mlx-blas)."""
    return "" if blas == "default" else f"-blas-{slug(blas)}"


def newest_version_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of the newest MLX version present (all rows when none records a version)."""
    versions = frame["mlx_version"].dropna().unique()
    if not len(versions):
        return frame
    return frame[frame["mlx_version"] == max(versions, key=version_key)]


def _style(case: pd.Series, colors: dict) -> dict:
    """Colour by backend and variant (and batch/hidden), line style by barrier, marker by device."""
    family = case["label"].replace(f"-{case['barrier']}-{case['device']}", "", 1)
    colors.setdefault(family, len(colors))
    index = colors[family]
    return {
        "color": PALETTE[index % len(PALETTE)],
        "linestyle": _BARRIER_STYLE.get(case["barrier"], "-."),
        "marker": _DEVICE_MARKER.get(case["device"], "s"),
        # A second round of the palette draws hollow markers, so that no two families look alike.
        "fillstyle": "full" if index < len(PALETTE) else "none",
    }


def plot_throughput(frame: pd.DataFrame, out: Path) -> list[Path]:
    """steps/s against problem size (n_examples x n_features), log axes, one file per machine and model."""
    grid = frame[(frame["phase"] == "warm") & (frame["scenario"] == "grid")]
    written = []
    for (machine, model, blas), part in grid.groupby(["machine", "model", "mlx_blas"], sort=True):
        part = newest_version_rows(part).copy()
        part["label"] = case_labels(part)
        # Sizes in order of elements of X (then examples): evenly spaced, one tick each, so that
        # two sizes of equal element count (10,000x1,000 and 100,000x100) stay apart.
        sizes = sorted(set(zip(part["n_examples"], part["n_features"])), key=lambda s: (s[0] * s[1], s[0]))
        position = {size: i for i, size in enumerate(sizes)}
        part["position"] = [position[s] for s in zip(part["n_examples"], part["n_features"])]
        figure = _figure(10, 5.5)
        axes = figure.add_subplot()
        colors: dict = {}
        for label, case in part.groupby("label", sort=True):
            points = case.groupby("position")["steps_per_s"].median().reset_index()
            axes.plot(points["position"], points["steps_per_s"], label=label, **_style(case.iloc[0], colors))
        axes.set_yscale("log")
        axes.set_xticks(range(len(sizes)), [f"{n:,}×{d:,}" for n, d in sizes], fontsize=8)
        _plain_log_axis(axes.yaxis)
        axes.set_xlabel("problem size: n_examples × n_features (in order of elements of X)")
        axes.set_ylabel("steps/s (log scale)")
        axes.grid(True, which="major", alpha=0.3)
        axes.set_title(
            f"{model}: steps/s by problem size — {machine}, MLX {part['mlx_version'].iloc[0]}"
            + ("" if blas == "default" else f", MLX BLAS {blas}")
        )
        axes.legend(title="backend-variant-barrier-device", fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
        written.append(write_figure(figure, out / f"throughput-{slug(model)}-{slug(machine)}{_blas_suffix(blas)}.png"))
    return written


def plot_speedup_heatmaps(speedup: pd.DataFrame, out: Path) -> list[Path]:
    """A backend's steps/s ÷ NumPy's over (n_examples, n_features), one panel per case of that backend, per
    machine, model and backend (every backend with a NumPy baseline)."""
    grid = speedup[speedup["scenario"] == "grid"]
    written = []
    for (machine, model, blas, backend), part in grid.groupby(["machine", "model", "mlx_blas", "backend"], sort=True):
        part = newest_version_rows(part).copy()
        part["label"] = case_labels(part)
        label_of_backend, baseline = backend_label(backend), backend_label(BASELINE_BACKEND)
        panels = sorted(part["label"].unique())
        # One colour scale for every panel, symmetric around 1 on a log axis.
        reach = float(np.nanmax(np.abs(np.log10(part["speedup"].clip(lower=1e-6))))) if len(part) else 1.0
        norm = LogNorm(vmin=10 ** -max(reach, 0.1), vmax=10 ** max(reach, 0.1))
        columns = min(_PANEL_COLUMNS, len(panels))
        rows = -(-len(panels) // columns)
        figure = _figure(4.2 * columns + 1.2, 3.6 * rows + 0.8)
        image = None
        for index, label in enumerate(panels):
            axes = figure.add_subplot(rows, columns, index + 1)
            case = part[part["label"] == label]
            table = case.pivot_table(index="n_examples", columns="n_features", values="speedup", aggfunc="median")
            values = table.to_numpy()
            image = axes.imshow(values, cmap="RdBu", norm=norm, origin="lower", aspect="auto")
            axes.set_facecolor("0.85")  # sizes not measured: grey, not the white of "1x"
            for (i, j), value in np.ndenumerate(values):
                shade = norm(value) if not np.isnan(value) else 0.5
                text = "n/a" if np.isnan(value) else f"{value:.2g}×"
                # White on the dark ends of the colour map, black in its pale middle.
                axes.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    fontsize=9,
                    color="white" if abs(shade - 0.5) > 0.3 else "black",
                )
            axes.set_xticks(range(len(table.columns)), [f"{d:,}" for d in table.columns])
            axes.set_yticks(range(len(table.index)), [f"{n:,}" for n in table.index])
            axes.set_xlabel("n_features")
            axes.set_ylabel("n_examples")
            axes.set_title(
                f"{label.removeprefix(f'{backend}-')}\nvs {baseline} {case['baseline_variant'].iloc[0]} "
                f"{case['baseline_barrier'].iloc[0]}",
                fontsize=9,
            )
        bar = figure.colorbar(
            image,
            ax=figure.axes,
            label=f"speedup: {label_of_backend} steps/s ÷ {baseline} steps/s (>1: {label_of_backend} faster)",
        )
        ticks = [t for t in (0.001, 0.01, 0.1, 0.5, 1, 2, 10, 100, 1000) if norm.vmin <= t <= norm.vmax]
        bar.set_ticks(ticks, labels=[f"{t:g}×" for t in ticks])
        bar.minorticks_off()
        figure.suptitle(
            f"{model}: {label_of_backend} / {baseline} speedup — {machine}, MLX {part['mlx_version'].iloc[0]}"
        )
        name = f"speedup-{slug(model)}-{slug(backend)}-{slug(machine)}{_blas_suffix(blas)}.png"
        written.append(write_figure(figure, out / name))
    return written


def _shape_label(n_examples: int, batch_size: int, hidden: int) -> str:
    """A panel's shape: ``full batch``, ``batch 256``, with ``hidden 64`` for the MLP."""
    batch = "full batch" if int(batch_size) >= int(n_examples) else f"batch {int(batch_size):,}"
    return batch + (f", hidden {int(hidden):,}" if int(hidden) else "")


def plot_backends(frame: pd.DataFrame, out: Path) -> list[Path]:
    """The fastest case of each backend by problem size, one panel per batch size and hidden width, per machine
    and model (only when peers of MLX are present: otherwise the throughput plot already shows both backends)."""
    grid = frame[(frame["phase"] == "warm") & (frame["scenario"] == "grid")]
    if grid.empty or not peers_present(grid["backend"].unique()):
        return []
    written = []
    for (machine, model, blas), part in grid.groupby(["machine", "model", "mlx_blas"], sort=True):
        best = fastest_cases(newest_version_rows(part))
        if best.empty:
            continue
        best["shape"] = [
            _shape_label(n, b, h) for n, b, h in zip(best["n_examples"], best["batch_size"], best["hidden"])
        ]
        sizes = sorted(set(zip(best["n_examples"], best["n_features"])), key=lambda s: (s[0] * s[1], s[0]))
        position = {size: i for i, size in enumerate(sizes)}
        best["position"] = [position[s] for s in zip(best["n_examples"], best["n_features"])]
        # One colour per backend, the same in every panel and file (the palette's order, black for NumPy).
        colors = {b: PALETTE[i % len(PALETTE)] for i, b in enumerate(backend_order(grid["backend"]))}
        shapes = sorted(best["shape"].unique(), key=lambda s: (s.startswith("batch"), s))
        columns = min(_PANEL_COLUMNS, len(shapes))
        rows = -(-len(shapes) // columns)
        figure = _figure(max(5 * columns + 2.5, 10), 4 * rows + 0.8)  # wide enough for its title
        handles = {}
        for index, shape in enumerate(shapes):
            axes = figure.add_subplot(rows, columns, index + 1)
            mine = best[best["shape"] == shape]
            for (backend, kind), line in mine.groupby(["backend", "device_class"], sort=False):
                points = line.groupby("position")["steps_per_s"].median().reset_index()
                label = f"{backend_label(backend)} ({kind})"
                (drawn,) = axes.plot(
                    points["position"],
                    points["steps_per_s"],
                    color=colors[backend],
                    linestyle=_CLASS_STYLE.get(kind, "-."),
                    marker="o" if kind == "cpu" else "D",
                    label=label,
                )
                handles.setdefault(label, (list(colors).index(backend), kind != "cpu", drawn))
            axes.set_yscale("log")
            _plain_log_axis(axes.yaxis)
            axes.set_xticks(range(len(sizes)), [f"{n:,}×{d:,}" for n, d in sizes], fontsize=8, rotation=30)
            axes.set_xlim(-0.5, len(sizes) - 0.5)
            axes.set_xlabel("problem size: n_examples × n_features")
            axes.set_ylabel("steps/s of the fastest case (log scale)")
            axes.set_title(shape, fontsize=9)
            axes.grid(True, which="major", alpha=0.3)
        order = sorted(handles, key=lambda h: handles[h][:2])  # backends in the suite's order, cpu first
        figure.legend(
            [handles[h][2] for h in order],
            order,
            loc="outside right center",
            fontsize=8,
            title="backend (device class)",
        )
        figure.suptitle(
            f"{model}: fastest case of each backend by size — {machine}, MLX {part['mlx_version'].iloc[0]}"
            + ("" if blas == "default" else f", MLX BLAS {blas}")
        )
        written.append(write_figure(figure, out / f"backends-{slug(model)}-{slug(machine)}{_blas_suffix(blas)}.png"))
    return written


def plot_versions(frame: pd.DataFrame, versions: pd.DataFrame, out: Path) -> list[Path]:
    """steps/s by MLX version (median and IQR over pooled runs), one panel per size, per machine and model."""
    warm = frame[(frame["phase"] == "warm") & frame["mlx_version"].notna()].copy()
    written = []
    for (machine, model, blas), part in warm.groupby(["machine", "model", "mlx_blas"], sort=True):
        ordered = sorted(part["mlx_version"].unique(), key=version_key)
        if len(ordered) < 2:
            continue
        position = {v: i for i, v in enumerate(ordered)}
        part["label"] = case_labels(part)
        part["size"] = [
            f"{s} n={n:,} d={d:,}" for s, n, d in zip(part["scenario"], part["n_examples"], part["n_features"])
        ]
        flagged = regressions(versions)
        flagged = flagged[(flagged["machine"] == machine) & (flagged["model"] == model)]
        sizes = sorted(part["size"].unique())
        columns = min(_PANEL_COLUMNS, len(sizes))
        rows = -(-len(sizes) // columns)
        figure = _figure(5 * columns + 2.5, 3.8 * rows + 0.8)
        colors: dict = {}
        handles = {}
        for index, size in enumerate(sizes):
            axes = figure.add_subplot(rows, columns, index + 1)
            for label, case in part[part["size"] == size].groupby("label", sort=True):
                stats = case.groupby("mlx_version")["steps_per_s"].describe()[["25%", "50%", "75%"]]
                stats = stats.loc[sorted(stats.index, key=version_key)]
                x = [position[v] for v in stats.index]
                style = _style(case.iloc[0], colors)
                line = axes.errorbar(
                    x, stats["50%"], yerr=[stats["50%"] - stats["25%"], stats["75%"] - stats["50%"]], capsize=2, **style
                )
                handles.setdefault(label, line)
            axes.set_yscale("log")
            _plain_log_axis(axes.yaxis)
            axes.set_xticks(range(len(ordered)), ordered, rotation=30, fontsize=8)
            axes.set_xlim(-0.5, len(ordered) - 0.5)
            axes.set_xlabel("MLX version")
            axes.set_ylabel("steps/s (log scale)")
            axes.set_title(size, fontsize=9)
            axes.grid(True, alpha=0.3)
            _mark_regressions(axes, part[part["size"] == size], flagged, position)
        figure.legend(
            list(handles.values())
            + [Line2D([], [], color=REGRESSION_COLOR, marker="o", fillstyle="none", linestyle="", markersize=12)],
            list(handles) + ["regression (vs previous version)"],
            loc="outside right center",
            fontsize=8,
            title="backend-variant-barrier-device",
        )
        figure.suptitle(f"{model}: steps/s by MLX version (median, bars: IQR over runs) — {machine}")
        written.append(write_figure(figure, out / f"versions-{slug(model)}-{slug(machine)}{_blas_suffix(blas)}.png"))
    return written


def _mark_regressions(axes, rows: pd.DataFrame, flagged: pd.DataFrame, position: dict) -> None:
    """Ring the points that regressed against the previous version."""
    flagged = flagged[flagged["against"] == "previous"].copy()
    flagged["label"] = case_labels(flagged)
    for _, regression in flagged.iterrows():
        same = rows[
            (rows["n_examples"] == regression["n_examples"])
            & (rows["n_features"] == regression["n_features"])
            & (rows["scenario"] == regression["scenario"])
            & (rows["mlx_version"] == regression["newer"])
            & (rows["label"] == regression["label"])
        ]
        if len(same):
            axes.plot(
                position[regression["newer"]],
                same["steps_per_s"].median(),
                "o",
                markersize=14,
                fillstyle="none",
                color=REGRESSION_COLOR,
            )


def write_plots(frame: pd.DataFrame, speedup: pd.DataFrame, versions: pd.DataFrame, out: Path) -> list[Path]:
    """Every plot the data allows; returns the files written."""
    return (
        plot_throughput(frame, out)
        + plot_speedup_heatmaps(speedup, out)
        + plot_backends(frame, out)
        + plot_versions(frame, versions, out)
    )
