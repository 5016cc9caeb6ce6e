"""SessionConfig: what the command line asked for, parsed once and shared by the suite's plugins."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bench.cases.case import GridOptions
from bench.cases.sizes import Size
from bench.engine.passes import Schedule
from bench.session.harness import Settings


@dataclass
class SessionConfig:
    """One session's parsed options and the state its plugins share."""

    sizes: tuple[Size, ...]
    grid: GridOptions
    memory_budget_bytes: int
    settings: Settings  # how hard to measure (the `settings` fixture)
    schedule: Schedule  # later passes and the cases' final figures
    sizes_option: str = "quick"
    # Measured at session start (bench.engine.machine_limits); None until then, or when not timing.
    machine_limits: dict | None = None
    run_mark: dict | None = None  # complete or interrupted, set when the session finishes (bench.results.run_state)
    # The data-parallel benchmark's settings (bench.distributed.pytest_plugin), where that plugin runs.
    distributed: object | None = None


SESSION_CONFIG = pytest.StashKey[SessionConfig]()


def session_config(config: pytest.Config) -> SessionConfig:
    """This session's SessionConfig (set by bench.session.options at configure)."""
    return config.stash[SESSION_CONFIG]
