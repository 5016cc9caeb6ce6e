"""The headline's tables: each backend against NumPy, and the backends side by side.

From speedup.csv and backends.csv: the newest run of each machine's newest
MLX version, the title and the one sentence that answer the question, the
best and worst case per size, and, when peers of MLX (PyTorch, JAX...) are
present, each backend's fastest case next to the others'.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.report.filters import latest_runs
from bench.report.schema import BASELINE_BACKEND, FOCUS_BACKEND, backend_label, backend_order
from bench.report.speedup import backends_table, fastest_cases
from bench.report.table_rows import newest_version, size_text, with_case


def _without_backend(cases, backends) -> list[str]:
    """Case labels without their leading backend name (the table or heading says it)."""
    return [str(c).removeprefix(f"{b}-") for c, b in zip(cases, backends)]


def speedup_cells(speedup: pd.DataFrame) -> pd.DataFrame:
    """The headline's data: newest run of each machine's newest MLX version, grid and blog scenarios, one row
    per non-NumPy case and size with its speedup and which side the interval favours."""
    if speedup.empty:
        return speedup.assign(case=[], size=[])
    usable = speedup[np.isfinite(pd.to_numeric(speedup["speedup"], errors="coerce"))]
    if usable.empty:
        return usable.assign(case=[], size=[])
    shown = with_case(latest_runs(newest_version(usable)))
    shown["case"] = _without_backend(shown["case"], shown["backend"])
    return shown


def compared_backends(cells: pd.DataFrame) -> list[str]:
    """The backends of speedup rows, in the suite's order."""
    return backend_order(cells["backend"]) if len(cells) and "backend" in cells else []


def answer_title(cells: pd.DataFrame) -> str:
    """The headline's title: "MLX against NumPy" with one backend compared (or none), else "Backends against NumPy"."""
    backends = compared_backends(cells) or [FOCUS_BACKEND]
    subject = backend_label(backends[0]) if len(backends) == 1 else "Backends"
    return f"{subject} against {backend_label(BASELINE_BACKEND)}"


def headline_sentence(cells: pd.DataFrame) -> str:
    """One line: how many cases of one backend beat NumPy, the best and the worst, for one machine and model."""
    if cells.empty:
        return (
            f"no {backend_label(FOCUS_BACKEND)} case with a {backend_label(BASELINE_BACKEND)} baseline in the same run"
        )
    backend = compared_backends(cells)[0]
    counts = cells["faster"].value_counts()
    best = cells.loc[cells["speedup"].idxmax()]
    worst = cells.loc[cells["speedup"].idxmin()]
    return (
        f"{backend_label(backend)} faster in {counts.get(backend, 0)} of {len(cells)} (case, size) pairs, "
        f"{backend_label(BASELINE_BACKEND)} faster in {counts.get(BASELINE_BACKEND, 0)}, too close to call in "
        f"{counts.get('inconclusive', 0)}; "
        f"best {best['speedup']:.3g}× ({best['case']} at {best['size']}), "
        f"worst {worst['speedup']:.3g}× ({worst['case']} at {worst['size']})"
    )


def headline_by_size(cells: pd.DataFrame) -> pd.DataFrame:
    """Per machine, model, size (and backend, when several): the best and worst case against NumPy, and the
    count that beat it. With one backend its name is in the headers ("best MLX case"), as it always was."""
    backends = compared_backends(cells)
    several = len(backends) > 1
    one = f"{backend_label(backends[0])} " if len(backends) == 1 else ""  # "best MLX case"; "best case" when several
    rows = []
    # dropna=False: a run on a machine without MLX has no MLX version, and its rows still count.
    for (machine, version, model, scenario, size, backend), part in cells.groupby(
        ["machine", "mlx_version", "model", "scenario", "size", "backend"], sort=False, dropna=False
    ):
        best, worst = part.loc[part["speedup"].idxmax()], part.loc[part["speedup"].idxmin()]
        row = {"machine": machine, "MLX": version, "model": model, "scenario": scenario, "size": size}
        if several:
            row["backend"] = backend_label(backend)
        row[f"{one}faster (cases)" if one else f"faster than {backend_label(BASELINE_BACKEND)} (cases)"] = (
            f"{int((part['faster'] == backend).sum())} of {len(part)}"
        )
        row[f"best {one}case"] = best["case"]
        row["best ×"] = best["speedup"]
        row[f"worst {one}case"] = worst["case"]
        row["worst ×"] = worst["speedup"]
        rows.append(row)
    frame = pd.DataFrame(rows)
    if several and rows:  # within each size, the backends in the suite's order
        rank = {backend_label(b): i for i, b in enumerate(backends)}
        group = frame.groupby(["machine", "MLX", "model", "scenario", "size"], sort=False, dropna=False).ngroup()
        frame = frame.assign(_g=group, _b=frame["backend"].map(rank)).sort_values(["_g", "_b"], kind="stable")
        frame = frame.drop(columns=["_g", "_b"]).reset_index(drop=True)
    return frame


def _grid_runs(frame: pd.DataFrame) -> pd.DataFrame:
    """Warm grid rows of the newest run per machine and its newest MLX version."""
    warm = frame[(frame["phase"] == "warm") & (frame["scenario"] == "grid")]
    return latest_runs(newest_version(warm)) if len(warm) else warm


# The columns that place a row of the side-by-side table (what its backends' fastest cases share).
SIDE_KEYS = ("machine", "mlx_version", "model", "size", "batch_size", "hidden", "device_class", "dtype")


def side_by_side(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Backends side by side: (table, backends, ratio columns).

    One row per machine, model, size, batch size, hidden width, device class
    (cpu or accelerator) and dtype of the newest grid run (with its n_examples,
    which says whether the batch is full); per backend present, ``<Label>
    steps/s`` and ``<Label> case`` (its fastest case there: variant, barrier and
    device), then ``MLX ÷ <peer>`` and ``MLX ÷ <peer> faster`` (the side the 95%
    interval favours) for each peer, from backends_table. Rows where only one
    backend ran are left out: there is nothing beside it.
    """
    runs = _grid_runs(frame)
    if runs.empty:
        return pd.DataFrame(), [], []
    best = fastest_cases(runs)
    backends = backend_order(best["backend"])
    if len(backends) < 2:
        return pd.DataFrame(), backends, []
    best = best.assign(
        size=size_text(best["n_examples"], best["n_features"]),
        shown=best["variant"] + "-" + best["barrier"] + "-" + best["device"],
        _order=best["n_examples"] * best["n_features"],
    )
    keys = list(SIDE_KEYS)
    best = best.drop_duplicates([*keys, "backend"])  # one run per machine and version: one case per key
    wide = best.set_index([*keys, "backend"])[["steps_per_s", "shown"]].unstack("backend")
    table = wide.index.to_frame(index=False)
    for backend in backends:
        label = backend_label(backend)
        if ("steps_per_s", backend) in wide:
            table[f"{label} steps/s"] = wide[("steps_per_s", backend)].to_numpy(dtype=float)
            table[f"{label} case"] = wide[("shown", backend)].to_numpy(dtype=object)
    present = table[[f"{backend_label(b)} steps/s" for b in backends]].notna().sum(axis=1)
    ratios = []
    peers = [b for b in backends if b not in (FOCUS_BACKEND, BASELINE_BACKEND)]
    if FOCUS_BACKEND in backends and peers:
        pairs = backends_table(runs)
        pairs = pairs[(pairs["backend"] == FOCUS_BACKEND) & pairs["other_backend"].isin(peers)]
        pairs = pairs.assign(size=size_text(pairs["n_examples"], pairs["n_features"]))
        for peer in peers:
            mine = pairs[pairs["other_backend"] == peer].drop_duplicates(keys)
            column = f"{backend_label(FOCUS_BACKEND)} ÷ {backend_label(peer)}"
            found = table[keys].merge(mine[[*keys, "ratio", "faster"]], on=keys, how="left")
            table[column] = found["ratio"].to_numpy(dtype=float)
            table[f"{column} faster"] = found["faster"].to_numpy(dtype=object)
            ratios.append(column)
    order = best.drop_duplicates(["size"]).set_index("size")[["_order", "n_examples"]]  # n_examples: batch "full"
    table = table.join(order, on="size").assign(_cpu_last=table["device_class"] != "cpu")
    table = table.sort_values(
        ["machine", "mlx_version", "model", "_order", "n_examples", "batch_size", "hidden", "_cpu_last", "dtype"],
        kind="stable",
    )
    table = table[present.reindex(table.index) >= 2].drop(columns=["_order", "_cpu_last"])
    return table.reset_index(drop=True), backends, ratios
