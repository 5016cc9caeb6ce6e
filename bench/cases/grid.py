"""The cases of a model at a size: every registered backend's, in the order a pass times them.

In the default quick grid a backend may run at fewer sizes (Backend.quick_sizes).
Cases that are compared with each other stay next to each other: all
backends' cases of one (batch size, hidden width) form a block, blocks in the
order the first backend (NumPy) names them, backends within a block in the
registry's order.
"""

from __future__ import annotations

from bench.backends import all_backends
from bench.cases.case import Case, GridOptions
from bench.cases.sizes import Size

SCENARIOS = ("grid", "blog", "cold")
DEFAULT_GRID = GridOptions()

# The release history's grid (`python -m bench.versions --history`, `--sizes history`): few enough
# cases that two dozen releases, interleaved, fit in well under an hour on two cores, and one of each
# thing a release can change: per-step overhead at a small size with mini-batches of 32 and 256 and
# the full batch (1,000 x 10), every barrier (step, round, sync) and every MLX variant at the blog's
# size (1,000 x 100), logistic regression, the MLP in mini-batches and full batch, one large,
# BLAS-bound size (10,000 x 1,000), and beside each group its NumPy controls, whose code is the
# same in every release and so tells drift of the machine from a change of MLX.
HISTORY_GRID = "history"
HISTORY_CASES = (
    "linear-mlx-compiled-step-cpu-b32-n1000-d10",
    "linear-mlx-autodiff-step-cpu-b32-n1000-d10",
    "linear-mlx-compiled-step-cpu-b256-n1000-d10",
    "linear-mlx-autodiff-step-cpu-b256-n1000-d10",
    "linear-mlx-autodiff-step-cpu-n1000-d10",
    "linear-numpy-analytic-eager-cpu-b32-n1000-d10",
    "linear-numpy-analytic-eager-cpu-b256-n1000-d10",
    "linear-numpy-analytic-eager-cpu-n1000-d10",
    "linear-mlx-autodiff-step-cpu-n1000-d100",
    "linear-mlx-autodiff-round-cpu-n1000-d100",
    "linear-mlx-autodiff-sync-cpu-n1000-d100",
    "linear-mlx-analytic-step-cpu-n1000-d100",
    "linear-mlx-compiled-step-cpu-n1000-d100",
    "linear-numpy-analytic-eager-cpu-n1000-d100",
    "linear-numpy-analytic-sync-cpu-n1000-d100",
    "logistic-mlx-autodiff-step-cpu-n1000-d100",
    "logistic-mlx-compiled-step-cpu-b32-n1000-d100",
    "logistic-numpy-analytic-eager-cpu-n1000-d100",
    "logistic-numpy-analytic-eager-cpu-b32-n1000-d100",
    "mlp-mlx-nn-step-cpu-h64-b256-n1000-d100",
    "mlp-mlx-compiled-step-cpu-h64-b256-n1000-d100",
    "mlp-mlx-nn-step-cpu-h64-n1000-d100",
    "mlp-numpy-analytic-eager-cpu-h64-b256-n1000-d100",
    "mlp-numpy-analytic-eager-cpu-h64-n1000-d100",
    "linear-mlx-autodiff-step-cpu-n10000-d1000",
    "linear-numpy-analytic-eager-cpu-n10000-d1000",
)
HISTORY_SIZES = "1000x10,1000x100,10000x1000"


def cases_for(model: str, scenario: str, size: Size, grid: GridOptions = DEFAULT_GRID) -> list[Case]:
    """Every backend's cases of a model at a size in a scenario, compared cases side by side."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    found = [
        case
        for backend in all_backends()
        if not (grid.quick and backend.quick_sizes is not None and size not in backend.quick_sizes)
        for case in backend.cases(model, scenario, size, grid)
    ]
    block: dict[tuple, int] = {}
    for case in found:
        block.setdefault((case.batch_size, case.hidden), len(block))
    return sorted(found, key=lambda case: block[(case.batch_size, case.hidden)])  # stable: backend order within


def skip_reason(case: Case) -> str | None:
    """Why a case's backend cannot run it here (library missing, device absent), or None."""
    from bench.backends import get

    backend = get(case.backend)
    return backend.missing() or backend.unavailable(case.device)


def grid_case_entries(
    sizes: str, devices: tuple[str, ...] | None, backends: tuple[str, ...], models: tuple[str, ...] | None = None
) -> tuple[list[dict], list[str]]:
    """The warm grid's cases at `sizes` as JSON entries (case, size, case_id), and the ids over the memory budget.

    What the release runner times: the suite's own case list and memory rule,
    as the environment it runs in builds them. devices None: MLX's default.
    """
    from dataclasses import asdict

    from bench.backends import get
    from bench.cases.sizes import default_memory_budget, estimated_case_bytes, parse_sizes

    grid = sizes.strip().lower()
    if grid == HISTORY_GRID:
        found, skipped = grid_case_entries(HISTORY_SIZES, devices, backends, models)
        # The list names the CPU cases; on a GPU the same cases run with "gpu" in their ids.
        on_cpu = {entry["case_id"]: entry["case_id"].replace("-gpu-", "-cpu-") for entry in found}
        keep = [entry for entry in found if on_cpu[entry["case_id"]] in HISTORY_CASES]
        return sorted(keep, key=lambda entry: HISTORY_CASES.index(on_cpu[entry["case_id"]])), skipped
    options = grid_options(sizes)
    mlx = get("mlx")
    device_text = ",".join(devices) if devices else ",".join(mlx.devices())
    mlx.configure({"mlx_blas": "bundled", "mlx_device": device_text}.get)
    budget = default_memory_budget()
    found, skipped = [], []
    for size in parse_sizes(sizes):
        for model in models or ("linear", "logistic", "mlp"):
            for case in cases_for(model, "grid", size, options):
                if case.backend not in backends or skip_reason(case):
                    continue
                entry = {"case": asdict(case), "size": asdict(size), "case_id": case.case_id(size)}
                if estimated_case_bytes(size, case.hidden or 0) > budget:
                    skipped.append(entry["case_id"])
                else:
                    found.append(entry)
    return found, skipped


def grid_options(sizes: str) -> GridOptions:
    """The grid's options for a --sizes value: the MLP's widths and the quick grid's full-batch limit."""
    from bench.cases.case import HIDDEN_SIZES, QUICK_MLP_FULL_BATCH_WORK

    grid = sizes.strip().lower()
    return GridOptions(
        hidden=HIDDEN_SIZES.get(grid, HIDDEN_SIZES["quick"]),
        mlp_full_batch_work=QUICK_MLP_FULL_BATCH_WORK if grid == "quick" else None,
    )


def grid_case_ids(sizes: str, backends: tuple[str, ...]) -> set[str]:
    """Every case id grid_case_entries could list at `sizes`, on any of a backend's devices and any machine.

    Nothing is skipped (library missing, device absent, over the memory budget):
    a command line is checked against it before anything is installed, and a
    case only this machine cannot run is the worker's to report.
    """
    from dataclasses import replace

    from bench.cases.sizes import parse_sizes

    if sizes.strip().lower() == HISTORY_GRID:
        every = grid_case_ids(HISTORY_SIZES, backends)
        return {i for i in every if i.replace("-gpu-", "-cpu-") in HISTORY_CASES}
    options = grid_options(sizes)
    ids = set()
    for size in parse_sizes(sizes):
        for model in ("linear", "logistic", "mlp"):
            for case in cases_for(model, "grid", size, options):
                if case.backend in backends:
                    devices = _devices_of(case.backend) or (case.device,)
                    ids |= {replace(case, device=device).case_id(size) for device in devices}
    return ids


def _devices_of(backend: str) -> tuple[str, ...]:
    """The devices a backend's module names (DEVICES), or none."""
    import importlib

    return tuple(getattr(importlib.import_module(f"bench.backends.{backend}"), "DEVICES", ()))
