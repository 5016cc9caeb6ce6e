"""The cases of a model at a size: every registered backend's, in the order a pass times them.

In the default quick grid a backend may run at fewer sizes (Backend.quick_sizes).
Cases that are compared with each other stay next to each other: all
backends' cases of one (batch size, hidden width) form a block, blocks in the
order the first backend (NumPy) names them, backends within a block in the
registry's order.
"""

from __future__ import annotations

from bench.backends import all_backends
from bench.cases import Case, GridOptions
from bench.sizes import Size

SCENARIOS = ("grid", "blog", "cold")
DEFAULT_GRID = GridOptions()


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
